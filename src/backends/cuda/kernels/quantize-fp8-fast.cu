/**
 * FP8 quantizers at memory bandwidth, for the block scalings of the fp8 recipe (1x128 for
 * activations and gradients, 128x128 for weights; E4M3, or E5M2): the same bytes as quantize.cu's
 * fp8_block_amax_f32 + fp8_quantize_f32 followed by cast.cu's BF16 cast of the dequantized operand,
 * and so as the CPU oracle (quant/fp8.ts quantizeFP8 + dequantizeFP8, recipes/quantize-operand.ts),
 * in ONE pass over x: block amax → scale → FP8 bytes, decode scales, BF16 operand. quantize.cu
 * stays the plain twin (FP4LM_QUANT_KERNELS=plain). Per-tensor FP8 scaling is not here (plain only).
 *
 * Outputs (every one nullable, so the host writes only what the GEMM needs):
 *   data      (R, C) FP8 bytes, row-major in the quantized orientation (K-contiguous: what a
 *             cuBLASLt FP8 GEMM reads);
 *   scale_inv the decode scales fl(1/scale) in quant/fp8.ts's layout: (R, ⌈C/128⌉) for 1x128,
 *             (⌈R/128⌉, ⌈C/128⌉) for 128x128, row-major;
 *   scale_gemm the same values in cuBLASLt's layout (cublaslt.ts blockScaleLayout): 1x128
 *             column-major (R, ⌈C/128⌉) with leading dimension R rounded up to 4; 128x128 row-major
 *             (⌈R/128⌉, ⌈C/128⌉) with leading dimension ⌈C/128⌉ rounded up to 4 (padding unwritten);
 *   operand_bf16_out (R, C) BF16 of fl(fp8 · scale_inv): the emulated GEMM's operand (exact in BF16
 *             for power-of-two scales; rounded RNE as cast.cu does in any case).
 * plus the non-finite check of x (nonfinite.cuh slot `bad`, nullable).
 *
 * Orientation as in quantize.cu: x is (rows, cols) row-major FP32; the quantized orientation is
 * (R, C) = transpose ? (cols, rows) : (rows, cols), blocks run along C of it. The row kernel
 * handles transpose = 0, the column kernel transpose = 1 (xᵀ, read straight from x).
 *
 * Requirements (the host checks them and otherwise runs quantize.cu): C % 16 == 0 (the row kernel:
 * cols % 16, the column kernel: rows % 16); x 16-byte aligned for the row kernel; outputs
 * cudaMalloc'd (16-byte aligned). Edge blocks may be partial (zeros do not change an amax).
 * Launch shapes and bytes moved: quantize-kernels.md, section "FP8 fast kernels".
 *
 * Build (NVRTC): --gpu-architecture=sm_90a --std=c++17 --fmad=false (as quantize.cu).
 */
#include "common.cuh"
#include "nonfinite.cuh"
#include "row16.cuh"

using namespace fp4q;

#define F8_THREADS 256

// ---------------------------------------------------------------- per-thread pieces

template <bool E5M2>
__device__ __forceinline__ u32 fp8_encode(float y) { return E5M2 ? e5m2_encode(y, true) : e4m3_encode(y, true); }
template <bool E5M2>
__device__ __forceinline__ float fp8_decode(u32 b) { return E5M2 ? e5m2_decode(b) : e4m3_decode(b); }

struct Fp8Scale {
  float scale, sinv;
};

/** quantize.cu fp8_quantize_impl's scale from a block amax (bits): fp8ScaleFromAmax, then fl(1/scale). */
template <bool E5M2>
__device__ __forceinline__ Fp8Scale fp8_scale(u32 amax_bits, bool pow2) {
  Fp8Scale s;
  s.scale = fp8_scale_from_amax(__uint_as_float(amax_bits), E5M2 ? 57344.0f : 448.0f, pow2);
  s.sinv = fdiv_rn(1.0f, s.scale);
  return s;
}

