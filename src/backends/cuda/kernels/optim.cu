/**
 * Optimizer kernels: the AdamW update (twin of src/optim/adamw.ts's adamwUpdate; Loshchilov &
 * Hutter 2019, arXiv 1711.05101), the sum of squares of a gradient for global-norm clipping, and
 * a non-finite check. FP32 master weights and moments; per-element arithmetic is fp32 (the oracle
 * uses double and rounds on store: tests compare within tolerance). The bias corrections are
 * computed on the host in double and passed rounded to fp32, so every element sees the same ones.
 * Not included: ZeRO sharding, 8-bit moments.
 *
 * Sum of squares, deterministic in two levels: sum_squares_partials writes one fp32 partial per
 * block (fp32 per-thread sums, fixed-order block tree), sum_squares_final adds the partials in
 * float64 into one double on the device, optionally accumulating, so the host can run every
 * parameter's gradient through it and read a single 8-byte total once per step.
 *
 * Multi-tensor versions (one launch for every parameter of the model): a device table of MtTensor
 * rows (pointers, size, weight decay, first block) that the host builds once per parameter list;
 * block b finds its tensor by binary search over first_block and takes chunk b − first_block of
 * MT_CHUNK elements, 16-byte loads and stores (pointers 16-byte aligned; a size that is not a
 * multiple of 4 ends in a scalar tail). adamw_update_multi does per element exactly what
 * adamw_update does (the same adamw_elem), so the two give the same bits. sum_squares_chunks +
 * sum_squares_segments give each tensor's Σg² (fp32 per thread over 32 elements, fp32 block tree,
 * then the tensor's chunk partials in float64, ascending): another order than the per-tensor pair,
 * same fixed-by-shape determinism.
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
/** One element of the update: p, m, v in place; omb = 1 − β (fp32). Shared by both AdamW kernels. */
__device__ __forceinline__ void adamw_elem(float& p, float gr, float& m, float& v, float lr, float beta1, float beta2, float omb1, float omb2, float eps,
                                           float weight_decay, float bc1, float bc2, float grad_scale) {
  const float g = gr * grad_scale;
  const float mi = beta1 * m + omb1 * g;
  const float vi = beta2 * v + omb2 * g * g;
  m = mi;
  v = vi;
  p = p - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * p);
}

extern "C" __global__ void adamw_update(float* param, const float* grad, float* m, float* v, long long n, float lr, float beta1, float beta2, float eps,
                                        float weight_decay, float bc1, float bc2, float grad_scale) {
  const float omb1 = 1.0f - beta1, omb2 = 1.0f - beta2;
  GRID_STRIDE(i, n) {
    float p = param[i], mi = m[i], vi = v[i];
    adamw_elem(p, grad[i], mi, vi, lr, beta1, beta2, omb1, omb2, eps, weight_decay, bc1, bc2, grad_scale);
    m[i] = mi;
    v[i] = vi;
    param[i] = p;
  }
}

#define MT_CHUNK 8192  // elements per block of the multi-tensor kernels (256 threads × 4 × 8)

/** One row of the multi-tensor table (48 bytes; the host writes it with this layout). */
struct MtTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  long long n;
  float wd;
  int first_block;  // blocks [first_block, next row's first_block) belong to this tensor
};

/** The row whose blocks include block b (rows sorted by first_block, row 0 starts at 0). */
__device__ __forceinline__ int mt_find(const MtTensor* table, int count, int b) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (table[mid].first_block <= b) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * adamw_update_multi(const MtTensor* table, int count, float lr, float beta1, float beta2, float eps,
 *                    float bc1, float bc2, float grad_scale)
 *   adamw_update on every row of the table (weight decay per row). grid: the table's total blocks,
 *   Σ ceil(n_i / 8192); block: 256; shared: none. Pointers 16-byte aligned.
 */
