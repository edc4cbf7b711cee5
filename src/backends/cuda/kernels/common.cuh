/**
 * Bit-exact scalar helpers of the quantization kernels (quantize.cu): fp32/fp64 bit views, E2M1
 * encode (RN and the `trunc8` SR rule), E4M3/E5M2 encode (RNE, satfinite or not) and decode,
 * BF16 rounding from fp32 and from an exact binary64 value, Philox4x32-10, the NVFP4 scale chain,
 * the MXFP4 (UE8M0) scale rules, the FP8 scale rule and the pieces of the random Hadamard
 * transform. Plus, under CUDA only, warp/block max reductions on amax bit patterns.
 *
 * Twins (the bit-exact oracle): formats/e2m1.ts, formats/minifloat.ts (fast path), formats/bf16.ts
 * (roundF64ToBf16), quant/philox.ts, quant/nvfp4.ts (nvfp4TensorScales, nvfp4BlockScaleByte,
 * nvfp4EncodeScales), quant/mxfp4.ts, quant/fp8.ts, quant/hadamard.ts. Arithmetic order:
 * docs/numerics.md §1, §2, §5, §6, §8.2.
 *
 * Every function marked FP4Q_HD also compiles as plain host C++ (g++), so that
 * scripts/test-common-cuh.sh can hold it against the TypeScript oracle on millions of inputs
 * without a GPU. On the device every fp32/fp64 operation is an explicit PTX `.rn` instruction
 * without `.ftz` and every comparison that could meet a subnormal is done on the bits, so the
 * results do not depend on --fmad, -ftz or --prec-div (still: build with --fmad=false and no
 * fast math, as the rest of the backend does). On the host: x86-64 SSE arithmetic, compile with
 * -ffp-contract=off -fno-fast-math. No system headers (NVRTC has none).
 */
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FP4Q_HD __host__ __device__ __forceinline__
#define FP4Q_CUDA 1
#else
#define FP4Q_HD inline
#endif

namespace fp4q {

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

// ---------------------------------------------------------------- bit views and IEEE operations

FP4Q_HD u32 f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  u32 u;
  __builtin_memcpy(&u, &f, 4);
  return u;
#endif
}
FP4Q_HD float bits_f32(u32 u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
#endif
}
FP4Q_HD u64 f64_bits(double d) {
#if defined(__CUDA_ARCH__)
  return (u64)__double_as_longlong(d);
#else
  u64 u;
  __builtin_memcpy(&u, &d, 8);
  return u;
#endif
}
FP4Q_HD double bits_f64(u64 u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double((long long)u);
#else
  double d;
  __builtin_memcpy(&d, &u, 8);
  return d;
#endif
}

/** fl(a·b), fl(a/b), fl(a+b), fl(a−b) in binary32: one IEEE operation, RNE, subnormals kept. */
FP4Q_HD float fmul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  float d;
  asm("mul.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
#else
  return a * b;
#endif
}
FP4Q_HD float fdiv_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  float d;
  asm("div.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
#else
  return a / b;
#endif
}
FP4Q_HD float fsub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  float d;
  asm("sub.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
#else
  return a - b;
#endif
}
/** The same in binary64 (JavaScript's number arithmetic). */
FP4Q_HD double dadd_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  double d;
  asm("add.rn.f64 %0, %1, %2;" : "=d"(d) : "d"(a), "d"(b));
  return d;
#else
  return a + b;
#endif
}
FP4Q_HD double dsub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  double d;
  asm("sub.rn.f64 %0, %1, %2;" : "=d"(d) : "d"(a), "d"(b));
  return d;
#else
  return a - b;
#endif
}
FP4Q_HD double dmul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  double d;
  asm("mul.rn.f64 %0, %1, %2;" : "=d"(d) : "d"(a), "d"(b));
  return d;
#else
  return a * b;
#endif
}
FP4Q_HD double ddiv_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  double d;
  asm("div.rn.f64 %0, %1, %2;" : "=d"(d) : "d"(a), "d"(b));
  return d;
#else
  return a / b;
