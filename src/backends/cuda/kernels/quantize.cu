/**
 * Quantizer kernels: the byte-exact CUDA twins of quant/nvfp4.ts (quantizeNVFP4), quant/mxfp4.ts
 * (quantizeMXFP4), quant/fp8.ts (quantizeFP8) and the RHT of quant/hadamard.ts, as
 * recipes/quantize-operand.ts uses them to build one GEMM operand (optionally the transposed,
 * "columnwise" copy, quantized from the high-precision source). Plus the non-finite scan and the
 * amax reductions that come first. Not the GEMM, not the scale swizzle. Scalar math:
 * common.cuh; call sequences, launch shapes and the TS correspondence: quantize-kernels.md.
 *
 * Orientation: the input x is (rows, cols) row-major. The QUANTIZED orientation is (R, C) =
 * transpose ? (cols, rows) : (rows, cols); blocks (16 or 32), RHT groups and SR element indices
 * run along C of that orientation. All outputs are row-major in it.
 *
 * Tiled kernels (rht_amax_*, nvfp4_quantize_*, mxfp4_quantize_*, fp8_block_amax_*,
 * fp8_quantize_*): blockDim = (256, 1, 1) exactly; grid = (ceil(C/128), min(ceil(R/32), 65535));
 * each CTA stages a 32x128 tile of the quantized orientation in shared memory (coalesced loads in
 * either orientation), then thread t owns row t/8, columns 16·(t%8) .. +15 of the tile.
 * 1-D kernels (nonfinite_scan_*, amax_*): any blockDim multiple of 32 (256 suggested), grid-stride.
 *
 * Build (NVRTC): --gpu-architecture=sm_90a --std=c++17 --fmad=false, no --use_fast_math, no -ftz
 * (common.cuh is written to be insensitive to these, but keep them).
 */
#include "common.cuh"
#include "nonfinite.cuh"

using namespace fp4q;

#define QZ_THREADS 256
#define QZ_TR 32
#define QZ_TC 128
#define QZ_LD 129  // padded row stride of the shared tile (conflict-free transposed stores)

struct LoadF32 {
  typedef float T;
  static __device__ __forceinline__ float at(const float* p, long long i) { return p[i]; }
  static __device__ __forceinline__ u32 bits(const float* p, long long i) { return __float_as_uint(p[i]); }
  static __device__ __forceinline__ bool nonfinite(const float* p, long long i) { return (__float_as_uint(p[i]) & 0x7f800000u) == 0x7f800000u; }
};
/** BF16 storage (raw bits): widened exactly to fp32. */
struct LoadBF16 {
  typedef unsigned short T;
  static __device__ __forceinline__ float at(const unsigned short* p, long long i) { return __uint_as_float((u32)p[i] << 16); }
  static __device__ __forceinline__ bool nonfinite(const unsigned short* p, long long i) { return (p[i] & 0x7f80u) == 0x7f80u; }
};

/**
 * Stage the quantized-orientation tile rows r0..r0+31, cols c0..c0+127 into `tile` (zeros outside
 * the matrix). transpose: element (r, c) is x[c·R + r] (x is (C, R) row-major); consecutive
 * threads take consecutive r, so both cases read memory consecutively.
 */
template <typename L>
__device__ __forceinline__ void load_tile(float (*tile)[QZ_LD], const typename L::T* x, int R, int C, int transpose, int r0, int c0, unsigned long long* bad = nullptr) {
  if (!transpose) {
    for (int idx = threadIdx.x; idx < QZ_TR * QZ_TC; idx += QZ_THREADS) {
      const int rr = idx >> 7, cc = idx & 127, r = r0 + rr, c = c0 + cc;
      const long long i = (long long)r * C + c;
      const float v = (r < R && c < C) ? L::at(x, i) : 0.0f;
      note_nonfinite(bad, i, v);
      tile[rr][cc] = v;
    }
  } else {
    for (int idx = threadIdx.x; idx < QZ_TR * QZ_TC; idx += QZ_THREADS) {
      const int rr = idx & 31, cc = idx >> 5, r = r0 + rr, c = c0 + cc;
      const long long i = (long long)c * R + r;
      const float v = (r < R && c < C) ? L::at(x, i) : 0.0f;
      note_nonfinite(bad, i, v);
      tile[rr][cc] = v;
    }
  }
}

