/**
 * Round an fp32 tensor to BF16 values (round to nearest, ties to even; NaN stays a quiet NaN),
 * keeping it in a Float32Array: how the CPU oracle models activations that the CUDA backend stores
 * in BF16 (e.g. the BF16 output of a GEMM, docs/paper.md Fig. 5). The bit arithmetic is
 * formats/bf16.ts's `roundBf16InPlace`, so this op and the codec cannot disagree.
 *
 * Float32Array only, on purpose: BF16 storage exists only for fp32 tensors. Rounding a float64
 * value straight to BF16 can differ from rounding it to fp32 first (double rounding), and the GPU
 * never holds a float64 to round, so there is no reference to match; the float64 gradient checks
 * leave this op out rather than pick one. No backward: storage rounding is not differentiated, callers pass the gradient
 * through unchanged (straight-through).
 */
import { roundBf16InPlace } from "../../../formats/bf16.ts";
import { checkLength } from "./float-array.ts";

/** dst (n) = bf16(src (n)). dst may alias src (in place); elements from n on are not touched. */
export function roundToBf16(dst: Float32Array, src: Float32Array, n: number): void {
  checkLength("roundToBf16", "src", src, n, `(n=${n})`);
  checkLength("roundToBf16", "dst", dst, n, `(n=${n})`);
  const d = dst.subarray(0, n);
  // TypedArray.set copies as if through a temporary, so partial overlap is safe too.
  if (dst !== src) d.set(src.subarray(0, n));
  roundBf16InPlace(d);
}