extern "C" __global__ void adamw_update_multi(const MtTensor* table, int count, float lr, float beta1, float beta2, float eps, float bc1, float bc2, float grad_scale) {
  const MtTensor t = table[mt_find(table, count, blockIdx.x)];
  const float omb1 = 1.0f - beta1, omb2 = 1.0f - beta2;
  const long long start = (long long)(blockIdx.x - t.first_block) * MT_CHUNK, end = min(t.n, start + MT_CHUNK);
  for (long long i = start + 4 * threadIdx.x; i < end; i += 4 * blockDim.x) {
    if (i + 3 < end) {
      float4 p = *reinterpret_cast<const float4*>(t.p + i), m = *reinterpret_cast<const float4*>(t.m + i), v = *reinterpret_cast<const float4*>(t.v + i);
      const float4 g = *reinterpret_cast<const float4*>(t.g + i);
      adamw_elem(p.x, g.x, m.x, v.x, lr, beta1, beta2, omb1, omb2, eps, t.wd, bc1, bc2, grad_scale);
      adamw_elem(p.y, g.y, m.y, v.y, lr, beta1, beta2, omb1, omb2, eps, t.wd, bc1, bc2, grad_scale);
      adamw_elem(p.z, g.z, m.z, v.z, lr, beta1, beta2, omb1, omb2, eps, t.wd, bc1, bc2, grad_scale);
      adamw_elem(p.w, g.w, m.w, v.w, lr, beta1, beta2, omb1, omb2, eps, t.wd, bc1, bc2, grad_scale);
      *reinterpret_cast<float4*>(t.m + i) = m;
      *reinterpret_cast<float4*>(t.v + i) = v;
      *reinterpret_cast<float4*>(t.p + i) = p;
    } else {
      for (long long j = i; j < end; j++) adamw_elem(t.p[j], t.g[j], t.m[j], t.v[j], lr, beta1, beta2, omb1, omb2, eps, t.wd, bc1, bc2, grad_scale);
    }
  }
}

/**
 * zero_chunks(const MtTensor* table, int count)
 *   Block b zeroes its chunk of its row's p (the host puts each tensor in p and g; g gives the size's
 *   rows as everywhere; Optimizer.zeroGrad: every gradient in one launch instead of a memset per
 *   parameter). grid, block: as adamw_update_multi; shared: none.
 */
extern "C" __global__ void zero_chunks(const MtTensor* table, int count) {
  const MtTensor t = table[mt_find(table, count, blockIdx.x)];
  const long long start = (long long)(blockIdx.x - t.first_block) * MT_CHUNK, end = min(t.n, start + MT_CHUNK);
  for (long long i = start + 4 * threadIdx.x; i < end; i += 4 * blockDim.x) {
    if (i + 3 < end) *reinterpret_cast<float4*>(t.p + i) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    else
      for (long long j = i; j < end; j++) t.p[j] = 0.0f;
  }
}

/**
 * sum_squares_chunks(float* partials, const MtTensor* table, int count)
 *   partials[b] = Σ g² over block b's chunk of its row's g (fp32). grid, block: as adamw_update_multi;
 *   shared: 128 bytes static. Scratch: partials, one float per block.
 */
extern "C" __global__ void sum_squares_chunks(float* partials, const MtTensor* table, int count) {
  __shared__ float red[32];
  const MtTensor t = table[mt_find(table, count, blockIdx.x)];
  const long long start = (long long)(blockIdx.x - t.first_block) * MT_CHUNK, end = min(t.n, start + MT_CHUNK);
  float s = 0.0f;
  for (long long i = start + 4 * threadIdx.x; i < end; i += 4 * blockDim.x) {
    if (i + 3 < end) {
      const float4 g = *reinterpret_cast<const float4*>(t.g + i);
      s += g.x * g.x;
      s += g.y * g.y;
      s += g.z * g.z;
      s += g.w * g.w;
    } else {
      for (long long j = i; j < end; j++) s += t.g[j] * t.g[j];
    }
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/**
 * sum_squares_segments(double* totals, const float* partials, const MtTensor* table, int count, int blocks)
 *   totals[i] = Σ of row i's chunk partials in float64 (OVERWRITTEN). grid: count; block: 256;
 *   shared: 256 bytes static. `blocks` is the table's total.
 */
extern "C" __global__ void sum_squares_segments(double* totals, const float* partials, const MtTensor* table, int count, int blocks) {
  __shared__ double red[32];
  const int i = blockIdx.x;
  const int b0 = table[i].first_block, b1 = i + 1 < count ? table[i + 1].first_block : blocks;
  double s = 0.0;
  for (int b = b0 + threadIdx.x; b < b1; b += blockDim.x) s += (double)partials[b];
  s = block_sum_f64(s, red);
  if (threadIdx.x == 0) totals[i] = s;
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