/**
 * This thread's 16 values (tile row lrow, columns 16·lseg ..), after the RHT of size n when n > 0
 * (outputs rounded once to BF16). Every lane of the warp must call (shuffles). Group position of
 * element i is (16·lseg + i) mod n because c0 is a multiple of 128 and n divides 128.
 */
__device__ __forceinline__ void segment_values(float (*tile)[QZ_LD], int lrow, int lseg, int n, u32 s0, u32 s1, u32 s2, u32 s3, float v[16]) {
#pragma unroll
  for (int i = 0; i < 16; i++) v[i] = tile[lrow][lseg * 16 + i];
  if (n <= 0) return;
  double d[16];
  rht_load_signed(v, d, lseg * 16, n, s0, s1, s2, s3);
  rht_local_stages(d, n);
  // stages h = 16, 32, 64: the partner segment is lane ^ (h/16) (same tile row: lseg = lane & 7)
#pragma unroll
  for (int m = 1; m < 8; m <<= 1) {
    if (16 * m < n) {
      const bool upper = (lseg & m) != 0;
#pragma unroll
      for (int i = 0; i < 16; i++) d[i] = rht_cross(d[i], __shfl_xor_sync(0xffffffffu, d[i], m), upper);
    }
  }
#pragma unroll
  for (int i = 0; i < 16; i++) v[i] = bf16_to_f32(rht_output_bf16(d[i], n));
}

/** 8 packed bytes (16 nibbles, element 2k low) at byte offset off of packed. */
__device__ __forceinline__ void store_packed16(unsigned char* packed, long long off, u32 lo, u32 hi) {
  unsigned char* p = packed + off;
  if ((((unsigned long long)p) & 7ull) == 0) {
    *reinterpret_cast<uint2*>(p) = make_uint2(lo, hi);
  } else {
#pragma unroll
    for (int k = 0; k < 4; k++) { p[k] = (unsigned char)(lo >> (8 * k)); p[4 + k] = (unsigned char)(hi >> (8 * k)); }
  }
}

/** 16 operand values as fp32 (and/or bf16 bits) at element offset off. */
__device__ __forceinline__ void store_operand16(float* out, unsigned short* out_bf16, long long off, const float o[16]) {
  if (out) {
    float* p = out + off;
    if ((((unsigned long long)p) & 15ull) == 0) {
#pragma unroll
      for (int k = 0; k < 4; k++) reinterpret_cast<float4*>(p)[k] = make_float4(o[4 * k], o[4 * k + 1], o[4 * k + 2], o[4 * k + 3]);
    } else {
#pragma unroll
      for (int k = 0; k < 16; k++) p[k] = o[k];
    }
  }
  if (out_bf16) {
    // e2m1 · sf (and e2m1 · 2^e) has ≤ 3 significant bits and BF16's range: the top half is exact
    unsigned short* p = out_bf16 + off;
    u32 w[8];
#pragma unroll
    for (int k = 0; k < 8; k++) w[k] = (__float_as_uint(o[2 * k]) >> 16) | (__float_as_uint(o[2 * k + 1]) & 0xffff0000u);
    if ((((unsigned long long)p) & 15ull) == 0) {
      reinterpret_cast<uint4*>(p)[0] = make_uint4(w[0], w[1], w[2], w[3]);
      reinterpret_cast<uint4*>(p)[1] = make_uint4(w[4], w[5], w[6], w[7]);
    } else {
#pragma unroll
      for (int k = 0; k < 16; k++) p[k] = (unsigned short)(__float_as_uint(o[k]) >> 16);
    }
  }
}

// ================================================================ non-finite scan