/**
 * Encode 16 values whose first element has flat index e0 (e0 % 16 == 0) in the quantized
 * orientation: one 16-byte store of FP8 bytes, two 16-byte stores of the BF16 operand. The
 * arithmetic of fp8_quantize_impl + cast_bf16_f32: byte = satfinite fp8(fl(x·scale)), operand =
 * bf16(fl(decode(byte)·scale_inv)).
 */
template <bool E5M2, bool HW>
__device__ __forceinline__ void fp8_emit16(const float* v, const Fp8Scale s, long long e0, unsigned char* __restrict__ data,
                                           unsigned short* __restrict__ operand_bf16_out) {
  u32 w[4] = {0u, 0u, 0u, 0u}, h[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
  u32 hw[16];
#if defined(__CUDA_ARCH__)
  if (HW) {
    // the hardware conversion (FP4LM_FP8_CVT=hw, not yet shown bit-exact on a GPU): two values per
    // instruction, the first source operand lands in the upper byte
#pragma unroll
    for (int i = 0; i < 16; i += 2) {
      unsigned short p;
      const float y0 = fmul_rn(v[i], s.scale), y1 = fmul_rn(v[i + 1], s.scale);
      if (E5M2) asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(p) : "f"(y1), "f"(y0));
      else asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(p) : "f"(y1), "f"(y0));
      hw[i] = p & 0xffu;
      hw[i + 1] = (u32)p >> 8;
    }
  }
#endif
#pragma unroll
  for (int i = 0; i < 16; i++) {
#if defined(__CUDA_ARCH__)
    const u32 b = HW ? hw[i] : fp8_encode<E5M2>(fmul_rn(v[i], s.scale));
#else
    (void)hw;  // the host build (SIMT shim) has no PTX: the software conversion
    const u32 b = fp8_encode<E5M2>(fmul_rn(v[i], s.scale));
#endif
    w[i >> 2] |= b << (8 * (i & 3));
    h[i >> 1] |= (u32)bf16_from_f32(fmul_rn(fp8_decode<E5M2>(b), s.sinv)) << (16 * (i & 1));
  }
  if (data) *reinterpret_cast<uint4*>(data + e0) = make_uint4(w[0], w[1], w[2], w[3]);
  if (operand_bf16_out) {
    uint4* p = reinterpret_cast<uint4*>(operand_bf16_out + e0);
    p[0] = make_uint4(h[0], h[1], h[2], h[3]);
    p[1] = make_uint4(h[4], h[5], h[6], h[7]);
  }
}

// ================================================================ rows (transpose = 0)

/**
 * 1x128: a CTA holds 32 scale blocks, 8 threads per block, 16 values (four 16-byte loads) per
 * thread; block g = 32·blockIdx.x + threadIdx/8 is row g / nbc, column block g % nbc. The block
 * amax is a 3-step shuffle over the 8 lanes: one read of x, no shared memory.
 */
template <bool E5M2, bool HW>
__device__ __forceinline__ void fp8_rows_1x128(const float* __restrict__ x, int R, int C, bool pow2, unsigned char* data, float* scale_inv,
                                               float* scale_gemm, unsigned short* operand_bf16_out, unsigned long long* bad) {
  const int nbc = (C + 127) >> 7;
  const long long g = (long long)blockIdx.x * 32 + (threadIdx.x >> 3);
  const int l8 = threadIdx.x & 7;
  const long long r = g / nbc;
  const int cb = (int)(g - r * nbc);
  const int c = cb * 128 + l8 * 16;
  const bool rowOk = r < R, valid = rowOk && c < C;
  const long long e0 = r * C + c;
  float v[16];
  load_row16_checked(x, e0, valid, v, bad);
  u32 m = abs_max_bits<16>(v);
#pragma unroll
  for (int o = 1; o < 8; o <<= 1) { const u32 t = __shfl_xor_sync(0xffffffffu, m, o); m = t > m ? t : m; }
  if (!rowOk) return;
  const Fp8Scale s = fp8_scale<E5M2>(m, pow2);
  if (l8 == 0) {
    if (scale_inv) scale_inv[r * nbc + cb] = s.sinv;
    if (scale_gemm) scale_gemm[(long long)cb * ((R + 3) & ~3) + r] = s.sinv;
  }
  if (valid) fp8_emit16<E5M2, HW>(v, s, e0, data, operand_bf16_out);
}

