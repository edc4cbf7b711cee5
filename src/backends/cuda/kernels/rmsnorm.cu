/**
 * RMSNorm forward and backward on the GPU: the twin of backends/cpu/ops/rmsnorm.ts (the oracle).
 * out = x · rstd · weight, rstd = 1 / sqrt(mean(x²) + eps) per row (Hugging Face LlamaRMSNorm;
 * Zhang & Sennrich 2019, arXiv 1910.07467). Row sums are fp32 (fixed-order warp/block trees);
 * dweight's sum over rows is float64, like the oracle's, because it runs over B·T rows and
 * cancels. rmsnorm_forward_bf16 also writes the next GEMM's BF16 operand of out (bf16-out.cuh).
 * Activations are a template type T (float now, bf16 later); weight, rstd, dweight stay fp32.
 *
 * Gradient convention (backend.ts): dx is OVERWRITTEN, dweight is ACCUMULATED (+=). dweight is
 * made in two deterministic passes: rmsnorm_backward writes one float64 partial row per block,
 * rmsnorm_dweight_reduce adds the partials in block order and then adds the total to dweight.
 */
#include "ops-common.cuh"
#include "bf16-out.cuh"

template <typename T>
__device__ __forceinline__ void rmsnorm_forward_impl(T* out, float* rstd, const T* x, const float* weight, int N, int C, float eps, unsigned short* out16 = nullptr,
                                                     unsigned long long* bad = nullptr) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warp leaves together
  const T* xr = x + (long long)row * C;
  T* outr = out + (long long)row * C;
  float ss = 0.0f;
  for (int i = lane; i < C; i += 32) {
    const float v = act_load(xr + i);
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / (float)C + eps);
  if (lane == 0) rstd[row] = r;
  // Each lane rereads exactly the elements it writes, so out may alias x.
  for (int i = lane; i < C; i += 32) {
    const float v = act_load(xr + i) * r * weight[i];
    if (out != nullptr) act_store(outr + i, v);
    if (out16 != nullptr) bf16_out1(out16, bad, (long long)row * C + i, v);
  }
}

/**
 * rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int N, int C, float eps)
 *   out (N,C), rstd (N) ← x (N,C), weight (C). One warp per row.
 *   grid: ceil(N / (blockDim.x/32)); block: 256 (any multiple of 32 ≤ 1024); shared: none.
 *   out may alias x.
 */
extern "C" __global__ void rmsnorm_forward(float* out, float* rstd, const float* x, const float* weight, int N, int C, float eps) {
  rmsnorm_forward_impl<float>(out, rstd, x, weight, N, C, eps);
}

/**
 * rmsnorm_forward_bf16(float* out, float* rstd, const float* x, const float* weight, int N, int C, float eps,
 *                      unsigned short* out16, unsigned long long* bad)
 *   rmsnorm_forward (same launch, same out and rstd bits), and out16 (N,C) = BF16(out) with out's
 *   non-finite check into the slot `bad` (bf16-out.cuh): the next GEMM's operand without a cast.
 *   A null out writes only out16 and rstd (Operand.fp32Unused: the GEMM is out's one reader).
 */
extern "C" __global__ void rmsnorm_forward_bf16(float* out, float* rstd, const float* x, const float* weight, int N, int C, float eps, unsigned short* out16,
                                                unsigned long long* bad) {
  rmsnorm_forward_impl<float>(out, rstd, x, weight, N, C, eps, out16, bad);
}

/**
 * rmsnorm_forward_k<K>(same arguments as rmsnorm_forward), K = 8, 16, 24, 32 (C ≤ 32·K; the host
 * takes the smallest): the same warp per row, lane l owning elements l + 32·j, but the row's K values are loaded into registers at once (K
 * loads in flight per lane instead of a loop's few) and the output pass reads them from there instead
 * of reading x again. Σ x² runs in the same order (j = 0, 1, ... per lane, then warp_sum), so rstd
 * and out have rmsnorm_forward's bits. out may alias x. grid: ceil(N/8); block: 256. (No BF16 twin:
 * with rmsnorm_forward_bf16's stores added it took 91 registers and ran slower than that loop
 * kernel on the H200, 1.49 vs 0.90 ms per GPT-124M step.)
 */
