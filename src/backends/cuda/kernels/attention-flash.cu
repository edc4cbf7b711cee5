/**
 * Causal grouped-query attention core, version 2: fused, tiled, no T×T tensor. Same maths as
 * attention.cu and backends/cpu/ops/attention.ts (the oracle), computed as FlashAttention-2 does
 * (Dao 2023, arXiv 2307.08691): the forward keeps a running row max and sum (online softmax) over
 * 64-key tiles in shared memory and saves only logsumexp per row; the backward recomputes the
 * probabilities from it. All arithmetic is fp32 on the CUDA cores (no TF32: the parity tolerance
 * is 1e-4), every sum in a fixed order. HS is a template parameter, instantiated for 64 and 128.
 *
 * Determinism over speed in the backward: instead of FA2's atomic dq, two kernels, one per query
 * tile (dq) and one per key tile (dk, dv summed over the group's query heads), each recomputing
 * the scores: 7 tile products instead of 5, no atomics, bit-reproducible.
 *
 * Sequence (scratch the host allocates: lse (B,NH,T) fp32 saved by the forward; D (B,NH,T) fp32):
 *   forward:  attention_flash_forward_hs{64,128}(out, lse, q, k, v, B, T, NH, NKV)
 *   backward: attention_flash_backward_prep(D, dout, out, B, T, NH, HS, 0)   D = rowsum(dout∘out)
 *             attention_flash_backward_dq_hs{64,128}(dq, dout, q, k, v, lse, D, B, T, NH, NKV)
 *             attention_flash_backward_dkv_hs{64,128}(dk, dv, dout, q, k, v, lse, D, B, T, NH, NKV)
 * The backward needs the forward's out (for D), which backend.ts's attentionBackward does not
 * pass today; the host keeps it (nn/attention.ts holds it as the projection's input anyway).
 *
 * Layout: 64×64 tiles, 256 threads as 16×16; thread (ty, tx) owns score rows ty·4+i and columns
 * tx+16j (strided: conflict-free float4 reads of K rows), and output columns jj·64 + tx·4 + e.
 * Shared rows are padded by 4 floats (float4-aligned, conflict-free). Pointers must be 16-byte
 * aligned (cudaMalloc'd tensors are) since q, k, v, dout, out rows are read as float4.
 * Not included: BF16/FP8 inputs, tensor cores, dropout, KV cache, non-causal masks, HS ∉ {64, 128}.
 */
#include "ops-common.cuh"
#include "bf16-out.cuh"

#define FA_BR 64   // query rows per tile
#define FA_BC 64   // key rows per tile
#define FA_NT 256  // threads per block (16×16)
#define FA_LDP (FA_BC + 4)

/** dst (64, HS+4) ← 64 rows of src with row stride `stride` floats; rows ≥ nrows are zero. */
template <int HS>
__device__ __forceinline__ void fa_load_tile(float* dst, const float* src, long long stride, int nrows) {
  constexpr int V4 = HS / 4, LD = HS + 4;
  for (int idx = threadIdx.x; idx < FA_BR * V4; idx += FA_NT) {
    const int r = idx / V4, c4 = idx - r * V4;
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < nrows) x = *reinterpret_cast<const float4*>(src + r * stride + c4 * 4);
    *reinterpret_cast<float4*>(dst + r * LD + c4 * 4) = x;
  }
}

/** S[i][j] = A[ty·4+i] · Bm[tx+16j] over HS (A, Bm: (64, HS+4) in shared memory). */
template <int HS>
__device__ __forceinline__ void fa_tile_dot(float S[4][4], const float* A, const float* Bm, int ty, int tx) {
  constexpr int LD = HS + 4;
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) S[i][j] = 0.0f;
#pragma unroll 2
  for (int d = 0; d < HS; d += 4) {
    float4 a[4], b[4];
#pragma unroll
    for (int i = 0; i < 4; i++) a[i] = *reinterpret_cast<const float4*>(A + (ty * 4 + i) * LD + d);
#pragma unroll
    for (int j = 0; j < 4; j++) b[j] = *reinterpret_cast<const float4*>(Bm + (tx + 16 * j) * LD + d);
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) {
        float s = S[i][j];
        s = fmaf(a[i].x, b[j].x, s);
        s = fmaf(a[i].y, b[j].y, s);
        s = fmaf(a[i].z, b[j].z, s);
        s = fmaf(a[i].w, b[j].w, s);
        S[i][j] = s;
      }
  }
}