/**
 * 128x128: a CTA per tile (tile t: row block t / nbc, column block t % nbc); thread t holds rows
 * t/8 + 32k (k < 4), columns 16·(t%8) .. +15 of it (64 values in registers), so x is read once;
 * the tile amax is a block reduction.
 */
template <bool E5M2, bool HW>
__device__ __forceinline__ void fp8_rows_128x128(const float* __restrict__ x, int R, int C, bool pow2, unsigned char* data, float* scale_inv,
                                                 float* scale_gemm, unsigned short* operand_bf16_out, unsigned long long* bad) {
  __shared__ u32 scratch[32];
  __shared__ u32 tile_amax;
  const int nbc = (C + 127) >> 7;
  const int tr = (int)(blockIdx.x / nbc), tc = (int)(blockIdx.x % nbc);
  const int c = tc * 128 + (threadIdx.x & 7) * 16;
  float v[4][16];
  u32 m = 0;
#pragma unroll
  for (int k = 0; k < 4; k++) {
    const int r = tr * 128 + (threadIdx.x >> 3) + 32 * k;
    const bool valid = r < R && c < C;
    const long long e0 = (long long)r * C + c;
    load_row16_checked(x, e0, valid, v[k], bad);
    const u32 a = abs_max_bits<16>(v[k]);
    m = a > m ? a : m;
  }
  m = block_max_bits(m, scratch);
  if (threadIdx.x == 0) tile_amax = m;
  __syncthreads();
  const Fp8Scale s = fp8_scale<E5M2>(tile_amax, pow2);
  if (threadIdx.x == 0) {
    if (scale_inv) scale_inv[(long long)tr * nbc + tc] = s.sinv;
    if (scale_gemm) scale_gemm[(long long)tr * ((nbc + 3) & ~3) + tc] = s.sinv;
  }
#pragma unroll
  for (int k = 0; k < 4; k++) {
    const int r = tr * 128 + (threadIdx.x >> 3) + 32 * k;
    if (r < R && c < C) fp8_emit16<E5M2, HW>(v[k], s, (long long)r * C + c, data, operand_bf16_out);
  }
}

/**
 * fp8_quantize_rows_1x128_f32 / fp8_quantize_rows_128x128_f32(const float* x, int R, int C, int e5m2, int pow2,
 *     int hw_cvt, unsigned char* data, float* scale_inv, float* scale_gemm, unsigned short* operand_bf16_out, unsigned long long* bad)
 *   = fp8_block_amax_f32 + fp8_quantize_f32 (+ the BF16 cast) with transpose = 0 and scaling 1
 *   (1x128) or 2 (128x128); C % 16 == 0, x 16-byte aligned. Block 256; grid ceil(R·⌈C/128⌉ / 32)
 *   CTAs (1x128) or ⌈R/128⌉·⌈C/128⌉ (128x128). Separate kernels so that the 1x128 one keeps few
 *   registers (the 128x128 one holds 64 values per thread).
 */