#endif
}
/** Exact fp32 → fp64 widening (subnormals kept even under -ftz). */
FP4Q_HD double f32_to_f64(float a) {
#if defined(__CUDA_ARCH__)
  double d;
  asm("cvt.f64.f32 %0, %1;" : "=d"(d) : "f"(a));
  return d;
#else
  return (double)a;
#endif
}

constexpr u32 F32_ABS = 0x7fffffffu;
constexpr u32 F32_INF = 0x7f800000u;
constexpr u32 F32_FLT_MAX = 0x7f7fffffu;
constexpr u32 F32_QNAN = 0x7fc00000u;
/** fl(1/6) = 0x3E2AAAAB: TE folds it once per tensor into the block-scale multiplier. */
constexpr u32 F32_INV6 = 0x3e2aaaabu;

FP4Q_HD bool is_nan_f32(float x) { return (f32_bits(x) & F32_ABS) > F32_INF; }
FP4Q_HD bool is_finite_bits(u32 b) { return (b & F32_INF) != F32_INF; }
/** min(x, FLT_MAX) with Math.min semantics for x ≥ 0 or NaN: +inf → FLT_MAX, NaN stays NaN. */
FP4Q_HD float min_flt_max(float x) {
  const u32 b = f32_bits(x);
  return (b == F32_INF) ? bits_f32(F32_FLT_MAX) : x;
}

/**
 * |x| as amax bits: the bit pattern of |x| when x is not NaN, else 0. For non-negative floats the
 * unsigned order of the bits is the float order, so max over these = fmaxf from 0 ignoring NaN
 * (TE's amax, and `if (a > m) m = a` in the TS reference).
 */
FP4Q_HD u32 abs_bits_nonan(float x) {
  const u32 a = f32_bits(x) & F32_ABS;
  return a > F32_INF ? 0u : a;
}

/** Max of |v[0..N)| ignoring NaN, as bits (abs_bits_nonan): a block's amax in every quantize kernel. */
template <int N>
FP4Q_HD u32 abs_max_bits(const float* v) {
  u32 m = 0;
#pragma unroll
  for (int i = 0; i < N; i++) {
    const u32 a = abs_bits_nonan(v[i]);
    m = a > m ? a : m;
  }
  return m;
}

// ---------------------------------------------------------------- E2M1

/**
 * fp32 → E2M1 code, RN ties-to-even, satfinite (docs/numerics.md §1.1; e2m1EncodeRN). Sign of
 * zero kept (−0 and tiny negatives → 8); NaN → 7. Thresholds compared on the bits of |v|.
 */
FP4Q_HD u32 e2m1_rn(float v) {
  const u32 b = f32_bits(v);
  const u32 a = b & F32_ABS;
  if (a > F32_INF) return 7u;
  const u32 s = (b >> 31) << 3;
  u32 m;
  if (a <= 0x3e800000u) m = 0;        // ≤ 0.25
  else if (a < 0x3f400000u) m = 1;    // < 0.75
  else if (a <= 0x3fa00000u) m = 2;   // ≤ 1.25
  else if (a < 0x3fe00000u) m = 3;    // < 1.75
  else if (a <= 0x40200000u) m = 4;   // ≤ 2.5
  else if (a < 0x40600000u) m = 5;    // < 3.5
  else if (a <= 0x40a00000u) m = 6;   // ≤ 5
  else m = 7;
  return s | m;
}

/**
 * fp32 → E2M1 code by stochastic rounding with one random byte (rule `trunc8`, e2m1EncodeSR):
 * lo ≤ |v| < hi the bracketing grid points, k = floor(256·(|v|−lo)/(hi−lo)); round up iff
 * k + r8 ≥ 256. |v| ≥ 6 or inf → ±6, NaN → 7, zero results keep the sign. |v|−lo is exact
 * (Sterbenz, or lo = 0) and the scaling by 256/step is a power of two, so k is exact in fp32.
 */
