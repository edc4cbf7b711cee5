/**
 * The Mamba-2 mixer's non-GEMM kernels: causal depthwise conv + SiLU, the chunked SSD selective
 * scan, and HF NemotronH's gated group RMSNorm, forward and backward. Twins of the CPU oracles
 * backends/cpu/ops/causal-conv1d.ts, ssd-scan.ts and gated-rmsnorm.ts (float64 there, fp32 here:
 * parity within rounding, not bit-exact). Method: Dao & Gu 2024 (arXiv 2405.21060) §6 for the
 * scan; launch shapes in ops-kernels.md. Host side: backends/cuda/mamba2.ts.
 *
 * Scan (per batch b and head h, group g = h / (H/G); dt = softplus(dtRaw + dtBias), a = −exp(aLog)):
 *   S_t = exp(dt_t a) S_{t−1} + dt_t x_t ⊗ B_t,   y_t = S_t C_t + D x_t
 * One block per (h, b) walks the chunks of L ≤ 64 tokens in order: the chunk's C·Bᵀ Gram matrix and
 * cumulative log-decays in shared memory, the intra-chunk outputs as a masked matrix product, the
 * inter-chunk term from the state entering the chunk, which it keeps in `states` (B, nChunks, H,
 * P, N) for the backward pass. The backward block walks the chunks in reverse carrying dL/dstate
 * in a global scratch (B, H, P, N). Sums over the heads of a group (dB, dC) and over the batch
 * (dA_log, dD, ddt_bias) go through per-head / per-batch partials reduced in a fixed order: no
 * floating-point atomics, the same bits every run.
 *
 * Gradient convention (backend.ts): dx, ddtRaw, dB, dC, dy, dz OVERWRITTEN; parameter gradients
 * ACCUMULATED (+=).
 */
#include "ops-common.cuh"

// dynamic shared memory; the host run (mamba2-host-test.cpp, FP4LM_SIMT_SHIM) gives each kernel 256 KB of static storage
#ifdef FP4LM_SIMT_SHIM
#define SSD_DYNAMIC_SHARED(name) static float name[65536]
#else
#define SSD_DYNAMIC_SHARED(name) extern __shared__ float name[]
#endif

#define SSD_LMAX 64

__device__ __forceinline__ float softplus_f32(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
__device__ __forceinline__ float sigmoid_f32(float v) { return 1.0f / (1.0f + expf(-v)); }

// --- causal depthwise conv + SiLU ------------------------------------------------------------

__device__ __forceinline__ float conv_pre(const float* x, const float* w, const float* bias, long long base, int t, int c, int Cc, int W) {
  float s = bias[c];
  for (int k = max(0, W - 1 - t); k < W; k++) s += w[c * W + k] * x[base + (long long)(t + k - (W - 1)) * Cc + c];
  return s;
}

/**
 * conv_silu_forward(float* out, const float* x, const float* w, const float* bias, int B, int T, int Cc, int W)
 *   out (B,T,Cc) = silu(bias + Σ_k w[c,k]·x[t+k−(W−1)]), zero left padding per sequence. grid-stride.
 */
extern "C" __global__ void conv_silu_forward(float* out, const float* x, const float* w, const float* bias, int B, int T, int Cc, int W) {
  const long long n = (long long)B * T * Cc;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int c = (int)(i % Cc);
    const long long bt = i / Cc;
    const int t = (int)(bt % T);
    const long long base = (bt - t) * Cc;
    const float p = conv_pre(x, w, bias, base, t, c, Cc, W);
    out[i] = p / (1.0f + expf(-p));
  }
}

/** conv_silu_backward_dpre(float* dpre, const float* dout, const float* x, const float* w, const float* bias, int B, int T, int Cc, int W): dpre = dout·silu'(pre). grid-stride. */
extern "C" __global__ void conv_silu_backward_dpre(float* dpre, const float* dout, const float* x, const float* w, const float* bias, int B, int T, int Cc, int W) {
  const long long n = (long long)B * T * Cc;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int c = (int)(i % Cc);
    const long long bt = i / Cc;
    const int t = (int)(bt % T);
    const float p = conv_pre(x, w, bias, (bt - t) * Cc, t, c, Cc, W);
    const float s = sigmoid_f32(p);
    dpre[i] = dout[i] * s * (1.0f + p * (1.0f - s));
  }
}

