/**
 * E4M3 FP8, the OCP "e4m3fn" variant: bias 7, max 448 (0x7E), min normal 2^-6, subnormal
 * quantum 2^-9, NaN = 0x7F/0xFF, no infinities. The NVFP4 block-scale format and the paper's
 * FP8 baseline element format. Encoding = CUDA `cvt.rn.satfinite.e4m3x2.f32`: RNE,
 * |x| > 464 or ±inf → ±448, NaN → 0x7F. Source: docs/numerics.md §1.2.
 */
import { minifloatEncode, minifloatTable, type MinifloatSpec } from "./minifloat.ts";

export const E4M3: MinifloatSpec = { name: "e4m3", expBits: 4, manBits: 3, bias: 7, maxCode: 0x7e, nanCode: 0x7f, infCode: -1 };
/** Largest finite E4M3 magnitude. */
export const E4M3_MAX = 448;
/** Value of each of the 256 bytes. */
export const E4M3_DECODE: Float32Array = minifloatTable(E4M3);

/** Decode one byte. */
export function e4m3Decode(byte: number): number {
  return E4M3_DECODE[byte & 255];
}

/** Encode with RNE; saturating (default, as `satfinite`) or out-of-range → NaN (0x7F). */
export function e4m3Encode(x: number, saturate = true): number {
  return minifloatEncode(E4M3, x, saturate);
}