FP4Q_HD u32 e2m1_sr(float v, u32 r8) {
  const u32 b = f32_bits(v);
  const u32 ab = b & F32_ABS;
  if (ab > F32_INF) return 7u;
  const u32 s = (b >> 31) << 3;
  if (ab >= 0x40c00000u) return s | 7u;  // ≥ 6
  // a = |v| < 6, biased exponent E ≤ 129. With the grid step q (0.5 below 2, 1 in [2, 4), 2 in
  // [4, 6)), F = floor(a · 256/q) is the 24-bit significand shifted right by 14 (E ≥ 127) or
  // 141 − E (below; ≥ 32 → 0, subnormals included): then lo = q·(F >> 8) relative to the octave,
  // k = floor(256·(a − lo)/q) = F & 255 and the lower grid point's code is (F >> 8) + 2·(E − 127)⁺,
  // all in integers (no float↔int conversions).
  const u32 E = ab >> 23;
  const u32 mant = (ab & 0x7fffffu) | 0x800000u;
  const u32 sh = E >= 127u ? 14u : 141u - E;
  const u32 F = sh >= 32u ? 0u : mant >> sh;
  const u32 i = (F >> 8) + (E > 127u ? 2u * (E - 127u) : 0u);
  const u32 k = F & 255u;
  return s | ((k + (r8 & 255u) >= 256u) ? i + 1u : i);
}

/** E2M1 code → fp32 value (code 8 is −0). */
FP4Q_HD float e2m1_decode(u32 code) {
  const u32 m = code & 7u;
  u32 bits;
  if (m == 0) bits = 0;
  else if (m == 1) bits = 0x3f000000u;  // 0.5
  else bits = ((126u + (m >> 1)) << 23) | ((m & 1u) << 22);  // 1, 1.5, 2, 3, 4, 6
  return bits_f32(bits | ((code & 8u) << 28));
}

// ---------------------------------------------------------------- FP8 (E4M3 / E5M2)

/**
 * fp32 → small float code with RNE and gradual underflow, on the bits (minifloatEncode's fp32
 * fast path, with its subnormal branch done in integers). Overflow (code > maxCode) and ±inf →
 * ±maxCode when `sat`, else ±infCode, or sign|nanCode when the format has no infinity (exactly
 * as the TS). NaN → nanCode (positive).
 */
FP4Q_HD u32 minifloat_encode(float x, int expBits, int manBits, int bias, u32 maxCode, u32 nanCode, int infCode, bool sat) {
  const u32 b = f32_bits(x);
  const u32 a = b & F32_ABS;
  const u32 s = (b >> 31) << (expBits + manBits);
  if (a > F32_INF) return nanCode;
  u32 code;
  if (a < ((u32)(128 - bias) << 23)) {
    // below the format's smallest normal 2^(1−bias): code = RNE(|x| / 2^(1−bias−M))
    const u32 ef = a >> 23;
    const u32 mant = (a & 0x7fffffu) | (ef ? 0x800000u : 0u);
    const int eff = ef ? (int)ef : 1;
    const int sh = 151 - eff - bias - manBits;  // |x| / quantum = mant · 2^−sh, sh ≥ 20 here
    if (sh >= 26) {
      code = 0;  // < 2^24 · 2^−26 = 1/4 of a quantum
    } else {
      u32 q = mant >> sh;
      const u32 rem = mant & ((1u << sh) - 1u), half = 1u << (sh - 1);
      if (rem > half || (rem == half && (q & 1u))) q++;
      code = q;  // q == 2^M carries into the smallest normal: same bits
    }
  } else {
    const int shift = 23 - manBits;
    const u32 rem = a & ((1u << shift) - 1u), half = 1u << (shift - 1);
    u32 m = a >> shift;
    if (rem > half || (rem == half && (m & 1u))) m++;
    code = m - ((u32)(127 - bias) << manBits);
  }
  if (code > maxCode || a == F32_INF) return s | (sat ? maxCode : (infCode >= 0 ? (u32)infCode : nanCode));
  return s | code;
}

/** fp32 → E4M3 (e4m3fn) byte: RNE; sat: |x| > 464 or inf → ±448 (cvt.rn.satfinite.e4m3x2.f32). */
FP4Q_HD u32 e4m3_encode(float x, bool sat = true) { return minifloat_encode(x, 4, 3, 7, 0x7eu, 0x7fu, -1, sat); }
/** fp32 → E5M2 byte: RNE; sat: beyond 57344 and inf → ±57344, else → ±inf (0x7C). */
FP4Q_HD u32 e5m2_encode(float x, bool sat = true) { return minifloat_encode(x, 5, 2, 15, 0x7bu, 0x7fu, 0x7c, sat); }

