/**
 * Random Hadamard transform (RHT) applied to contiguous groups of `size` elements along the last
 * dimension: y = x_group · diag(s) · H / sqrt(size), H the Sylvester (Walsh, natural order)
 * Hadamard matrix, H[r][c] = (−1)^popcount(r & c), s a ±1 sign vector. The paper's recipe uses
 * size 16 with TE's fixed sign vector on both inputs of the Wgrad GEMM, with the output rounded
 * to BF16 before the amax (TE default). Since T·Tᵀ = I, RHT(A)·RHT(B)ᵀ = A·Bᵀ.
 * Sizes 2..128 and seeded random signs are options for experiments. Each output is the exact
 * sum (binary64 holds it exactly for BF16/FP32 inputs of sane range) scaled and rounded once.
 * Source: docs/numerics.md §6, vectors rht16.json. CUDA twin: backends/cuda/kernels (later).
 */
import { f32ToBf16Bits, bf16BitsToF32, roundF64ToBf16 } from "../formats/bf16.ts";
import { ShapeError } from "../errors.ts";
import { philoxBytes } from "./philox.ts";

/** TE's fixed Wgrad sign vector (`get_wgrad_sign_vector`), bitmask 0xD7E8. */
export const TE_SIGN_VECTOR: readonly number[] = [1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1];

export interface RhtOptions {
  /** group size, a power of two in 2..128 (default 16) */
  size?: number;
  /** ±1 signs of length `size`; default TE's vector for 16, random from `signSeed` otherwise */
  signs?: readonly number[];
  /** draw the signs from this seed (Philox) instead of using the fixed vector */
  signSeed?: number;
  /** "bf16" (default, TE) rounds outputs to BF16; "fp32" rounds them to fp32 */
  output?: "bf16" | "fp32";
}

/** H[r][c] = (−1)^popcount(r & c). */
export function hadamardEntry(r: number, c: number): number {
  let v = r & c, p = 0;
  while (v) { p ^= v & 1; v >>>= 1; }
  return p ? -1 : 1;
}

/** Bitmask of a sign vector: bit i set iff signs[i] = −1 (TE `get_sign_from_vector`). */
export function signMask(signs: readonly number[]): number {
  let m = 0;
  signs.forEach((s, i) => { if (s === -1) m |= 1 << i; });
  return m >>> 0;
}

/** Random ±1 signs of length `size` from a seed (Philox stream 0xFFFFFFFF). */
export function randomSigns(size: number, seed: number): number[] {
  const bytes = philoxBytes(seed, 0xffffffff, size);
  return Array.from(bytes, (b) => (b & 1 ? -1 : 1));
}

/** Resolve options to a concrete (size, signs, output). */
export function resolveRht(opts: RhtOptions = {}): { size: number; signs: number[]; output: "bf16" | "fp32" } {
  const size = opts.size ?? 16;
  if (!Number.isInteger(size) || size < 2 || size > 128 || (size & (size - 1)) !== 0) {
    throw new RangeError(`RHT size must be a power of two in 2..128, got ${size}`);
  }
  let signs: number[];
  if (opts.signs) signs = [...opts.signs];
  else if (opts.signSeed !== undefined) signs = randomSigns(size, opts.signSeed);
  else if (size === 16) signs = [...TE_SIGN_VECTOR];
  else signs = randomSigns(size, 0);
  if (signs.length !== size || signs.some((s) => s !== 1 && s !== -1)) {
    throw new RangeError(`RHT signs must be ${size} values of +1 or -1`);
  }
  return { size, signs, output: opts.output ?? "bf16" };
}

/** In-place fast Walsh–Hadamard transform (natural order, unnormalised): buf ← H·buf. */
function fwht(buf: Float64Array): void {
  const n = buf.length;
  for (let h = 1; h < n; h <<= 1) {
    for (let i = 0; i < n; i += h << 1) {
      for (let j = i; j < i + h; j++) {
        const a = buf[j], b = buf[j + h];
        buf[j] = a + b;
        buf[j + h] = a - b;
      }
    }
  }
}

/**
 * Apply the RHT along the last dimension of x (rows, cols); cols must be a multiple of the size.
 * Returns a new array. Fast Walsh–Hadamard butterflies in binary64 (sums of ±x are exact there),
 * then one scale and one rounding per output.
 */
export function rht(x: Float32Array, shape: readonly [number, number], opts: RhtOptions = {}): Float32Array {
  const { size, signs, output } = resolveRht(opts);
  const [rows, cols] = shape;
  if (cols % size !== 0) {
    throw new ShapeError(`RHT of size ${size} needs the last dimension to be a multiple of ${size}; got shape [${rows}, ${cols}]`);
  }
  const scale = 1 / Math.sqrt(size);
  const exactScale = (Math.log2(size) & 1) === 0; // 1/sqrt(4^k) is a power of two
  const buf = new Float64Array(size);
  const out = new Float32Array(rows * cols);
  for (let g = 0; g < rows * cols; g += size) {
    for (let i = 0; i < size; i++) buf[i] = signs[i] * x[g + i];
    fwht(buf);
    for (let j = 0; j < size; j++) {
      const v = exactScale ? buf[j] * scale : buf[j] / Math.sqrt(size);
      if (output === "fp32") out[g + j] = v;
      else {
        // one rounding to BF16; through fp32 only when v is an fp32 value (no double rounding)
        const f = Math.fround(v);
        out[g + j] = f === v ? bf16BitsToF32(f32ToBf16Bits(f)) : roundF64ToBf16(v);
      }
    }
  }
  return out;
}

/**
 * Inverse of `rht` (with fp32 outputs): x = y · Tᵀ, i.e. x[i] = s[i] · (H·y)[i] / sqrt(size).
 * For looking at quantization error in the original domain; training never needs it, because
 * both Wgrad operands carry the same transform and T·Tᵀ = I.
 */
export function inverseRht(y: Float32Array, shape: readonly [number, number], opts: RhtOptions = {}): Float32Array {
  const { size, signs } = resolveRht(opts);
  const [rows, cols] = shape;
  if (cols % size !== 0) {
    throw new ShapeError(`inverse RHT of size ${size} needs the last dimension to be a multiple of ${size}; got shape [${rows}, ${cols}]`);
  }
  const buf = new Float64Array(size);
  const out = new Float32Array(rows * cols);
  for (let g = 0; g < rows * cols; g += size) {
    for (let i = 0; i < size; i++) buf[i] = y[g + i];
    fwht(buf);
    for (let i = 0; i < size; i++) out[g + i] = (signs[i] * buf[i]) / Math.sqrt(size);
  }
  return out;
}
