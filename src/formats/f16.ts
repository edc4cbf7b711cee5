/**
 * IEEE 754 binary16 ("half", FP16): 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits,
 * with subnormals, ±inf and NaN. Decoding is exact; encoding rounds to nearest, ties to even,
 * overflows to ±inf and turns any NaN into the quiet NaN 0x7E00 (JavaScript numbers carry no
 * observable NaN payload or NaN sign, so none can be preserved).
 * Not BF16 (see bf16.ts) nor the FP8 formats (see minifloat.ts). Node 20 has no Float16Array,
 * which is why this codec exists at all.
 * Source: IEEE 754-2019 §3.6 (binary16 interchange format).
 */
import { exponentOf, roundHalfEven, signBit } from "./float-bits.ts";

/** Smallest magnitude that rounds to inf: halfway between 65504 (max, odd mantissa) and 2^16. */
const OVERFLOW_THRESHOLD = 65520;
const MIN_NORMAL_EXP = -14;

/** binary16 bits (low 16 bits of `bits` are used) → the exact value as a number. */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const man = bits & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man === 0 ? sign * Infinity : NaN;
  return sign * (1024 + man) * 2 ** (exp - 25);
}

/**
 * A number → binary16 bits, rounding the exact value of `x` once (so a binary64 input that is
 * not an fp32 value is not double-rounded through fp32 first).
 */
export function f32ToF16Bits(x: number): number {
  if (x !== x) return 0x7e00;
  const sign = signBit(x) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= OVERFLOW_THRESHOLD) return sign | 0x7c00;
  if (a === 0) return sign;
  // Below 2^-14 the quantum is fixed at 2^-24; a rounded-up result of 1024 is exactly the
  // smallest normal's encoding, so no special case is needed.
  const e = Math.max(exponentOf(a), MIN_NORMAL_EXP);
  const quantum = 2 ** (e - 10);
  const q = roundHalfEven(a / quantum); // in [0, 2048]; 2048 means carry into the next binade
  if (e === MIN_NORMAL_EXP && q < 1024) return sign | q;
  // q in [1024, 2048]: exponent field e+15 plus mantissa q-1024; the carry case (q = 2048)
  // lands on mantissa 1024, which adds one to the exponent field, as it should.
  return sign | (((e + 15) << 10) + (q - 1024));
}

let decodeTable: Float32Array | undefined;

/** Packed binary16 codes → fp32 values (exact: every binary16 value is an fp32 value). */
export function decodeF16(u16: Uint16Array): Float32Array {
  if (decodeTable === undefined) {
    decodeTable = new Float32Array(65536);
    for (let c = 0; c < 65536; c++) decodeTable[c] = f16BitsToF32(c);
  }
  const t = decodeTable;
  const out = new Float32Array(u16.length);
  for (let i = 0; i < u16.length; i++) out[i] = t[u16[i]];
  return out;
}