/** conv_silu_backward_dx(float* dx, const float* dpre, const float* w, int B, int T, int Cc, int W): dx[t] = Σ_k w[c,k]·dpre[t+(W−1)−k]. grid-stride. */
extern "C" __global__ void conv_silu_backward_dx(float* dx, const float* dpre, const float* w, int B, int T, int Cc, int W) {
  const long long n = (long long)B * T * Cc;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int c = (int)(i % Cc);
    const long long bt = i / Cc;
    const int t = (int)(bt % T);
    float g = 0.0f;
    for (int k = 0; k < W; k++) {
      const int to = t + (W - 1) - k;
      if (to < T) g += w[c * W + k] * dpre[i + (long long)(to - t) * Cc];
    }
    dx[i] = g;
  }
}

/**
 * conv_silu_backward_dw_partial(double* partial, const float* dpre, const float* x, int B, int T, int Cc, int W)
 *   partial (P, Cc, W+1): block p sums rows (b,t) in [p·R, (p+1)·R), R = ceil(B·T / gridDim.x), of
 *   dpre[t]·x[t+k−(W−1)] (k < W) and dpre[t] (slot W); each thread owns channels c ≡ tid (mod blockDim).
 */
extern "C" __global__ void conv_silu_backward_dw_partial(double* partial, const float* dpre, const float* x, int B, int T, int Cc, int W) {
  const long long BT = (long long)B * T;
  const long long R = (BT + gridDim.x - 1) / gridDim.x, r0 = blockIdx.x * R, r1 = min(BT, r0 + R);
  for (int c = threadIdx.x; c < Cc; c += blockDim.x) {
    double acc[9];
    for (int k = 0; k <= W; k++) acc[k] = 0.0;
    for (long long r = r0; r < r1; r++) {
      const int t = (int)(r % T);
      const float d = dpre[r * Cc + c];
      acc[W] += d;
      for (int k = max(0, W - 1 - t); k < W; k++) acc[k] += (double)(d * x[(r + k - (W - 1)) * Cc + c]);
    }
    double* out = partial + ((long long)blockIdx.x * Cc + c) * (W + 1);
    for (int k = 0; k <= W; k++) out[k] = acc[k];
  }
}

/** conv_silu_dw_reduce(float* dweight, float* dbias, const double* partial, int P, int Cc, int W): dweight (Cc,W), dbias (Cc) += Σ_p partial, p ascending. */
extern "C" __global__ void conv_silu_dw_reduce(float* dweight, float* dbias, const double* partial, int P, int Cc, int W) {
  const int n = Cc * (W + 1);
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    double s = 0.0;
    for (int p = 0; p < P; p++) s += partial[(long long)p * n + i];
    const int c = i / (W + 1), k = i % (W + 1);
    if (k < W) dweight[c * W + k] += (float)s;
    else dbias[c] += (float)s;
  }
}

// --- gated group RMSNorm ---------------------------------------------------------------------

/**
 * gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z, const float* w, int rows, int D, int S, float eps)
 *   h = y·silu(z); out = w·h·rstd per group of S channels; rstd (rows, D/S). One warp per (row, group).
 */
extern "C" __global__ void gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z, const float* w, int rows, int D, int S, float eps) {
  const int G = D / S;
  const long long item = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (item >= (long long)rows * G) return;
  const long long o = (item / G) * D + (item % G) * S;
  const int wo = (int)(item % G) * S;
  float ss = 0.0f;
  for (int i = lane; i < S; i += 32) {
    const float zi = z[o + i], h = y[o + i] * zi * sigmoid_f32(zi);
    ss += h * h;
  }
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / (float)S + eps);
  if (lane == 0) rstd[item] = r;
  for (int i = lane; i < S; i += 32) {
    const float zi = z[o + i], h = y[o + i] * zi * sigmoid_f32(zi);
    out[o + i] = h * r * w[wo + i];
  }
}