__device__ __forceinline__ float fa_comp(const float4& v, int e) { return e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w; }

/** O[i][jj·4+e] += Σ_c P[ty·4+i][c] · X[c][jj·64 + tx·4 + e]: P (64, 68), X (64, HS+4). */
template <int HS>
__device__ __forceinline__ void fa_tile_pv(float O[4][HS / 16], const float* P, const float* X, int ty, int tx) {
  constexpr int LD = HS + 4, DJ = HS / 64;
#pragma unroll 2
  for (int c = 0; c < FA_BC; c += 4) {
    float4 p[4];
#pragma unroll
    for (int i = 0; i < 4; i++) p[i] = *reinterpret_cast<const float4*>(P + (ty * 4 + i) * FA_LDP + c);
#pragma unroll
    for (int cc = 0; cc < 4; cc++) {
#pragma unroll
      for (int jj = 0; jj < DJ; jj++) {
        const float4 x = *reinterpret_cast<const float4*>(X + (c + cc) * LD + jj * 64 + tx * 4);
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const float pv = fa_comp(p[i], cc);
          O[i][jj * 4 + 0] = fmaf(pv, x.x, O[i][jj * 4 + 0]);
          O[i][jj * 4 + 1] = fmaf(pv, x.y, O[i][jj * 4 + 1]);
          O[i][jj * 4 + 2] = fmaf(pv, x.z, O[i][jj * 4 + 2]);
          O[i][jj * 4 + 3] = fmaf(pv, x.w, O[i][jj * 4 + 3]);
        }
      }
    }
  }
}

/** Acc[i][jj·4+e] += Σ_r P[r][ty·4+i] · X[r][jj·64 + tx·4 + e]: the transposed product (dV += Pᵀ·dO, dK += dSᵀ·Q). */
template <int HS>
__device__ __forceinline__ void fa_tile_ptx(float Acc[4][HS / 16], const float* P, const float* X, int ty, int tx) {
  constexpr int LD = HS + 4, DJ = HS / 64;
#pragma unroll 4
  for (int r = 0; r < FA_BR; r++) {
    const float4 p = *reinterpret_cast<const float4*>(P + r * FA_LDP + ty * 4);
#pragma unroll
    for (int jj = 0; jj < DJ; jj++) {
      const float4 x = *reinterpret_cast<const float4*>(X + r * LD + jj * 64 + tx * 4);
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const float pv = fa_comp(p, i);
        Acc[i][jj * 4 + 0] = fmaf(pv, x.x, Acc[i][jj * 4 + 0]);
        Acc[i][jj * 4 + 1] = fmaf(pv, x.y, Acc[i][jj * 4 + 1]);
        Acc[i][jj * 4 + 2] = fmaf(pv, x.z, Acc[i][jj * 4 + 2]);
        Acc[i][jj * 4 + 3] = fmaf(pv, x.w, Acc[i][jj * 4 + 3]);
      }
    }
  }
}

/** Store rows ty·4+i (< nrows) of a (64, HS) accumulator tile times `mul` to dst with row stride `stride`. */
template <int HS>
__device__ __forceinline__ void fa_store_tile(float* dst, long long stride, int nrows, float Acc[4][HS / 16], const float* rowMul, float mul, int ty, int tx) {
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int r = ty * 4 + i;
    if (r >= nrows) continue;
    const float s = rowMul ? rowMul[i] * mul : mul;
#pragma unroll
    for (int jj = 0; jj < HS / 64; jj++) {
      const float4 x = make_float4(Acc[i][jj * 4] * s, Acc[i][jj * 4 + 1] * s, Acc[i][jj * 4 + 2] * s, Acc[i][jj * 4 + 3] * s);
      *reinterpret_cast<float4*>(dst + r * stride + jj * 64 + tx * 4) = x;
    }
  }
}

template <int HS>
__device__ __forceinline__ void flash_forward_impl(float* out, float* lse, const float* q, const float* k, const float* v, int Tlen, int NH, int NKV) {
  constexpr int LD = HS + 4;
  extern __shared__ float4 fa_smem[];
  float* Qs = reinterpret_cast<float*>(fa_smem);  // (64, HS+4)
  float* KVs = Qs + FA_BR * LD;                   // (64, HS+4): K, then V, of the current key tile
  float* Ps = KVs + FA_BC * LD;                   // (64, 68)
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
  const int qt = gridDim.x - 1 - blockIdx.x;  // longest rows first
  const int h = blockIdx.y, b = blockIdx.z, g = h / (NH / NKV);
  const int q0 = qt * FA_BR;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS);
  fa_load_tile<HS>(Qs, q + ((long long)b * Tlen + q0) * qStride + (long long)h * HS, qStride, Tlen - q0);

  float O[4][HS / 16], m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    m[i] = neg_inf_f32();
    l[i] = 0.0f;
