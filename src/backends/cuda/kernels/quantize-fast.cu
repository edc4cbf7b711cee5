/**
 * The bandwidth twins of quantize.cu's NVFP4 path: the same bytes (codes, E4M3 scales, tensor
 * amax, BF16 GEMM operand) as quantize.cu's nvfp4_quantize_f32 / amax_f32 / rht_amax_f32 and so as
 * the CPU oracle (quant/nvfp4.ts quantizeNVFP4 + nvfp4Operand), laid out for memory throughput:
 * 16-byte loads straight from global memory (no shared-memory staging), each thread owning whole
 * 16-element blocks, RHT16 in registers, 8/16-byte stores, one CTA per tile (no grid-stride tile
 * loop, so many CTAs in flight). quantize.cu stays the plain twin (FP4LM_QUANT_KERNELS=plain).
 * Scalar math: common.cuh (the same functions the plain kernels call). Launch shapes, shape rules
 * and the host's choice between the two: quantize-kernels.md, section "fast kernels".
 *
 * Orientation as in quantize.cu: x is (rows, cols) row-major FP32; the quantized orientation is
 * (R, C) = transpose ? (cols, rows) : (rows, cols); blocks, RHT groups and the SR element index
 * e = r·C + c run along C of it; outputs are row-major in it.
 *
 * Requirements (the host checks them and otherwise runs quantize.cu): x, packed, scales and the
 * operands 16-byte aligned (cudaMalloc'd); C % 16 == 0; RHT size 0, 2, 4, 8 or 16; tile2d R % 16 == 0.
 *
 * Build (NVRTC): --gpu-architecture=sm_90a --std=c++17 --fmad=false (as quantize.cu).
 */
#include "common.cuh"
#include "nonfinite.cuh"
#include "row16.cuh"

using namespace fp4q;

// row kernels: CTA = 256 threads = 16 rows x 16 blocks of 16 (a 16x256 tile of (R, C))
#define QF_ROW_THREADS 256
// column kernels: CTA = 256 threads = 8 warps over a 64x64 tile of x; warp w takes original rows
// 16·(w % 4) .. +15 and columns 32·(w / 4) .. +31, lane l one column (a 128-byte row segment per
// load instruction), i.e. one 16-block of one quantized row per thread, as in the row kernels
#define QF_COL_THREADS 256

// ---------------------------------------------------------------- per-thread pieces

/** 16 rows of one column at p (row stride `cols` floats): v[i] = x[r0 + i][c], the 16-element block of quantized row c. Zeros when !valid. */
__device__ __forceinline__ void load_col16(const float* __restrict__ p, long long cols, bool valid, float v[16]) {
#pragma unroll
  for (int i = 0; i < 16; i++) v[i] = valid ? p[i * cols] : 0.0f;
}

/** The column kernels' thread → (first original row r0 of its block, original column c) in tile blockIdx.x. */
__device__ __forceinline__ void col_thread(int rows, int cols, int& r0, int& c) {
  const int tilesCols = (cols + 63) >> 6;
  const int band = (int)(blockIdx.x / tilesCols), stripe = (int)(blockIdx.x % tilesCols);
  const int w = threadIdx.x >> 5;
  r0 = band * 64 + (w & 3) * 16;
  c = stripe * 64 + (w >> 2) * 32 + (threadIdx.x & 31);
}

/**
 * In place: v ← BF16(RHT_n(v)) for a block that starts at a multiple of 16 of its row, n ∈ {2, 4,
 * 8, 16}: group position of element i is i mod n, so every butterfly stage stays in the thread.
 * The same common.cuh steps as quantize.cu's segment_values (signs, stages h < n, one scale, one
 * rounding), hence the same bits.
 */
__device__ __forceinline__ void rht_block16(float v[16], int n, u32 s0, u32 s1, u32 s2, u32 s3) {
  double d[16];
  rht_load_signed(v, d, 0, n, s0, s1, s2, s3);
  rht_local_stages(d, n);
#pragma unroll
  for (int i = 0; i < 16; i++) v[i] = bf16_to_f32(rht_output_bf16(d[i], n));
}

/**
 * Quantize one 16-element block whose first element has flat index e0 (e0 % 16 == 0) in the
 * quantized orientation, with block amax `bam` (bits), and write its 8 code bytes, its scale byte
 * (index e0 / 16 = r·C/16 + c/16) and its 16 operand values (each output skipped where its pointer
 * is null). Arithmetic = nvfp4_quantize_impl.
 */
