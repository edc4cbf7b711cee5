/**
 * Causal GQA attention core, version 4: attention-mma.cu's FlashAttention-2 (same tiles, same
 * mma.sync.m16n8k16 sequence, same FP32 softmax, so the same bits) with the data movement of
 * FlashAttention-2 proper: q, k, v and dout are read as BF16 tensors (attention_bf16_cast rounds
 * them once, RNE, the rounding attention-mma.cu applies as it loads), tiles go global → shared
 * memory by cp.async (16-byte requests, coalesced rows, zero-filled past T) into two buffers, so
 * the next tile loads while this one computes, and every operand fragment comes from row-major
 * tiles through ldmatrix (.trans where the product needs the tile transposed: V in the forward, K
 * in dq, Q and dout in dkv), where attention-mma.cu stored transposed copies. Per key/query tile
 * pair that moves 16 KB of BF16 (dkv) instead of 64 KB of FP32 half of it read column-wise.
 * attention-mma.cu stays as the twin (FP4LM_OPS_KERNELS=plain) and the reference of the bits.
 *
 * Head size 64; 64 rows per tile, 4 warps × 16 rows, shared rows padded to 72 BF16 (144 bytes:
 * the 8 row addresses of an ldmatrix hit 8 distinct 16-byte bank groups). Fragment layouts are
 * PTX's for m16n8k16 as in attention-mma.cu; ldmatrix.x4 lane l addresses row l%8 of matrix l/8.
 *
 * Sequence (host): the BF16 copies (attention_bf16_cast; scratch), then
 *   forward:  attention_mma_async_forward_hs64(out, lse, q16, k16, v16, B, T, NH, NKV)
 *   backward: attention_flash_backward_prep(D, dout, out, B, T, NH, 64, 1) (D of BF16(dout)),
 *             attention_bf16_cast of dout, then
 *             attention_mma_async_backward_dq_hs64(dq, dout16, q16, k16, v16, lse, D, B, T, NH, NKV)
 *             attention_mma_async_backward_dkv_hs64(dk, dv, dout16, q16, k16, v16, lse, D, B, T, NH, NKV)
 * Deterministic: no atomics; dk, dv sum the group's heads and query tiles in ascending order.
 * The asm helpers have host twins in attention-host-test.cpp (FP4LM_SIMT_SHIM), which runs this
 * file and attention-mma.cu on the CPU and compares their bits.
 */
#ifndef FP4LM_SIMT_SHIM
#include <cuda_bf16.h>
#endif
#include "ops-common.cuh"
#include "bf16-out.cuh"

#define AA_T 64     // rows per tile
#define AA_NT 128   // threads per block
#define AA_LD 72    // padded shared row, BF16 elements
#define AA_LOG2E 1.4426950408889634f

typedef unsigned int aa_u32;
typedef unsigned short aa_bf16;  // BF16 bits in global and shared memory

#ifndef FP4LM_SIMT_SHIM
__device__ __forceinline__ aa_u32 aa_pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<aa_u32*>(&v);
}

/** c += A·B for one 16×8×16 step (as attention-mma.cu's am_mma) */
__device__ __forceinline__ void aa_mma(float c[4], const aa_u32 a[4], aa_u32 b0, aa_u32 b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/** four 8×8 BF16 matrices; lane l gives the address of row l%8 of matrix l/8 */
__device__ __forceinline__ void aa_ldsm_x4(aa_u32 r[4], const aa_bf16* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s) : "memory");
}

/** the same, each matrix transposed */
__device__ __forceinline__ void aa_ldsm_x4_t(aa_u32 r[4], const aa_bf16* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s) : "memory");
}

/** 16 bytes global → shared, asynchronously; zeros instead when !valid (src is not read) */
__device__ __forceinline__ void aa_cp16(aa_bf16* dst, const aa_bf16* src, bool valid) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void aa_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/** wait until at most N committed groups are still in flight */
template <int N>
__device__ __forceinline__ void aa_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
#endif