extern "C" __global__ void __launch_bounds__(F8_THREADS) fp8_quantize_rows_1x128_f32(const float* __restrict__ x, int R, int C, int e5m2, int pow2, int hw_cvt,
                                                                                   unsigned char* data, float* scale_inv, float* scale_gemm,
                                                                                   unsigned short* operand_bf16_out, unsigned long long* bad) {
  if (hw_cvt) {
    if (e5m2) fp8_rows_1x128<true, true>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_rows_1x128<false, true>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  } else {
    if (e5m2) fp8_rows_1x128<true, false>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_rows_1x128<false, false>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  }
}
extern "C" __global__ void __launch_bounds__(F8_THREADS) fp8_quantize_rows_128x128_f32(const float* __restrict__ x, int R, int C, int e5m2, int pow2, int hw_cvt,
                                                                                     unsigned char* data, float* scale_inv, float* scale_gemm,
                                                                                     unsigned short* operand_bf16_out, unsigned long long* bad) {
  if (hw_cvt) {
    if (e5m2) fp8_rows_128x128<true, true>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_rows_128x128<false, true>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  } else {
    if (e5m2) fp8_rows_128x128<true, false>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_rows_128x128<false, false>(x, R, C, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  }
}

// ================================================================ columns (transpose = 1: xᵀ from x)

/**
 * The quantized orientation is (R, C) = (cols, rows): quantized row = original column c, blocks
 * run along the original rows. CTA = 128 original rows × 64·NH original columns, 8 warps: warp w
 * takes rows 32·(w%4) .. +31, lane l column 32·(w/4) + l of each 64-column half, so every load
 * instruction reads a 128-byte row segment and each thread holds 32 consecutive values of one
 * quantized row per half (two 16-blocks: 32 B of FP8 and 64 B of BF16 stored contiguously).
 * NH = 1 (1x128): the block amax of column c over the CTA's 128 rows, through shared memory;
 * NH = 2 (128x128): the whole CTA is one block. rows % 16 == 0, any cols.
 */
template <bool E5M2, bool HW, int NH>
__device__ __forceinline__ void fp8_cols(const float* __restrict__ x, int rows, int cols, bool pow2, unsigned char* data, float* scale_inv,
                                         float* scale_gemm, unsigned short* operand_bf16_out, unsigned long long* bad) {
  __shared__ u32 col_amax[4][64];
  __shared__ u32 scratch[32];
  __shared__ u32 tile_amax;
  const int TW = 64 * NH;
  const int tilesC = (cols + TW - 1) / TW;
  const int band = (int)(blockIdx.x / tilesC), stripe = (int)(blockIdx.x % tilesC);
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int r0 = band * 128 + (w & 3) * 32;
  const int nb = (rows + 127) >> 7;  // blocks per quantized row
  float v[NH][32];
  u32 m[NH];
#pragma unroll
  for (int h = 0; h < NH; h++) {
    const int c = stripe * TW + 64 * h + 32 * (w >> 2) + lane;
#pragma unroll
    for (int s = 0; s < 2; s++) {
      const bool ok = c < cols && r0 + 16 * s < rows;  // rows % 16 == 0: a 16-segment is all in or all out
      const long long i0 = (long long)(r0 + 16 * s) * cols + c;
#pragma unroll
      for (int i = 0; i < 16; i++) {
        const float q = ok ? x[i0 + (long long)i * cols] : 0.0f;
        if (ok) note_nonfinite(bad, i0 + (long long)i * cols, q);
        v[h][16 * s + i] = q;
      }
    }
    m[h] = abs_max_bits<32>(v[h]);
  }
  u32 bam;
  if (NH == 1) {
    col_amax[w & 3][32 * (w >> 2) + lane] = m[0];
    __syncthreads();
    bam = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) { const u32 t = col_amax[k][32 * (w >> 2) + lane]; bam = t > bam ? t : bam; }
  } else {
    u32 mm = 0;
#pragma unroll
    for (int h = 0; h < NH; h++) mm = m[h] > mm ? m[h] : mm;
    mm = block_max_bits(mm, scratch);
    if (threadIdx.x == 0) tile_amax = mm;
    __syncthreads();
    bam = tile_amax;
  }
  const Fp8Scale sc = fp8_scale<E5M2>(bam, pow2);
  if (NH == 1) {
    const int c = stripe * TW + 32 * (w >> 2) + lane;
    if ((w & 3) == 0 && c < cols) {
      if (scale_inv) scale_inv[(long long)c * nb + band] = sc.sinv;
      if (scale_gemm) scale_gemm[(long long)band * ((cols + 3) & ~3) + c] = sc.sinv;
    }
  } else if (threadIdx.x == 0) {  // quantized block (row block stripe, column block band)
    if (scale_inv) scale_inv[(long long)stripe * nb + band] = sc.sinv;
    if (scale_gemm) scale_gemm[(long long)stripe * ((nb + 3) & ~3) + band] = sc.sinv;
  }
#pragma unroll
  for (int h = 0; h < NH; h++) {
    const int c = stripe * TW + 64 * h + 32 * (w >> 2) + lane;
    if (c >= cols) continue;
#pragma unroll
    for (int s = 0; s < 2; s++) {
      if (r0 + 16 * s < rows) fp8_emit16<E5M2, HW>(&v[h][16 * s], sc, (long long)c * rows + r0 + 16 * s, data, operand_bf16_out);
    }
  }
}