/** E4M3 byte → fp32 (exact); 0x7F/0xFF → NaN. */
FP4Q_HD float e4m3_decode(u32 byte) {
  const u32 mag = byte & 0x7fu, sign = (byte & 0x80u) << 24;
  if (mag == 0x7fu) return bits_f32(F32_QNAN);
  const u32 e = mag >> 3, m = mag & 7u;
  if (e == 0) return bits_f32(sign | f32_bits(fmul_rn((float)m, bits_f32(0x3b000000u))));  // m · 2^−9
  return bits_f32(sign | ((e + 120u) << 23) | (m << 20));
}
/** E5M2 byte → fp32 (exact); 0x7C → inf, 0x7D..0x7F → NaN. */
FP4Q_HD float e5m2_decode(u32 byte) {
  const u32 mag = byte & 0x7fu, sign = (byte & 0x80u) << 24;
  const u32 e = mag >> 2, m = mag & 3u;
  if (e == 31) return m ? bits_f32(F32_QNAN) : bits_f32(sign | F32_INF);
  if (e == 0) return bits_f32(sign | f32_bits(fmul_rn((float)m, bits_f32(0x37800000u))));  // m · 2^−16
  return bits_f32(sign | ((e + 112u) << 23) | (m << 21));
}

// ---------------------------------------------------------------- BF16

/** fp32 → BF16 bits, RNE; NaN → sign|0x7FC0 (f32ToBf16Bits). */
FP4Q_HD u16 bf16_from_f32(float x) {
  const u32 b = f32_bits(x);
  if ((b & F32_ABS) > F32_INF) return (u16)(((b >> 16) & 0x8000u) | 0x7fc0u);
  return (u16)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
FP4Q_HD float bf16_to_f32(u16 h) { return bits_f32((u32)h << 16); }

/**
 * Round a binary64 value to BF16 ONCE (roundF64ToBf16 / roundF64ToBf16Exact): RNE on the 52-bit
 * mantissa for 2^−126 ≤ |v|; below, gradual underflow with quantum 2^−133; results beyond the
 * largest BF16 → ±inf; NaN → 0x7FC0 (TS returns NaN, whose bits never matter downstream: amax
 * ignores it and E2M1 maps it to +6). Sign of zero kept.
 */
FP4Q_HD u16 bf16_from_f64(double v) {
  const u64 b = f64_bits(v);
  const u32 sign = (u32)(b >> 48) & 0x8000u;
  {
    // the normal BF16 range 2^−126 ≤ |v| < 2^128 (biased exponent 897..1150) on the two 32-bit
    // words: t = exponent and top 7 mantissa bits, rounding from the 13 + 32 bits below (the same
    // RNE as the 64-bit path after it; a carry into the exponent, up to 0x7F80 = inf, included)
    const u32 ahi = (u32)(b >> 32) & 0x7fffffffu, lo = (u32)b;
    if (ahi >= 0x38100000u && ahi < 0x47f00000u) {
      const u32 t = ahi >> 13, rest = ahi & 0x1fffu;
      const u32 up = (rest > 0x1000u || (rest == 0x1000u && (lo != 0u || (t & 1u) != 0u))) ? 1u : 0u;
      return (u16)(sign | (t - (896u << 7) + up));
    }
  }
  const u64 a = b & 0x7fffffffffffffffull;
  if (a >= 0x7ff0000000000000ull) return (u16)(a > 0x7ff0000000000000ull ? 0x7fc0u : (sign | 0x7f80u));
  const int e = (int)(a >> 52) - 1023;
  if (e >= 128) return (u16)(sign | 0x7f80u);
  if (e >= -126) {
    const u64 mant = a & 0xfffffffffffffull;
    u32 m7 = (u32)(mant >> 45);
    const u64 rem = mant & 0x1fffffffffffull, half = 0x100000000000ull;
    u32 h = ((u32)(e + 127) << 7) + m7;
    if (rem > half || (rem == half && (m7 & 1u))) h++;  // a carry moves into the exponent; 0x7F80 = inf
    return (u16)(sign | h);
  }
  // |v| < 2^−126: q = |v| · 2^133 < 128 is exact, so are n = trunc(q) and q − n; round half even
  const double q = dmul_rn(bits_f64(a), bits_f64(0x4840000000000000ull));  // 2^133
  u32 n = (u32)q;
  const double frac = dsub_rn(q, (double)n);
  if (frac > 0.5 || (frac == 0.5 && (n & 1u))) n++;
  return (u16)(sign | n);  // n == 128 is the smallest normal 0x0080
}

// ---------------------------------------------------------------- Philox4x32-10

struct Philox4 {
  u32 w0, w1, w2, w3;
};

FP4Q_HD u32 mulhi32(u32 a, u32 b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return (u32)(((u64)a * (u64)b) >> 32);
#endif
}

/** One Philox4x32-10 block (quant/philox.ts philox4x32): counter (c0..c3), key (k0, k1). */
FP4Q_HD Philox4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 10; r++) {
    const u32 hi0 = mulhi32(0xd2511f53u, c0), lo0 = 0xd2511f53u * c0;
    const u32 hi1 = mulhi32(0xcd9e8d57u, c2), lo1 = 0xcd9e8d57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9e3779b9u;
    k1 += 0xbb67ae85u;
  }
  Philox4 out = {c0, c1, c2, c3};
  return out;
}