template <bool SR>
__device__ __forceinline__ void emit_block(const float v[16], u32 bam, const Nvfp4TensorScales& ts, u32 seed_lo, u32 seed_hi, u32 tensor_id,
                                           long long e0, unsigned char* __restrict__ packed, unsigned char* __restrict__ scales,
                                           float* __restrict__ operand_out, unsigned short* __restrict__ operand_bf16_out) {
  const u32 byte = nvfp4_block_scale_byte(__uint_as_float(bam), ts.mult);
  const float enc = nvfp4_encode_scale(byte, ts.s_dec);
  const float sf = e4m3_decode(byte);
  Philox4 rnd = {0u, 0u, 0u, 0u};
  if (SR) rnd = philox_sr_block((u64)e0, seed_lo, seed_hi, tensor_id);
  u32 lo = 0, hi = 0;
  float o[16];
#pragma unroll
  for (int i = 0; i < 16; i++) {
    const float y = fmul_rn(v[i], enc);
    const u32 code = SR ? e2m1_sr(y, philox_byte(rnd, i)) : e2m1_rn(y);
    if (i < 8) lo |= code << (4 * i); else hi |= code << (4 * (i - 8));
    o[i] = fmul_rn(e2m1_decode(code), sf);  // = nvfp4_operand_value(code, byte)
  }
  // packed and scales are null where only the GEMM operand is wanted (training: nobody reads them)
  if (packed) *reinterpret_cast<uint2*>(packed + (e0 >> 1)) = make_uint2(lo, hi);
  if (scales) scales[e0 >> 4] = (unsigned char)byte;
  if (operand_bf16_out) {
    // e2m1 · sf has ≤ 5 significant bits and BF16's range: the top half of the fp32 is exact
    u32 w[8];
#pragma unroll
    for (int k = 0; k < 8; k++) w[k] = (__float_as_uint(o[2 * k]) >> 16) | (__float_as_uint(o[2 * k + 1]) & 0xffff0000u);
    uint4* p = reinterpret_cast<uint4*>(operand_bf16_out + e0);
    p[0] = make_uint4(w[0], w[1], w[2], w[3]);
    p[1] = make_uint4(w[4], w[5], w[6], w[7]);
  }
  if (operand_out) {
    float4* p = reinterpret_cast<float4*>(operand_out + e0);
#pragma unroll
    for (int k = 0; k < 4; k++) p[k] = make_float4(o[4 * k], o[4 * k + 1], o[4 * k + 2], o[4 * k + 3]);
  }
}

// ================================================================ amax (no RHT), 16-byte loads

/**
 * amax_v4_f32(const float4* x, long long n4, unsigned* amax_bits, unsigned long long* bad)
 *   amax_f32 on 4·n4 elements read as float4 (x 16-byte aligned, n % 4 == 0): amax_bits ←
 *   max(amax_bits, bits of max |x| ignoring NaN); the non-finite check of element 4·i + k into
 *   `bad` (nullable). Host zeroes *amax_bits. Grid-stride, any grid; blockDim 256.
 */
extern "C" __global__ void __launch_bounds__(256) amax_v4_f32(const float4* __restrict__ x, long long n4, unsigned* amax_bits, unsigned long long* bad) {
  __shared__ u32 scratch[32];
  const long long stride = (long long)gridDim.x * blockDim.x;
  u32 m = 0;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  // four independent 16-byte loads in flight per thread, then the tail one at a time
  for (; i + 3 * stride < n4; i += 4 * stride) {
    float4 q[4];
#pragma unroll
    for (int u = 0; u < 4; u++) q[u] = x[i + u * stride];
#pragma unroll
    for (int u = 0; u < 4; u++) {
      const long long e = 4 * (i + u * stride);
      const float f[4] = {q[u].x, q[u].y, q[u].z, q[u].w};
#pragma unroll
      for (int k = 0; k < 4; k++) {
        note_nonfinite(bad, e + k, f[k]);
        const u32 a = abs_bits_nonan(f[k]);
        m = a > m ? a : m;
      }
    }
  }
  for (; i < n4; i += stride) {
    const float4 q = x[i];
    const float f[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
      note_nonfinite(bad, 4 * i + k, f[k]);
      const u32 a = abs_bits_nonan(f[k]);
      m = a > m ? a : m;
    }
  }
  m = block_max_bits(m, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_bits, m);
}

// ================================================================ RHT amax (post-transform, per orientation)

