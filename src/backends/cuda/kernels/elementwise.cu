/**
 * Elementwise kernels: squared ReLU (twin of backends/cpu/ops/sqrelu.ts), the residual add and
 * accumulate (twin of residual.ts), the QKV column split and its inverse (CpuBackend's
 * splitColumns / concatColumns), scale and fill. One thread per element, grid-stride loops, 64-bit
 * element counts (logits reach B·T·V > 2³¹). Each element is read before it is written by the
 * same thread, so outputs may alias inputs wherever the oracle allows it. Not vectorised yet
 * (float4 loads are the obvious next step once shapes are known to be multiples of 4).
 */
#include "ops-common.cuh"

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

template <typename T>
__device__ __forceinline__ void sqrelu_forward_impl(T* out, const T* x, long long n) {
  GRID_STRIDE(i, n) {
    const float v = act_load(x + i);
    act_store(out + i, v > 0.0f ? v * v : 0.0f);
  }
}

template <typename T>
__device__ __forceinline__ void sqrelu_backward_impl(T* dx, const T* dout, const T* x, long long n) {
  GRID_STRIDE(i, n) {
    const float v = act_load(x + i);
    act_store(dx + i, v > 0.0f ? 2.0f * v * act_load(dout + i) : 0.0f);
  }
}

/**
 * sqrelu_forward(float* out, const float* x, long long n)
 *   out (n) = max(x, 0)². All launches in this file: grid ceil(n / 256) (may be capped: the loops
 *   are grid-stride), block 256, shared none. out may alias x.
 */
extern "C" __global__ void sqrelu_forward(float* out, const float* x, long long n) { sqrelu_forward_impl<float>(out, x, n); }

/**
 * sqrelu_backward(float* dx, const float* dout, const float* x, long long n)
 *   dx (n) = dout · 2·max(x, 0) (OVERWRITTEN); any argument may alias another.
 */
extern "C" __global__ void sqrelu_backward(float* dx, const float* dout, const float* x, long long n) { sqrelu_backward_impl<float>(dx, dout, x, n); }

/** add(float* out, const float* a, const float* b, long long n): out = a + b; out may alias a or b. */
extern "C" __global__ void add(float* out, const float* a, const float* b, long long n) {
  GRID_STRIDE(i, n) act_store(out + i, act_load(a + i) + act_load(b + i));
}

/** accumulate(float* dst, const float* src, long long n): dst += src. */
extern "C" __global__ void accumulate(float* dst, const float* src, long long n) {
  GRID_STRIDE(i, n) act_store(dst + i, act_load(dst + i) + act_load(src + i));
}

/** scale(float* x, float s, long long n): x *= s. */
extern "C" __global__ void scale(float* x, float s, long long n) {
  GRID_STRIDE(i, n) act_store(x + i, act_load(x + i) * s);
}

/** fill(float* x, float value, long long n): x = value. */
extern "C" __global__ void fill(float* x, float value, long long n) {
  GRID_STRIDE(i, n) act_store(x + i, value);
}

template <typename T>
__device__ __forceinline__ void split_columns_impl(const T* x, T* p0, T* p1, T* p2, int rows, int w0, int w1, int w2) {
  const int W = w0 + w1 + w2;
  GRID_STRIDE(i, (long long)rows * W) {
    const long long r = i / W;
    const int c = (int)(i - r * W);
    const T v = x[i];
    if (c < w0) p0[r * w0 + c] = v;
    else if (c < w0 + w1) p1[r * w1 + (c - w0)] = v;
    else p2[r * w2 + (c - w0 - w1)] = v;
  }
}

template <typename T>
__device__ __forceinline__ void concat_columns_impl(T* out, const T* p0, const T* p1, const T* p2, int rows, int w0, int w1, int w2) {
  const int W = w0 + w1 + w2;
  GRID_STRIDE(i, (long long)rows * W) {
    const long long r = i / W;
    const int c = (int)(i - r * W);
    if (c < w0) out[i] = p0[r * w0 + c];
    else if (c < w0 + w1) out[i] = p1[r * w1 + (c - w0)];
    else out[i] = p2[r * w2 + (c - w0 - w1)];
  }
}

/**
 * split_columns(const float* x, float* p0, float* p1, float* p2, int rows, int w0, int w1, int w2)
 *   x (rows, w0+w1+w2) → p0 (rows, w0), p1 (rows, w1), p2 (rows, w2): the QKV split. A part of
 *   width 0 is never touched (its pointer may be null), so two-way splits pass w2 = 0.
 *   grid-stride over rows·W elements of x (coalesced reads). Parts must not alias x.
 */
extern "C" __global__ void split_columns(const float* x, float* p0, float* p1, float* p2, int rows, int w0, int w1, int w2) {
  split_columns_impl<float>(x, p0, p1, p2, rows, w0, w1, w2);
}

/**
 * concat_columns(float* out, const float* p0, const float* p1, const float* p2, int rows, int w0, int w1, int w2)
 *   The inverse: out (rows, w0+w1+w2) ← p0 | p1 | p2 (dq | dk | dv). grid-stride over out.
 */
extern "C" __global__ void concat_columns(float* out, const float* p0, const float* p1, const float* p2, int rows, int w0, int w1, int w2) {
  concat_columns_impl<float>(out, p0, p1, p2, rows, w0, w1, w2);
}