#pragma unroll
    for (int d = 0; d < HS / 16; d++) O[i][d] = 0.0f;
  }
  const int lastKey = min(q0 + FA_BR, Tlen) - 1;
  const float* kBase = k + (long long)b * Tlen * kvStride + (long long)g * HS;
  const float* vBase = v + (long long)b * Tlen * kvStride + (long long)g * HS;
  for (int k0 = 0; k0 <= lastKey; k0 += FA_BC) {
    __syncthreads();  // the previous tile's P·V is done with KVs and Ps
    fa_load_tile<HS>(KVs, kBase + k0 * kvStride, kvStride, Tlen - k0);
    __syncthreads();
    float S[4][4];
    fa_tile_dot<HS>(S, Qs, KVs, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int r = q0 + ty * 4 + i;
      float mx = neg_inf_f32();
#pragma unroll
      for (int j = 0; j < 4; j++) {
        S[i][j] = k0 + tx + 16 * j <= r ? S[i][j] * scale : neg_inf_f32();
        mx = fmaxf(mx, S[i][j]);
      }
      for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(FP4LM_FULL_MASK, mx, o));  // the row's 16 threads
      const float mNew = fmaxf(m[i], mx);  // finite: every processed tile has key k0 ≤ r
      const float alpha = expf(m[i] - mNew);
      float ps = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        S[i][j] = expf(S[i][j] - mNew);
        ps += S[i][j];
      }
      for (int o = 8; o > 0; o >>= 1) ps += __shfl_xor_sync(FP4LM_FULL_MASK, ps, o);
      l[i] = l[i] * alpha + ps;
      m[i] = mNew;
#pragma unroll
      for (int d = 0; d < HS / 16; d++) O[i][d] *= alpha;
    }
    __syncthreads();  // all threads are done reading K
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) Ps[(ty * 4 + i) * FA_LDP + tx + 16 * j] = S[i][j];
    fa_load_tile<HS>(KVs, vBase + k0 * kvStride, kvStride, Tlen - k0);
    __syncthreads();
    fa_tile_pv<HS>(O, Ps, KVs, ty, tx);
  }
  float inv[4];
#pragma unroll
  for (int i = 0; i < 4; i++) inv[i] = 1.0f / l[i];
  fa_store_tile<HS>(out + ((long long)b * Tlen + q0) * qStride + (long long)h * HS, qStride, Tlen - q0, O, inv, 1.0f, ty, tx);
  if (tx == 0) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int r = q0 + ty * 4 + i;
      if (r < Tlen) lse[((long long)b * NH + h) * Tlen + r] = m[i] + logf(l[i]);
    }
  }
}

/**
 * attention_flash_forward_hs64 / _hs128(float* out, float* lse, const float* q, const float* k,
 *                                       const float* v, int B, int T, int NH, int NKV)
 *   out (B,T,NH,HS) ← q (B,T,NH,HS), k, v (B,T,NKV,HS); lse (B,NH,T) = log Σ_j exp(s_ij), the row
 *   logsumexp of the scaled scores (saved for the backward). No probs tensor.
 *   grid: (ceil(T/64), NH, B); block: 256; shared (dynamic): (2·64·(HS+4) + 64·68)·4 bytes =
 *   52224 (HS 64) / 84992 (HS 128): above 48 KB, so set CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
 */
extern "C" __global__ void __launch_bounds__(FA_NT) attention_flash_forward_hs64(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tlen, int NH, int NKV) {
  flash_forward_impl<64>(out, lse, q, k, v, Tlen, NH, NKV);
}
extern "C" __global__ void __launch_bounds__(FA_NT) attention_flash_forward_hs128(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tlen, int NH, int NKV) {
  flash_forward_impl<128>(out, lse, q, k, v, Tlen, NH, NKV);
}

/** D[b, h, t] = s for the prep kernels' row (b·T + t)·NH + h */
__device__ __forceinline__ void prep_store_d(float* D, long long row, int Tlen, int NH, float s) {
  const int h = (int)(row % NH);
  const long long bt = row / NH;
  const int t = (int)(bt % Tlen);
  const long long b = bt / Tlen;
  D[(b * NH + h) * Tlen + t] = s;
}