/**
 * The 16 SR bytes of the 16 elements starting at flat element index e0 (e0 % 16 == 0) of stream
 * (seed, tensorId): counter = (block lo, block hi, tensorId, 0), block = e0 / 16, key = (seed lo,
 * seed hi) — philoxBytes in quant/philox.ts.
 */
FP4Q_HD Philox4 philox_sr_block(u64 e0, u32 seed_lo, u32 seed_hi, u32 tensor_id) {
  const u64 blk = e0 >> 4;
  return philox4x32_10((u32)blk, (u32)(blk >> 32), tensor_id, 0u, seed_lo, seed_hi);
}
/** Byte j (0..15) of a block: byte j&3 (little-endian) of word j>>2. */
FP4Q_HD u32 philox_byte(const Philox4& p, int j) {
  const u32 w = (j >> 2) == 0 ? p.w0 : (j >> 2) == 1 ? p.w1 : (j >> 2) == 2 ? p.w2 : p.w3;
  return (w >> (8 * (j & 3))) & 255u;
}

// ---------------------------------------------------------------- NVFP4 scale chain (numerics.md §2)

struct Nvfp4TensorScales {
  float s_enc, s_dec, mult;
};

/**
 * nvfp4TensorScales: s_enc = min(fl(2688/amax), FLT_MAX), = 1 when amax == 0, s_enc == 0 (amax =
 * inf) or s_enc is NaN; s_dec = fl(1/s_enc); mult = fl(s_enc · fl(1/6)).
 */
FP4Q_HD Nvfp4TensorScales nvfp4_tensor_scales(float amax) {
  float s = min_flt_max(fdiv_rn(2688.0f, amax));
  const u32 sb = f32_bits(s);
  if ((f32_bits(amax) & F32_ABS) == 0 || (sb & F32_ABS) == 0 || (sb & F32_ABS) > F32_INF) s = 1.0f;
  Nvfp4TensorScales t;
  t.s_enc = s;
  t.s_dec = fdiv_rn(1.0f, s);
  t.mult = fmul_rn(s, bits_f32(F32_INV6));
  return t;
}

/** Block-scale byte: e4m3_satfinite(min(fl(bamax · mult), FLT_MAX)), NaN passes (→ 0x7F). */
FP4Q_HD u32 nvfp4_block_scale_byte(float bamax, float mult) {
  return e4m3_encode(min_flt_max(fmul_rn(bamax, mult)), true);
}

/** Encode scale of a block: min(fl(1 / fl(decode(byte) · s_dec)), FLT_MAX); NaN stays NaN. */
FP4Q_HD float nvfp4_encode_scale(u32 byte, float s_dec) {
  return min_flt_max(fdiv_rn(1.0f, fmul_rn(e4m3_decode(byte), s_dec)));
}