/**
 * nonfinite_scan_f32(const float* x, long long n, int* first_bad)
 * nonfinite_scan_bf16(const unsigned short* x, long long n, int* first_bad)
 *   first_bad ← min(first_bad, smallest i < n with x[i] NaN or ±inf), by atomicMin. The host sets
 *   *first_bad = INT_MAX (0x7fffffff) first; INT_MAX afterwards means all finite. Run it on the
 *   ORIGINAL input (rows, cols) before any transposition: i is the flat row-major index
 *   (assertFinite / NonFiniteError.index). n < 2^31. Grid-stride: any grid, blockDim % 32 == 0.
 */
template <typename L>
__device__ __forceinline__ void nonfinite_scan_impl(const typename L::T* x, long long n, int* first_bad) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  int mine = 0x7fffffff;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (L::nonfinite(x, i)) { mine = (int)i; break; }  // later i of this thread are larger
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const int w = __shfl_xor_sync(0xffffffffu, mine, o);
    mine = w < mine ? w : mine;
  }
  if ((threadIdx.x & 31) == 0 && mine != 0x7fffffff) atomicMin(first_bad, mine);
}
extern "C" __global__ void nonfinite_scan_f32(const float* x, long long n, int* first_bad) { nonfinite_scan_impl<LoadF32>(x, n, first_bad); }
extern "C" __global__ void nonfinite_scan_bf16(const unsigned short* x, long long n, int* first_bad) { nonfinite_scan_impl<LoadBF16>(x, n, first_bad); }

// ================================================================ amax

/**
 * amax_f32(const float* x, long long n, unsigned* amax_bits, unsigned long long* bad)
 * amax_bf16(const unsigned short* x, long long n, unsigned* amax_bits, unsigned long long* bad)
 *   amax_bits ← max(amax_bits, bits of max_i |x_i|) ignoring NaN (TE: fmaxf from 0). The host sets
 *   *amax_bits = 0 first; the result is the fp32 bit pattern of the amax. Orientation-free, so it
 *   serves both copies of an operand without RHT. Grid-stride: any grid, blockDim % 32 == 0, ≤ 1024.
 */
template <typename L>
__device__ __forceinline__ void amax_impl(const typename L::T* x, long long n, unsigned* amax_bits, unsigned long long* bad) {
  __shared__ u32 scratch[32];
  const long long stride = (long long)gridDim.x * blockDim.x;
  u32 m = 0;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = L::at(x, i);
    note_nonfinite(bad, i, v);
    const u32 a = abs_bits_nonan(v);
    m = a > m ? a : m;
  }
  m = block_max_bits(m, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_bits, m);
}
extern "C" __global__ void amax_f32(const float* x, long long n, unsigned* amax_bits, unsigned long long* bad) { amax_impl<LoadF32>(x, n, amax_bits, bad); }
extern "C" __global__ void amax_bf16(const unsigned short* x, long long n, unsigned* amax_bits, unsigned long long* bad) { amax_impl<LoadBF16>(x, n, amax_bits, bad); }

/**
 * rht_amax_f32(const float* x, int rows, int cols, int transpose, int size,
 *              int s0, int s1, int s2, int s3, unsigned* amax_bits, unsigned long long* bad)
 * rht_amax_bf16(const unsigned short* x, ...same...)
 *   amax_bits ← max(amax_bits, max |BF16(RHT(x'))|) ignoring NaN, where x' = transpose ? xᵀ : x is
 *   the operand in its quantized orientation (R, C) and the RHT of `size` (power of two 2..128,
 *   C % size == 0; 0 = none) runs over groups of `size` consecutive elements of each row of x'
 *   (for transpose: consecutive ORIGINAL rows, e.g. tokens). Signs: bit i of the 128-bit mask
 *   (s0 = bits 0..31, …) set ⇔ sign −1 at group position i (hadamard.ts signMask). Host sets
 *   *amax_bits = 0 first. Tiled launch (header).
 */