template <int K>
__device__ __forceinline__ void rmsnorm_forward_regs_impl(float* out, float* rstd, const float* x, const float* weight, int N, int C, float eps) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warp leaves together
  const long long off = (long long)row * C;
  float v[K];
#pragma unroll
  for (int j = 0; j < K; j++) v[j] = 32 * j + lane < C ? x[off + 32 * j + lane] : 0.0f;
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < K; j++)
    if (32 * j + lane < C) ss += v[j] * v[j];
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / (float)C + eps);
  if (lane == 0) rstd[row] = r;
#pragma unroll
  for (int j = 0; j < K; j++) {
    const int i = 32 * j + lane;
    if (i < C) out[off + i] = v[j] * r * weight[i];
  }
}

#define RMSNORM_FORWARD_K(K) \
  extern "C" __global__ void __launch_bounds__(256) rmsnorm_forward_k##K(float* out, float* rstd, const float* x, const float* weight, int N, int C, float eps) { \
    rmsnorm_forward_regs_impl<K>(out, rstd, x, weight, N, C, eps); \
  }
RMSNORM_FORWARD_K(8)
RMSNORM_FORWARD_K(16)
RMSNORM_FORWARD_K(24)
RMSNORM_FORWARD_K(32)

template <typename T>
__device__ __forceinline__ void rmsnorm_backward_impl(T* dx, double* dweight_partial, const T* dout, const T* x, const float* weight, const float* rstd, int N, int C) {
  extern __shared__ double dw_sh[];  // (C): column c is owned by thread c % blockDim.x, so no races
  __shared__ float red[32];
  const int tid = threadIdx.x, nt = blockDim.x;
  const int rowsPerBlock = (N + gridDim.x - 1) / gridDim.x;
  const int r0 = blockIdx.x * rowsPerBlock;
  const int r1 = min(N, r0 + rowsPerBlock);
  for (int c = tid; c < C; c += nt) dw_sh[c] = 0.0;
  for (int row = r0; row < r1; row++) {  // uniform over the block: block_sum's barriers are safe
    const long long off = (long long)row * C;
    const float r = rstd[row];
    float dot = 0.0f;  // Σ dout·w·x
    for (int c = tid; c < C; c += nt) dot += act_load(dout + off + c) * weight[c] * act_load(x + off + c);
    dot = block_sum(dot, red);
    const float k = r * r * dot / (float)C;
    // Each thread reads and writes only its own columns, so dx may alias dout.
    for (int c = tid; c < C; c += nt) {
      const float g = act_load(dout + off + c), xi = act_load(x + off + c);
      dw_sh[c] += (double)g * (double)xi * (double)r;
      act_store(dx + off + c, r * (g * weight[c] - xi * k));
    }
  }
  double* part = dweight_partial + (long long)blockIdx.x * C;
  for (int c = tid; c < C; c += nt) part[c] = dw_sh[c];
}

/**
 * rmsnorm_backward(float* dx, double* dweight_partial, const float* dout, const float* x,
 *                  const float* weight, const float* rstd, int N, int C)
 *   dx (N,C) = rstd·(dout·w − x·rstd²·mean(dout·w·x))   (OVERWRITTEN)
 *   dweight_partial (gridDim.x, C) float64: row b = Σ over block b's rows of dout·x·rstd (OVERWRITTEN)
 *   Block b handles rows [b·R, min(N, (b+1)·R)), R = ceil(N / gridDim.x); a block with no rows
 *   writes zeros. grid: P blocks, the host's choice (e.g. min(N, 2·SMs)); keep P a function of
 *   (N, C) alone so results are reproducible. block: 256 (multiple of 32 ≤ 1024).
 *   shared (dynamic): C·8 bytes (C ≤ 6144 within the default 48 KB; more needs the opt-in attribute).
 *   Scratch the host allocates: dweight_partial, P·C float64. dx may alias dout.
 *   Follow with rmsnorm_dweight_reduce(dweight, dweight_partial, P, C).
 */