/** dst (64 × AA_LD) ← rows r < nrows of src (row stride `stride` BF16), zeros beyond: cp.async, not committed */
__device__ __forceinline__ void aa_load_tile(aa_bf16* dst, const aa_bf16* src, long long stride, int nrows) {
  for (int idx = threadIdx.x; idx < AA_T * 8; idx += AA_NT) {  // 8 lanes per 128-byte row
    const int r = idx >> 3, ch = idx & 7;
    const bool ok = r < nrows;
    aa_cp16(dst + r * AA_LD + ch * 8, src + (ok ? r : 0) * stride + ch * 8, ok);
  }
}

/** A fragments of rows row0..row0+15 of a row-major tile, 4 k-steps (HS 64) */
__device__ __forceinline__ void aa_frag_a(aa_u32 a[4][4], const aa_bf16* s, int row0, int lane) {
  const int i = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kk = 0; kk < 4; kk++) aa_ldsm_x4(a[kk], s + (row0 + (i & 1) * 8 + r) * AA_LD + kk * 16 + (i >> 1) * 8);
}

/** acc[n] (16 × 64) = A · Bsᵀ, Bs (64 × 64) row-major: attention-mma.cu's am_scores, same mma order */
__device__ __forceinline__ void aa_scores(float acc[8][4], const aa_u32 a[4][4], const aa_bf16* Bs, int lane) {
  const int i = lane >> 3, r = lane & 7;
#pragma unroll
  for (int n = 0; n < 8; n++) {
    aa_u32 b[8];
    aa_ldsm_x4(b, Bs + (n * 8 + r) * AA_LD + i * 8);           // k-steps 0, 1
    aa_ldsm_x4(b + 4, Bs + (n * 8 + r) * AA_LD + 32 + i * 8);  // k-steps 2, 3
    acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < 4; kk++) aa_mma(acc[n], a[kk], b[2 * kk], b[2 * kk + 1]);
  }
}

/** acc[n] (16 × 64) += BF16(x) (16 × 64 keys, C fragments) · Xs, Xs (64 keys × 64) row-major: am_accum's order */
__device__ __forceinline__ void aa_accum(float acc[8][4], const float x[8][4], const aa_bf16* Xs, int lane) {
  const int i = lane >> 3, r = lane & 7;
#pragma unroll
  for (int t = 0; t < 4; t++) {
    const aa_u32 a[4] = {aa_pack(x[2 * t][0], x[2 * t][1]), aa_pack(x[2 * t][2], x[2 * t][3]),
                         aa_pack(x[2 * t + 1][0], x[2 * t + 1][1]), aa_pack(x[2 * t + 1][2], x[2 * t + 1][3])};
#pragma unroll
    for (int n = 0; n < 8; n += 2) {
      aa_u32 b[4];
      aa_ldsm_x4_t(b, Xs + (t * 16 + (i & 1) * 8 + r) * AA_LD + (n + (i >> 1)) * 8);
      aa_mma(acc[n], a, b[0], b[1]);
      aa_mma(acc[n + 1], a, b[2], b[3]);
    }
  }
}

/** a 16 × 64 accumulator (rows row0+g, row0+g+8) times mul → dst (FP32, row stride `stride`), rows < nrows */
__device__ __forceinline__ void aa_store(float* dst, long long stride, int nrows, int row0, const float acc[8][4], float mulA, float mulB, int g, int c) {
  const int rA = row0 + g, rB = rA + 8;
#pragma unroll
  for (int n = 0; n < 8; n++) {
    if (rA < nrows) *reinterpret_cast<float2*>(dst + rA * stride + n * 8 + 2 * c) = make_float2(acc[n][0] * mulA, acc[n][1] * mulA);
    if (rB < nrows) *reinterpret_cast<float2*>(dst + rB * stride + n * 8 + 2 * c) = make_float2(acc[n][2] * mulB, acc[n][3] * mulB);
  }
}