/**
 * attention_flash_backward_prep(float* D, const float* dout, const float* out, int B, int T, int NH, int HS, int round_dout)
 *   D (B,NH,T): D[b,h,t] = Σ_d dout[b,t,h,d]·out[b,t,h,d] (= Σ_j P_ij·dP_ij), one warp per row.
 *   round_dout = 1 (the BF16 kernels of attention-mma.cu): dout rounded to BF16 first, as those
 *   kernels round it for dP = dout·Vᵀ, so that dP − D cancels consistently (with FP32 dout here and
 *   BF16 in dP, dS = P∘(dP − D) would carry dout's rounding error, amplified: 3.4e-2 vs 1.3e-3 in dq).
 *   grid: ceil(B·T·NH / 8); block: 256; shared: none. Any HS.
 */
extern "C" __global__ void attention_flash_backward_prep(float* D, const float* dout, const float* out, int B, int Tlen, int NH, int HS, int round_dout) {
  const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);  // (b·T + t)·NH + h
  const int lane = threadIdx.x & 31;
  if (row >= (long long)B * Tlen * NH) return;
  const float* a = dout + row * HS;
  const float* o = out + row * HS;
  float s = 0.0f;
  for (int d = lane; d < HS; d += 32) s += (round_dout ? round_bf16(act_load(a + d)) : act_load(a + d)) * act_load(o + d);
  s = warp_sum(s);
  if (lane == 0) prep_store_d(D, row, Tlen, NH, s);
}

/**
 * attention_flash_backward_prep_bf16(float* D, const float* dout, const float* out, int B, int T, int NH, int HS, unsigned short* dout16)
 *   attention_flash_backward_prep with round_dout = 1 (same launch, same D bits), and dout16 = the
 *   BF16 dout it rounded (RNE; attention_bf16_cast's bits for every finite value): the dout operand
 *   of attention-mma-async.cu's backward without a cast of its own.
 */
extern "C" __global__ void attention_flash_backward_prep_bf16(float* D, const float* dout, const float* out, int B, int Tlen, int NH, int HS, unsigned short* dout16) {
  const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= (long long)B * Tlen * NH) return;
  const float* a = dout + row * HS;
  const float* o = out + row * HS;
  float s = 0.0f;
  for (int d = lane; d < HS; d += 32) {
    const unsigned short h16 = bf16_out_bits(act_load(a + d));  // = round_bf16 for every non-NaN value
    dout16[row * HS + d] = h16;
    s += __uint_as_float((unsigned)h16 << 16) * act_load(o + d);
  }
  s = warp_sum(s);
  if (lane == 0) prep_store_d(D, row, Tlen, NH, s);
}

/**
 * attention_flash_backward_prep_bf16_hs64(same arguments as attention_flash_backward_prep_bf16), HS = 64:
 *   the same rows, D and dout16 bits (lane l: d = l, then l + 32, then warp_sum), but a grid that
 *   fits on the GPU: warp w of W takes rows w, w + W, w + 2W, w + 3W, then w + 4W, ..., loading the
 *   four rows' dout and out before any arithmetic (16 loads in flight per lane, not 4; a few
 *   thousand blocks fewer). grid: any; block: 256.
 */
extern "C" __global__ void __launch_bounds__(256) attention_flash_backward_prep_bf16_hs64(float* D, const float* dout, const float* out, int B, int Tlen, int NH, int HS,
                                                                                       unsigned short* dout16) {
  const long long rows = (long long)B * Tlen * NH, W = (long long)gridDim.x * (blockDim.x >> 5);
  const int lane = threadIdx.x & 31;
  for (long long r0 = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r0 < rows; r0 += 4 * W) {
    float a[4][2], o[4][2];
#pragma unroll
    for (int k = 0; k < 4; k++) {
      const long long row = r0 + k * W;
      if (row < rows) {
#pragma unroll
        for (int j = 0; j < 2; j++) {
          a[k][j] = act_load(dout + row * 64 + lane + 32 * j);
          o[k][j] = act_load(out + row * 64 + lane + 32 * j);
        }
      }
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
      const long long row = r0 + k * W;  // uniform over the warp
      if (row >= rows) break;
      float s = 0.0f;
#pragma unroll
      for (int j = 0; j < 2; j++) {
        const unsigned short h16 = bf16_out_bits(a[k][j]);
        dout16[row * 64 + lane + 32 * j] = h16;
        s += __uint_as_float((unsigned)h16 << 16) * o[k][j];
      }
      s = warp_sum(s);
      if (lane == 0) prep_store_d(D, row, Tlen, NH, s);
    }
  }
}