template <typename L>
__device__ __forceinline__ void rht_amax_impl(const typename L::T* x, int rows, int cols, int transpose, int size, u32 s0, u32 s1, u32 s2, u32 s3, unsigned* amax_bits, unsigned long long* bad) {
  __shared__ float tile[QZ_TR][QZ_LD];
  __shared__ u32 scratch[32];
  if (blockDim.x != QZ_THREADS) return;
  const int R = transpose ? cols : rows, C = transpose ? rows : cols;
  const int lrow = threadIdx.x >> 3, lseg = threadIdx.x & 7;
  const int c0 = blockIdx.x * QZ_TC, tilesR = (R + QZ_TR - 1) / QZ_TR;
  u32 m = 0;
  for (int tr = blockIdx.y; tr < tilesR; tr += gridDim.y) {
    __syncthreads();
    load_tile<L>(tile, x, R, C, transpose, tr * QZ_TR, c0, bad);
    __syncthreads();
    float v[16];
    segment_values(tile, lrow, lseg, size, s0, s1, s2, s3, v);  // zero padding transforms to zeros
    const u32 a = abs_max_bits<16>(v);
    m = a > m ? a : m;
  }
  m = block_max_bits(m, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_bits, m);
}
extern "C" __global__ void rht_amax_f32(const float* x, int rows, int cols, int transpose, int size, int s0, int s1, int s2, int s3, unsigned* amax_bits, unsigned long long* bad) {
  rht_amax_impl<LoadF32>(x, rows, cols, transpose, size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, amax_bits, bad);
}
extern "C" __global__ void rht_amax_bf16(const unsigned short* x, int rows, int cols, int transpose, int size, int s0, int s1, int s2, int s3, unsigned* amax_bits, unsigned long long* bad) {
  rht_amax_impl<LoadBF16>(x, rows, cols, transpose, size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, amax_bits, bad);
}

// ================================================================ NVFP4

/**
 * nvfp4_quantize_f32(const float* x, int rows, int cols, int transpose, int tile2d, int rht_size,
 *                    int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
 *                    unsigned tensor_id, const unsigned* amax_bits, unsigned char* packed,
 *                    unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out)
 * nvfp4_quantize_bf16(const unsigned short* x, ...same...)
 *   = quantizeNVFP4(x', [R, C], {tile2d, rounding: sr ? "sr" : "rtn", seed, tensorId, rht, amax})
 *   with x' = transpose ? xᵀ : x. Needs C % 16 == 0 (and C % rht_size == 0; R % 16 == 0 for
 *   tile2d). amax_bits: the tensor amax (from amax_* or, with an RHT, rht_amax_* with the same
 *   transpose/size/signs). Outputs, in the quantized orientation:
 *     packed  (R, C/2)   E2M1 codes, element 2i in the low nibble of byte i
 *     scales  (R, C/16)  E4M3 block-scale bytes (tile2d: each 16x16 tile's byte on its 16 rows)
 *     operand_out       (R, C) fp32 e2m1·sf, nullable (nvfp4Operand)
 *     operand_bf16_out  (R, C) the same values as BF16 bits (exact), nullable
 *   SR bytes: Philox stream key (seed_lo, seed_hi), tensor_id; element index r·C + c.
 *   Tiled launch (header).
 */
