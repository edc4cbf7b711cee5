/**
 * Optimizer kernels: the AdamW update (twin of src/optim/adamw.ts's adamwUpdate; Loshchilov &
 * Hutter 2019, arXiv 1711.05101), the sum of squares of a gradient for global-norm clipping, and
 * a non-finite check. FP32 master weights and moments; per-element arithmetic is fp32 (the oracle
 * uses double and rounds on store: tests compare within tolerance). The bias corrections are
 * computed on the host in double and passed rounded to fp32, so every element sees the same ones.
 * Not included: fused multi-tensor launches, ZeRO sharding, 8-bit moments.
 *
 * Sum of squares, deterministic in two levels: sum_squares_partials writes one fp32 partial per
 * block (fp32 per-thread sums, fixed-order block tree), sum_squares_final adds the partials in
 * float64 into one double on the device, optionally accumulating, so the host can run every
 * parameter's gradient through it and read a single 8-byte total once per step.
 */
#include "ops-common.cuh"

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

/**
 * adamw_update(float* param, const float* grad, float* m, float* v, long long n, float lr,
 *              float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2,
 *              float grad_scale)
 *   Per element: g = grad·grad_scale; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
 *   param −= lr·((m/bc1) / (sqrt(v/bc2) + eps) + wd·param). bc1 = 1 − β1^t, bc2 = 1 − β2^t
 *   (t 1-based), wd = 0 for parameters without decay. grad is not modified.
 *   grid: ceil(n / 256) (may be capped: grid-stride); block: 256; shared: none.
 */
extern "C" __global__ void adamw_update(float* param, const float* grad, float* m, float* v, long long n, float lr, float beta1, float beta2, float eps,
                                        float weight_decay, float bc1, float bc2, float grad_scale) {
  const float omb1 = 1.0f - beta1, omb2 = 1.0f - beta2;
  GRID_STRIDE(i, n) {
    const float g = grad[i] * grad_scale;
    const float mi = beta1 * m[i] + omb1 * g;
    const float vi = beta2 * v[i] + omb2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float p = param[i];
    param[i] = p - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * p);
  }
}

/**
 * sum_squares_partials(float* partials, const float* g, long long n)
 *   partials[b] = Σ g² over the elements block b visits (grid-stride), fp32.
 *   grid: P (host's choice, a function of n alone, e.g. min(ceil(n/256), 1024) — the bits depend
 *   on P); block: 256; shared: 128 bytes static. Scratch the host allocates: partials, P floats.
 */
extern "C" __global__ void sum_squares_partials(float* partials, const float* g, long long n) {
  __shared__ float red[32];
  float s = 0.0f;
  GRID_STRIDE(i, n) {
    const float x = g[i];
    s += x * x;
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/**
 * sum_squares_final(double* total, const float* partials, int P, int accumulate)
 *   *total = (accumulate ? *total : 0) + Σ_b partials[b], in float64.
 *   grid: 1; block: 256; shared: 256 bytes static.
 */
extern "C" __global__ void sum_squares_final(double* total, const float* partials, int P, int accumulate) {
  __shared__ double red[32];
  double s = 0.0;
  for (int b = threadIdx.x; b < P; b += blockDim.x) s += (double)partials[b];
  s = block_sum_f64(s, red);
  if (threadIdx.x == 0) *total = (accumulate ? *total : 0.0) + s;
}

/**
 * nonfinite_check(unsigned long long* first_bad, const float* x, long long n)
 *   *first_bad = min(*first_bad, index of each NaN or ±Inf in x); the host sets it to
 *   0xffffffffffffffff before and reads it after (unchanged: all finite). Deterministic result.
 *   grid: ceil(n / 256) (may be capped); block: 256; shared: none.
 */
extern "C" __global__ void nonfinite_check(unsigned long long* first_bad, const float* x, long long n) {
  GRID_STRIDE(i, n) {
    if (!is_finite_f32(x[i])) atomicMin(first_bad, (unsigned long long)i);
  }
}
