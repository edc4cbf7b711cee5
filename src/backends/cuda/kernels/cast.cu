/**
 * Operand casts for the emulated GEMMs: fp32 → BF16 bits (round to nearest even, NaN → quiet NaN
 * keeping the sign, as src/formats/bf16.ts f32ToBf16Bits) and fp32 → fp32 copy, each optionally
 * transposed (the "columnwise copy": out (cols, rows) = xᵀ). Twin of the bf16 / fp32 branches of
 * recipes/quantize-operand.ts. One thread per output element, grid-stride. Every cast also runs
 * the operand's non-finite check (nonfinite.cuh; `bad` may be null), so no separate scan reads x.
 */
#include "nonfinite.cuh"

__device__ __forceinline__ unsigned short f32_to_bf16_bits(float x) {
  unsigned int b = __float_as_uint(x);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) return (unsigned short)(((b >> 16) & 0x8000u) | 0x7fc0u);
  return (unsigned short)(((b + 0x7fffu + ((b >> 16) & 1u)) >> 16) & 0xffffu);
}

/**
 * cast_bf16_f32(const float* x, int rows, int cols, int transpose, unsigned short* out, unsigned long long* bad)
 * out[e] for e over the output orientation (R, C) = transpose ? (cols, rows) : (rows, cols).
 * Launch: grid ceil(rows·cols / 256) (may be capped), block 256.
 */
extern "C" __global__ void cast_bf16_f32(const float* x, int rows, int cols, int transpose, unsigned short* out, unsigned long long* bad) {
  const long long n = (long long)rows * cols;
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    long long src = e;
    if (transpose) { const long long r = e / rows, c = e % rows; src = c * cols + r; }
    const float v = x[src];
    note_nonfinite(bad, src, v);
    out[e] = f32_to_bf16_bits(v);
  }
}

/** cast_f32_f32(const float* x, int rows, int cols, int transpose, float* out, unsigned long long* bad): copy, optionally transposed. */
extern "C" __global__ void cast_f32_f32(const float* x, int rows, int cols, int transpose, float* out, unsigned long long* bad) {
  const long long n = (long long)rows * cols;
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    long long src = e;
    if (transpose) { const long long r = e / rows, c = e % rows; src = c * cols + r; }
    const float v = x[src];
    note_nonfinite(bad, src, v);
    out[e] = v;
  }
}

/**
 * Transposed casts through a 32x32 shared-memory tile, so that both the reads of x and the
 * writes of xᵀ are coalesced (the plain kernels above read xᵀ with a stride of `cols`).
 * cast_bf16_f32_t(const float* x, int rows, int cols, unsigned short* out, unsigned long long* bad): out (cols, rows) = bf16(xᵀ).
 * cast_f32_f32_t(const float* x, int rows, int cols, float* out, unsigned long long* bad): out (cols, rows) = xᵀ.
 * Launch: grid (ceil(cols/32), ceil(rows/32)), block (32, 8).
 */
template <typename Out, typename Conv>
__device__ __forceinline__ void transpose_tile(const float* x, int rows, int cols, Out* out, Conv conv, unsigned long long* bad) {
  __shared__ float tile[32][33];
  const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int r = r0 + j, c = c0 + threadIdx.x;
    if (r < rows && c < cols) {
      const long long i = (long long)r * cols + c;
      const float v = x[i];
      note_nonfinite(bad, i, v);
      tile[j][threadIdx.x] = v;
    }
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += blockDim.y) {
    const int c = c0 + j, r = r0 + threadIdx.x;
    if (r < rows && c < cols) out[(long long)c * rows + r] = conv(tile[threadIdx.x][j]);
  }
}

struct ToBf16 { __device__ unsigned short operator()(float v) const { return f32_to_bf16_bits(v); } };
struct Same { __device__ float operator()(float v) const { return v; } };

extern "C" __global__ void cast_bf16_f32_t(const float* x, int rows, int cols, unsigned short* out, unsigned long long* bad) { transpose_tile(x, rows, cols, out, ToBf16(), bad); }
extern "C" __global__ void cast_f32_f32_t(const float* x, int rows, int cols, float* out, unsigned long long* bad) { transpose_tile(x, rows, cols, out, Same(), bad); }

/**
 * cast_bf16_f32_v4(const float4* x, long long n4, uint2* out, unsigned long long* bad)
 *   The untransposed BF16 cast, four elements per thread (16-byte loads, 8-byte stores): out[e] =
 *   bf16(x[e]) for e < 4·n4, same rounding and non-finite check as cast_bf16_f32. Needs rows·cols
 *   % 4 == 0 and 16-byte aligned pointers (cudaMalloc'd buffers are). Grid-stride, block 256.
 */
extern "C" __global__ void cast_bf16_f32_v4(const float4* x, long long n4, uint2* out, unsigned long long* bad) {
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n4; e += (long long)gridDim.x * blockDim.x) {
    const float4 v = x[e];
    note_nonfinite(bad, 4 * e, v.x);
    note_nonfinite(bad, 4 * e + 1, v.y);
    note_nonfinite(bad, 4 * e + 2, v.z);
    note_nonfinite(bad, 4 * e + 3, v.w);
    out[e] = make_uint2(f32_to_bf16_bits(v.x) | ((unsigned)f32_to_bf16_bits(v.y) << 16), f32_to_bf16_bits(v.z) | ((unsigned)f32_to_bf16_bits(v.w) << 16));
  }
}
