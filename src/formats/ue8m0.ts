/**
 * UE8M0: the MX scale format, an unsigned biased exponent. Byte b → 2^(b−127); 0xFF = NaN;
 * b = 0 is 2^-127 (an fp32 subnormal). Encoding of a positive number to a power of two, with
 * three roundings: "floor" (round down), "ceil" (round up, as `cvt.rp.satfinite.ue8m0x2.f32`)
 * and "rn" (nearest power of two, ties to the even byte); saturating at 2^127 (0xFE) and
 * at 2^-127 (0x00). NaN, ±inf and negative numbers → 0xFF. The MXFP4 scale rules that derive
 * b from a block amax (OCP floor, RCEIL) live in quant/mxfp4.ts. Source: docs/numerics.md §1.3.
 */
import { exponentOf } from "./float-bits.ts";

export type Ue8m0Rounding = "floor" | "ceil" | "rn";

/** NaN byte. */
export const UE8M0_NAN = 0xff;

/** Decode one byte. */
export function ue8m0Decode(b: number): number {
  b &= 255;
  return b === UE8M0_NAN ? NaN : 2 ** (b - 127);
}

/** Encode a positive number as a power of two. */
export function ue8m0Encode(x: number, rounding: Ue8m0Rounding = "rn"): number {
  if (!(x >= 0) || x === Infinity) return UE8M0_NAN;
  if (x === 0) return 0;
  const e = exponentOf(x);
  const lower = 2 ** e;
  let k: number;
  if (x === lower) k = e;
  else if (rounding === "floor") k = e;
  else if (rounding === "ceil") k = e + 1;
  else {
    const mid = lower * 1.5;
    k = x < mid ? e : x > mid ? e + 1 : (e + 127) % 2 === 0 ? e : e + 1;
  }
  return Math.min(Math.max(k + 127, 0), 0xfe);
}
