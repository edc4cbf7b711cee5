/**
 * Causal grouped-query attention core, version 3: FlashAttention-2 (Dao 2023, arXiv 2307.08691)
 * on the tensor cores, BF16 operands with FP32 accumulation (mma.sync.m16n8k16), the softmax in
 * FP32 registers. Same interface, saved logsumexp and backward split as attention-flash.cu (its
 * FP32 CUDA-core twin, kept as the exact path and selected with FP4LM_ATTENTION=fp32): q, k, v,
 * dout and out are FP32 tensors in memory, rounded to BF16 (RNE) as tiles are loaded; P and dS are
 * rounded to BF16 before their products, as FlashAttention does. Row sums and maxima stay FP32.
 * Tolerance against the FP32 oracle on the same BF16-rounded inputs: max error ≤ 3e-3 of the largest
 * magnitude measured on the H200 (test/gpu/backend.gpu.test.ts asserts 1e-2).
 *
 * Head size 64 only (GPT-2 124M and the experiment presets); other sizes use the FP32 kernels.
 *
 * Tiles: 64 query rows × 64 keys per iteration, 4 warps, each warp owns 16 rows (forward and dq:
 * query rows; dkv: key rows). Fragment layouts are PTX's for m16n8k16 (g = lane/4, c = lane%4):
 *   A (16×16, row): a0a1 = A[g][2c..2c+1], a2a3 = A[g+8][2c..], a4a5 = A[g][2c+8..], a6a7 = A[g+8][2c+8..]
 *   B (16×8, col):  b0b1 = B[2c..2c+1][g],  b2b3 = B[2c+8..2c+9][g]
 *   C (16×8):       c0c1 = C[g][2c..2c+1],  c2c3 = C[g+8][2c..2c+1]
 * so a B operand Bᵀ stored row-major (n rows of k) is read as 32-bit pairs from row n·8+g; a product's
 * C fragments for key columns 16t..16t+15 (n-tiles 2t, 2t+1) are directly the A fragment of k-step t.
 * Shared tiles are BF16 with rows padded to 72 elements (36 words: rows g and g+1 land 4 banks
 * apart, so the 32 lanes' pair reads hit 32 banks). Operands needed transposed (V in the forward,
 * K in dq, Q and dout in dkv) are stored transposed while loading.
 *
 * Sequence (host): lse (B,NH,T) fp32, natural log of the scaled scores' row sums, as attention-flash.cu;
 *   forward:  attention_mma_forward_hs64(out, lse, q, k, v, B, T, NH, NKV)
 *   backward: attention_flash_backward_prep(D, dout, out, B, T, NH, 64, 1) (attention-flash.cu):
 *             D = rowsum(BF16(dout)∘out), dout rounded as here, then
 *             attention_mma_backward_dq_hs64(dq, dout, q, k, v, lse, D, B, T, NH, NKV)
 *             attention_mma_backward_dkv_hs64(dk, dv, dout, q, k, v, lse, D, B, T, NH, NKV)
 * Deterministic: no atomics; dk, dv sum the group's heads and the query tiles in ascending order.
 */
#ifndef FP4LM_SIMT_SHIM  // attention-host-test.cpp runs this file on the CPU with its own bf16 and mma
#include <cuda_bf16.h>
#endif
#include "ops-common.cuh"

#define AM_T 64     // rows per tile (queries or keys)
#define AM_NT 128   // threads per block (4 warps × 16 rows)
#define AM_LD 72    // padded row length of a shared BF16 tile, in elements
#define AM_LOG2E 1.4426950408889634f

typedef unsigned int u32_t;

__device__ __forceinline__ u32_t am_pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<u32_t*>(&v);
}

__device__ __forceinline__ u32_t am_ld32(const __nv_bfloat16* p) { return *reinterpret_cast<const u32_t*>(p); }

/** c += A·B for one 16×8×16 step */
__device__ __forceinline__ void am_mma(float c[4], const u32_t a[4], u32_t b0, u32_t b1) {
#ifdef FP4LM_SIMT_SHIM
  simt_mma_bf16(c, a, b0, b1);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/** dst[r][d] (64 × HS, row-major, AM_LD) ← BF16(src rows r < nrows, row stride `stride` floats); zero beyond. */
template <int HS>
__device__ __forceinline__ void am_load(__nv_bfloat16* dst, const float* src, long long stride, int nrows) {
  constexpr int V4 = HS / 4;
  for (int idx = threadIdx.x; idx < AM_T * V4; idx += AM_NT) {
    const int r = idx / V4, c4 = idx - r * V4;
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < nrows) x = *reinterpret_cast<const float4*>(src + r * stride + c4 * 4);
    u32_t* d = reinterpret_cast<u32_t*>(dst + r * AM_LD + c4 * 4);
    d[0] = am_pack(x.x, x.y);
    d[1] = am_pack(x.z, x.w);
  }
}

