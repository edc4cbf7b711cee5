/**
 * The residual stream's two elementwise ops: `addInto` for the forward (x + block(x)) and
 * `accumulate` for the backward, where the stream's gradient is added to the one flowing back
 * through the block (and where a micro-batch's gradient joins the running sum). Nothing else
 * belongs here; scaled adds and the optimizer's updates live with their callers.
 * As llm.c's `residual_forward`; the sum of two floats is rounded once to the array type.
 */
import { checkLength, type FloatArray } from "./float-array.ts";

/** out (n) = a + b. out may alias a or b. */
export function addInto(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void {
  checkLength("addInto", "a", a, n, `(n=${n})`);
  checkLength("addInto", "b", b, n, `(n=${n})`);
  checkLength("addInto", "out", out, n, `(n=${n})`);
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/** dst (n) += src (n). */
export function accumulate(dst: FloatArray, src: FloatArray, n: number): void {
  checkLength("accumulate", "src", src, n, `(n=${n})`);
  checkLength("accumulate", "dst", dst, n, `(n=${n})`);
  for (let i = 0; i < n; i++) dst[i] += src[i];
}