/**
 * nvfp4_rht_amax_rows_f32(const float* x, int R, int C, int size, int s0, int s1, int s2, int s3,
 *                         unsigned* amax_bits, unsigned long long* bad)
 *   rht_amax_f32 with transpose = 0 (x is (R, C)): amax_bits ← max(…, max |BF16(RHT_size(x))|),
 *   size ∈ {2, 4, 8, 16}, C % 16 == 0; non-finite check of x into `bad`. Host zeroes *amax_bits.
 *   Grid: ceil(R/16)·ceil(C/256) CTAs of 256 (tile t: row band t / ceil(C/256), column band t % …).
 */
extern "C" __global__ void __launch_bounds__(QF_ROW_THREADS) nvfp4_rht_amax_rows_f32(const float* __restrict__ x, int R, int C, int size, int s0, int s1, int s2, int s3,
                                                                                   unsigned* amax_bits, unsigned long long* bad) {
  __shared__ u32 scratch[32];
  const int tilesC = (C + 255) >> 8;
  const int tr = (int)(blockIdx.x / tilesC), tc = (int)(blockIdx.x % tilesC);
  const int r = tr * 16 + (threadIdx.x >> 4), c = tc * 256 + (threadIdx.x & 15) * 16;
  const bool valid = r < R && c < C;
  const long long e0 = (long long)r * C + c;
  float v[16];
  load_row16_checked(x, e0, valid, v, bad);
  if (size == 16) rht_block16(v, 16, (u32)s0, (u32)s1, (u32)s2, (u32)s3);
  else rht_block16(v, size, (u32)s0, (u32)s1, (u32)s2, (u32)s3);
  u32 m = abs_max_bits<16>(v);  // zero padding transforms to zeros
  m = block_max_bits(m, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_bits, m);
}

/**
 * nvfp4_rht_amax_cols_f32(const float* x, int rows, int cols, int size, int s0, int s1, int s2, int s3,
 *                         unsigned* amax_bits, unsigned long long* bad)
 *   rht_amax_f32 with transpose = 1: the RHT runs over groups of `size` consecutive ORIGINAL rows
 *   of each column (the quantized orientation is xᵀ); size ∈ {2, 4, 8, 16}, rows % 16 == 0; any
 *   cols; non-finite check of x (flat row-major index) into `bad`. Host zeroes *amax_bits.
 *   Grid: ceil(rows/64)·ceil(cols/64) CTAs of 256 (tile t: row band t / ceil(cols/64), column
 *   stripe t % ceil(cols/64)).
 */
extern "C" __global__ void __launch_bounds__(QF_COL_THREADS) nvfp4_rht_amax_cols_f32(const float* __restrict__ x, int rows, int cols, int size, int s0, int s1, int s2, int s3,
                                                                                   unsigned* amax_bits, unsigned long long* bad) {
  __shared__ u32 scratch[32];
  int r0, c;
  col_thread(rows, cols, r0, c);
  const bool valid = r0 < rows && c < cols;
  const long long i0 = (long long)r0 * cols + c;
  float v[16];
  load_col16(x + (valid ? i0 : 0), cols, valid, v);
  if (valid) {
#pragma unroll
    for (int i = 0; i < 16; i++) note_nonfinite(bad, i0 + (long long)i * cols, v[i]);
  }
  if (size == 16) rht_block16(v, 16, (u32)s0, (u32)s1, (u32)s2, (u32)s3);
  else rht_block16(v, size, (u32)s0, (u32)s1, (u32)s2, (u32)s3);
  u32 m = abs_max_bits<16>(v);
  m = block_max_bits(m, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_bits, m);
}

// ================================================================ NVFP4 quantize

/**
 * The row kernel's body: the thread's block is row r = 16·(t / tilesC) + threadIdx/16, columns
 * c = 256·(t % tilesC) + 16·(threadIdx % 16) .. +15 of (R, C) = x's own orientation.
 */