template <typename L>
__device__ __forceinline__ void nvfp4_quantize_impl(const typename L::T* x, int rows, int cols, int transpose, int tile2d, int rht_size,
                                                    u32 s0, u32 s1, u32 s2, u32 s3, int sr, u32 seed_lo, u32 seed_hi, u32 tensor_id,
                                                    const unsigned* amax_bits, unsigned char* packed, unsigned char* scales,
                                                    float* operand_out, unsigned short* operand_bf16_out) {
  __shared__ float tile[QZ_TR][QZ_LD];
  __shared__ u32 tamax[QZ_TR][8];
  if (blockDim.x != QZ_THREADS) return;
  const int R = transpose ? cols : rows, C = transpose ? rows : cols;
  const Nvfp4TensorScales ts = nvfp4_tensor_scales(__uint_as_float(*amax_bits));
  const int lrow = threadIdx.x >> 3, lseg = threadIdx.x & 7;
  const int c0 = blockIdx.x * QZ_TC, c = c0 + lseg * 16, tilesR = (R + QZ_TR - 1) / QZ_TR;
  for (int tr = blockIdx.y; tr < tilesR; tr += gridDim.y) {
    const int r = tr * QZ_TR + lrow;
    __syncthreads();
    load_tile<L>(tile, x, R, C, transpose, tr * QZ_TR, c0);
    __syncthreads();
    float v[16];
    segment_values(tile, lrow, lseg, rht_size, s0, s1, s2, s3, v);
    u32 bam = abs_max_bits<16>(v);
    if (tile2d) {  // amax over the 16x16 tile: the same segment column in 16 rows
      tamax[lrow][lseg] = bam;
      __syncthreads();
      const int base = lrow & ~15;
#pragma unroll
      for (int k = 0; k < 16; k++) { const u32 t = tamax[base + k][lseg]; bam = t > bam ? t : bam; }
    }
    if (r >= R || c >= C) continue;
    const u32 byte = nvfp4_block_scale_byte(__uint_as_float(bam), ts.mult);
    const float enc = nvfp4_encode_scale(byte, ts.s_dec);
    const long long e0 = (long long)r * C + c;
    Philox4 rnd = {0u, 0u, 0u, 0u};
    if (sr) rnd = philox_sr_block((u64)e0, seed_lo, seed_hi, tensor_id);
    u32 lo = 0, hi = 0;
    float o[16];
#pragma unroll
    for (int i = 0; i < 16; i++) {
      const float y = fmul_rn(v[i], enc);
      const u32 code = sr ? e2m1_sr(y, philox_byte(rnd, i)) : e2m1_rn(y);
      if (i < 8) lo |= code << (4 * i); else hi |= code << (4 * (i - 8));
      o[i] = nvfp4_operand_value(code, byte);
    }
    store_packed16(packed, e0 >> 1, lo, hi);
    scales[(long long)r * (C >> 4) + (c >> 4)] = (unsigned char)byte;
    store_operand16(operand_out, operand_bf16_out, e0, o);
  }
}
extern "C" __global__ void nvfp4_quantize_f32(const float* x, int rows, int cols, int transpose, int tile2d, int rht_size,
                                              int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
                                              unsigned tensor_id, const unsigned* amax_bits, unsigned char* packed, unsigned char* scales,
                                              float* operand_out, unsigned short* operand_bf16_out) {
  nvfp4_quantize_impl<LoadF32>(x, rows, cols, transpose, tile2d, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, sr, seed_lo, seed_hi,
                               tensor_id, amax_bits, packed, scales, operand_out, operand_bf16_out);
}
extern "C" __global__ void nvfp4_quantize_bf16(const unsigned short* x, int rows, int cols, int transpose, int tile2d, int rht_size,
                                               int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
                                               unsigned tensor_id, const unsigned* amax_bits, unsigned char* packed, unsigned char* scales,
                                               float* operand_out, unsigned short* operand_bf16_out) {
  nvfp4_quantize_impl<LoadBF16>(x, rows, cols, transpose, tile2d, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, sr, seed_lo, seed_hi,
                                tensor_id, amax_bits, packed, scales, operand_out, operand_bf16_out);
}

// ================================================================ MXFP4

/**
 * mxfp4_quantize_f32(const float* x, int rows, int cols, int transpose, int scale_rceil, int rht_size,
 *                    int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
 *                    unsigned tensor_id, unsigned char* packed, unsigned char* scales,
 *                    float* operand_out, unsigned short* operand_bf16_out)
 * mxfp4_quantize_bf16(const unsigned short* x, ...same...)
 *   = quantizeMXFP4(x', [R, C], {scaleRounding: scale_rceil ? "rceil" : "floor", rounding, seed,
 *   tensorId, rht: {size: rht_size, signs}}). Needs C % 32 == 0 (and C % rht_size == 0). No tensor
 *   scale, so no amax pass. Block amax: a NaN anywhere in the 32 → 0xFF (as the TS loop).
 *     packed (R, C/2); scales (R, C/32) UE8M0 bytes;
 *     operand_out (R, C) fp32 fl(e2m1 · 2^(b−127)) (dequantizeMXFP4), nullable;
 *     operand_bf16_out the same as BF16 bits (exact), nullable.
 *   Tiled launch (header).
 */
