/**
 * Elementwise kernels: squared ReLU (twin of backends/cpu/ops/sqrelu.ts), the residual add and
 * accumulate (twin of residual.ts), the QKV column split and its inverse (CpuBackend's
 * splitColumns / concatColumns), scale and fill. One thread per element, grid-stride loops, 64-bit
 * element counts (logits reach B·T·V > 2³¹). Each element is read before it is written by the
 * same thread, so outputs may alias inputs wherever the oracle allows it. The `_v4` kernels do the
 * same per-element arithmetic four elements per thread (16-byte loads and stores, a scalar tail
 * when n is not a multiple of 4; pointers 16-byte aligned, which the host checks): same bits.
 * The `_bf16` kernels are the `_v4` ones that also write the next GEMM's BF16 operand of their
 * output and its non-finite check (bf16-out.cuh), so no cast reads the output again.
 */
#include "ops-common.cuh"
#include "bf16-out.cuh"

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// NaN propagates (as torch.relu does): a NaN pre-activation must reach the non-finite checks, not turn into 0
__device__ __forceinline__ float sqrelu_f(float v) { return v > 0.0f ? v * v : (v != v ? v : 0.0f); }
__device__ __forceinline__ float sqrelu_grad_f(float v, float d) { return v > 0.0f ? 2.0f * v * d : (v != v ? v : 0.0f); }

template <typename T>
__device__ __forceinline__ void sqrelu_forward_impl(T* out, const T* x, long long n) {
  GRID_STRIDE(i, n) {
    const float v = act_load(x + i);
    act_store(out + i, sqrelu_f(v));
  }
}

template <typename T>
__device__ __forceinline__ void sqrelu_backward_impl(T* dx, const T* dout, const T* x, long long n) {
  GRID_STRIDE(i, n) {
    const float v = act_load(x + i);
    act_store(dx + i, sqrelu_grad_f(v, act_load(dout + i)));
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

/** Grid-stride over groups of 4 elements: i is the group's first index; full groups load float4, the last partial group goes element by element. */
#define GRID_STRIDE_V4(i, n) for (long long i = 4 * ((long long)blockIdx.x * blockDim.x + threadIdx.x); i < (n); i += 4 * (long long)gridDim.x * blockDim.x)
#define LD4(p, i) (*reinterpret_cast<const float4*>((p) + (i)))
#define ST4(p, i, v) (*reinterpret_cast<float4*>((p) + (i)) = (v))

/**
 * sqrelu_forward_v4, sqrelu_backward_v4, add_v4, accumulate_v4: as sqrelu_forward, sqrelu_backward,
 * add, accumulate (same arguments, same aliasing rules, same bits). grid: ceil(n / 1024) (may be
 * capped: grid-stride), block 256, shared none; every pointer 16-byte aligned.
 */
extern "C" __global__ void sqrelu_forward_v4(float* out, const float* x, long long n) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 v = LD4(x, i);
      ST4(out, i, make_float4(sqrelu_f(v.x), sqrelu_f(v.y), sqrelu_f(v.z), sqrelu_f(v.w)));
    } else {
      for (long long j = i; j < n; j++) out[j] = sqrelu_f(x[j]);
    }
  }
}

extern "C" __global__ void sqrelu_backward_v4(float* dx, const float* dout, const float* x, long long n) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 v = LD4(x, i), d = LD4(dout, i);
      ST4(dx, i, make_float4(sqrelu_grad_f(v.x, d.x), sqrelu_grad_f(v.y, d.y), sqrelu_grad_f(v.z, d.z), sqrelu_grad_f(v.w, d.w)));
    } else {
      for (long long j = i; j < n; j++) dx[j] = sqrelu_grad_f(x[j], dout[j]);
    }
  }
}

extern "C" __global__ void add_v4(float* out, const float* a, const float* b, long long n) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 u = LD4(a, i), v = LD4(b, i);
      ST4(out, i, make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w));
    } else {
      for (long long j = i; j < n; j++) out[j] = a[j] + b[j];
    }
  }
}

extern "C" __global__ void accumulate_v4(float* dst, const float* src, long long n) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 u = LD4(dst, i), v = LD4(src, i);
      ST4(dst, i, make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w));
    } else {
      for (long long j = i; j < n; j++) dst[j] = dst[j] + src[j];
    }
  }
}

/**
 * sqrelu_forward_bf16(float* out, const float* x, long long n, unsigned short* out16, unsigned long long* bad)
 * sqrelu_backward_bf16(float* dx, const float* dout, const float* x, long long n, unsigned short* dx16, unsigned long long* bad)
 * add_bf16(float* out, const float* a, const float* b, long long n, unsigned short* out16, unsigned long long* bad)
 *   As the `_v4` kernels (same launch, aliasing and FP32 bits), plus out16 (n) = BF16 of the FP32
 *   output and its non-finite check into `bad`. out16 8-byte aligned. The squared-ReLU ones take a
 *   null out / dx: only the operand is written (Operand.fp32Unused: the GEMM is its one reader).
 */
extern "C" __global__ void sqrelu_forward_bf16(float* out, const float* x, long long n, unsigned short* out16, unsigned long long* bad) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 v = LD4(x, i);
      const float4 y = make_float4(sqrelu_f(v.x), sqrelu_f(v.y), sqrelu_f(v.z), sqrelu_f(v.w));
      if (out) ST4(out, i, y);
      bf16_out4(out16, bad, i, y);
    } else {
      for (long long j = i; j < n; j++) {
        const float y = sqrelu_f(x[j]);
        if (out) out[j] = y;
        bf16_out1(out16, bad, j, y);
      }
    }
  }
}

extern "C" __global__ void sqrelu_backward_bf16(float* dx, const float* dout, const float* x, long long n, unsigned short* dx16, unsigned long long* bad) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 v = LD4(x, i), d = LD4(dout, i);
      const float4 y = make_float4(sqrelu_grad_f(v.x, d.x), sqrelu_grad_f(v.y, d.y), sqrelu_grad_f(v.z, d.z), sqrelu_grad_f(v.w, d.w));
      if (dx) ST4(dx, i, y);
      bf16_out4(dx16, bad, i, y);
    } else {
      for (long long j = i; j < n; j++) {
        const float y = sqrelu_grad_f(x[j], dout[j]);
        if (dx) dx[j] = y;
        bf16_out1(dx16, bad, j, y);
      }
    }
  }
}

extern "C" __global__ void add_bf16(float* out, const float* a, const float* b, long long n, unsigned short* out16, unsigned long long* bad) {
  GRID_STRIDE_V4(i, n) {
    if (i + 3 < n) {
      const float4 u = LD4(a, i), v = LD4(b, i);
      const float4 y = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
      ST4(out, i, y);
      bf16_out4(out16, bad, i, y);
    } else {
      for (long long j = i; j < n; j++) {
        const float y = a[j] + b[j];
        out[j] = y;
        bf16_out1(out16, bad, j, y);
      }
    }
  }
}