template <bool SR>
__device__ __forceinline__ void nvfp4_rows_body(const float* __restrict__ x, int R, int C, int tile2d, int rht_size, u32 s0, u32 s1, u32 s2, u32 s3,
                                                u32 seed_lo, u32 seed_hi, u32 tensor_id, const unsigned* amax_bits, unsigned char* packed,
                                                unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out) {
  __shared__ u32 tam[16][17];
  const int tilesC = (C + 255) >> 8;
  const int tr = (int)(blockIdx.x / tilesC), tc = (int)(blockIdx.x % tilesC);
  const int lr = threadIdx.x >> 4, seg = threadIdx.x & 15;
  const int r = tr * 16 + lr, c = tc * 256 + seg * 16;
  const bool valid = r < R && c < C;
  const long long e0 = (long long)r * C + c;
  float v[16];
  load_row16(x + (valid ? e0 : 0), valid, v);
  if (rht_size == 16) rht_block16(v, 16, s0, s1, s2, s3);
  else if (rht_size > 0) rht_block16(v, rht_size, s0, s1, s2, s3);
  u32 bam = abs_max_bits<16>(v);
  if (tile2d) {  // the 16x16 tile = this block's column of blocks over the CTA's 16 rows (R % 16 == 0)
    tam[lr][seg] = bam;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 16; k++) { const u32 t = tam[k][seg]; bam = t > bam ? t : bam; }
  }
  if (!valid) return;
  const Nvfp4TensorScales ts = nvfp4_tensor_scales(__uint_as_float(*amax_bits));
  emit_block<SR>(v, bam, ts, seed_lo, seed_hi, tensor_id, e0, packed, scales, operand_out, operand_bf16_out);
}

/**
 * nvfp4_quantize_rows_f32(const float* x, int R, int C, int tile2d, int rht_size, int s0, int s1, int s2, int s3,
 *                         int sr, unsigned seed_lo, unsigned seed_hi, unsigned tensor_id, const unsigned* amax_bits,
 *                         unsigned char* packed, unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out)
 *   = nvfp4_quantize_f32 with transpose = 0 (same outputs, bytes and arguments less `transpose`).
 *   rht_size ∈ {0, 2, 4, 8, 16}; tile2d needs R % 16 == 0. Grid: ceil(R/16)·ceil(C/256) CTAs of 256.
 */
extern "C" __global__ void __launch_bounds__(QF_ROW_THREADS) nvfp4_quantize_rows_f32(const float* __restrict__ x, int R, int C, int tile2d, int rht_size,
                                                                                   int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
                                                                                   unsigned tensor_id, const unsigned* amax_bits, unsigned char* packed,
                                                                                   unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out) {
  if (sr) nvfp4_rows_body<true>(x, R, C, tile2d, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, seed_lo, seed_hi, tensor_id, amax_bits, packed, scales, operand_out, operand_bf16_out);
  else nvfp4_rows_body<false>(x, R, C, tile2d, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, seed_lo, seed_hi, tensor_id, amax_bits, packed, scales, operand_out, operand_bf16_out);
}

/**
 * The column kernel's body: x is (rows, cols); the quantized orientation is (R, C) = (cols, rows).
 * The thread (col_thread) owns original column c, rows r0 .. r0+15: the 16-block of quantized row c
 * at quantized column r0 (flat index e0 = c·rows + r0).
 */
template <bool SR>
__device__ __forceinline__ void nvfp4_cols_body(const float* __restrict__ x, int rows, int cols, int tile2d, int rht_size, u32 s0, u32 s1, u32 s2, u32 s3,
                                                u32 seed_lo, u32 seed_hi, u32 tensor_id, const unsigned* amax_bits, unsigned char* packed,
                                                unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out) {
  int r0, c;
  col_thread(rows, cols, r0, c);
  const bool valid = r0 < rows && c < cols;
  float v[16];
  load_col16(x + (valid ? (long long)r0 * cols + c : 0), cols, valid, v);
  if (rht_size == 16) rht_block16(v, 16, s0, s1, s2, s3);
  else if (rht_size > 0) rht_block16(v, rht_size, s0, s1, s2, s3);
  u32 bam = abs_max_bits<16>(v);
  if (tile2d) {  // the 16x16 tile: quantized rows c & ~15 .. +15 = lanes 16k .. 16k+15 (cols % 16 == 0), same r0
#pragma unroll
    for (int o = 1; o < 16; o <<= 1) { const u32 t = __shfl_xor_sync(0xffffffffu, bam, o); bam = t > bam ? t : bam; }
  }
  if (!valid) return;
  const Nvfp4TensorScales ts = nvfp4_tensor_scales(__uint_as_float(*amax_bits));
  emit_block<SR>(v, bam, ts, seed_lo, seed_hi, tensor_id, (long long)c * rows + r0, packed, scales, operand_out, operand_bf16_out);
}

