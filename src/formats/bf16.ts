/**
 * BF16 (bfloat16): the top 16 bits of an fp32. Conversion from fp32 rounds to nearest, ties to
 * even (as `__float2bfloat16_rn` and PyTorch do); NaN → quiet NaN 0x7FC0 (sign kept); values
 * beyond the largest BF16 round to ±inf (IEEE; BF16 has fp32's range so only values within half
 * an ulp of FLT_MAX do). Also: rounding of an exact binary64 value straight to BF16 (one rounding,
 * used by the Hadamard transform whose sums are exact in binary64). Source: docs/numerics.md §6.
 */
import { exponentOf, roundHalfEven } from "./float-bits.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** fp32 → BF16 bits (RNE). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (x !== x) return ((b >>> 16) & 0x8000) | 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** BF16 bits → fp32 value (exact). */
export function bf16BitsToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** Round an fp32 value to the nearest BF16 value (returned as a number). */
export function roundBf16(x: number): number {
  return bf16BitsToF32(f32ToBf16Bits(x));
}

/** Round every element of an fp32 array to BF16, in place. Returns the array. */
export function roundBf16InPlace(a: Float32Array): Float32Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) u[i] = (b & 0x80000000) | 0x7fc00000;
    else u[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
  }
  return a;
}

/** fp32 array → packed BF16 bits. */
export function toBf16Bits(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32ToBf16Bits(a[i]);
  return out;
}

/** Packed BF16 bits → fp32 array. */
export function fromBf16Bits(b: Uint16Array): Float32Array {
  const out = new Float32Array(b.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < b.length; i++) u[i] = b[i] << 16;
  return out;
}

const BF16_MIN_NORMAL_EXP = -126;
const BF16_MAX = bf16BitsToF32(0x7f7f);
const f64 = new Float64Array(1);
const w64 = new Uint32Array(f64.buffer); // [low word, high word] on little-endian hosts

/**
 * Round a binary64 value to BF16 once, on its bits: keep 7 of the 52 mantissa bits, ties to
 * even. Values outside BF16's normal range take the exact path below.
 */
export function roundF64ToBf16(v: number): number {
  f64[0] = v;
  const hi = w64[1], lo = w64[0];
  const e = (hi >>> 20) & 0x7ff;
  // normal BF16 range with room for a carry: 2^-126 ≤ |v| < 2^127
  if (e < 1023 - 126 || e > 1023 + 126) return roundF64ToBf16Exact(v);
  const rem = hi & 0x1fff;
  const up = rem > 0x1000 || (rem === 0x1000 && (lo !== 0 || (hi & 0x2000) !== 0));
  w64[1] = ((hi & ~0x1fff) + (up ? 0x2000 : 0)) >>> 0;
  w64[0] = 0;
  return f64[0];
}

/**
 * The plain twin of roundF64ToBf16: round a binary64 value to BF16 once (no intermediate fp32
 * rounding, which could double-round), by scaling to an integer. Gradual underflow (quantum
 * 2^-133 below 2^-126); overflow → ±inf.
 */
export function roundF64ToBf16Exact(v: number): number {
  if (v === 0 || v !== v || !Number.isFinite(v)) return v !== v ? NaN : v;
  const a = Math.abs(v);
  const e = Math.max(exponentOf(a), BF16_MIN_NORMAL_EXP);
  const quantum = 2 ** (e - 7);
  const r = roundHalfEven(a / quantum) * quantum;
  if (r > BF16_MAX) return v < 0 ? -Infinity : Infinity;
  return v < 0 ? -r : r;
}