extern "C" __global__ void rmsnorm_backward(float* dx, double* dweight_partial, const float* dout, const float* x, const float* weight, const float* rstd, int N, int C) {
  rmsnorm_backward_impl<float>(dx, dweight_partial, dout, x, weight, rstd, N, C);
}

/**
 * rmsnorm_dweight_reduce(float* dweight, const double* dweight_partial, int P, int C)
 *   dweight (C) += Σ_{b<P} dweight_partial[b, c]: summed in float64 in order b = 0..P−1 and added
 *   to dweight in float64, rounded once to fp32 (as the oracle adds its float64 row sum).
 *   grid: ceil(C / 256); block: 256; shared: none.
 */
extern "C" __global__ void rmsnorm_dweight_reduce(float* dweight, const double* dweight_partial, int P, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double acc = 0.0;
  for (int b = 0; b < P; b++) acc += dweight_partial[(long long)b * C + c];
  dweight[c] = (float)((double)dweight[c] + acc);
}

/**
 * rmsnorm_backward_w<VPL>(same arguments as rmsnorm_backward), VPL = 1..8 float4 per lane:
 *   the same results computed one warp per row: lane l owns the float4 columns l, l+32, ... (C % 4
 *   == 0, C ≤ 128·VPL), keeps the row's dout and x in registers, reduces Σ dout·w·x with a warp
 *   butterfly (no block barriers per row) and accumulates its columns of dweight in float64
 *   registers over the warp's rows (rows r0 + warp, + 8, ...); the 8 warps' float64 partials are then
 *   added in warp order. Same per-element formulas as rmsnorm_backward; the fp32 dot and the
 *   float64 dweight sums run in another (fixed) order. grid: P (as rmsnorm_backward, the host's
 *   function of the shape); block: 256; shared: dynamic C·8 bytes. Pointers 16-byte aligned.
 */
template <int VPL>
__device__ __forceinline__ void rmsnorm_backward_warp_impl(float* dx, double* dweight_partial, const float* dout, const float* x, const float* weight, const float* rstd, int N, int C,
                                                           const float* res = nullptr, unsigned short* dx16 = nullptr, unsigned long long* bad = nullptr) {
  extern __shared__ double dw_sh[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5, C4 = C >> 2;
  const int rowsPerBlock = (N + gridDim.x - 1) / gridDim.x;
  const int r0 = blockIdx.x * rowsPerBlock, r1 = min(N, r0 + rowsPerBlock);
  double acc[VPL][4];
#pragma unroll
  for (int k = 0; k < VPL; k++) acc[k][0] = acc[k][1] = acc[k][2] = acc[k][3] = 0.0;
  for (int row = r0 + warp; row < r1; row += nwarps) {
    const long long off = (long long)row * C;
    const float r = rstd[row];
    float4 g[VPL], xv[VPL];
    float dot = 0.0f;
#pragma unroll
    for (int k = 0; k < VPL; k++) {
      const int c4 = lane + 32 * k;
      if (c4 < C4) {
        g[k] = *reinterpret_cast<const float4*>(dout + off + 4 * c4);
        xv[k] = *reinterpret_cast<const float4*>(x + off + 4 * c4);
        const float4 w = *reinterpret_cast<const float4*>(weight + 4 * c4);
        dot += g[k].x * w.x * xv[k].x;
        dot += g[k].y * w.y * xv[k].y;
        dot += g[k].z * w.z * xv[k].z;
        dot += g[k].w * w.w * xv[k].w;
      }
    }
    dot = warp_sum(dot);
    const float kk = r * r * dot / (float)C;
    const double rd = (double)r;
#pragma unroll
    for (int k = 0; k < VPL; k++) {
      const int c4 = lane + 32 * k;
      if (c4 < C4) {
        const float4 w = *reinterpret_cast<const float4*>(weight + 4 * c4);
        acc[k][0] += (double)g[k].x * (double)xv[k].x * rd;
        acc[k][1] += (double)g[k].y * (double)xv[k].y * rd;
        acc[k][2] += (double)g[k].z * (double)xv[k].z * rd;
        acc[k][3] += (double)g[k].w * (double)xv[k].w * rd;
        float4 o = make_float4(r * (g[k].x * w.x - xv[k].x * kk), r * (g[k].y * w.y - xv[k].y * kk), r * (g[k].z * w.z - xv[k].z * kk), r * (g[k].w * w.w - xv[k].w * kk));
        if (res != nullptr) {  // the residual connection's gradient added here: res + o, as add(out, res, o)
          const float4 q = *reinterpret_cast<const float4*>(res + off + 4 * c4);
          o = make_float4(q.x + o.x, q.y + o.y, q.z + o.z, q.w + o.w);
        }
        *reinterpret_cast<float4*>(dx + off + 4 * c4) = o;
        if (dx16 != nullptr) bf16_out4(dx16, bad, off + 4 * c4, o);
      }
    }
  }
  // warp partials into shared memory, warp 0 first, then 1, ...: a fixed order
  for (int w = 0; w < nwarps; w++) {
    if (warp == w) {
#pragma unroll
      for (int k = 0; k < VPL; k++) {
        const int c4 = lane + 32 * k;
        if (c4 < C4) {
#pragma unroll
          for (int e = 0; e < 4; e++) dw_sh[4 * c4 + e] = (w == 0 ? 0.0 : dw_sh[4 * c4 + e]) + acc[k][e];
        }
      }
    }
    __syncthreads();
  }
  double* part = dweight_partial + (long long)blockIdx.x * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) part[c] = dw_sh[c];
}