/**
 * nvfp4_quantize_cols_f32(const float* x, int rows, int cols, int tile2d, int rht_size, int s0, int s1, int s2, int s3,
 *                         int sr, unsigned seed_lo, unsigned seed_hi, unsigned tensor_id, const unsigned* amax_bits,
 *                         unsigned char* packed, unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out)
 *   = nvfp4_quantize_f32 with transpose = 1 (x is (rows, cols); outputs (cols, rows)-oriented).
 *   rows % 16 == 0 (tile2d: cols % 16 == 0), rht_size ∈ {0, 2, 4, 8, 16}.
 *   Grid: ceil(rows/64)·ceil(cols/64) CTAs of 256.
 */
extern "C" __global__ void __launch_bounds__(QF_COL_THREADS) nvfp4_quantize_cols_f32(const float* __restrict__ x, int rows, int cols, int tile2d, int rht_size,
                                                                                   int s0, int s1, int s2, int s3, int sr, unsigned seed_lo, unsigned seed_hi,
                                                                                   unsigned tensor_id, const unsigned* amax_bits, unsigned char* packed,
                                                                                   unsigned char* scales, float* operand_out, unsigned short* operand_bf16_out) {
  if (sr) nvfp4_cols_body<true>(x, rows, cols, tile2d, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, seed_lo, seed_hi, tensor_id, amax_bits, packed, scales, operand_out, operand_bf16_out);
  else nvfp4_cols_body<false>(x, rows, cols, tile2d, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, seed_lo, seed_hi, tensor_id, amax_bits, packed, scales, operand_out, operand_bf16_out);
}

// ================================================================ both orientations in one pass (Dgrad dY and Wgrad dYᵀ)

/**
 * The dual kernels' 64x64 tile of x (rows, cols) and the two blocks each thread owns in it: the row
 * block (x's own orientation) row r = 64·band + threadIdx/4, columns c = 64·stripe + 16·(threadIdx % 4)
 * .. +15; the column block as the column kernels (col_thread). Both sets tile x exactly once.
 */
__device__ __forceinline__ void dual_row_thread(int cols, int& r, int& c) {
  const int tilesCols = (cols + 63) >> 6;
  const int band = (int)(blockIdx.x / tilesCols), stripe = (int)(blockIdx.x % tilesCols);
  r = band * 64 + (threadIdx.x >> 2);
  c = stripe * 64 + (threadIdx.x & 3) * 16;
}

/**
 * nvfp4_dual_amax_f32(const float* x, int rows, int cols, int size, int s0, int s1, int s2, int s3,
 *                     unsigned* amax_rows, unsigned* amax_cols, unsigned long long* bad)
 *   One read of x for both tensor amaxes of a two-orientation quantize: amax_rows ← max(…, amax_v4_f32's
 *   value: max |x| ignoring NaN), amax_cols ← max(…, nvfp4_rht_amax_cols_f32's value: max |BF16(RHT_size)|
 *   over groups of original rows; size 0 = no transform: the same as amax_rows); the non-finite check of
 *   x (flat row-major index) into `bad`. rows % 16 == 0, cols % 16 == 0, x 16-byte aligned. Host zeroes
 *   both amaxes. Grid: ceil(rows/64)·ceil(cols/64) CTAs of 256.
 */
extern "C" __global__ void __launch_bounds__(QF_COL_THREADS) nvfp4_dual_amax_f32(const float* __restrict__ x, int rows, int cols, int size, int s0, int s1, int s2, int s3,
                                                                               unsigned* amax_rows, unsigned* amax_cols, unsigned long long* bad) {
  __shared__ u32 scratch[32];
  int r, c;
  dual_row_thread(cols, r, c);
  const bool valid = r < rows && c < cols;
  const long long e0 = (long long)r * cols + c;
  float v[16];
  load_row16_checked(x, e0, valid, v, bad);
  u32 mr = abs_max_bits<16>(v);
  int r0, cc;
  col_thread(rows, cols, r0, cc);
  const bool cvalid = r0 < rows && cc < cols;
  load_col16(x + (cvalid ? (long long)r0 * cols + cc : 0), cols, cvalid, v);  // the tile again: L1/L2, not HBM
  if (size == 16) rht_block16(v, 16, (u32)s0, (u32)s1, (u32)s2, (u32)s3);
  else if (size > 0) rht_block16(v, size, (u32)s0, (u32)s1, (u32)s2, (u32)s3);
  u32 mc = abs_max_bits<16>(v);
  mr = block_max_bits(mr, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_rows, mr);
  mc = block_max_bits(mc, scratch);
  if (threadIdx.x == 0) atomic_max_nonneg_bits(amax_cols, mc);
}

