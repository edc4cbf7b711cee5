/**
 * Input checks shared by the quantizers: shape rules and non-finite detection, with errors that
 * name the tensor, the rule and what to do. Also the plain transpose used to build the
 * columnwise (transposed) copy of a matrix.
 */
import { NonFiniteError, ShapeError } from "../errors.ts";

export type Shape2D = readonly [rows: number, cols: number];

/** Check that shape is two positive integers matching x.length. */
export function checkShape(x: Float32Array, shape: Shape2D, name: string): void {
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${name}: shape must be [rows, cols] with non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (shape[0] * shape[1] !== x.length) {
    throw new ShapeError(`${name}: shape [${shape[0]}, ${shape[1]}] holds ${shape[0] * shape[1]} elements but the array has ${x.length}`);
  }
}

/** Throw a ShapeError unless `dim` is a multiple of `multiple`. */
export function checkMultiple(name: string, format: string, shape: Shape2D, axis: 0 | 1, multiple: number, why: string): void {
  if (shape[axis] % multiple !== 0) {
    const which = axis === 1 ? "columns (last dimension)" : "rows";
    throw new ShapeError(
      `${name}: ${format} needs the number of ${which} to be a multiple of ${multiple} (${why}); got shape [${shape[0]}, ${shape[1]}]. Pad the tensor or keep it in higher precision.`,
    );
  }
}

/** Index of the first NaN/±inf element, or -1. */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

/** The NonFiniteError for element `i` (value `v`) of a tensor; every backend raises this one. */
export function nonFiniteError(name: string, shape: Shape2D, i: number, v: number): NonFiniteError {
  const r = Math.floor(i / shape[1]), c = i % shape[1];
  return new NonFiniteError(
    `${name}: element [${r}, ${c}] (flat index ${i}) is ${v}; quantizing non-finite values loses them. ` +
      `Find where it came from, or pass nonFinite: "te" (CLI: --allow-nonfinite) to follow Transformer Engine's policy (NaN ignored by amax, encoded as +6).`,
    i,
  );
}

/** Throw a NonFiniteError naming the tensor and the first bad element. */
export function assertFinite(x: Float32Array, shape: Shape2D, name: string): void {
  const i = firstNonFinite(x);
  if (i >= 0) throw nonFiniteError(name, shape, i, x[i]);
}

/** Row-major transpose of a (rows, cols) matrix. */
export function transpose(x: Float32Array, shape: Shape2D): Float32Array {
  const [rows, cols] = shape;
  const out = new Float32Array(x.length);
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    for (let c0 = 0; c0 < cols; c0 += B) {
      const r1 = Math.min(r0 + B, rows), c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = x[r * cols + c];
    }
  }
  return out;
}
