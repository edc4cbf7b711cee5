/**
 * E2M1 (FP4) element codec: nibble = sign<<3 | magnitude index, magnitudes
 * {0, 0.5, 1, 1.5, 2, 3, 4, 6}. Round-to-nearest-even with saturation (the hardware's
 * `cvt.rn.satfinite.e2m1x2.f32`), stochastic rounding from one random byte per element (our
 * `trunc8` rule), and nibble packing (element 2i in the LOW nibble of byte i).
 * Not a block quantizer: scales live in quant/. Rules and sources: docs/numerics.md §1.1, §5, §7.
 */
import { signBit } from "./float-bits.ts";

/** Magnitudes of codes 0..7. */
export const E2M1_MAGNITUDES = [0, 0.5, 1, 1.5, 2, 3, 4, 6] as const;
/** Largest E2M1 magnitude. */
export const E2M1_MAX = 6;

/** Value of each of the 16 codes (code 8 is -0). */
export const E2M1_DECODE: Float32Array = Float32Array.from({ length: 16 }, (_, c) =>
  c & 8 ? -E2M1_MAGNITUDES[c & 7] : E2M1_MAGNITUDES[c & 7],
);

/** Decode one nibble. */
export function e2m1Decode(code: number): number {
  return E2M1_DECODE[code & 15];
}

/**
 * fp32 value → E2M1 code, round to nearest, ties to the even code, saturating at ±6.
 * Sign of zero kept (-0 and tiny negatives → 8); NaN → +6 (code 7), as the hardware does.
 */
export function e2m1EncodeRN(v: number): number {
  if (v !== v) return 7;
  const s = v < 0 || (v === 0 && 1 / v < 0) ? 8 : 0;
  const a = Math.abs(v);
  let m: number;
  if (a <= 0.25) m = 0;
  else if (a < 0.75) m = 1;
  else if (a <= 1.25) m = 2;
  else if (a < 1.75) m = 3;
  else if (a <= 2.5) m = 4;
  else if (a < 3.5) m = 5;
  else if (a <= 5) m = 6;
  else m = 7;
  return s | m;
}

/**
 * fp32 value → E2M1 code by stochastic rounding with one random byte r8 (0..255), rule
 * `trunc8`: with lo ≤ |v| < hi the bracketing grid points and frac = (|v|−lo)/(hi−lo),
 * round up iff floor(256·frac) + r8 ≥ 256, so P(up) = floor(256·frac)/256.
 * |v| ≥ 6 or ±inf → ±6; NaN → +6; a zero result keeps the sign of v.
 */
export function e2m1EncodeSR(v: number, r8: number): number {
  if (v !== v) return 7;
  const s = signBit(v) ? 8 : 0;
  const a = Math.abs(v);
  if (a >= 6) return s | 7;
  // lo index and the step to the next grid point; all arithmetic below is exact in binary64
  let i: number, lo: number, step: number;
  if (a < 2) {
    i = Math.floor(a * 2);
    lo = i * 0.5;
    step = 0.5;
  } else if (a < 4) {
    i = a < 3 ? 4 : 5;
    lo = i - 2;
    step = 1;
  } else {
    i = 6;
    lo = 4;
    step = 2;
  }
  const k = Math.floor(((a - lo) / step) * 256);
  return s | (k + (r8 & 255) >= 256 ? i + 1 : i);
}

/** Pack codes (even length) two per byte, element 2i in the low nibble. */
export function packNibbles(codes: Uint8Array): Uint8Array {
  if (codes.length % 2 !== 0) throw new Error(`packNibbles: odd number of codes (${codes.length})`);
  const out = new Uint8Array(codes.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = (codes[2 * i] & 15) | ((codes[2 * i + 1] & 15) << 4);
  return out;
}

/** Inverse of packNibbles. */
export function unpackNibbles(packed: Uint8Array): Uint8Array {
  const out = new Uint8Array(packed.length * 2);
  for (let i = 0; i < packed.length; i++) {
    out[2 * i] = packed[i] & 15;
    out[2 * i + 1] = packed[i] >>> 4;
  }
  return out;
}