template <typename L>
__device__ __forceinline__ void mxfp4_quantize_impl(const typename L::T* x, int rows, int cols, int transpose, int scale_rceil, int rht_size,
                                                    u32 s0, u32 s1, u32 s2, u32 s3, int sr, u32 seed_lo, u32 seed_hi, u32 tensor_id,
                                                    unsigned char* packed, unsigned char* scales, float* operand_out,
                                                    unsigned short* operand_bf16_out) {
  __shared__ float tile[QZ_TR][QZ_LD];
  if (blockDim.x != QZ_THREADS) return;
  const int R = transpose ? cols : rows, C = transpose ? rows : cols;
  const int lrow = threadIdx.x >> 3, lseg = threadIdx.x & 7;
  const int c0 = blockIdx.x * QZ_TC, c = c0 + lseg * 16, tilesR = (R + QZ_TR - 1) / QZ_TR;
  for (int tr = blockIdx.y; tr < tilesR; tr += gridDim.y) {
    const int r = tr * QZ_TR + lrow;
    __syncthreads();
    load_tile<L>(tile, x, R, C, transpose, tr * QZ_TR, c0);
    __syncthreads();
    float v[16];
    segment_values(tile, lrow, lseg, rht_size, s0, s1, s2, s3, v);
    // the 32-block is this segment and its neighbour lane ^ 1
    u32 bam = abs_max_bits<16>(v);
    int nan = 0;
#pragma unroll
    for (int i = 0; i < 16; i++) nan |= is_nan_f32(v[i]) ? 1 : 0;
    const u32 pb = __shfl_xor_sync(0xffffffffu, bam, 1);
    nan |= __shfl_xor_sync(0xffffffffu, nan, 1);
    bam = pb > bam ? pb : bam;
    if (r >= R || c >= C) continue;
    const float amax = __uint_as_float(bam);
    const u32 byte = nan ? 0xffu : (scale_rceil ? e8m0_rceil_from_amax(amax) : e8m0_floor_from_amax(amax));
    const float enc = mx_encode_multiplier(byte), dec = mx_scale_value(byte);
    const long long e0 = (long long)r * C + c;
    Philox4 rnd = {0u, 0u, 0u, 0u};
    if (sr) rnd = philox_sr_block((u64)e0, seed_lo, seed_hi, tensor_id);
    u32 lo = 0, hi = 0;
    float o[16];
#pragma unroll
    for (int i = 0; i < 16; i++) {
      const float y = fmul_rn(v[i], enc);
      const u32 code = sr ? e2m1_sr(y, philox_byte(rnd, i)) : e2m1_rn(y);
      if (i < 8) lo |= code << (4 * i); else hi |= code << (4 * (i - 8));
      o[i] = fmul_rn(e2m1_decode(code), dec);
    }
    store_packed16(packed, e0 >> 1, lo, hi);
    if ((lseg & 1) == 0) scales[(long long)r * (C >> 5) + (c >> 5)] = (unsigned char)byte;
    store_operand16(operand_out, operand_bf16_out, e0, o);
  }
}
extern "C" __global__ void mxfp4_quantize_f32(const float* x, int rows, int cols, int transpose, int scale_rceil, int rht_size,
                                              int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
                                              unsigned tensor_id, unsigned char* packed, unsigned char* scales, float* operand_out,
                                              unsigned short* operand_bf16_out) {
  mxfp4_quantize_impl<LoadF32>(x, rows, cols, transpose, scale_rceil, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, sr, seed_lo, seed_hi,
                               tensor_id, packed, scales, operand_out, operand_bf16_out);
}
extern "C" __global__ void mxfp4_quantize_bf16(const unsigned short* x, int rows, int cols, int transpose, int scale_rceil, int rht_size,
                                               int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
                                               unsigned tensor_id, unsigned char* packed, unsigned char* scales, float* operand_out,
                                               unsigned short* operand_bf16_out) {
  mxfp4_quantize_impl<LoadBF16>(x, rows, cols, transpose, scale_rceil, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, sr, seed_lo, seed_hi,
                                tensor_id, packed, scales, operand_out, operand_bf16_out);
}

