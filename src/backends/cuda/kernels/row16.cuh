/**
 * The fast quantizers' 16-value row load (quantize-fast.cu, quantize-fp8-fast.cu): one thread reads
 * a 16-element block of a quantized row as four 16-byte loads, and, where the tensor is checked,
 * notes each NaN/±Inf at its flat index (nonfinite.cuh).
 */
#pragma once
#include "nonfinite.cuh"

/** 16 consecutive fp32 values at p (16-byte aligned), or zeros when !valid. */
__device__ __forceinline__ void load_row16(const float* __restrict__ p, bool valid, float v[16]) {
#pragma unroll
  for (int k = 0; k < 4; k++) {
    const float4 q = valid ? reinterpret_cast<const float4*>(p)[k] : make_float4(0.f, 0.f, 0.f, 0.f);
    v[4 * k] = q.x; v[4 * k + 1] = q.y; v[4 * k + 2] = q.z; v[4 * k + 3] = q.w;
  }
}

/** load_row16 of x[e0 .. e0 + 15] (zeros when !valid), each non-finite value noted in `bad` at its index. */
__device__ __forceinline__ void load_row16_checked(const float* __restrict__ x, long long e0, bool valid, float v[16], unsigned long long* bad) {
  load_row16(x + (valid ? e0 : 0), valid, v);
  if (valid) {
#pragma unroll
    for (int i = 0; i < 16; i++) note_nonfinite(bad, e0 + i, v[i]);
  }
}