/**
 * gated_rmsnorm_backward(float* dy, float* dz, double* dw_partial, const float* dout, const float* y, const float* z, const float* w,
 *                        const float* rstd, int rows, int D, int S)
 *   dh = rstd·(dout·w − h·rstd²·mean(dout·w·h)); dy = dh·silu(z); dz = dh·y·silu'(z).
 *   dw_partial (P, D) double, P = gridDim.x: block p takes rows [p·R, (p+1)·R), R = ceil(rows/P); group g of
 *   each row goes to warp g mod nwarps, channel i to lane i mod 32, so each partial entry has one owner.
 *   Reduce with rmsnorm.cu's rmsnorm_dweight_reduce.
 */
extern "C" __global__ void gated_rmsnorm_backward(float* dy, float* dz, double* dw_partial, const float* dout, const float* y, const float* z,
                                                   const float* w, const float* rstd, int rows, int D, int S) {
  const int G = D / S, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int R = (rows + gridDim.x - 1) / gridDim.x, r0 = blockIdx.x * R, r1 = min(rows, r0 + R);
  double* part = dw_partial + (long long)blockIdx.x * D;
  for (int g = warp; g < G; g += nwarps)
    for (int i = lane; i < S; i += 32) part[g * S + i] = 0.0;
  for (int row = r0; row < r1; row++) {
    for (int g = warp; g < G; g += nwarps) {
      const long long o = (long long)row * D + g * S;
      const float r = rstd[(long long)row * G + g];
      float dot = 0.0f;
      for (int i = lane; i < S; i += 32) {
        const float zi = z[o + i], h = y[o + i] * zi * sigmoid_f32(zi);
        dot += dout[o + i] * w[g * S + i] * h;
      }
      dot = warp_sum(dot);
      const float k = r * r * dot / (float)S;
      for (int i = lane; i < S; i += 32) {
        const float zi = z[o + i], yi = y[o + i], s = sigmoid_f32(zi), h = yi * zi * s, d = dout[o + i];
        part[g * S + i] += (double)(d * h * r);
        const float dh = r * (d * w[g * S + i] - h * k);
        dy[o + i] = dh * zi * s;
        dz[o + i] = dh * yi * s * (1.0f + zi * (1.0f - s));
      }
    }
  }
}

// --- the chunked SSD scan --------------------------------------------------------------------

/** dt and inclusive cumulative dt·a of one chunk into shared memory (the prefix in thread 0, in order, as the oracle). */
__device__ __forceinline__ void chunk_decays(float* dtv, float* cs, const float* dtRaw, float bias, float a, int b, int t0, int Lc, int T, int H, int h) {
  for (int i = threadIdx.x; i < Lc; i += blockDim.x) dtv[i] = softplus_f32(dtRaw[((long long)b * T + t0 + i) * H + h] + bias);
  __syncthreads();
  if (threadIdx.x == 0) {
    float run = 0.0f;
    for (int i = 0; i < Lc; i++) cs[i] = (run += dtv[i] * a);
  }
  __syncthreads();
}

/** CB[i][j] = C_i·B_j for j ≤ i of the chunk (group g). */
__device__ __forceinline__ void chunk_gram(float* CB, const float* Bm, const float* Cm, int b, int t0, int Lc, int T, int G, int N, int g) {
  for (int idx = threadIdx.x; idx < Lc * Lc; idx += blockDim.x) {
    const int i = idx / Lc, j = idx % Lc;
    if (j > i) continue;
    const float* ci = Cm + (((long long)b * T + t0 + i) * G + g) * N;
    const float* bj = Bm + (((long long)b * T + t0 + j) * G + g) * N;
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += ci[n] * bj[n];
    CB[i * SSD_LMAX + j] = s;
  }
}