/** the same rows → dst16 (BF16 of the same FP32 values, bf16-out.cuh) at flat index base + row·stride + column, checked into `bad` */
__device__ __forceinline__ void aa_store16(unsigned short* dst16, unsigned long long* bad, long long base, long long stride, int nrows, int row0, const float acc[8][4], float mulA,
                                           float mulB, int g, int c) {
  const int rA = row0 + g, rB = rA + 8;
#pragma unroll
  for (int n = 0; n < 8; n++) {
    if (rA < nrows) {
      const float x0 = acc[n][0] * mulA, x1 = acc[n][1] * mulA;
      const long long e = base + rA * stride + n * 8 + 2 * c;
      note_nonfinite(bad, e, x0);
      note_nonfinite(bad, e + 1, x1);
      *reinterpret_cast<aa_u32*>(dst16 + e) = bf16_out_bits(x0) | ((aa_u32)bf16_out_bits(x1) << 16);
    }
    if (rB < nrows) {
      const float x0 = acc[n][2] * mulB, x1 = acc[n][3] * mulB;
      const long long e = base + rB * stride + n * 8 + 2 * c;
      note_nonfinite(bad, e, x0);
      note_nonfinite(bad, e + 1, x1);
      *reinterpret_cast<aa_u32*>(dst16 + e) = bf16_out_bits(x0) | ((aa_u32)bf16_out_bits(x1) << 16);
    }
  }
}

/**
 * attention_bf16_cast(const float4* x, long long n4, uint2* out)
 *   out (4·n4 BF16) = RNE(x): the operands of the kernels below. grid: ceil(n4 / 256) (may be
 *   capped: grid-stride); block: 256; 16-byte aligned x.
 */
extern "C" __global__ void attention_bf16_cast(const float4* x, long long n4, uint2* out) {
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n4; e += (long long)gridDim.x * blockDim.x) {
    const float4 v = x[e];
    out[e] = make_uint2(aa_pack(v.x, v.y), aa_pack(v.z, v.w));
  }
}

