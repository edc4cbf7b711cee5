/**
 * Helpers shared by the non-GEMM op kernels (rmsnorm, rope, attention, elementwise, embedding,
 * cross-entropy, optim): fixed-order warp and block reductions, the activation storage type's
 * load/store, and a few constants NVRTC does not get from system headers. Not the quantizer's
 * helpers (those are in common.cuh). Everything here must compile under NVRTC with no host
 * headers, so no <cfloat>, <cstdint> or <cmath>.
 *
 * Determinism: every reduction here adds in an order fixed by the launch configuration alone
 * (xor butterflies inside a warp, then warp 0 over the per-warp results), so a kernel launched
 * with the same grid and block gives bit-identical results run after run. The xor butterfly
 * leaves the same bits in every lane (fp addition is commutative), so any lane may use the result.
 */
#pragma once

#define FP4LM_FULL_MASK 0xffffffffu
#define FP4LM_INT_MAX 0x7fffffff
#define FP4LM_ULL_MAX 0xffffffffffffffffull

__device__ __forceinline__ float neg_inf_f32() { return __int_as_float(0xff800000); }

/** true unless x is ±Inf or NaN (exponent bits all ones) */
__device__ __forceinline__ bool is_finite_f32(float x) { return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u; }

/**
 * Activation storage. FP32 now; BF16 later adds overloads of act_load and a specialisation of
 * act_store (after including cuda_bf16.h) and instantiates the kernels' templates for it.
 * Arithmetic is always fp32.
 */
__device__ __forceinline__ float act_load(const float* p) { return *p; }
template <typename T> __device__ __forceinline__ void act_store(T* p, float v);
template <> __device__ __forceinline__ void act_store<float>(float* p, float v) { *p = v; }

/** x rounded to the nearest BF16 (ties to even), as an fp32 value; NaN stays NaN. */
__device__ __forceinline__ float round_bf16(float x) {
  const unsigned b = __float_as_uint(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) return x;
  return __uint_as_float((b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FP4LM_FULL_MASK, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum_f64(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FP4LM_FULL_MASK, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FP4LM_FULL_MASK, v, o));
  return v;
}

/**
 * Sum of v over the block, returned to every thread. blockDim.x must be a multiple of 32 (at most
 * 1024); `scratch` is __shared__ float[32]. Starts with a barrier so back-to-back calls may reuse
 * the same scratch; every thread of the block must call it.
 */
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ double block_sum_f64(double v, double* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum_f64(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : 0.0;
  return warp_sum_f64(v);
}

/** Max of v over the block, returned to every thread; same rules as block_sum. */
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : neg_inf_f32();
  return warp_max(v);
}