/** GEMM operand value of one element: e2m1 · sf (exact in fp32 and in BF16). */
FP4Q_HD float nvfp4_operand_value(u32 code, u32 byte) { return fmul_rn(e2m1_decode(code), e4m3_decode(byte)); }

// ---------------------------------------------------------------- MXFP4 (UE8M0) scales (numerics.md §8.2)

/** OCP floor rule from the fp32 exponent field: clamp(e − 129, −127, 128) + 127; non-finite → 0xFF. */
FP4Q_HD u32 e8m0_floor_from_amax(float amax) {
  const u32 b = f32_bits(amax);
  if (!is_finite_bits(b)) return 0xffu;
  int k = (int)((b >> 23) & 0xffu) - 129;
  k = k < -127 ? -127 : (k > 128 ? 128 : k);
  return (u32)(k + 127);
}
/** RCEIL: fl(amax · fl(1/6)) rounded up to a power of two (e8m0RceilFromAmax); non-finite → 0xFF. */
FP4Q_HD u32 e8m0_rceil_from_amax(float amax) {
  if (!is_finite_bits(f32_bits(amax))) return 0xffu;
  const u32 d = f32_bits(fmul_rn(amax, bits_f32(F32_INV6)));
  const u32 e = (d >> 23) & 0xffu, m = d & 0x7fffffu;
  const u32 up = e == 0 ? (m > 0x400000u ? 1u : 0u) : (m != 0 ? 1u : 0u);
  const u32 r = e + up;
  return r < 0xfeu ? r : 0xfeu;
}
/** Exact fp32 2^k for −127 ≤ k ≤ 127 (2^−127 is the subnormal 0x00400000). */
FP4Q_HD float pow2_f32(int k) { return bits_f32(k >= -126 ? (u32)(k + 127) << 23 : 0x00400000u); }
/** Element multiplier 2^(127−b) of a UE8M0 byte; 0xFF → NaN. */
FP4Q_HD float mx_encode_multiplier(u32 b) { return b == 0xffu ? bits_f32(F32_QNAN) : pow2_f32(127 - (int)b); }
/** Decode 2^(b−127); 0xFF → NaN. */
FP4Q_HD float mx_scale_value(u32 b) { return b == 0xffu ? bits_f32(F32_QNAN) : pow2_f32((int)b - 127); }

// ---------------------------------------------------------------- FP8 scale rule (quant/fp8.ts)

/**
 * fp8ScaleFromAmax: amax 0, +inf or NaN → 1; else fl(fp8max / amax) with +inf → FLT_MAX; pow2:
 * 2^floor(log2 scale) from the exponent bits.
 */
FP4Q_HD float fp8_scale_from_amax(float amax, float fp8max, bool pow2) {
  const u32 ab = f32_bits(amax);
  if ((ab & F32_ABS) == 0 || ab == F32_INF || (ab & F32_ABS) > F32_INF) return 1.0f;
  float s = min_flt_max(fdiv_rn(fp8max, amax));
  if (pow2) {
    const u32 sb = f32_bits(s) & F32_ABS;
    if (sb >= 0x00800000u) {
      s = bits_f32(sb & 0x7f800000u);
    } else {  // subnormal scale (cannot happen for amax ≤ FLT_MAX; kept for completeness)
      u32 top = 0x00400000u;
      while (top && !(sb & top)) top >>= 1;
      s = bits_f32(top);
    }
  }
  return s;
}

// ---------------------------------------------------------------- random Hadamard transform (numerics.md §6)
//
// The TS computes each group of `n` outputs by fast Walsh–Hadamard butterflies in binary64 on the
// sign-flipped inputs (stage h = 1, 2, 4, …: buf[j] = a + b, buf[j+h] = a − b), then scales once
// (×2^−k for n = 4^k, else ÷ RN(sqrt(n))) and rounds once to BF16. Any evaluation of the same
// butterfly network gives the same bits, so the kernels do stages h < 16 inside a thread's
// 16-element segment and stages h ≥ 16 across lanes (rht_cross).