/**
 * Copy `rows` rows of the slot `slot` of two (B·T, slots, width) tensors, tokens bt0, bt0 + 1, ...,
 * into shared memory as (rows, width + 1) (the padding keeps a warp reading down a column on
 * different banks). Coalesced: consecutive threads take consecutive elements of a row.
 */
__device__ __forceinline__ void stage_rows(float* d0, float* d1, const float* s0, const float* s1, long long bt0, int rows, int slots, int slot, int width) {
  for (int idx = threadIdx.x; idx < rows * width; idx += blockDim.x) {
    const int r = idx / width, c = idx % width;
    const long long o = ((bt0 + r) * slots + slot) * width + c;
    d0[r * (width + 1) + c] = s0[o];
    d1[r * (width + 1) + c] = s1[o];
  }
}

/**
 * chunk_gram_staged: chunk_gram's CB with the chunk's C and B rows first copied into shared memory R
 * (coalesced; rows padded to N + 1 so a warp's threads, one row each, read different banks), then
 * each C_i·B_j summed over n in the same order: the same bits. R holds 2·Lc·(N + 1) floats.
 */
__device__ __forceinline__ void chunk_gram_staged(float* CB, float* R, const float* Bm, const float* Cm, int b, int t0, int Lc, int T, int G, int N, int g) {
  float* Cs = R;
  float* Bs = R + Lc * (N + 1);
  stage_rows(Cs, Bs, Cm, Bm, (long long)b * T + t0, Lc, G, g, N);
  __syncthreads();
  for (int idx = threadIdx.x; idx < Lc * Lc; idx += blockDim.x) {
    const int i = idx / Lc, j = idx % Lc;
    if (j > i) continue;
    const float* ci = Cs + i * (N + 1);
    const float* bj = Bs + j * (N + 1);
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += ci[n] * bj[n];
    CB[i * SSD_LMAX + j] = s;
  }
}

/**
 * ssd_forward(float* y, float* states, const float* x, const float* dtRaw, const float* aLog, const float* dtBias, const float* D,
 *             const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N, int L)
 *   y, x (B,T,H,P); dtRaw (B,T,H); Bm, Cm (B,T,G,N); states (B, ceil(T/L), H, P, N) = the state entering each chunk.
 *   grid (H, B); block 256; L ≤ 64; static shared 16.9 KB.
 */
template <bool STAGED>
__device__ __forceinline__ void ssd_forward_impl(float* y, float* states, const float* x, const float* dtRaw, const float* aLog, const float* dtBias, const float* D,
                                                 const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N, int L, float* R) {
  __shared__ float cs[SSD_LMAX], dtv[SSD_LMAX], CB[SSD_LMAX * SSD_LMAX];
  const int h = blockIdx.x, b = blockIdx.y, g = h / (H / G), nC = (T + L - 1) / L, PN = P * N;
  const float a = -expf(aLog[h]), Dh = D[h], bias = dtBias[h];
  float* st0 = states + (((long long)b * nC) * H + h) * PN;
  for (int k = threadIdx.x; k < PN; k += blockDim.x) st0[k] = 0.0f;
  for (int c = 0; c < nC; c++) {
    const int t0 = c * L, Lc = min(L, T - t0);
    const float* Hc = states + (((long long)b * nC + c) * H + h) * PN;
    chunk_decays(dtv, cs, dtRaw, bias, a, b, t0, Lc, T, H, h);
    const float* Hr = Hc;
    int ld = N;
    if (STAGED) {
      chunk_gram_staged(CB, R, Bm, Cm, b, t0, Lc, T, G, N, g);
      __syncthreads();  // the Gram's reads of R are done
      // the state entering the chunk, (P, N) rows padded to N + 1: the (i, p) loop reads it down columns
      for (int k = threadIdx.x; k < PN; k += blockDim.x) R[(k / N) * (N + 1) + k % N] = Hc[k];
      Hr = R;
      ld = N + 1;
    } else {
      chunk_gram(CB, Bm, Cm, b, t0, Lc, T, G, N, g);
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < Lc * P; idx += blockDim.x) {
      const int i = idx / P, p = idx % P;
      float acc = 0.0f;
      for (int j = 0; j <= i; j++) acc += CB[i * SSD_LMAX + j] * expf(cs[i] - cs[j]) * dtv[j] * x[(((long long)b * T + t0 + j) * H + h) * P + p];
      const float* ci = Cm + (((long long)b * T + t0 + i) * G + g) * N;
      float s = 0.0f;
      if (c > 0) for (int n = 0; n < N; n++) s += ci[n] * Hr[p * ld + n];
      const long long xo = (((long long)b * T + t0 + i) * H + h) * P + p;
      y[xo] = acc + expf(cs[i]) * s + Dh * x[xo];
    }
    if (c + 1 < nC) {
      float* Hn = states + (((long long)b * nC + c + 1) * H + h) * PN;
      const float el = expf(cs[Lc - 1]);
      for (int k = threadIdx.x; k < PN; k += blockDim.x) {
        const int p = k / N, n = k % N;
        float v = el * Hc[k];
        for (int j = 0; j < Lc; j++) {
          const long long bt = (long long)b * T + t0 + j;
          v += expf(cs[Lc - 1] - cs[j]) * dtv[j] * x[(bt * H + h) * P + p] * Bm[(bt * G + g) * N + n];
        }
        Hn[k] = v;
      }
    }
    __syncthreads();
  }
}