/** dst[d][r] (HS × 64, AM_LD) ← BF16(src[r][d]): the transposed tile; rows r ≥ nrows are zero. */
template <int HS>
__device__ __forceinline__ void am_load_t(__nv_bfloat16* dst, const float* src, long long stride, int nrows) {
  constexpr int V4 = HS / 4;
  for (int idx = threadIdx.x; idx < AM_T * V4; idx += AM_NT) {
    const int r = idx & (AM_T - 1), c4 = idx >> 6;  // consecutive lanes: consecutive rows (distinct banks)
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < nrows) x = *reinterpret_cast<const float4*>(src + r * stride + c4 * 4);
    dst[(c4 * 4 + 0) * AM_LD + r] = __float2bfloat16_rn(x.x);
    dst[(c4 * 4 + 1) * AM_LD + r] = __float2bfloat16_rn(x.y);
    dst[(c4 * 4 + 2) * AM_LD + r] = __float2bfloat16_rn(x.z);
    dst[(c4 * 4 + 3) * AM_LD + r] = __float2bfloat16_rn(x.w);
  }
}

/** A fragments of the warp's 16 rows (row0..row0+15) of a row-major shared tile, for HS/16 k-steps. */
template <int HS>
__device__ __forceinline__ void am_frag_a(u32_t a[HS / 16][4], const __nv_bfloat16* s, int row0, int g, int c) {
#pragma unroll
  for (int kk = 0; kk < HS / 16; kk++) {
    const __nv_bfloat16* p = s + (row0 + g) * AM_LD + kk * 16 + 2 * c;
    a[kk][0] = am_ld32(p);
    a[kk][1] = am_ld32(p + 8 * AM_LD);
    a[kk][2] = am_ld32(p + 8);
    a[kk][3] = am_ld32(p + 8 * AM_LD + 8);
  }
}

/** acc[n] (16 × 64: 8 n-tiles) = A (16 × HS, fragments) · Bᵀ where Bs is (64 × HS) row-major in shared memory. */
template <int HS>
__device__ __forceinline__ void am_scores(float acc[8][4], const u32_t a[HS / 16][4], const __nv_bfloat16* Bs, int g, int c) {
#pragma unroll
  for (int n = 0; n < 8; n++) {
    acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HS / 16; kk++) {
      const __nv_bfloat16* p = Bs + (n * 8 + g) * AM_LD + kk * 16 + 2 * c;
      am_mma(acc[n], a[kk], am_ld32(p), am_ld32(p + 8));
    }
  }
}

/** acc[n] (16 × HS) += P (16 × 64, as C fragments x[8][4], rounded to BF16) · X where Xt is Xᵀ (HS × 64) in shared memory. */
template <int HS>
__device__ __forceinline__ void am_accum(float acc[HS / 8][4], const float x[8][4], const __nv_bfloat16* Xt, int g, int c) {
#pragma unroll
  for (int t = 0; t < 4; t++) {
    const u32_t a[4] = {am_pack(x[2 * t][0], x[2 * t][1]), am_pack(x[2 * t][2], x[2 * t][3]),
                        am_pack(x[2 * t + 1][0], x[2 * t + 1][1]), am_pack(x[2 * t + 1][2], x[2 * t + 1][3])};
#pragma unroll
    for (int n = 0; n < HS / 8; n++) {
      const __nv_bfloat16* p = Xt + (n * 8 + g) * AM_LD + t * 16 + 2 * c;
      am_mma(acc[n], a, am_ld32(p), am_ld32(p + 8));
    }
  }
}

