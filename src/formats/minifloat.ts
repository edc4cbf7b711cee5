/**
 * Generic small IEEE-like float codec (sign, E exponent bits, M mantissa bits, bias), used by
 * the FP8 formats. Encoding rounds to nearest, ties to even, with gradual underflow; what
 * happens above the largest finite value is the caller's choice (saturate or overflow).
 * Not for E2M1 (it has its own table-driven codec in e2m1.ts) nor for E8M0 (no mantissa).
 */
import { exponentOf, roundHalfEven, signBit } from "./float-bits.ts";

export interface MinifloatSpec {
  readonly name: string;
  readonly expBits: number;
  readonly manBits: number;
  readonly bias: number;
  /** largest finite magnitude code (without the sign bit) */
  readonly maxCode: number;
  /** code (without sign) that encodes NaN */
  readonly nanCode: number;
  /** code (without sign) that encodes infinity, or -1 when the format has none */
  readonly infCode: number;
}

/** Decode table (2^(1+E+M) entries) for a spec. */
export function minifloatTable(spec: MinifloatSpec): Float32Array {
  const n = 1 << (1 + spec.expBits + spec.manBits);
  const t = new Float32Array(n);
  const half = n >>> 1;
  for (let c = 0; c < n; c++) {
    const mag = c & (half - 1);
    const sign = c & half ? -1 : 1;
    let v: number;
    if (mag === spec.nanCode || (spec.nanCode === 0x7f && spec.infCode >= 0 && mag > spec.infCode)) v = NaN;
    else if (mag === spec.infCode) v = sign * Infinity;
    else {
      const e = mag >>> spec.manBits;
      const m = mag & ((1 << spec.manBits) - 1);
      v = e === 0 ? sign * m * 2 ** (1 - spec.bias - spec.manBits) : sign * (1 + m / (1 << spec.manBits)) * 2 ** (e - spec.bias);
    }
    t[c] = v;
  }
  return t;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Encode a number with RNE. fp32 values (the normal case) take a fast path on their bit
 * pattern; other doubles go through `minifloatEncodeExact`, and the tests hold the two equal. `saturate`: values beyond the largest
 * finite value (and ±inf) become ±max (CUDA's __NV_SATFINITE); otherwise they become ±inf
 * where the format has it, else NaN. NaN → the positive NaN code. Sign of zero is kept.
 */
export function minifloatEncode(spec: MinifloatSpec, x: number, saturate: boolean): number {
  f32[0] = x;
  if (f32[0] !== x) return minifloatEncodeExact(spec, x, saturate);
  const b = u32[0];
  const a = b & 0x7fffffff;
  const M = spec.manBits;
  const s = (b >>> 31) << (spec.expBits + M);
  if (a > 0x7f800000) return spec.nanCode;
  let code: number;
  if (a < (128 - spec.bias) << 23) {
    // below the smallest normal: quantum 2^(1-bias-M); a * 2^(bias-1+M) is exact in binary64
    code = roundHalfEven(Math.abs(x) * 2 ** (spec.bias - 1 + M));
  } else {
    const shift = 23 - M;
    const rem = a & ((1 << shift) - 1), half = 1 << (shift - 1);
    let m = a >>> shift;
    if (rem > half || (rem === half && (m & 1))) m++;
    code = m - ((127 - spec.bias) << M);
  }
  if (code > spec.maxCode || a === 0x7f800000) {
    return s | (saturate ? spec.maxCode : spec.infCode >= 0 ? spec.infCode : spec.nanCode);
  }
  return s | code;
}

/** The plain twin of minifloatEncode: any binary64 value, exact arithmetic on the value. */
export function minifloatEncodeExact(spec: MinifloatSpec, x: number, saturate: boolean): number {
  const signMask = 1 << (spec.expBits + spec.manBits);
  if (x !== x) return spec.nanCode;
  const s = signBit(x) ? signMask : 0;
  const a = Math.abs(x);
  const overflow = () => s | (saturate ? spec.maxCode : spec.infCode >= 0 ? spec.infCode : spec.nanCode);
  if (a === Infinity) return overflow();
  const minNormalExp = 1 - spec.bias;
  let code: number;
  if (a < 2 ** minNormalExp) {
    // subnormal: quantum 2^(1-bias-M); m == 2^M carries into the smallest normal, same bits
    code = roundHalfEven(a / 2 ** (minNormalExp - spec.manBits));
  } else {
    let e = exponentOf(a);
    let m = roundHalfEven(a / 2 ** (e - spec.manBits));
    if (m === 2 << spec.manBits) {
      e += 1;
      m = 1 << spec.manBits;
    }
    const ef = e + spec.bias;
    if (ef >= 1 << spec.expBits) return overflow();
    code = (ef << spec.manBits) | (m - (1 << spec.manBits));
  }
  if (code > spec.maxCode) return overflow();
  return s | code;
}