// ================================================================ FP8

/** Scale-block geometry of quantizeFP8 over the quantized (R, C): block (bi) of element (r, c). */
__device__ __forceinline__ int fp8_blocks_per_row(int scaling, int C) { return scaling == 0 ? 1 : (C + 127) >> 7; }
__device__ __forceinline__ long long fp8_block_index(int scaling, int r, int c, int C) {
  if (scaling == 0) return 0;
  const long long br = scaling == 1 ? r : (r >> 7);
  return br * fp8_blocks_per_row(scaling, C) + (c >> 7);
}

/**
 * fp8_block_amax_f32(const float* x, int rows, int cols, int transpose, int scaling, unsigned* block_amax_bits,
 *                    unsigned long long* bad)
 * fp8_block_amax_bf16(const unsigned short* x, ...same...)
 *   block_amax_bits[b] ← max(…, bits of max |x'| over scale block b) ignoring NaN, x' in the
 *   quantized orientation (R, C). scaling 0 = tensor (1 block), 1 = 1x128 ((R, ceil(C/128))
 *   blocks), 2 = 128x128 ((ceil(R/128), ceil(C/128))); edge blocks partial. Host zeroes the
 *   buffer first; afterwards it holds the amaxes as fp32 (pass it to fp8_quantize_* as float*).
 *   Tiled launch (header). Any R, C ≥ 1.
 */
template <typename L>
__device__ __forceinline__ void fp8_block_amax_impl(const typename L::T* x, int rows, int cols, int transpose, int scaling, unsigned* block_amax_bits, unsigned long long* bad) {
  __shared__ float tile[QZ_TR][QZ_LD];
  __shared__ u32 scratch[32];
  if (blockDim.x != QZ_THREADS) return;
  const int R = transpose ? cols : rows, C = transpose ? rows : cols;
  const int lrow = threadIdx.x >> 3, lseg = threadIdx.x & 7;
  const int c0 = blockIdx.x * QZ_TC, tilesR = (R + QZ_TR - 1) / QZ_TR;
  for (int tr = blockIdx.y; tr < tilesR; tr += gridDim.y) {
    __syncthreads();
    load_tile<L>(tile, x, R, C, transpose, tr * QZ_TR, c0, bad);
    __syncthreads();
    float v[16];
    segment_values(tile, lrow, lseg, 0, 0u, 0u, 0u, 0u, v);  // zero padding outside the matrix
    u32 m = abs_max_bits<16>(v);
    if (scaling == 1) {  // one block per tile row: reduce over its 8 lanes
#pragma unroll
      for (int o = 1; o < 8; o <<= 1) { const u32 w = __shfl_xor_sync(0xffffffffu, m, o); m = w > m ? w : m; }
      const int r = tr * QZ_TR + lrow;
      if (lseg == 0 && r < R) atomic_max_nonneg_bits(block_amax_bits + fp8_block_index(1, r, c0, C), m);
    } else {  // the whole tile lies in one block
      m = block_max_bits(m, scratch);
      if (threadIdx.x == 0) atomic_max_nonneg_bits(block_amax_bits + fp8_block_index(scaling, tr * QZ_TR, c0, C), m);
    }
  }
}
extern "C" __global__ void fp8_block_amax_f32(const float* x, int rows, int cols, int transpose, int scaling, unsigned* block_amax_bits, unsigned long long* bad) {
  fp8_block_amax_impl<LoadF32>(x, rows, cols, transpose, scaling, block_amax_bits, bad);
}
extern "C" __global__ void fp8_block_amax_bf16(const unsigned short* x, int rows, int cols, int transpose, int scaling, unsigned* block_amax_bits, unsigned long long* bad) {
  fp8_block_amax_impl<LoadBF16>(x, rows, cols, transpose, scaling, block_amax_bits, bad);
}