/** Store a 16 × HS accumulator (rows row0+g, row0+g+8) times mul to dst (row stride `stride`), rows < nrows. */
template <int HS>
__device__ __forceinline__ void am_store(float* dst, long long stride, int nrows, int row0, const float acc[HS / 8][4], float mulA, float mulB, int g, int c) {
  const int rA = row0 + g, rB = rA + 8;
#pragma unroll
  for (int n = 0; n < HS / 8; n++) {
    if (rA < nrows) *reinterpret_cast<float2*>(dst + rA * stride + n * 8 + 2 * c) = make_float2(acc[n][0] * mulA, acc[n][1] * mulA);
    if (rB < nrows) *reinterpret_cast<float2*>(dst + rB * stride + n * 8 + 2 * c) = make_float2(acc[n][2] * mulB, acc[n][3] * mulB);
  }
}

template <int HS>
__device__ __forceinline__ void mma_forward_impl(float* out, float* lse, const float* q, const float* k, const float* v, int Tlen, int NH, int NKV) {
  __shared__ __align__(16) __nv_bfloat16 Ks[AM_T * AM_LD];  // Q first (staging), then K of each tile
  __shared__ __align__(16) __nv_bfloat16 Vt[HS * AM_LD];    // Vᵀ of each tile
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int qt = gridDim.x - 1 - blockIdx.x;  // longest rows first
  const int h = blockIdx.y, b = blockIdx.z, grp = h / (NH / NKV);
  const int q0 = qt * AM_T;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float sl2 = AM_LOG2E / sqrtf((float)HS);  // scores in log2 units
  const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
  am_load<HS>(Ks, q + qOff, qStride, Tlen - q0);
  __syncthreads();
  u32_t qa[HS / 16][4];
  am_frag_a<HS>(qa, Ks, warp * 16, g, c);

  float o[HS / 8][4], mA = neg_inf_f32(), mB = neg_inf_f32(), lA = 0.0f, lB = 0.0f;
#pragma unroll
  for (int n = 0; n < HS / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  const int rA = q0 + warp * 16 + g, rB = rA + 8;
  const int lastKey = min(q0 + AM_T, Tlen) - 1;
  const float* kBase = k + (long long)b * Tlen * kvStride + (long long)grp * HS;
  const float* vBase = v + (long long)b * Tlen * kvStride + (long long)grp * HS;
  for (int k0 = 0; k0 <= lastKey; k0 += AM_T) {
    __syncthreads();  // everyone is done with the previous tile (and with Q's staging)
    am_load<HS>(Ks, kBase + k0 * kvStride, kvStride, Tlen - k0);
    am_load_t<HS>(Vt, vBase + k0 * kvStride, kvStride, Tlen - k0);
    __syncthreads();
    float s[8][4];
    am_scores<HS>(s, qa, Ks, g, c);
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
    // key k0 ≤ every row of this block, so the new maxima are finite
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
    lA = lA * aA + sA;  // this lane's share of the row sum; the 4 lanes of a row are added at the end
    lB = lB * aB + sB;
#pragma unroll
    for (int n = 0; n < HS / 8; n++) {
      o[n][0] *= aA;
      o[n][1] *= aA;
      o[n][2] *= aB;
      o[n][3] *= aB;
    }
    am_accum<HS>(o, s, Vt, g, c);
  }
  lA += __shfl_xor_sync(FP4LM_FULL_MASK, lA, 1);
  lA += __shfl_xor_sync(FP4LM_FULL_MASK, lA, 2);
  lB += __shfl_xor_sync(FP4LM_FULL_MASK, lB, 1);
  lB += __shfl_xor_sync(FP4LM_FULL_MASK, lB, 2);
  am_store<HS>(out + qOff, qStride, Tlen - q0, warp * 16, o, 1.0f / lA, 1.0f / lB, g, c);
  if (c == 0) {
    const float ln2 = 0.6931471805599453f;
    float* L = lse + ((long long)b * NH + h) * Tlen;
    if (rA < Tlen) L[rA] = (mA + log2f(lA)) * ln2;
    if (rB < Tlen) L[rB] = (mB + log2f(lB)) * ln2;
  }
}

/**
 * attention_mma_forward_hs64(float* out, float* lse, const float* q, const float* k, const float* v,
 *                            int B, int T, int NH, int NKV)
 *   out (B,T,NH,64) ← q (B,T,NH,64), k, v (B,T,NKV,64); lse (B,NH,T) as attention_flash_forward.
 *   grid: (ceil(T/64), NH, B); block: 128; shared: static (18 KB).
 */
extern "C" __global__ void __launch_bounds__(AM_NT) attention_mma_forward_hs64(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tlen, int NH, int NKV) {
  mma_forward_impl<64>(out, lse, q, k, v, Tlen, NH, NKV);
}

template <int HS>
__device__ __forceinline__ void mma_backward_dq_impl(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* Dg, int Tlen, int NH, int NKV) {
  __shared__ __align__(16) __nv_bfloat16 Ks[AM_T * AM_LD];  // Q (staging), then K
  __shared__ __align__(16) __nv_bfloat16 Vs[AM_T * AM_LD];  // dout (staging), then V
  __shared__ __align__(16) __nv_bfloat16 Kt[HS * AM_LD];    // Kᵀ
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int qt = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z, grp = h / (NH / NKV);
  const int q0 = qt * AM_T;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS), sl2 = AM_LOG2E * scale;
  const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
  am_load<HS>(Ks, q + qOff, qStride, Tlen - q0);
  am_load<HS>(Vs, dout + qOff, qStride, Tlen - q0);
  __syncthreads();
  u32_t qa[HS / 16][4], da[HS / 16][4];
  am_frag_a<HS>(qa, Ks, warp * 16, g, c);
  am_frag_a<HS>(da, Vs, warp * 16, g, c);
  const int rA = q0 + warp * 16 + g, rB = rA + 8;
  const long long rowBase = ((long long)b * NH + h) * Tlen;
  const float LA = rA < Tlen ? lse[rowBase + rA] * AM_LOG2E : 0.0f, LB = rB < Tlen ? lse[rowBase + rB] * AM_LOG2E : 0.0f;
  const float DA = rA < Tlen ? Dg[rowBase + rA] : 0.0f, DB = rB < Tlen ? Dg[rowBase + rB] : 0.0f;
  float acc[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  const int lastKey = min(q0 + AM_T, Tlen) - 1;
  const float* kBase = k + (long long)b * Tlen * kvStride + (long long)grp * HS;
  const float* vBase = v + (long long)b * Tlen * kvStride + (long long)grp * HS;
  for (int k0 = 0; k0 <= lastKey; k0 += AM_T) {
    __syncthreads();
    am_load<HS>(Ks, kBase + k0 * kvStride, kvStride, Tlen - k0);
    am_load<HS>(Vs, vBase + k0 * kvStride, kvStride, Tlen - k0);
    am_load_t<HS>(Kt, kBase + k0 * kvStride, kvStride, Tlen - k0);
    __syncthreads();
    float s[8][4], dp[8][4];
    am_scores<HS>(s, qa, Ks, g, c);
    am_scores<HS>(dp, da, Vs, g, c);
#pragma unroll
    for (int n = 0; n < 8; n++) {
      const int col = k0 + n * 8 + 2 * c;
      // dS = P∘(dP − D), P = exp(s·scale − lse); masked keys give 0
      s[n][0] = col <= rA ? exp2f(s[n][0] * sl2 - LA) * (dp[n][0] - DA) : 0.0f;
      s[n][1] = col + 1 <= rA ? exp2f(s[n][1] * sl2 - LA) * (dp[n][1] - DA) : 0.0f;
      s[n][2] = col <= rB ? exp2f(s[n][2] * sl2 - LB) * (dp[n][2] - DB) : 0.0f;
      s[n][3] = col + 1 <= rB ? exp2f(s[n][3] * sl2 - LB) * (dp[n][3] - DB) : 0.0f;
    }
    am_accum<HS>(acc, s, Kt, g, c);  // dq += dS·K
  }
  am_store<HS>(dq + qOff, qStride, Tlen - q0, warp * 16, acc, scale, scale, g, c);
}

/**
 * attention_mma_backward_dq_hs64(float* dq, const float* dout, const float* q, const float* k,
 *     const float* v, const float* lse, const float* D, int B, int T, int NH, int NKV)
 *   dq (B,T,NH,64) OVERWRITTEN, as attention_flash_backward_dq. grid: (ceil(T/64), NH, B);
 *   block: 128; shared: static (27 KB).
 */
extern "C" __global__ void __launch_bounds__(AM_NT) attention_mma_backward_dq_hs64(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* D, int B, int Tlen, int NH, int NKV) {
  mma_backward_dq_impl<64>(dq, dout, q, k, v, lse, D, Tlen, NH, NKV);
}

template <int HS>
__device__ __forceinline__ void mma_backward_dkv_impl(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* Dg, int Tlen, int NH, int NKV) {
  __shared__ __align__(16) __nv_bfloat16 Qs[AM_T * AM_LD];   // K (staging), then Q of each query tile
  __shared__ __align__(16) __nv_bfloat16 dOs[AM_T * AM_LD];  // V (staging), then dout
  __shared__ __align__(16) __nv_bfloat16 Qt[HS * AM_LD];     // Qᵀ
  __shared__ __align__(16) __nv_bfloat16 dOt[HS * AM_LD];    // doutᵀ
  __shared__ float Ls[AM_T], Ds[AM_T];                       // lse (log2 units) and D of the query tile
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int kt = blockIdx.x;  // key tile 0 has the most query tiles: it starts first
  const int grp = blockIdx.y, b = blockIdx.z, rep = NH / NKV;
  const int k0 = kt * AM_T;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS), sl2 = AM_LOG2E * scale;
  const long long kvOff = ((long long)b * Tlen + k0) * kvStride + (long long)grp * HS;
  am_load<HS>(Qs, k + kvOff, kvStride, Tlen - k0);
  am_load<HS>(dOs, v + kvOff, kvStride, Tlen - k0);
  __syncthreads();
  u32_t ka[HS / 16][4], va[HS / 16][4];
  am_frag_a<HS>(ka, Qs, warp * 16, g, c);
  am_frag_a<HS>(va, dOs, warp * 16, g, c);
  const int kA = k0 + warp * 16 + g, kB = kA + 8;  // this lane's key rows
  float dK[HS / 8][4], dV[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; n++) dK[n][0] = dK[n][1] = dK[n][2] = dK[n][3] = dV[n][0] = dV[n][1] = dV[n][2] = dV[n][3] = 0.0f;
  for (int h = grp * rep; h < (grp + 1) * rep; h++) {
    const long long rowBase = ((long long)b * NH + h) * Tlen;
    for (int q0 = k0; q0 < Tlen; q0 += AM_T) {  // query tiles at or below the diagonal
      const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
      __syncthreads();  // the previous query tile is done
      am_load<HS>(Qs, q + qOff, qStride, Tlen - q0);
      am_load<HS>(dOs, dout + qOff, qStride, Tlen - q0);
      am_load_t<HS>(Qt, q + qOff, qStride, Tlen - q0);
      am_load_t<HS>(dOt, dout + qOff, qStride, Tlen - q0);
      if (threadIdx.x < AM_T) {
        const int r = q0 + threadIdx.x;
        Ls[threadIdx.x] = r < Tlen ? lse[rowBase + r] * AM_LOG2E : 0.0f;
        Ds[threadIdx.x] = r < Tlen ? Dg[rowBase + r] : 0.0f;
      }
      __syncthreads();
      float p[8][4], ds[8][4];
      am_scores<HS>(p, ka, Qs, g, c);   // Sᵀ (keys × queries)
      am_scores<HS>(ds, va, dOs, g, c);  // dPᵀ
#pragma unroll
      for (int n = 0; n < 8; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int j = n * 8 + 2 * c + (e & 1), col = q0 + j, key = e < 2 ? kA : kB;
          const float pv = col >= key && col < Tlen ? exp2f(p[n][e] * sl2 - Ls[j]) : 0.0f;
          p[n][e] = pv;
          ds[n][e] = pv * (ds[n][e] - Ds[j]);
        }
      }
      am_accum<HS>(dV, p, dOt, g, c);  // dv += Pᵀ·dout
      am_accum<HS>(dK, ds, Qt, g, c);  // dk += dSᵀ·q
    }
  }
  am_store<HS>(dk + kvOff, kvStride, Tlen - k0, warp * 16, dK, scale, scale, g, c);
  am_store<HS>(dv + kvOff, kvStride, Tlen - k0, warp * 16, dV, 1.0f, 1.0f, g, c);
}

/**
 * attention_mma_backward_dkv_hs64(float* dk, float* dv, const float* dout, const float* q,
 *     const float* k, const float* v, const float* lse, const float* D, int B, int T, int NH, int NKV)
 *   dk, dv (B,T,NKV,64) OVERWRITTEN, as attention_flash_backward_dkv. grid: (ceil(T/64), NKV, B);
 *   block: 128; shared: static (37 KB).
 */
extern "C" __global__ void __launch_bounds__(AM_NT) attention_mma_backward_dkv_hs64(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* D, int B, int Tlen, int NH, int NKV) {
  mma_backward_dkv_impl<64>(dk, dv, dout, q, k, v, lse, D, Tlen, NH, NKV);
}