extern "C" __global__ void ssd_forward(float* y, float* states, const float* x, const float* dtRaw, const float* aLog, const float* dtBias, const float* D,
                                       const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N, int L) {
  ssd_forward_impl<false>(y, states, x, dtRaw, aLog, dtBias, D, Bm, Cm, B, T, H, P, G, N, L, nullptr);
}

/**
 * ssd_forward_staged(same arguments as ssd_forward): the chunk's C·Bᵀ Gram from rows copied into
 *   shared memory (chunk_gram_staged: coalesced loads instead of a thread per (i, j) walking two rows
 *   of global memory), and the (i, p) loop's reads of the chunk's entering state from a padded copy
 *   there too; every sum in the same order: the same bits. Dynamic shared max(2·64, P)·(N + 1)·4 B
 *   (the host opts in above 48 KB).
 */
extern "C" __global__ void ssd_forward_staged(float* y, float* states, const float* x, const float* dtRaw, const float* aLog, const float* dtBias, const float* D,
                                              const float* Bm, const float* Cm, int B, int T, int H, int P, int G, int N, int L) {
  SSD_DYNAMIC_SHARED(ssd_R);
  ssd_forward_impl<true>(y, states, x, dtRaw, aLog, dtBias, D, Bm, Cm, B, T, H, P, G, N, L, ssd_R);
}

/**
 * ssd_backward(float* dx, float* ddtRaw, float* dBh, float* dCh, double* hpart, float* dH, const float* dy, const float* x, const float* dtRaw,
 *              const float* aLog, const float* dtBias, const float* D, const float* Bm, const float* Cm, const float* states,
 *              int B, int T, int H, int P, int G, int N, int L)
 *   dx (B,T,H,P), ddtRaw (B,T,H) overwritten; dBh, dCh (B,T,H,N): per-head parts of dB, dC (ssd_reduce_bc sums a group's);
 *   hpart (B,H,3) double: Σ over the sequence of dL/da, dL/dD, dL/d dtBias (ssd_reduce_params); dH (B,H,P,N) scratch, zeroed here.
 *   grid (H, B); block 256; dynamic shared (2·64·64 + 3·L·P)·4 B (static 1.4 KB).
 */
