/**
 * The array types the CPU ops work on, and the length check they share. Every op takes a
 * `FloatArray` so the same code runs in float32 (the oracle the CUDA backend is compared with) and
 * in float64 (the finite-difference gradient checks, where float32 round-off would swamp the
 * truncation error). Token ids (embedding inputs, cross-entropy targets) are a `TokenArray`.
 * Not a tensor class: shapes travel as explicit llm.c-style dimension arguments (B, T, C, ...).
 */
import { ShapeError } from "../../../errors.ts";

/** A dense row-major float buffer: fp32 for training, fp64 for gradient checks. */
export type FloatArray = Float32Array | Float64Array;

/** Token ids: int32 (as PyTorch's long narrowed), uint32, or uint16 (GPT-2-sized vocabularies). */
export type TokenArray = Int32Array | Uint32Array | Uint16Array;

/**
 * Throw a ShapeError unless `a` holds at least `need` elements. Longer buffers are allowed on
 * purpose: like llm.c, callers allocate activations once for the largest (B, T) and run smaller
 * batches in them; only the first `need` elements are read or written.
 */
export function checkLength(op: string, name: string, a: ArrayLike<number>, need: number, shape: string): void {
  if (a.length < need) {
    throw new ShapeError(`${op}: ${name} ${shape} needs ${need} elements but the array has ${a.length}; allocate it for these dimensions`);
  }
}