/**
 * fp8_quantize_cols_1x128_f32 / fp8_quantize_cols_128x128_f32(const float* x, int rows, int cols, int e5m2, int pow2,
 *     int hw_cvt, unsigned char* data, float* scale_inv, float* scale_gemm, unsigned short* operand_bf16_out, unsigned long long* bad)
 *   = fp8_block_amax_f32 + fp8_quantize_f32 (+ the BF16 cast) with transpose = 1: x is (rows, cols),
 *   every output is (cols, rows)-oriented; scaling 1 (1x128) or 2 (128x128); rows % 16 == 0.
 *   Block 256; grid ⌈rows/128⌉·⌈cols/64⌉ CTAs (1x128) or ⌈rows/128⌉·⌈cols/128⌉ (128x128).
 */
extern "C" __global__ void __launch_bounds__(F8_THREADS) fp8_quantize_cols_1x128_f32(const float* __restrict__ x, int rows, int cols, int e5m2, int pow2, int hw_cvt,
                                                                                   unsigned char* data, float* scale_inv, float* scale_gemm,
                                                                                   unsigned short* operand_bf16_out, unsigned long long* bad) {
  if (hw_cvt) {
    if (e5m2) fp8_cols<true, true, 1>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_cols<false, true, 1>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  } else {
    if (e5m2) fp8_cols<true, false, 1>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_cols<false, false, 1>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  }
}
extern "C" __global__ void __launch_bounds__(F8_THREADS) fp8_quantize_cols_128x128_f32(const float* __restrict__ x, int rows, int cols, int e5m2, int pow2, int hw_cvt,
                                                                                     unsigned char* data, float* scale_inv, float* scale_gemm,
                                                                                     unsigned short* operand_bf16_out, unsigned long long* bad) {
  if (hw_cvt) {
    if (e5m2) fp8_cols<true, true, 2>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_cols<false, true, 2>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  } else {
    if (e5m2) fp8_cols<true, false, 2>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
    else fp8_cols<false, false, 2>(x, rows, cols, pow2 != 0, data, scale_inv, scale_gemm, operand_bf16_out, bad);
  }
}

// ================================================================ dequantize (fallback GEMM, telemetry, tests)

/**
 * fp8_dequantize(const unsigned char* data, int R, int C, int scaling, int e5m2, const float* scale_gemm,
 *                unsigned short* out_bf16, float* out_f32)
 *   The operand values of an FP8 operand kept for the tensor cores (data + cuBLASLt-layout scales,
 *   scaling 1 or 2): out[e] = fl(decode(data[e]) · scale_inv of e's block), as BF16 (RNE) and/or
 *   FP32 (both nullable) — the same values the quantizer's BF16 operand holds. Used when a GEMM
 *   falls back to the emulated path and to read an operand's values. Grid-stride, block 256.
 */
extern "C" __global__ void fp8_dequantize(const unsigned char* __restrict__ data, int R, int C, int scaling, int e5m2, const float* __restrict__ scale_gemm,
                                          unsigned short* out_bf16, float* out_f32) {
  const long long n = (long long)R * C;
  const int nbc = (C + 127) >> 7;
  const long long ld = scaling == 1 ? ((R + 3) & ~3) : ((nbc + 3) & ~3);
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const long long r = e / C;
    const int kb = (int)(e - r * C) >> 7;
    const float sinv = scale_gemm[scaling == 1 ? kb * ld + r : (r >> 7) * ld + kb];
    const u32 b = data[e];
    const float o = fmul_rn(e5m2 ? e5m2_decode(b) : e4m3_decode(b), sinv);
    if (out_bf16) out_bf16[e] = bf16_from_f32(o);
    if (out_f32) out_f32[e] = o;
  }
}
