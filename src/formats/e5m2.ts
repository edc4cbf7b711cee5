/**
 * E5M2 FP8 (OCP): bias 15, max 57344 (0x7B), infinities 0x7C/0xFC, NaN 0x7D..0x7F. IEEE-like.
 * Encoding = CUDA `__nv_cvt_float_to_fp8(x, sat, __NV_E5M2)`: RNE; with saturation (default)
 * values beyond 57344 and ±inf → ±57344, without it they round to ±inf as IEEE does.
 * NaN → 0x7F. Used for gradients in FP8 recipes that choose E5M2.
 */
import { minifloatEncode, minifloatTable, type MinifloatSpec } from "./minifloat.ts";

export const E5M2: MinifloatSpec = { name: "e5m2", expBits: 5, manBits: 2, bias: 15, maxCode: 0x7b, nanCode: 0x7f, infCode: 0x7c };
/** Largest finite E5M2 magnitude. */
export const E5M2_MAX = 57344;
/** Value of each of the 256 bytes. */
export const E5M2_DECODE: Float32Array = minifloatTable(E5M2);

/** Decode one byte. */
export function e5m2Decode(byte: number): number {
  return E5M2_DECODE[byte & 255];
}

/** Encode with RNE; saturating (default) or overflowing to ±inf. */
export function e5m2Encode(x: number, saturate = true): number {
  return minifloatEncode(E5M2, x, saturate);
}
