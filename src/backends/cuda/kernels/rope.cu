/**
 * Rotary position embedding (RoPE) in place on q or k heads: the twin of
 * backends/cpu/ops/rope.ts. HALF-SPLIT pairs as Hugging Face Llama's rotate_half: element i is
 * paired with i + HS/2 and rotated by t·theta^(−2i/HS). The cos/sin table (Tmax, HS/2) is built
 * on the host in float64 (rope.ts's ropeTable) and uploaded as fp32, so kernels never evaluate
 * transcendental functions and forward and backward read the same angles. Method: Su et al. 2021,
 * arXiv 2104.09864. qkv_split_rope / qkv_rope_concat fuse the rotation with the QKV column split
 * and its inverse (one pass over the fused projection instead of a split, then RoPE of q and k in
 * place); same per-pair arithmetic (rope_rotate), so the same bits. Their `_bf16` variants also
 * write BF16 copies (bf16-out.cuh): of q, k, v for the attention core, of dqkv for the QKV GEMM.
 *
 * Gradient convention: the backward rotates dout by −angle in place (dx OVERWRITES dout).
 */
#include "ops-common.cuh"
#include "bf16-out.cuh"

/** (x1, x2) ← (x1·c − x2·s, x2·c + x1·s): one pair, s already signed (−sin for the backward) */
__device__ __forceinline__ void rope_rotate(float& x1, float& x2, float c, float s) {
  const float a = x1 * c - x2 * s, b = x2 * c + x1 * s;
  x1 = a;
  x2 = b;
}

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
    float x1 = act_load(x + base + i), x2 = act_load(x + base + half + i);
    rope_rotate(x1, x2, c, s);
    act_store(x + base + i, x1);
    act_store(x + base + half + i, x2);
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

/** rope_rotate on four pairs (u.k, w.k) */
__device__ __forceinline__ void rope_rotate4(float4& u, float4& w, const float4 c, const float4 sn, float sign) {
  rope_rotate(u.x, w.x, c.x, sign * sn.x);
  rope_rotate(u.y, w.y, c.y, sign * sn.y);
  rope_rotate(u.z, w.z, c.z, sign * sn.z);
  rope_rotate(u.w, w.w, c.w, sign * sn.w);
}

/**
 * One pass between the fused projection qkv (B·T, W), W = (NH + 2·NKV)·HS, and q (B,T,NH,HS),
 * k, v (B,T,NKV,HS). A unit is 8 elements of one head: the float4s at i and i + HS/2 (i = 4j), a
 * rotation pair set for q and k heads, a plain copy for v. Units of a row: W/8, consecutive
 * threads take consecutive units (coalesced on both sides).
 */
template <bool kBackward>
__device__ __forceinline__ void qkv_rope_impl(float* qkv, float* q, float* k, float* v, const float* cosT, const float* sinT, int B, int Tlen, int NH, int NKV, int HS,
                                              unsigned short* fused16 = nullptr, unsigned short* q16 = nullptr, unsigned short* k16 = nullptr,
                                              unsigned short* v16 = nullptr, unsigned long long* bad = nullptr) {
  const int half = HS >> 1, uph = HS >> 3;  // units per head
  const int heads = NH + 2 * NKV, W = heads * HS, upr = heads * uph;
  const long long units = (long long)B * Tlen * upr;
  for (long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x; u < units; u += (long long)gridDim.x * blockDim.x) {
    const long long row = u / upr;
    const int r = (int)(u - row * upr), hp = r / uph, i = 4 * (r - hp * uph);
    const int t = (int)(row % Tlen);
    float* part;
    unsigned short* part16;
    long long off;
    if (hp < NH) {
      part = q;
      part16 = q16;
      off = (row * NH + hp) * HS;
    } else if (hp < NH + NKV) {
      part = k;
      part16 = k16;
      off = (row * NKV + (hp - NH)) * HS;
    } else {
      part = v;
      part16 = v16;
      off = (row * NKV + (hp - NH - NKV)) * HS;
    }
    float* fused = qkv + row * W + (long long)hp * HS;
    float* src = kBackward ? part + off : fused;
    float* dst = kBackward ? fused : part + off;
    float4 x1 = *reinterpret_cast<const float4*>(src + i), x2 = *reinterpret_cast<const float4*>(src + half + i);
    if (hp < NH + NKV) {
      const float4 c = *reinterpret_cast<const float4*>(cosT + t * half + i), sn = *reinterpret_cast<const float4*>(sinT + t * half + i);
      rope_rotate4(x1, x2, c, sn, kBackward ? -1.0f : 1.0f);
    }
    if (!kBackward || qkv != nullptr) {  // backward with a null dqkv: only its BF16 operand (Operand.fp32Unused)
      *reinterpret_cast<float4*>(dst + i) = x1;
      *reinterpret_cast<float4*>(dst + half + i) = x2;
    }
    // the BF16 copy of what was just written, at the same flat index of its tensor
    unsigned short* d16 = kBackward ? fused16 : part16;
    if (d16 != nullptr) {
      const long long e = kBackward ? row * W + (long long)hp * HS : off;
      bf16_out4(d16, bad, e + i, x1);
      bf16_out4(d16, bad, e + half + i, x2);
    }
  }
}

