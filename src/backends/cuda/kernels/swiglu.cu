/**
 * SwiGLU, the gated MLP non-linearity (twin of backends/cpu/ops/swiglu.ts; Shazeer 2020, arXiv
 * 2002.05202): out = silu(gate)·up with the gate and up projections fused per row as
 * gate_up (rows, 2F) = [gate (F) | up (F)]. fp32 arithmetic with the oracle's formulas
 * (σ(g) = 1/(1+e^−g), accurate expf: no fast-math intrinsics), so results differ from the float64
 * oracle by a few fp32 ulps. One thread per output element, grid-stride loops, 64-bit indices.
 */
#include "ops-common.cuh"

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ float sigmoid_f32(float g) { return 1.0f / (1.0f + expf(-g)); }

template <typename T>
__device__ __forceinline__ void swiglu_forward_impl(T* out, const T* gate_up, int rows, int F) {
  GRID_STRIDE(i, (long long)rows * F) {
    const long long r = i / F;
    const long long gi = r * 2 * F + (i - r * F);
    const float g = act_load(gate_up + gi), u = act_load(gate_up + gi + F);
    act_store(out + i, (g * sigmoid_f32(g)) * u);
  }
}

template <typename T>
__device__ __forceinline__ void swiglu_backward_impl(T* dgate_up, const T* dout, const T* gate_up, int rows, int F) {
  GRID_STRIDE(i, (long long)rows * F) {
    const long long r = i / F;
    const long long gi = r * 2 * F + (i - r * F);
    const float g = act_load(gate_up + gi), u = act_load(gate_up + gi + F), d = act_load(dout + i);
    // σ(−g) rather than 1 − σ(g): no cancellation for large g (the oracle's formula)
    const float s = sigmoid_f32(g), s_neg = sigmoid_f32(-g);
    act_store(dgate_up + gi, d * u * s * (1.0f + g * s_neg));
    act_store(dgate_up + gi + F, d * (g * s));
  }
}

/**
 * swiglu_forward(float* out, const float* gate_up, int rows, int F)
 *   out (rows, F) = silu(gate_up[:, :F]) · gate_up[:, F:]. grid ceil(rows·F / 256) (may be
 *   capped: grid-stride), block 256, shared none. out must not alias gate_up.
 */
extern "C" __global__ void swiglu_forward(float* out, const float* gate_up, int rows, int F) { swiglu_forward_impl<float>(out, gate_up, rows, F); }

/**
 * swiglu_backward(float* dgate_up, const float* dout, const float* gate_up, int rows, int F)
 *   dgate_up (rows, 2F) OVERWRITTEN = [dout·up·σ(g)(1 + g·σ(−g)) | dout·silu(g)]; launch as the
 *   forward. dgate_up may alias gate_up (each thread reads its pair before writing it); dout not.
 */
extern "C" __global__ void swiglu_backward(float* dgate_up, const float* dout, const float* gate_up, int rows, int F) {
  swiglu_backward_impl<float>(dgate_up, dout, gate_up, rows, F);
}