template <int HS>
__device__ __forceinline__ void flash_backward_dq_impl(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* Dg, int Tlen, int NH, int NKV) {
  constexpr int LD = HS + 4;
  extern __shared__ float4 fa_smem[];
  float* Qs = reinterpret_cast<float*>(fa_smem);  // (64, HS+4) each
  float* dOs = Qs + FA_BR * LD;
  float* Ks = dOs + FA_BR * LD;
  float* Vs = Ks + FA_BC * LD;
  float* Ps = Vs + FA_BC * LD;  // (64, 68): dS
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
  const int qt = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z, g = h / (NH / NKV);
  const int q0 = qt * FA_BR;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS);
  const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
  fa_load_tile<HS>(Qs, q + qOff, qStride, Tlen - q0);
  fa_load_tile<HS>(dOs, dout + qOff, qStride, Tlen - q0);
  float L[4], Dr[4], acc[4][HS / 16];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int r = q0 + ty * 4 + i;
    const long long o = ((long long)b * NH + h) * Tlen + r;
    L[i] = r < Tlen ? lse[o] : 0.0f;
    Dr[i] = r < Tlen ? Dg[o] : 0.0f;
#pragma unroll
    for (int d = 0; d < HS / 16; d++) acc[i][d] = 0.0f;
  }
  const int lastKey = min(q0 + FA_BR, Tlen) - 1;
  const float* kBase = k + (long long)b * Tlen * kvStride + (long long)g * HS;
  const float* vBase = v + (long long)b * Tlen * kvStride + (long long)g * HS;
  for (int k0 = 0; k0 <= lastKey; k0 += FA_BC) {
    __syncthreads();
    fa_load_tile<HS>(Ks, kBase + k0 * kvStride, kvStride, Tlen - k0);
    fa_load_tile<HS>(Vs, vBase + k0 * kvStride, kvStride, Tlen - k0);
    __syncthreads();
    float S[4][4], dP[4][4];
    fa_tile_dot<HS>(S, Qs, Ks, ty, tx);
    fa_tile_dot<HS>(dP, dOs, Vs, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int r = q0 + ty * 4 + i;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const float p = k0 + tx + 16 * j <= r ? expf(S[i][j] * scale - L[i]) : 0.0f;
        Ps[(ty * 4 + i) * FA_LDP + tx + 16 * j] = p * (dP[i][j] - Dr[i]);
      }
    }
    __syncthreads();
    fa_tile_pv<HS>(acc, Ps, Ks, ty, tx);  // dq += dS·K
  }
  fa_store_tile<HS>(dq + qOff, qStride, Tlen - q0, acc, nullptr, scale, ty, tx);
}

/**
 * attention_flash_backward_dq_hs64 / _hs128(float* dq, const float* dout, const float* q,
 *     const float* k, const float* v, const float* lse, const float* D, int B, int T, int NH, int NKV)
 *   dq (B,T,NH,HS) = Σ_j dS_ij·k_j / √HS (OVERWRITTEN), P_ij = exp(s_ij − lse_i) recomputed,
 *   dS_ij = P_ij·(dout_i·v_j − D_i). grid: (ceil(T/64), NH, B); block: 256; shared (dynamic):
 *   (4·64·(HS+4) + 64·68)·4 bytes = 87040 (HS 64) / 152576 (HS 128): set the max-dynamic-shared attribute.
 */
extern "C" __global__ void __launch_bounds__(FA_NT) attention_flash_backward_dq_hs64(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* D, int B, int Tlen, int NH, int NKV) {
  flash_backward_dq_impl<64>(dq, dout, q, k, v, lse, D, Tlen, NH, NKV);
}
extern "C" __global__ void __launch_bounds__(FA_NT, 1) attention_flash_backward_dq_hs128(float* dq, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* D, int B, int Tlen, int NH, int NKV) {
  flash_backward_dq_impl<128>(dq, dout, q, k, v, lse, D, Tlen, NH, NKV);
}