__device__ __forceinline__ void aa_forward_impl(float* out, float* lse, const aa_bf16* q, const aa_bf16* k, const aa_bf16* v, int B, int Tlen, int NH, int NKV,
                                                unsigned short* out16, unsigned long long* bad) {
  constexpr int HS = 64;
  __shared__ __align__(16) aa_bf16 Qs[AA_T * AA_LD];
  __shared__ __align__(16) aa_bf16 Ks[2][AA_T * AA_LD];
  __shared__ __align__(16) aa_bf16 Vs[2][AA_T * AA_LD];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int qt = gridDim.x - 1 - blockIdx.x;  // longest rows first
  const int h = blockIdx.y, b = blockIdx.z, grp = h / (NH / NKV);
  const int q0 = qt * AA_T;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float sl2 = AA_LOG2E / sqrtf((float)HS);
  const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
  const aa_bf16* kBase = k + (long long)b * Tlen * kvStride + (long long)grp * HS;
  const aa_bf16* vBase = v + (long long)b * Tlen * kvStride + (long long)grp * HS;
  const int nTiles = (min(q0 + AA_T, Tlen) - 1) / AA_T + 1;
  aa_load_tile(Qs, q + qOff, qStride, Tlen - q0);
  aa_load_tile(Ks[0], kBase, kvStride, Tlen);
  aa_load_tile(Vs[0], vBase, kvStride, Tlen);
  aa_cp_commit();
  aa_u32 qa[4][4];
  float o[8][4], mA = neg_inf_f32(), mB = neg_inf_f32(), lA = 0.0f, lB = 0.0f;
#pragma unroll
  for (int n = 0; n < 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const int rA = q0 + warp * 16 + g, rB = rA + 8;
  for (int j = 0; j < nTiles; j++) {
    const int buf = j & 1, k0 = j * AA_T;
    if (j + 1 < nTiles) {  // the next tile loads while this one computes
      aa_load_tile(Ks[buf ^ 1], kBase + (k0 + AA_T) * kvStride, kvStride, Tlen - k0 - AA_T);
      aa_load_tile(Vs[buf ^ 1], vBase + (k0 + AA_T) * kvStride, kvStride, Tlen - k0 - AA_T);
      aa_cp_commit();
      aa_cp_wait<1>();
    } else {
      aa_cp_wait<0>();
    }
    __syncthreads();
    if (j == 0) aa_frag_a(qa, Qs, warp * 16, lane);
    float s[8][4];
    aa_scores(s, qa, Ks[buf], lane);
    float mxA = neg_inf_f32(), mxB = neg_inf_f32();
#pragma unroll
    for (int n = 0; n < 8; n++) {
      const int col = k0 + n * 8 + 2 * c;
      s[n][0] = col <= rA ? s[n][0] * sl2 : neg_inf_f32();
      s[n][1] = col + 1 <= rA ? s[n][1] * sl2 : neg_inf_f32();
      s[n][2] = col <= rB ? s[n][2] * sl2 : neg_inf_f32();
      s[n][3] = col + 1 <= rB ? s[n][3] * sl2 : neg_inf_f32();
      mxA = fmaxf(mxA, fmaxf(s[n][0], s[n][1]));
      mxB = fmaxf(mxB, fmaxf(s[n][2], s[n][3]));
    }
    mxA = fmaxf(mxA, __shfl_xor_sync(FP4LM_FULL_MASK, mxA, 1));
    mxA = fmaxf(mxA, __shfl_xor_sync(FP4LM_FULL_MASK, mxA, 2));
    mxB = fmaxf(mxB, __shfl_xor_sync(FP4LM_FULL_MASK, mxB, 1));
    mxB = fmaxf(mxB, __shfl_xor_sync(FP4LM_FULL_MASK, mxB, 2));
    const float nA = fmaxf(mA, mxA), nB = fmaxf(mB, mxB);
    const float aA = exp2f(mA - nA), aB = exp2f(mB - nB);
    mA = nA;
    mB = nB;
    float sA = 0.0f, sB = 0.0f;
#pragma unroll
    for (int n = 0; n < 8; n++) {
      s[n][0] = exp2f(s[n][0] - nA);
      s[n][1] = exp2f(s[n][1] - nA);
      s[n][2] = exp2f(s[n][2] - nB);
      s[n][3] = exp2f(s[n][3] - nB);
      sA += s[n][0] + s[n][1];
      sB += s[n][2] + s[n][3];
    }
    lA = lA * aA + sA;
    lB = lB * aB + sB;
#pragma unroll
    for (int n = 0; n < 8; n++) {
      o[n][0] *= aA;
      o[n][1] *= aA;
      o[n][2] *= aB;
      o[n][3] *= aB;
    }
    aa_accum(o, s, Vs[buf], lane);
    __syncthreads();  // buf is free for the load issued next iteration
  }
  lA += __shfl_xor_sync(FP4LM_FULL_MASK, lA, 1);
  lA += __shfl_xor_sync(FP4LM_FULL_MASK, lA, 2);
  lB += __shfl_xor_sync(FP4LM_FULL_MASK, lB, 1);
  lB += __shfl_xor_sync(FP4LM_FULL_MASK, lB, 2);
  float* outBase = out + ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
  aa_store(outBase, qStride, Tlen - q0, warp * 16, o, 1.0f / lA, 1.0f / lB, g, c);
  if (out16 != nullptr) aa_store16(out16, bad, ((long long)b * Tlen + q0) * qStride + (long long)h * HS, qStride, Tlen - q0, warp * 16, o, 1.0f / lA, 1.0f / lB, g, c);
  if (c == 0) {
    const float ln2 = 0.6931471805599453f;
    float* L = lse + ((long long)b * NH + h) * Tlen;
    if (rA < Tlen) L[rA] = (mA + log2f(lA)) * ln2;
    if (rB < Tlen) L[rB] = (mB + log2f(lB)) * ln2;
  }
}

/**
 * attention_mma_async_forward_hs64(float* out, float* lse, const aa_bf16* q, const aa_bf16* k,
 *                                  const aa_bf16* v, int B, int T, int NH, int NKV)
 *   As attention_mma_forward_hs64 with BF16 q (B,T,NH,64), k, v (B,T,NKV,64). grid: (ceil(T/64),
 *   NH, B); block: 128; shared: static 45 KB (Q, two K and two V tiles).
 */
extern "C" __global__ void __launch_bounds__(AA_NT) attention_mma_async_forward_hs64(float* out, float* lse, const aa_bf16* q, const aa_bf16* k, const aa_bf16* v, int B, int Tlen,
                                                                                     int NH, int NKV) {
  aa_forward_impl(out, lse, q, k, v, B, Tlen, NH, NKV, nullptr, nullptr);
}

/**
 * attention_mma_async_forward_out16_hs64(float* out, float* lse, const aa_bf16* q, const aa_bf16* k,
 *                                        const aa_bf16* v, int B, int T, int NH, int NKV, unsigned short* out16, unsigned long long* bad)
 *   attention_mma_async_forward_hs64 (same launch and bits) and out16 (B·T, NH·64) = BF16(out) with
 *   out's non-finite check into `bad` (bf16-out.cuh): the output projection's operand without a cast.
 */
extern "C" __global__ void __launch_bounds__(AA_NT) attention_mma_async_forward_out16_hs64(float* out, float* lse, const aa_bf16* q, const aa_bf16* k, const aa_bf16* v, int B,
                                                                                           int Tlen, int NH, int NKV, unsigned short* out16, unsigned long long* bad) {
  aa_forward_impl(out, lse, q, k, v, B, Tlen, NH, NKV, out16, bad);
}

/**
 * attention_mma_async_backward_dq_hs64(float* dq, const aa_bf16* dout, const aa_bf16* q, const aa_bf16* k,
 *     const aa_bf16* v, const float* lse, const float* D, int B, int T, int NH, int NKV)
 *   As attention_mma_backward_dq_hs64 with BF16 dout, q, k, v. grid: (ceil(T/64), NH, B);
 *   block: 128; shared: static 36 KB (two K and two V tiles; Q and dout pass through the second pair).
 */
extern "C" __global__ void __launch_bounds__(AA_NT) attention_mma_async_backward_dq_hs64(float* dq, const aa_bf16* dout, const aa_bf16* q, const aa_bf16* k, const aa_bf16* v,
                                                                                         const float* lse, const float* Dg, int B, int Tlen, int NH, int NKV) {
  constexpr int HS = 64;
  __shared__ __align__(16) aa_bf16 Ks[2][AA_T * AA_LD];
  __shared__ __align__(16) aa_bf16 Vs[2][AA_T * AA_LD];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int qt = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z, grp = h / (NH / NKV);
  const int q0 = qt * AA_T;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS), sl2 = AA_LOG2E * scale;
  const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
  const aa_bf16* kBase = k + (long long)b * Tlen * kvStride + (long long)grp * HS;
  const aa_bf16* vBase = v + (long long)b * Tlen * kvStride + (long long)grp * HS;
  const int nTiles = (min(q0 + AA_T, Tlen) - 1) / AA_T + 1;
  // Q and dout through buffer 1 (their fragments stay in registers), key tile 0 into buffer 0
  aa_load_tile(Ks[1], q + qOff, qStride, Tlen - q0);
  aa_load_tile(Vs[1], dout + qOff, qStride, Tlen - q0);
  aa_load_tile(Ks[0], kBase, kvStride, Tlen);
  aa_load_tile(Vs[0], vBase, kvStride, Tlen);
  aa_cp_commit();
  aa_cp_wait<0>();
  __syncthreads();
  aa_u32 qa[4][4], da[4][4];
  aa_frag_a(qa, Ks[1], warp * 16, lane);
  aa_frag_a(da, Vs[1], warp * 16, lane);
  __syncthreads();
  const int rA = q0 + warp * 16 + g, rB = rA + 8;
  const long long rowBase = ((long long)b * NH + h) * Tlen;
  const float LA = rA < Tlen ? lse[rowBase + rA] * AA_LOG2E : 0.0f, LB = rB < Tlen ? lse[rowBase + rB] * AA_LOG2E : 0.0f;
  const float DA = rA < Tlen ? Dg[rowBase + rA] : 0.0f, DB = rB < Tlen ? Dg[rowBase + rB] : 0.0f;
  float acc[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  for (int j = 0; j < nTiles; j++) {
    const int buf = j & 1, k0 = j * AA_T;
    if (j + 1 < nTiles) {
      aa_load_tile(Ks[buf ^ 1], kBase + (k0 + AA_T) * kvStride, kvStride, Tlen - k0 - AA_T);
      aa_load_tile(Vs[buf ^ 1], vBase + (k0 + AA_T) * kvStride, kvStride, Tlen - k0 - AA_T);
      aa_cp_commit();
      aa_cp_wait<1>();
    } else {
      aa_cp_wait<0>();
    }
    __syncthreads();
    float s[8][4], dp[8][4];
    aa_scores(s, qa, Ks[buf], lane);
    aa_scores(dp, da, Vs[buf], lane);
#pragma unroll
    for (int n = 0; n < 8; n++) {
      const int col = k0 + n * 8 + 2 * c;
      s[n][0] = col <= rA ? exp2f(s[n][0] * sl2 - LA) * (dp[n][0] - DA) : 0.0f;
      s[n][1] = col + 1 <= rA ? exp2f(s[n][1] * sl2 - LA) * (dp[n][1] - DA) : 0.0f;
      s[n][2] = col <= rB ? exp2f(s[n][2] * sl2 - LB) * (dp[n][2] - DB) : 0.0f;
      s[n][3] = col + 1 <= rB ? exp2f(s[n][3] * sl2 - LB) * (dp[n][3] - DB) : 0.0f;
    }
    aa_accum(acc, s, Ks[buf], lane);  // dq += dS·K
    __syncthreads();
  }
  aa_store(dq + qOff, qStride, Tlen - q0, warp * 16, acc, scale, scale, g, c);
}

/**
 * attention_mma_async_backward_dkv_hs64(float* dk, float* dv, const aa_bf16* dout, const aa_bf16* q,
 *     const aa_bf16* k, const aa_bf16* v, const float* lse, const float* D, int B, int T, int NH, int NKV)
 *   As attention_mma_backward_dkv_hs64 with BF16 dout, q, k, v. grid: (ceil(T/64), NKV, B);
 *   block: 128; shared: static 37 KB (two Q and two dout tiles, lse and D of each; K and V pass
 *   through the second pair).
 */
extern "C" __global__ void __launch_bounds__(AA_NT) attention_mma_async_backward_dkv_hs64(float* dk, float* dv, const aa_bf16* dout, const aa_bf16* q, const aa_bf16* k,
                                                                                          const aa_bf16* v, const float* lse, const float* Dg, int B, int Tlen, int NH, int NKV) {
  constexpr int HS = 64;
  __shared__ __align__(16) aa_bf16 Qs[2][AA_T * AA_LD];
  __shared__ __align__(16) aa_bf16 dOs[2][AA_T * AA_LD];
  __shared__ float Ls[2][AA_T], Ds[2][AA_T];  // lse (log2 units) and D of the query tile
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int kt = blockIdx.x;
  const int grp = blockIdx.y, b = blockIdx.z, rep = NH / NKV;
  const int k0 = kt * AA_T;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS), sl2 = AA_LOG2E * scale;
  const long long kvOff = ((long long)b * Tlen + k0) * kvStride + (long long)grp * HS;
  // the (head, query tile) pairs in attention-mma.cu's order: heads of the group, query tiles from the diagonal
  const int nq = (Tlen - k0 + AA_T - 1) / AA_T, nIt = rep * nq;
  auto qOffOf = [&](int it) { return ((long long)b * Tlen + k0 + (it % nq) * AA_T) * qStride + (long long)(grp * rep + it / nq) * HS; };
  auto rowsOf = [&](int it) { return Tlen - k0 - (it % nq) * AA_T; };
  // K and V through buffer 1 (their fragments stay in registers), the first query tile into buffer 0
  aa_load_tile(Qs[1], k + kvOff, kvStride, Tlen - k0);
  aa_load_tile(dOs[1], v + kvOff, kvStride, Tlen - k0);
  aa_load_tile(Qs[0], q + qOffOf(0), qStride, rowsOf(0));
  aa_load_tile(dOs[0], dout + qOffOf(0), qStride, rowsOf(0));
  aa_cp_commit();
  if (threadIdx.x < AA_T) {
    const long long rowBase = ((long long)b * NH + grp * rep) * Tlen;
    const int r = k0 + threadIdx.x;
    Ls[0][threadIdx.x] = r < Tlen ? lse[rowBase + r] * AA_LOG2E : 0.0f;
    Ds[0][threadIdx.x] = r < Tlen ? Dg[rowBase + r] : 0.0f;
  }
  aa_cp_wait<0>();
  __syncthreads();
  aa_u32 ka[4][4], va[4][4];
  aa_frag_a(ka, Qs[1], warp * 16, lane);
  aa_frag_a(va, dOs[1], warp * 16, lane);
  __syncthreads();
  const int kA = k0 + warp * 16 + g, kB = kA + 8;
  float dK[8][4], dV[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) dK[n][0] = dK[n][1] = dK[n][2] = dK[n][3] = dV[n][0] = dV[n][1] = dV[n][2] = dV[n][3] = 0.0f;
  for (int it = 0; it < nIt; it++) {
    const int buf = it & 1, q0 = k0 + (it % nq) * AA_T;
    float nextL = 0.0f, nextD = 0.0f;
    if (it + 1 < nIt) {
      aa_load_tile(Qs[buf ^ 1], q + qOffOf(it + 1), qStride, rowsOf(it + 1));
      aa_load_tile(dOs[buf ^ 1], dout + qOffOf(it + 1), qStride, rowsOf(it + 1));
      aa_cp_commit();
      if (threadIdx.x < AA_T) {  // loaded now, stored after this tile's products
        const long long rowBase = ((long long)b * NH + grp * rep + (it + 1) / nq) * Tlen;
        const int r = k0 + ((it + 1) % nq) * AA_T + threadIdx.x;
        nextL = r < Tlen ? lse[rowBase + r] * AA_LOG2E : 0.0f;
        nextD = r < Tlen ? Dg[rowBase + r] : 0.0f;
      }
      aa_cp_wait<1>();
    } else {
      aa_cp_wait<0>();
    }
    __syncthreads();
    float p[8][4], ds[8][4];
    aa_scores(p, ka, Qs[buf], lane);   // Sᵀ (keys × queries)
    aa_scores(ds, va, dOs[buf], lane);  // dPᵀ
#pragma unroll
    for (int n = 0; n < 8; n++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int jj = n * 8 + 2 * c + (e & 1), col = q0 + jj, key = e < 2 ? kA : kB;
        const float pv = col >= key && col < Tlen ? exp2f(p[n][e] * sl2 - Ls[buf][jj]) : 0.0f;
        p[n][e] = pv;
        ds[n][e] = pv * (ds[n][e] - Ds[buf][jj]);
      }
    }
    aa_accum(dV, p, dOs[buf], lane);  // dv += Pᵀ·dout
    aa_accum(dK, ds, Qs[buf], lane);  // dk += dSᵀ·q
    if (it + 1 < nIt && threadIdx.x < AA_T) {
      Ls[buf ^ 1][threadIdx.x] = nextL;
      Ds[buf ^ 1][threadIdx.x] = nextD;
    }
    __syncthreads();
  }
  aa_store(dk + kvOff, kvStride, Tlen - k0, warp * 16, dK, scale, scale, g, c);
  aa_store(dv + kvOff, kvStride, Tlen - k0, warp * 16, dV, 1.0f, 1.0f, g, c);
}