/**
 * qkv_split_rope(const float* qkv, float* q, float* k, float* v, const float* cos, const float* sin,
 *                int B, int T, int NH, int NKV, int HS)
 *   q, k, v ← split_columns(qkv, widths NH·HS, NKV·HS, NKV·HS), then rope_forward on q and k.
 *   HS % 8 == 0; every pointer 16-byte aligned. grid: ceil(B·T·(NH+2·NKV)·HS/8 / 256) (may be
 *   capped: grid-stride); block: 256; shared: none. Outputs must not alias qkv.
 */
extern "C" __global__ void qkv_split_rope(const float* qkv, float* q, float* k, float* v, const float* cosT, const float* sinT, int B, int Tlen, int NH, int NKV, int HS) {
  qkv_rope_impl<false>(const_cast<float*>(qkv), q, k, v, cosT, sinT, B, Tlen, NH, NKV, HS);
}

/**
 * qkv_rope_concat(float* dqkv, const float* dq, const float* dk, const float* dv, const float* cos,
 *                 const float* sin, int B, int T, int NH, int NKV, int HS)
 *   dqkv ← concat_columns(rope_backward(dq), rope_backward(dk), dv) (OVERWRITTEN); dq, dk are
 *   read, not modified. Launch as qkv_split_rope.
 */
extern "C" __global__ void qkv_rope_concat(float* dqkv, const float* dq, const float* dk, const float* dv, const float* cosT, const float* sinT, int B, int Tlen, int NH, int NKV, int HS) {
  qkv_rope_impl<true>(dqkv, const_cast<float*>(dq), const_cast<float*>(dk), const_cast<float*>(dv), cosT, sinT, B, Tlen, NH, NKV, HS);
}

/**
 * qkv_split_rope_bf16(const float* qkv, float* q, float* k, float* v, const float* cos, const float* sin,
 *                     int B, int T, int NH, int NKV, int HS, unsigned short* q16, unsigned short* k16, unsigned short* v16)
 *   qkv_split_rope (same launch, same q, k, v bits) and q16, k16, v16 = BF16(q, k, v) (RNE): the
 *   operands of attention-mma-async.cu, which then needs no attention_bf16_cast of its own (its
 *   hardware RNE gives the same bits for every finite value). No non-finite check (the cast had none).
 */
extern "C" __global__ void qkv_split_rope_bf16(const float* qkv, float* q, float* k, float* v, const float* cosT, const float* sinT, int B, int Tlen, int NH, int NKV, int HS,
                                               unsigned short* q16, unsigned short* k16, unsigned short* v16) {
  qkv_rope_impl<false>(const_cast<float*>(qkv), q, k, v, cosT, sinT, B, Tlen, NH, NKV, HS, nullptr, q16, k16, v16, nullptr);
}

/**
 * qkv_rope_concat_bf16(float* dqkv, const float* dq, const float* dk, const float* dv, const float* cos,
 *                      const float* sin, int B, int T, int NH, int NKV, int HS, unsigned short* dqkv16, unsigned long long* bad)
 *   qkv_rope_concat (same launch, same dqkv bits; a null dqkv writes only dqkv16) and dqkv16 (B·T, W) = BF16(dqkv) with dqkv's
 *   non-finite check into `bad`: the QKV layer's Dgrad/Wgrad operand without a cast.
 */
extern "C" __global__ void qkv_rope_concat_bf16(float* dqkv, const float* dq, const float* dk, const float* dv, const float* cosT, const float* sinT, int B, int Tlen, int NH, int NKV,
                                                int HS, unsigned short* dqkv16, unsigned long long* bad) {
  qkv_rope_impl<true>(dqkv, const_cast<float*>(dq), const_cast<float*>(dk), const_cast<float*>(dv), cosT, sinT, B, Tlen, NH, NKV, HS, dqkv16, nullptr, nullptr, nullptr, bad);
}
