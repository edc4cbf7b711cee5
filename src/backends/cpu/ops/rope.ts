/**
 * Rotary position embedding (RoPE) on query and key heads, HALF-SPLIT convention as Hugging Face
 * Llama's `rotate_half`: element i is paired with i + HS/2 (not with i+1 as in the original
 * interleaved form), rotated by the angle t · theta^(−2i/HS) for i < HS/2, position t = 0..T−1
 * within each sequence. Checkpoints and CUDA kernels must use the same pairing or attention
 * silently sees scrambled positions. The cos/sin table is computed in float64; HF builds it in
 * fp32, so its angles are off by up to about t·2⁻²⁴ rad at position t, which a parity test against
 * HF must allow for.
 * Not applied to values, no scaling variants (NTK, YaRN, partial rotary). Method: Su et al. 2021,
 * arXiv 2104.09864 (RoFormer).
 *
 * Gradient convention: `dx` is OVERWRITTEN (RoPE has no parameters). The backward is the inverse
 * rotation (by −angle), since a rotation's Jacobian is the rotation itself and its transpose its
 * inverse. Both directions may work in place (out === x, dx === dout).
 */
import { checkLength, type FloatArray } from "./float-array.ts";

/** cos/sin of t · inv_freq[i], each (T, HS/2) row-major; built for T positions, usable for any T' ≤ T. */
export interface RopeTable {
  readonly T: number;
  readonly HS: number;
  readonly theta: number;
  /** (T, HS/2) */
  readonly cos: Float64Array;
  /** (T, HS/2) */
  readonly sin: Float64Array;
}

/** Angles t · theta^(−2i/HS) for t < T, i < HS/2, as cos and sin tables in float64. */
export function ropeTable(T: number, HS: number, theta: number): RopeTable {
  if (!Number.isInteger(HS) || HS <= 0 || HS % 2 !== 0) {
    throw new RangeError(`ropeTable: head size HS must be a positive even integer (elements are rotated in pairs), got ${HS}`);
  }
  if (!Number.isInteger(T) || T < 0) throw new RangeError(`ropeTable: T must be a non-negative integer, got ${T}`);
  if (!(theta > 1)) throw new RangeError(`ropeTable: theta must be > 1 (Llama uses 10000 or 500000), got ${theta}`);
  const half = HS / 2;
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.pow(theta, (-2 * i) / HS);
    for (let t = 0; t < T; t++) {
      const a = t * invFreq;
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  return { T, HS, theta, cos, sin };
}

function checkRope(op: string, a: FloatArray, b: FloatArray, names: [string, string], table: RopeTable, B: number, T: number, NH: number, HS: number): void {
  if (table.HS !== HS) throw new RangeError(`${op}: the RoPE table was built for HS=${table.HS} but the heads have HS=${HS}; build it with ropeTable(T, ${HS}, theta)`);
  if (table.T < T) throw new RangeError(`${op}: the RoPE table covers ${table.T} positions but the sequence has T=${T}; build it for the longest sequence`);
  const n = B * T * NH * HS, shape = `(B=${B}, T=${T}, NH=${NH}, HS=${HS})`;
  checkLength(op, names[0], a, n, shape);
  checkLength(op, names[1], b, n, shape);
}

/** Rotate each pair (i, i+HS/2) of out[b,t,h,:] by +angle(t, i). x, out (B,T,NH,HS); out may alias x. */
export function ropeForward(out: FloatArray, x: FloatArray, table: RopeTable, B: number, T: number, NH: number, HS: number): void {
  checkRope("ropeForward", out, x, ["out", "x"], table, B, T, NH, HS);
  rotate(out, x, table, B, T, NH, HS, 1);
}

/** dx = rotation of dout by −angle(t, i). dout, dx (B,T,NH,HS); dx may alias dout. */
export function ropeBackward(dx: FloatArray, dout: FloatArray, table: RopeTable, B: number, T: number, NH: number, HS: number): void {
  checkRope("ropeBackward", dx, dout, ["dx", "dout"], table, B, T, NH, HS);
  rotate(dx, dout, table, B, T, NH, HS, -1);
}

/** dst = R(sign · angle) src, pairwise; both elements of a pair are read before either is written. */
function rotate(dst: FloatArray, src: FloatArray, table: RopeTable, B: number, T: number, NH: number, HS: number, sign: 1 | -1): void {
  const half = HS / 2;
  const { cos, sin } = table;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tab = t * half;
      for (let h = 0; h < NH; h++) {
        const base = ((b * T + t) * NH + h) * HS;
        for (let i = 0; i < half; i++) {
          const c = cos[tab + i], s = sign * sin[tab + i];
          const x1 = src[base + i], x2 = src[base + half + i];
          dst[base + i] = x1 * c - x2 * s;
          dst[base + half + i] = x2 * c + x1 * s;
        }
      }
    }
  }
}
