/**
 * Rotary position embedding (RoPE) in place on q or k heads: the twin of
 * backends/cpu/ops/rope.ts. HALF-SPLIT pairs as Hugging Face Llama's rotate_half: element i is
 * paired with i + HS/2 and rotated by t·theta^(−2i/HS). The cos/sin table (Tmax, HS/2) is built
 * on the host in float64 (rope.ts's ropeTable) and uploaded as fp32, so kernels never evaluate
 * transcendental functions and forward and backward read the same angles. Method: Su et al. 2021,
 * arXiv 2104.09864. Not fused into the QKV split or attention (later work).
 *
 * Gradient convention: the backward rotates dout by −angle in place (dx OVERWRITES dout).
 */
#include "ops-common.cuh"

template <typename T>
__device__ __forceinline__ void rope_impl(T* x, const float* cosT, const float* sinT, int B, int Tlen, int NH, int HS, float sign) {
  const int half = HS >> 1;
  const long long pairs = (long long)B * Tlen * NH * half;
  for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < pairs; idx += (long long)gridDim.x * blockDim.x) {
    const int i = (int)(idx % half);
    const long long rest = idx / half;  // (b·T + t)·NH + h
    const int t = (int)((rest / NH) % Tlen);
    const long long base = rest * HS;
    const float c = cosT[t * half + i], s = sign * sinT[t * half + i];
    const float x1 = act_load(x + base + i), x2 = act_load(x + base + half + i);
    act_store(x + base + i, x1 * c - x2 * s);
    act_store(x + base + half + i, x2 * c + x1 * s);
  }
}

/**
 * rope_forward(float* x, const float* cos, const float* sin, int B, int T, int NH, int HS)
 *   x (B,T,NH,HS) rotated in place: (x1, x2) ← (x1·c − x2·s, x2·c + x1·s) for the pair
 *   (i, i + HS/2), c = cos[t, i], s = sin[t, i]; cos, sin (Tmax ≥ T, HS/2) fp32, row-major.
 *   One thread per pair, grid-stride. grid: ceil(B·T·NH·HS/2 / 256) (may be capped); block: 256;
 *   shared: none. HS must be even.
 */
extern "C" __global__ void rope_forward(float* x, const float* cosT, const float* sinT, int B, int Tlen, int NH, int HS) {
  rope_impl<float>(x, cosT, sinT, B, Tlen, NH, HS, 1.0f);
}

/**
 * rope_backward(float* dx, const float* cos, const float* sin, int B, int T, int NH, int HS)
 *   dx (B,T,NH,HS) = rotation of dx by −angle, in place (the transpose of the forward).
 *   Launch as rope_forward.
 */
extern "C" __global__ void rope_backward(float* dx, const float* cosT, const float* sinT, int B, int Tlen, int NH, int HS) {
  rope_impl<float>(dx, cosT, sinT, B, Tlen, NH, HS, -1.0f);
}