template <bool STAGED>
__device__ __forceinline__ void ssd_backward_impl(float* dx, float* ddtRaw, float* dBh, float* dCh, double* hpart, float* dH, const float* dy, const float* x,
                                                  const float* dtRaw, const float* aLog, const float* dtBias, const float* D, const float* Bm, const float* Cm,
                                                  const float* states, int B, int T, int H, int P, int G, int N, int L) {
  __shared__ float cs[SSD_LMAX], dtv[SSD_LMAX], ddtu[SSD_LMAX], dcs[SSD_LMAX], stj[SSD_LMAX], red[32];
  SSD_DYNAMIC_SHARED(dyn);
  float* CB = dyn;                                  // (64, 64): C_i·B_j
  float* dG = dyn + SSD_LMAX * SSD_LMAX;            // (64, 64): (dy_i·u_j)·exp(cs_i − cs_j)
  float* duX = dyn + 2 * SSD_LMAX * SSD_LMAX;       // (L, P): du·x, for ddt
  float* cX = duX + L * P;                          // (L, P): the inter-chunk output's dcs terms
  float* sX = duX + 2 * L * P;                      // (L, P): the chunk state's dcs terms
  float* R = duX + 3 * L * P;                       // STAGED: rows copied for coalesced reads (C and B, then dy and x, then Hc and dH)
  const int h = blockIdx.x, b = blockIdx.y, g = h / (H / G), nC = (T + L - 1) / L, PN = P * N;
  const float a = -expf(aLog[h]), Dh = D[h], bias = dtBias[h];
  float* dS = dH + ((long long)b * H + h) * PN;
  for (int k = threadIdx.x; k < PN; k += blockDim.x) dS[k] = 0.0f;
  double da = 0.0, dBias = 0.0;
  float dDacc = 0.0f;
  __syncthreads();
  for (int c = nC - 1; c >= 0; c--) {
    const int t0 = c * L, Lc = min(L, T - t0), last = Lc - 1;
    const float* Hc = states + (((long long)b * nC + c) * H + h) * PN;
    chunk_decays(dtv, cs, dtRaw, bias, a, b, t0, Lc, T, H, h);
    float *Dys = nullptr, *Xs = nullptr;
    if (STAGED) {
      chunk_gram_staged(CB, R, Bm, Cm, b, t0, Lc, T, G, N, g);
      __syncthreads();  // the Gram's reads of R are done
      Dys = R;
      Xs = R + Lc * (P + 1);
      stage_rows(Dys, Xs, dy, x, (long long)b * T + t0, Lc, H, h, P);
      __syncthreads();
    } else {
      chunk_gram(CB, Bm, Cm, b, t0, Lc, T, G, N, g);
    }
    // dG[i][j] = (dy_i·u_j)·exp(cs_i − cs_j), u_j = dt_j·x_j
    for (int idx = threadIdx.x; idx < Lc * Lc; idx += blockDim.x) {
      const int i = idx / Lc, j = idx % Lc;
      if (j > i) continue;
      const float* dyi = STAGED ? Dys + i * (P + 1) : dy + (((long long)b * T + t0 + i) * H + h) * P;
      const float* xj = STAGED ? Xs + j * (P + 1) : x + (((long long)b * T + t0 + j) * H + h) * P;
      float s = 0.0f;
      for (int p = 0; p < P; p++) s += dyi[p] * xj[p];
      dG[i * SSD_LMAX + j] = s * dtv[j] * expf(cs[i] - cs[j]);
    }
    __syncthreads();
    // STAGED: the chunk's state and dL/dstate, (P, N) rows padded to N + 1, for the (j, p) loop below (R's dy and x are read)
    const float* Hr = Hc;
    const float* Sr = dS;
    int ld = N;
    if (STAGED) {
      float* Hs = R;
      float* Ss = R + P * (N + 1);
      for (int k = threadIdx.x; k < PN; k += blockDim.x) {
        const int p = k / N, n = k % N;
        Hs[p * (N + 1) + n] = Hc[k];
        Ss[p * (N + 1) + n] = dS[k];
      }
      Hr = Hs;
      Sr = Ss;
      ld = N + 1;
    }
    // per (i, n): dC_i (intra + inter-chunk output) and dB_i (intra + chunk state) of this head
    const float el = expf(cs[last]);
    for (int idx = threadIdx.x; idx < Lc * N; idx += blockDim.x) {
      const int i = idx / N, n = idx % N;
      const long long bt = (long long)b * T + t0 + i;
      const float* dyi = dy + (bt * H + h) * P;
      const float* xi = x + (bt * H + h) * P;
      float sc = 0.0f, sb = 0.0f, hy = 0.0f, su = 0.0f;
      for (int j = 0; j <= i; j++) sc += dG[i * SSD_LMAX + j] * Bm[(((long long)b * T + t0 + j) * G + g) * N + n];
      for (int k = i; k < Lc; k++) sb += dG[k * SSD_LMAX + i] * Cm[(((long long)b * T + t0 + k) * G + g) * N + n];
      for (int p = 0; p < P; p++) {
        hy += dyi[p] * Hc[p * N + n];
        su += dS[p * N + n] * xi[p];
      }
      dCh[(bt * H + h) * N + n] = sc + (c > 0 ? expf(cs[i]) * hy : 0.0f);
      dBh[(bt * H + h) * N + n] = sb + expf(cs[last] - cs[i]) * dtv[i] * su;
    }
    if (STAGED) __syncthreads();  // the staged Hc and dL/dstate are written
    // per (j, p): du_j, dx_j, and the dcs terms
    for (int idx = threadIdx.x; idx < Lc * P; idx += blockDim.x) {
      const int j = idx / P, p = idx % P;
      const long long bt = (long long)b * T + t0 + j, xo = (bt * H + h) * P + p;
      const float* bj = Bm + (bt * G + g) * N;
      const float* cj = Cm + (bt * G + g) * N;
      float du = 0.0f;
      for (int i = j; i < Lc; i++) du += CB[i * SSD_LMAX + j] * expf(cs[i] - cs[j]) * dy[(((long long)b * T + t0 + i) * H + h) * P + p];
      float sdb = 0.0f, sch = 0.0f;
      for (int n = 0; n < N; n++) {
        sdb += Sr[p * ld + n] * bj[n];
        sch += cj[n] * Hr[p * ld + n];
      }
      const float e = expf(cs[last] - cs[j]), xv = x[xo], dyv = dy[xo];
      du += e * sdb;
      dx[xo] = du * dtv[j] + Dh * dyv;
      dDacc += dyv * xv;
      duX[j * P + p] = du * xv;
      cX[j * P + p] = c > 0 ? expf(cs[j]) * dyv * sch : 0.0f;
      sX[j * P + p] = e * dtv[j] * xv * sdb;
    }
    // ⟨dS, Hc⟩ for the chunk decay's term of dcs_last
    float hd = 0.0f;
    for (int k = threadIdx.x; k < PN; k += blockDim.x) hd += dS[k] * Hc[k];
    hd = block_sum(hd, red);
    __syncthreads();
    for (int j = threadIdx.x; j < Lc; j += blockDim.x) {
      float su = 0.0f, sc = 0.0f, ss = 0.0f, intra = 0.0f;
      for (int p = 0; p < P; p++) {
        su += duX[j * P + p];
        sc += cX[j * P + p];
        ss += sX[j * P + p];
      }
      for (int k = 0; k < j; k++) intra += dG[j * SSD_LMAX + k] * CB[j * SSD_LMAX + k];
      for (int i = j + 1; i < Lc; i++) intra -= dG[i * SSD_LMAX + j] * CB[i * SSD_LMAX + j];
      ddtu[j] = su;
      dcs[j] = sc - ss + intra;
      stj[j] = ss;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float extra = el * hd;
      for (int j = 0; j < Lc; j++) extra += stj[j];
      dcs[last] += extra;
      float rc = 0.0f;
      for (int m = last; m >= 0; m--) {
        rc += dcs[m];
        const long long bt = (long long)b * T + t0 + m;
        const float ddt = rc * a + ddtu[m];
        da += (double)(rc * dtv[m]);
        const float gr = ddt * sigmoid_f32(dtRaw[bt * H + h] + bias);
        ddtRaw[bt * H + h] = gr;
        dBias += (double)gr;
      }
    }
    // dL/dstate entering this chunk = Σ_i exp(cs_i) dy_i ⊗ C_i + exp(cs_last)·dS (each (p, n) by its owner thread)
    for (int k = threadIdx.x; k < PN; k += blockDim.x) {
      const int p = k / N, n = k % N;
      float v = el * dS[k];
      for (int i = 0; i < Lc; i++) {
        const long long bt = (long long)b * T + t0 + i;
        v += expf(cs[i]) * dy[(bt * H + h) * P + p] * Cm[(bt * G + g) * N + n];
      }
      dS[k] = v;
    }
    __syncthreads();
  }
  const float dDsum = block_sum(dDacc, red);
  if (threadIdx.x == 0) {
    double* o = hpart + ((long long)b * H + h) * 3;
    o[0] = da * (double)a;
    o[1] = (double)dDsum;
    o[2] = dBias;
  }
}