template <bool SRR, bool SRC>
__device__ __forceinline__ void nvfp4_dual_body(const float* __restrict__ x, int rows, int cols, int rht_size, u32 s0, u32 s1, u32 s2, u32 s3,
                                                u32 rlo, u32 rhi, u32 rid, u32 clo, u32 chi, u32 cid, const unsigned* amax_rows, const unsigned* amax_cols,
                                                unsigned char* packed_r, unsigned char* scales_r, unsigned short* op_r,
                                                unsigned char* packed_c, unsigned char* scales_c, unsigned short* op_c) {
  int r, c;
  dual_row_thread(cols, r, c);
  float v[16];
  if (r < rows && c < cols) {
    const long long e0 = (long long)r * cols + c;
    load_row16(x + e0, true, v);
    emit_block<SRR>(v, abs_max_bits<16>(v), nvfp4_tensor_scales(__uint_as_float(*amax_rows)), rlo, rhi, rid, e0, packed_r, scales_r, nullptr, op_r);
  }
  int r0, cc;
  col_thread(rows, cols, r0, cc);
  if (r0 < rows && cc < cols) {
    load_col16(x + (long long)r0 * cols + cc, cols, true, v);
    if (rht_size == 16) rht_block16(v, 16, s0, s1, s2, s3);
    else if (rht_size > 0) rht_block16(v, rht_size, s0, s1, s2, s3);
    emit_block<SRC>(v, abs_max_bits<16>(v), nvfp4_tensor_scales(__uint_as_float(*amax_cols)), clo, chi, cid, (long long)cc * rows + r0, packed_c, scales_c, nullptr, op_c);
  }
}

/**
 * nvfp4_dual_quantize_f32(const float* x, int rows, int cols, int rht_size, int s0, int s1, int s2, int s3,
 *                         int sr_r, unsigned lo_r, unsigned hi_r, unsigned id_r, int sr_c, unsigned lo_c, unsigned hi_c, unsigned id_c,
 *                         const unsigned* amax_rows, const unsigned* amax_cols,
 *                         unsigned char* packed_r, unsigned char* scales_r, unsigned short* op_r,
 *                         unsigned char* packed_c, unsigned char* scales_c, unsigned short* op_c)
 *   One read of x for two NVFP4 quantizations with 1x16 blocks: x itself (rows, cols), no RHT, as
 *   nvfp4_quantize_rows_f32 with tile2d 0, rht 0 (codes packed_r, scales scales_r, BF16 operand op_r),
 *   and xᵀ (cols, rows) with RHT rht_size ∈ {0, 2, 4, 8, 16} as nvfp4_quantize_cols_f32 with tile2d 0
 *   (packed_c, scales_c, op_c): the same bytes as the two kernels, each with its own SR stream (sr,
 *   seed, tensor id) and tensor amax (nvfp4_dual_amax_f32). packed/scales nullable (not written).
 *   rows % 16 == 0, cols % 16 == 0, 16-byte aligned. Grid: ceil(rows/64)·ceil(cols/64) CTAs of 256.
 */
extern "C" __global__ void __launch_bounds__(QF_COL_THREADS) nvfp4_dual_quantize_f32(const float* __restrict__ x, int rows, int cols, int rht_size,
                                                                                   int s0, int s1, int s2, int s3, int sr_r, unsigned lo_r, unsigned hi_r, unsigned id_r,
                                                                                   int sr_c, unsigned lo_c, unsigned hi_c, unsigned id_c,
                                                                                   const unsigned* amax_rows, const unsigned* amax_cols,
                                                                                   unsigned char* packed_r, unsigned char* scales_r, unsigned short* op_r,
                                                                                   unsigned char* packed_c, unsigned char* scales_c, unsigned short* op_c) {
#define FP4_DUAL(A, B) nvfp4_dual_body<A, B>(x, rows, cols, rht_size, (u32)s0, (u32)s1, (u32)s2, (u32)s3, lo_r, hi_r, id_r, lo_c, hi_c, id_c, amax_rows, amax_cols, \
                                            packed_r, scales_r, op_r, packed_c, scales_c, op_c)
  if (sr_r) { if (sr_c) FP4_DUAL(true, true); else FP4_DUAL(true, false); }
  else { if (sr_c) FP4_DUAL(false, true); else FP4_DUAL(false, false); }
#undef FP4_DUAL
}