template <int HS>
__device__ __forceinline__ void flash_backward_dkv_impl(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* Dg, int Tlen, int NH, int NKV) {
  constexpr int LD = HS + 4;
  extern __shared__ float4 fa_smem[];
  float* Ks = reinterpret_cast<float*>(fa_smem);  // (64, HS+4) each
  float* Vs = Ks + FA_BC * LD;
  float* Qs = Vs + FA_BC * LD;
  float* dOs = Qs + FA_BR * LD;
  float* Ps = dOs + FA_BR * LD;  // (64, 68): P, then dS
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
  const int kt = blockIdx.x;  // key tile 0 has the most query tiles: it starts first
  const int g = blockIdx.y, b = blockIdx.z, rep = NH / NKV;
  const int k0 = kt * FA_BC;
  const long long qStride = (long long)NH * HS, kvStride = (long long)NKV * HS;
  const float scale = 1.0f / sqrtf((float)HS);
  const long long kvOff = ((long long)b * Tlen + k0) * kvStride + (long long)g * HS;
  fa_load_tile<HS>(Ks, k + kvOff, kvStride, Tlen - k0);
  fa_load_tile<HS>(Vs, v + kvOff, kvStride, Tlen - k0);
  float dK[4][HS / 16], dV[4][HS / 16];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int d = 0; d < HS / 16; d++) dK[i][d] = dV[i][d] = 0.0f;
  for (int h = g * rep; h < (g + 1) * rep; h++) {
    for (int q0 = k0; q0 < Tlen; q0 += FA_BR) {  // query tiles at or below the diagonal
      const long long qOff = ((long long)b * Tlen + q0) * qStride + (long long)h * HS;
      __syncthreads();  // the previous tile is done with Qs, dOs, Ps
      fa_load_tile<HS>(Qs, q + qOff, qStride, Tlen - q0);
      fa_load_tile<HS>(dOs, dout + qOff, qStride, Tlen - q0);
      __syncthreads();
      float S[4][4], dP[4][4];
      fa_tile_dot<HS>(S, Qs, Ks, ty, tx);
      fa_tile_dot<HS>(dP, dOs, Vs, ty, tx);
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int r = q0 + ty * 4 + i;
        const long long o = ((long long)b * NH + h) * Tlen + r;
        const float L = r < Tlen ? lse[o] : 0.0f, Dr = r < Tlen ? Dg[o] : 0.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
          const float p = k0 + tx + 16 * j <= r && r < Tlen ? expf(S[i][j] * scale - L) : 0.0f;
          S[i][j] = p;
          dP[i][j] = p * (dP[i][j] - Dr);  // dS
          Ps[(ty * 4 + i) * FA_LDP + tx + 16 * j] = p;
        }
      }
      __syncthreads();
      fa_tile_ptx<HS>(dV, Ps, dOs, ty, tx);  // dv += Pᵀ·dout
      __syncthreads();
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) Ps[(ty * 4 + i) * FA_LDP + tx + 16 * j] = dP[i][j];
      __syncthreads();
      fa_tile_ptx<HS>(dK, Ps, Qs, ty, tx);  // dk += dSᵀ·q
    }
  }
  fa_store_tile<HS>(dk + kvOff, kvStride, Tlen - k0, dK, nullptr, scale, ty, tx);
  fa_store_tile<HS>(dv + kvOff, kvStride, Tlen - k0, dV, nullptr, 1.0f, ty, tx);
}

/**
 * attention_flash_backward_dkv_hs64 / _hs128(float* dk, float* dv, const float* dout, const float* q,
 *     const float* k, const float* v, const float* lse, const float* D, int B, int T, int NH, int NKV)
 *   dk_j = Σ_{h in group} Σ_{i ≥ j} dS_ij·q_i / √HS, dv_j = Σ_{h in group} Σ_{i ≥ j} P_ij·dout_i
 *   (both OVERWRITTEN), summed over heads then query rows in ascending order.
 *   grid: (ceil(T/64), NKV, B); block: 256; shared (dynamic): as the dq kernel (87040 / 152576 bytes).
 */
extern "C" __global__ void __launch_bounds__(FA_NT) attention_flash_backward_dkv_hs64(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* D, int B, int Tlen, int NH, int NKV) {
  flash_backward_dkv_impl<64>(dk, dv, dout, q, k, v, lse, D, Tlen, NH, NKV);
}
extern "C" __global__ void __launch_bounds__(FA_NT) attention_flash_backward_dkv_hs128(float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v, const float* lse, const float* D, int B, int Tlen, int NH, int NKV) {
  flash_backward_dkv_impl<128>(dk, dv, dout, q, k, v, lse, D, Tlen, NH, NKV);
}