extern "C" __global__ void ssd_backward(float* dx, float* ddtRaw, float* dBh, float* dCh, double* hpart, float* dH, const float* dy, const float* x,
                                        const float* dtRaw, const float* aLog, const float* dtBias, const float* D, const float* Bm, const float* Cm,
                                        const float* states, int B, int T, int H, int P, int G, int N, int L) {
  ssd_backward_impl<false>(dx, ddtRaw, dBh, dCh, hpart, dH, dy, x, dtRaw, aLog, dtBias, D, Bm, Cm, states, B, T, H, P, G, N, L);
}

/**
 * ssd_backward_staged(same arguments as ssd_backward): the chunk's C·Bᵀ Gram, the dy·xᵀ Gram and the
 *   (j, p) loop's reads of the state and of dL/dstate from rows copied into shared memory (coalesced,
 *   padded), each sum in the same order: ssd_backward's bits. Dynamic shared memory: ssd_backward's,
 *   plus max(2·64·(N+1), 2·64·(P+1), 2·P·(N+1))·4 B.
 */
extern "C" __global__ void ssd_backward_staged(float* dx, float* ddtRaw, float* dBh, float* dCh, double* hpart, float* dH, const float* dy, const float* x,
                                               const float* dtRaw, const float* aLog, const float* dtBias, const float* D, const float* Bm, const float* Cm,
                                               const float* states, int B, int T, int H, int P, int G, int N, int L) {
  ssd_backward_impl<true>(dx, ddtRaw, dBh, dCh, hpart, dH, dy, x, dtRaw, aLog, dtBias, D, Bm, Cm, states, B, T, H, P, G, N, L);
}

