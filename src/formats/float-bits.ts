/**
 * Bit-level views of IEEE binary32 and binary64 numbers, and round-half-to-even on doubles.
 * Shared by every codec in formats/. JavaScript numbers are binary64; an fp32 value is a
 * number for which Math.fround(x) === x, and every fp32 operation is Math.fround(a op b).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const u64hi = new Uint32Array(f64.buffer);

/** The uint32 bit pattern of Math.fround(x). */
export function f32ToBits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The fp32 value of a uint32 bit pattern. */
export function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** Largest finite fp32 value. */
export const FLT_MAX = bitsToF32(0x7f7fffff);

/**
 * floor(log2(a)) for a finite a > 0 (binary64, subnormals included), exact: read from the
 * exponent bits, never from Math.log2 (which can be off by one next to powers of two).
 */
export function exponentOf(a: number): number {
  f64[0] = a;
  const hi = u64hi[1];
  const e = (hi >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  // binary64 subnormal: scale up exactly and retry
  return exponentOf(a * 2 ** 64) - 64;
}

/** Round a double to an integer, ties to even. Exact for |q| < 2^52. */
export function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** True iff x is -0 (or any number with the sign bit set, NaN excepted). */
export function signBit(x: number): boolean {
  return x < 0 || Object.is(x, -0);
}