/**
 * fp8_quantize_f32(const float* x, int rows, int cols, int transpose, int scaling, int e5m2, int pow2,
 *                  const float* block_amax, unsigned char* data, float* scale_inv, float* operand_out)
 * fp8_quantize_bf16(const unsigned short* x, ...same...)
 *   = quantizeFP8(x', [R, C], {format: e5m2 ? "e5m2" : "e4m3", scaling, pow2Scales: pow2}) with the
 *   block amaxes from fp8_block_amax_*: scale = fp8ScaleFromAmax(amax, 448 | 57344, pow2),
 *   data[r·C + c] = satfinite fp8 of fl(x·scale), scale_inv[b] = fl(1/scale) (same block layout
 *   as block_amax), operand_out (R, C) = fl(decode(data) · scale_inv) (dequantizeFP8), nullable.
 *   (recipes pass pow2 = 1 for 1x128 / 128x128, 0 for tensor: the TS default.) Tiled launch.
 */
template <typename L>
__device__ __forceinline__ void fp8_quantize_impl(const typename L::T* x, int rows, int cols, int transpose, int scaling, int e5m2, int pow2,
                                                  const float* block_amax, unsigned char* data, float* scale_inv, float* operand_out) {
  __shared__ float tile[QZ_TR][QZ_LD];
  if (blockDim.x != QZ_THREADS) return;
  const int R = transpose ? cols : rows, C = transpose ? rows : cols;
  const int lrow = threadIdx.x >> 3, lseg = threadIdx.x & 7;
  const int c0 = blockIdx.x * QZ_TC, c = c0 + lseg * 16, tilesR = (R + QZ_TR - 1) / QZ_TR;
  const float fmax = e5m2 ? 57344.0f : 448.0f;
  for (int tr = blockIdx.y; tr < tilesR; tr += gridDim.y) {
    const int r = tr * QZ_TR + lrow;
    __syncthreads();
    load_tile<L>(tile, x, R, C, transpose, tr * QZ_TR, c0);
    __syncthreads();
    if (r >= R || c >= C) continue;
    const long long bi = fp8_block_index(scaling, r, c, C);
    const float scale = fp8_scale_from_amax(block_amax[bi], fmax, pow2 != 0);
    const float sinv = fdiv_rn(1.0f, scale);
    const bool owner = scaling == 0 ? (r == 0 && c == 0) : scaling == 1 ? (lseg == 0) : (lseg == 0 && (r & 127) == 0);
    if (owner) scale_inv[bi] = sinv;
    const long long e0 = (long long)r * C + c;
#pragma unroll
    for (int i = 0; i < 16; i++) {
      if (c + i < C) {
        const float y = fmul_rn(tile[lrow][lseg * 16 + i], scale);
        const u32 b = e5m2 ? e5m2_encode(y, true) : e4m3_encode(y, true);
        data[e0 + i] = (unsigned char)b;
        if (operand_out) operand_out[e0 + i] = fmul_rn(e5m2 ? e5m2_decode(b) : e4m3_decode(b), sinv);
      }
    }
  }
}
extern "C" __global__ void fp8_quantize_f32(const float* x, int rows, int cols, int transpose, int scaling, int e5m2, int pow2,
                                            const float* block_amax, unsigned char* data, float* scale_inv, float* operand_out) {
  fp8_quantize_impl<LoadF32>(x, rows, cols, transpose, scaling, e5m2, pow2, block_amax, data, scale_inv, operand_out);
}
extern "C" __global__ void fp8_quantize_bf16(const unsigned short* x, int rows, int cols, int transpose, int scaling, int e5m2, int pow2,
                                             const float* block_amax, unsigned char* data, float* scale_inv, float* operand_out) {
  fp8_quantize_impl<LoadBF16>(x, rows, cols, transpose, scaling, e5m2, pow2, block_amax, data, scale_inv, operand_out);
}
