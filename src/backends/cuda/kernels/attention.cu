/**
 * Causal grouped-query attention core, version 1: the twin of backends/cpu/ops/attention.ts, with
 * the T×T probabilities materialised (B,NH,T,T) as the oracle does, so a parity test can compare
 * probs too. One block per (batch, head, query row) forward; backward in two kernels, one per
 * query row (dS and dq) and one per key row (dk, dv summed over the group's query heads), so every
 * gradient element is one sum in a fixed order and no atomics are needed. Dot products, max,
 * exponentials and sums are fp32. Head h reads kv head ⌊h / (NH/NKV)⌋ (HF repeat_kv).
 * Not FlashAttention: O(T²) memory and no tiling; attention-flash.cu is the fast path. Method:
 * Vaswani et al. 2017, arXiv 1706.03762; GQA: Ainslie et al. 2023, arXiv 2305.13245.
 *
 * Gradient convention: dq, dk, dv are OVERWRITTEN. Outputs must not alias inputs.
 */
#include "ops-common.cuh"

/**
 * out[d] = scale · Σ_{j ≤ i} w[j] · rows[j·rowStride + d] for d < HS, in a fixed order: thread
 * group g (of G = blockDim/HS groups of HS threads) sums j ≡ g (mod G), then the G partials are
 * added in group order. part: shared, ≥ blockDim floats. Every thread of the block must call it.
 */
template <typename T>
__device__ __forceinline__ void weighted_row_sum(T* out, const float* w, const T* rows, long long rowStride, int i, int HS, float scale, float* part) {
  const int tid = threadIdx.x, nt = blockDim.x;
  if (HS <= nt) {
    const int G = nt / HS, d = tid % HS, g = tid / HS;
    if (g < G) {
      float acc = 0.0f;
      for (int j = g; j <= i; j += G) acc += w[j] * act_load(rows + j * rowStride + d);
      part[g * HS + d] = acc;
    }
    __syncthreads();
    if (tid < HS) {
      float acc = 0.0f;
      for (int gg = 0; gg < G; gg++) acc += part[gg * HS + tid];
      act_store(out + tid, acc * scale);
    }
  } else {
    for (int d = tid; d < HS; d += nt) {
      float acc = 0.0f;
      for (int j = 0; j <= i; j++) acc += w[j] * act_load(rows + j * rowStride + d);
      act_store(out + d, acc * scale);
    }
  }
}

/** dst[j] = src_row · rows[j] for j ≤ i, one warp per j (lanes split HS, then a butterfly), times scale. */
template <typename T>
__device__ __forceinline__ void row_dots(float* dst, const float* src, const T* rows, long long rowStride, int i, int HS, float scale) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int j = warp; j <= i; j += nwarps) {
    const T* r = rows + j * rowStride;
    float s = 0.0f;
    for (int d = lane; d < HS; d += 32) s += src[d] * act_load(r + d);
    s = warp_sum(s);
    if (lane == 0) dst[j] = s * scale;
  }
}

template <typename T>
__device__ __forceinline__ void attention_forward_impl(T* out, float* probs, const T* q, const T* k, const T* v, int Tlen, int NH, int NKV, int HS) {
  extern __shared__ float sm[];
  __shared__ float red[32];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int g = h / (NH / NKV);
  float* qs = sm;          // (HS)
  float* e = sm + HS;      // (T): scores, then exp(score − max)
  float* part = e + Tlen;  // (blockDim)
  const long long qOff = (((long long)b * Tlen + i) * NH + h) * HS;
  const long long kvRow = (long long)NKV * HS;  // stride between positions t in k, v
  const long long kvOff = (long long)b * Tlen * kvRow + (long long)g * HS;
  const float scale = 1.0f / sqrtf((float)HS);

  for (int d = tid; d < HS; d += nt) qs[d] = act_load(q + qOff + d);
  __syncthreads();
  row_dots(e, qs, k + kvOff, kvRow, i, HS, scale);
  __syncthreads();
  float m = neg_inf_f32();
  for (int j = tid; j <= i; j += nt) m = fmaxf(m, e[j]);
  m = block_max(m, red);
  float s = 0.0f;
  for (int j = tid; j <= i; j += nt) {
    const float x = expf(e[j] - m);
    e[j] = x;
    s += x;
  }
  s = block_sum(s, red);  // its barriers also publish e[]
  const float inv = 1.0f / s;
  float* prow = probs + (((long long)b * NH + h) * Tlen + i) * Tlen;
  for (int j = tid; j < Tlen; j += nt) {
    const float p = j <= i ? e[j] * inv : 0.0f;
    prow[j] = p;
    if (j <= i) e[j] = p;
  }
  __syncthreads();
  weighted_row_sum(out + qOff, e, v + kvOff, kvRow, i, HS, 1.0f, part);
}

/**
 * attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
 *                   int B, int T, int NH, int NKV, int HS)
 *   out (B,T,NH,HS), probs (B,NH,T,T) ← q (B,T,NH,HS), k, v (B,T,NKV,HS).
 *   probs[b,h,i,j] = softmax_j(q_i·k_j/√HS) for j ≤ i, 0 for j > i (whole row written).
 *   grid: (T, NH, B); block: 128 or 256 (multiple of 32, ≥ 32); shared (dynamic):
 *   (HS + T + blockDim)·4 bytes (T ≤ ~11000 within the default 48 KB). NH % NKV == 0.
 */
extern "C" __global__ void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, int B, int Tlen, int NH, int NKV, int HS) {
  attention_forward_impl<float>(out, probs, q, k, v, Tlen, NH, NKV, HS);
}

