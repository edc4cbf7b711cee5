/**
 * Quantization telemetry of one GEMM operand (issue 5, part 3): one grid-stride pass over the
 * operand in its quantized orientation (R, C) that accumulates the sums of the CPU reference
 * recipes/operand-stats.ts (quantSums); the host turns them into relative error, shares flushed
 * and saturated, and amax after one read back. Runs on telemetry steps only, so it favours
 * plainness over speed: the RHT reference is recomputed per element (O(size) loads).
 * Summation order differs from the CPU (double atomics per warp): compare within tolerance.
 */

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;

__device__ __forceinline__ float load_xt(const float* x, int cols, int transpose, long long r, long long c) {
  return transpose ? x[c * cols + r] : x[r * cols + c];
}

__device__ __forceinline__ int hadamard_sign(int j, int k) { return (__popc(j & k) & 1) ? -1 : 1; }

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ u32 warp_max_u32(u32 v) {
  for (int o = 16; o > 0; o >>= 1) { const u32 w = __shfl_down_sync(0xffffffffu, v, o); v = w > v ? w : v; }
  return v;
}

/**
 * quant_stats_f32(const float* x, int rows, int cols, int transpose, int rht_size, int s0, int s1, int s2, int s3,
 *                 const void* operand, int operand_f32, const unsigned* amax_bits, const unsigned char* codes,
 *                 int code_kind, double* sums, unsigned long long* counts, unsigned* amax_out)
 *   x (rows, cols) fp32, the operand's high-precision source; x' = transpose ? xᵀ : x is (R, C).
 *   ref(r, c) = x'(r, c), or with rht_size > 0 (a power of two dividing C; sign bit j of s0..s3
 *   set = sign −1): Σ_j s_j·x'(r, g + j)·H[j][c − g] / sqrt(size), g = c − c % size, in double
 *   rounded to fp32 (hadamard.ts rht with output "fp32").
 *   q(r, c) = operand[r·C + c] (fp32 if operand_f32, else BF16 bits), times fl(amax·fl(1/2688))
 *   when amax_bits is not null (NVFP4 operands hold e2m1·sf; the tensor scale lives in alpha).
 *   codes: code_kind 0 = none (never saturated), 1 = E2M1 nibbles (element 2i in the low nibble
 *   of byte i; largest magnitude code 7), 2 = E4M3 bytes (0x7e), 3 = E5M2 bytes (0x7b).
 *   Accumulates (the host zeroes them first): sums[0] += Σ (q − ref)², sums[1] += Σ ref²;
 *   counts[0] += #(ref ≠ 0), counts[1] += #(ref ≠ 0, q = 0), counts[2] += #(|ref| > |q|, largest
 *   code); amax_out ← max(amax_out, bits of max |ref|).
 *   grid: ceil(R·C / 256) (may be capped: grid-stride); block: 256 (a multiple of 32); shared: none.
 */
extern "C" __global__ void quant_stats_f32(const float* x, int rows, int cols, int transpose, int rht_size, int s0, int s1, int s2, int s3,
                                           const void* operand, int operand_f32, const unsigned* amax_bits, const unsigned char* codes,
                                           int code_kind, double* sums, u64* counts, unsigned* amax_out) {
  const long long R = transpose ? cols : rows, C = transpose ? rows : cols, n = R * C;
  const u32 mask[4] = {(u32)s0, (u32)s1, (u32)s2, (u32)s3};
  const float qscale = amax_bits ? __fmul_rn(__uint_as_float(*amax_bits), 1.0f / 2688.0f) : 1.0f;
  const double inv_sqrt = rht_size > 0 ? 1.0 / sqrt((double)rht_size) : 1.0;
  double e2 = 0.0, r2 = 0.0;
  u64 nonzero = 0, flushed = 0, saturated = 0;
  u32 amax = 0;
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const long long r = e / C, c = e % C;
    float ref;
    if (rht_size > 0) {
      const long long g = c - c % rht_size;
      const int k = (int)(c - g);
      double acc = 0.0;
      for (int j = 0; j < rht_size; j++) {
        const double v = (double)load_xt(x, cols, transpose, r, g + j);
        const int s = ((mask[j >> 5] >> (j & 31)) & 1u) ? -1 : 1;
        acc += (s * hadamard_sign(j, k)) * v;
      }
      ref = (float)(acc * inv_sqrt);
    } else {
      ref = load_xt(x, cols, transpose, r, c);
    }
    float q = operand_f32 ? ((const float*)operand)[e] : __uint_as_float((u32)((const u16*)operand)[e] << 16);
    if (amax_bits) q = __fmul_rn(q, qscale);
    const double d = (double)q - (double)ref;
    e2 += d * d;
    r2 += (double)ref * (double)ref;
    const float a = fabsf(ref);
    const u32 ab = __float_as_uint(a);
    amax = ab > amax ? ab : amax;
    if (ref != 0.0f) {
      nonzero++;
      if (q == 0.0f) flushed++;
    }
    if (code_kind != 0 && a > fabsf(q)) {
      bool top;
      if (code_kind == 1) top = ((codes[e >> 1] >> (4 * (e & 1))) & 7u) == 7u;
      else top = (codes[e] & 0x7fu) == (code_kind == 2 ? 0x7eu : 0x7bu);
      if (top) saturated++;
    }
  }
  e2 = warp_sum_d(e2);
  r2 = warp_sum_d(r2);
  nonzero = warp_sum_u64(nonzero);
  flushed = warp_sum_u64(flushed);
  saturated = warp_sum_u64(saturated);
  amax = warp_max_u32(amax);
  if ((threadIdx.x & 31) == 0) {
    atomicAdd(sums, e2);
    atomicAdd(sums + 1, r2);
    atomicAdd(counts, nonzero);
    atomicAdd(counts + 1, flushed);
    atomicAdd(counts + 2, saturated);
    atomicMax(amax_out, amax);
  }
}