/** Sign of group position j (0..127) in a 128-bit mask (bit set ⇔ −1). */
FP4Q_HD bool rht_sign_neg(u32 s0, u32 s1, u32 s2, u32 s3, int j) {
  const u32 w = (j >> 5) == 0 ? s0 : (j >> 5) == 1 ? s1 : (j >> 5) == 2 ? s2 : s3;
  return (w >> (j & 31)) & 1u;
}

/**
 * Widen 16 consecutive fp32 values (group positions pos0 .. pos0+15 modulo n) to binary64 and apply
 * the signs (negation = multiplication by −1, sign of zero included).
 */
FP4Q_HD void rht_load_signed(const float v[16], double d[16], int pos0, int n, u32 s0, u32 s1, u32 s2, u32 s3) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < 16; i++) {
    const double x = f32_to_f64(v[i]);
    d[i] = rht_sign_neg(s0, s1, s2, s3, (pos0 + i) & (n - 1)) ? -x : x;
  }
}

/**
 * The butterfly stages h = 1, 2, 4, 8 (those with h < n) on 16 consecutive values. The 8 pairs of a
 * stage are independent; pair k is (j, j + h) with j = k's bits below h, the rest shifted up by one.
 */
FP4Q_HD void rht_local_stages(double d[16], int n) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int h = 1; h < 16; h <<= 1) {
    if (h < n) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
      for (int k = 0; k < 8; k++) {
        const int j = ((k & ~(h - 1)) << 1) | (k & (h - 1));
        const double a = d[j], b = d[j + h];
        d[j] = dadd_rn(a, b);
        d[j + h] = dsub_rn(a, b);
      }
    }
  }
}

/** One cross-segment butterfly: the lower partner keeps a + b, the upper one gets a − b. */
FP4Q_HD double rht_cross(double own, double partner, bool upper) {
  return upper ? dsub_rn(partner, own) : dadd_rn(own, partner);
}

/** log2 of a power of two n (1..128). */
FP4Q_HD int rht_log2(int n) {
  int lg = 0;
  while ((1 << lg) < n) lg++;
  return lg;
}
/**
 * The TS scale step: n = 4^k → × 1/sqrt(n) = 2^−k (exact); otherwise ÷ Math.sqrt(n), and
 * Math.sqrt(2^lg) = 2^((lg−1)/2) · RN(√2) exactly, RN(√2) = 0x3FF6A09E667F3BCD.
 */
FP4Q_HD double rht_sqrt_n(int lg) { return bits_f64(0x3ff6a09e667f3bcdull + ((u64)((lg - 1) / 2) << 52)); }
FP4Q_HD double rht_inv_sqrt_n(int lg) { return bits_f64((u64)(1023 - lg / 2) << 52); }
FP4Q_HD double rht_scale(double v, int n) {
  const int lg = rht_log2(n);
  return (lg & 1) == 0 ? dmul_rn(v, rht_inv_sqrt_n(lg)) : ddiv_rn(v, rht_sqrt_n(lg));
}

/** Scale one butterfly output as the TS does and round it once to BF16 (bits). */
FP4Q_HD u16 rht_output_bf16(double v, int n) { return bf16_from_f64(rht_scale(v, n)); }

}  // namespace fp4q

// ---------------------------------------------------------------- device-only reductions

#if defined(FP4Q_CUDA)
namespace fp4q {

/** Max of non-negative amax bit patterns over the warp (every lane gets it). */
__device__ __forceinline__ u32 warp_max_bits(u32 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const u32 w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

/**
 * Max over the block of non-negative amax bit patterns, valid in thread 0 (and every lane of warp
 * 0). `scratch` is __shared__ u32[32]; every thread must call; starts with a barrier so the
 * scratch can be reused.
 */
__device__ __forceinline__ u32 block_max_bits(u32 v, u32* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = warp_max_bits(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = (warp == 0 && lane < nwarps) ? scratch[lane] : 0u;
  if (warp == 0) v = warp_max_bits(v);
  return v;
}

/** Float max for non-negative, non-NaN floats given as bits: atomicMax on the unsigned pattern. */
__device__ __forceinline__ void atomic_max_nonneg_bits(unsigned* addr, u32 bits) {
  if (bits != 0u) atomicMax(addr, bits);
}

}  // namespace fp4q
#endif