/** ssd_reduce_bc(float* dB, float* dC, const float* dBh, const float* dCh, int BT, int H, int G, int N): dB[bt,g,n] = Σ_{h of g} dBh[bt,h,n], h ascending. grid-stride over BT·G·N. */
extern "C" __global__ void ssd_reduce_bc(float* dB, float* dC, const float* dBh, const float* dCh, int BT, int H, int G, int N) {
  const long long n = (long long)BT * G * N;
  const int hpg = H / G;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int k = (int)(i % N);
    const long long r = i / N;
    const int g = (int)(r % G);
    const long long bt = r / G;
    float sb = 0.0f, sc = 0.0f;
    for (int h = g * hpg; h < (g + 1) * hpg; h++) {
      sb += dBh[(bt * H + h) * N + k];
      sc += dCh[(bt * H + h) * N + k];
    }
    dB[i] = sb;
    dC[i] = sc;
  }
}

/** ssd_reduce_params(float* daLog, float* dD, float* ddtBias, const double* hpart, int B, int H): += Σ_b hpart[b,h,·], b ascending. grid ceil(H/256). */
extern "C" __global__ void ssd_reduce_params(float* daLog, float* dD, float* ddtBias, const double* hpart, int B, int H) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= H) return;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0;
  for (int b = 0; b < B; b++) {
    const double* o = hpart + ((long long)b * H + h) * 3;
    s0 += o[0];
    s1 += o[1];
    s2 += o[2];
  }
  daLog[h] += (float)s0;
  dD[h] += (float)s1;
  ddtBias[h] += (float)s2;
}