#define RMSNORM_BACKWARD_W(V) \
  extern "C" __global__ void __launch_bounds__(256) rmsnorm_backward_w##V(float* dx, double* dweight_partial, const float* dout, const float* x, const float* weight, \
                                                                          const float* rstd, int N, int C) { \
    rmsnorm_backward_warp_impl<V>(dx, dweight_partial, dout, x, weight, rstd, N, C); \
  }
RMSNORM_BACKWARD_W(1)
RMSNORM_BACKWARD_W(2)
RMSNORM_BACKWARD_W(3)
RMSNORM_BACKWARD_W(4)
RMSNORM_BACKWARD_W(5)
RMSNORM_BACKWARD_W(6)
RMSNORM_BACKWARD_W(7)
RMSNORM_BACKWARD_W(8)

/**
 * rmsnorm_backward_res_w<VPL>(float* dx, double* dweight_partial, const float* dout, const float* x, const float* weight,
 *                             const float* rstd, int N, int C, const float* res, unsigned short* dx16, unsigned long long* bad)
 *   rmsnorm_backward_w<VPL> with the residual connection's gradient added: dx = res + (the norm's dx),
 *   the bits of add(dx, res, that) (res may alias dx: each element is read before it is written;
 *   null res: nothing added), and dx16 = BF16(dx) with its non-finite check into `bad` (bf16-out.cuh;
 *   null dx16: none): the block's backward without its two add passes. Launch as rmsnorm_backward_w<VPL>.
 */
#define RMSNORM_BACKWARD_RES_W(V) \
  extern "C" __global__ void __launch_bounds__(256) rmsnorm_backward_res_w##V(float* dx, double* dweight_partial, const float* dout, const float* x, const float* weight, \
                                                                              const float* rstd, int N, int C, const float* res, unsigned short* dx16, \
                                                                              unsigned long long* bad) { \
    rmsnorm_backward_warp_impl<V>(dx, dweight_partial, dout, x, weight, rstd, N, C, res, dx16, bad); \
  }
RMSNORM_BACKWARD_RES_W(1)
RMSNORM_BACKWARD_RES_W(2)
RMSNORM_BACKWARD_RES_W(3)
RMSNORM_BACKWARD_RES_W(4)
RMSNORM_BACKWARD_RES_W(5)
RMSNORM_BACKWARD_RES_W(6)
RMSNORM_BACKWARD_RES_W(7)
RMSNORM_BACKWARD_RES_W(8)