template <typename T>
__device__ __forceinline__ void attention_backward_query_impl(T* dq, float* dS, const T* dout, const T* k, const T* v, const float* probs, int Tlen, int NH, int NKV, int HS) {
  extern __shared__ float sm[];
  __shared__ float red[32];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int g = h / (NH / NKV);
  float* dos = sm;          // (HS): dout_i
  float* ds = sm + HS;      // (T): dP_ij, then dS_ij
  float* part = ds + Tlen;  // (blockDim)
  const long long qOff = (((long long)b * Tlen + i) * NH + h) * HS;
  const long long kvRow = (long long)NKV * HS;
  const long long kvOff = (long long)b * Tlen * kvRow + (long long)g * HS;
  const long long pRow = (((long long)b * NH + h) * Tlen + i) * Tlen;
  const float scale = 1.0f / sqrtf((float)HS);

  for (int d = tid; d < HS; d += nt) dos[d] = act_load(dout + qOff + d);
  __syncthreads();
  row_dots(ds, dos, v + kvOff, kvRow, i, HS, 1.0f);
  __syncthreads();
  float D = 0.0f;  // D_i = Σ_j P_ij·dP_ij
  for (int j = tid; j <= i; j += nt) D += probs[pRow + j] * ds[j];
  D = block_sum(D, red);
  for (int j = tid; j <= i; j += nt) {
    const float x = probs[pRow + j] * (ds[j] - D);
    ds[j] = x;
    dS[pRow + j] = x;
  }
  __syncthreads();
  weighted_row_sum(dq + qOff, ds, k + kvOff, kvRow, i, HS, scale, part);
}

/**
 * attention_backward_query(float* dq, float* dS, const float* dout, const float* k, const float* v,
 *                          const float* probs, int B, int T, int NH, int NKV, int HS)
 *   Pass 1 of the backward, per query row i: dP_ij = dout_i·v_j, D_i = Σ_j P_ij·dP_ij,
 *   dS_ij = P_ij·(dP_ij − D_i) (saved), dq_i = Σ_j dS_ij·k_j / √HS (OVERWRITTEN).
 *   dS (B,NH,T,T): scratch the host allocates (same size as probs); only j ≤ i is written.
 *   grid: (T, NH, B); block: 128 or 256; shared (dynamic): (HS + T + blockDim)·4 bytes.
 *   Follow with attention_backward_kv.
 */
extern "C" __global__ void attention_backward_query(float* dq, float* dS, const float* dout, const float* k, const float* v, const float* probs, int B, int Tlen, int NH, int NKV, int HS) {
  attention_backward_query_impl<float>(dq, dS, dout, k, v, probs, Tlen, NH, NKV, HS);
}

template <typename T>
__device__ __forceinline__ void attention_backward_kv_impl(T* dk, T* dv, const T* dout, const T* q, const float* probs, const float* dS, int Tlen, int NH, int NKV, int HS) {
  extern __shared__ float part[];  // (2·blockDim): dk partials, then dv partials
  const int j = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int rep = NH / NKV;
  const long long kvOff = (((long long)b * Tlen + j) * NKV + g) * HS;
  const long long qRow = (long long)NH * HS;  // stride between positions in q, dout
  const float scale = 1.0f / sqrtf((float)HS);
  // Thread group gi (of G groups of HS threads) sums query rows i ≡ j + gi (mod G) over the
  // group's heads in order; the G partials are then added in group order.
  const int G = HS <= nt ? nt / HS : 1;
  for (int d0 = 0; d0 < HS; d0 += nt) {  // one pass when HS ≤ blockDim
    const int d = HS <= nt ? tid % HS : d0 + tid;
    const int gi = HS <= nt ? tid / HS : 0;
    const bool active = gi < G && d < HS;
    float ak = 0.0f, av = 0.0f;
    if (active) {
      for (int h = g * rep; h < (g + 1) * rep; h++) {
        const long long pBase = ((long long)b * NH + h) * Tlen * Tlen + j;
        const long long qBase = ((long long)b * Tlen * NH + h) * HS + d;
        for (int i = j + gi; i < Tlen; i += G) {
          const float p = probs[pBase + (long long)i * Tlen], ds = dS[pBase + (long long)i * Tlen];
          const long long o = qBase + i * qRow;
          ak += ds * act_load(q + o);
          av += p * act_load(dout + o);
        }
      }
    }
    if (HS <= nt) {
      if (active) {
        part[gi * HS + d] = ak;
        part[nt + gi * HS + d] = av;
      }
      __syncthreads();
      if (tid < HS) {
        float sk = 0.0f, sv = 0.0f;
        for (int gg = 0; gg < G; gg++) {
          sk += part[gg * HS + tid];
          sv += part[nt + gg * HS + tid];
        }
        act_store(dk + kvOff + tid, sk * scale);
        act_store(dv + kvOff + tid, sv);
      }
    } else if (active) {
      act_store(dk + kvOff + d, ak * scale);
      act_store(dv + kvOff + d, av);
    }
  }
}

/**
 * attention_backward_kv(float* dk, float* dv, const float* dout, const float* q, const float* probs,
 *                       const float* dS, int B, int T, int NH, int NKV, int HS)
 *   Pass 2, per key row j of kv head g: dk_j = Σ_{h in group} Σ_{i ≥ j} dS_ij·q_i / √HS,
 *   dv_j = Σ_{h in group} Σ_{i ≥ j} P_ij·dout_i (both OVERWRITTEN), dS from
 *   attention_backward_query. grid: (T, NKV, B); block: 128 or 256; shared (dynamic):
 *   2·blockDim·4 bytes.
 */
extern "C" __global__ void attention_backward_kv(float* dk, float* dv, const float* dout, const float* q, const float* probs, const float* dS, int B, int Tlen, int NH, int NKV, int HS) {
  attention_backward_kv_impl<float>(dk, dv, dout, q, probs, dS, Tlen, NH, NKV, HS);
}
