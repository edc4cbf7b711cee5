/**
 * RMSNorm forward and backward (pre-norm blocks and the final norm): out = x · rstd · weight with
 * rstd = 1 / sqrt(mean(x²) + eps) per row, matching Hugging Face `LlamaRMSNorm` (eps inside the
 * square root, weight multiplying the normalised x, no bias, no mean subtraction). Row sums are
 * taken in float64 whatever the array type, and rstd is saved for the backward as llm.c saves it
 * for layernorm. Not quantized anywhere in the recipe (docs/paper.md: normalisation layers stay
 * in high precision). Method: Zhang & Sennrich 2019, arXiv 1910.07467.
 *
 * Gradient convention: `dx` is OVERWRITTEN, `dweight` is ACCUMULATED (+=), so a caller summing
 * several micro-batches zeroes dweight once and the residual stream adds dx itself.
 */
import { checkLength, type FloatArray } from "./float-array.ts";

/**
 * out (N,C), rstd (N) ← x (N,C), weight (C). N is B·T for activations. `out` may alias `x`
 * (each row is read fully before it is written).
 */
export function rmsnormForward(out: FloatArray, rstd: FloatArray, x: FloatArray, weight: FloatArray, N: number, C: number, eps: number): void {
  checkLength("rmsnormForward", "x", x, N * C, `(N=${N}, C=${C})`);
  checkLength("rmsnormForward", "out", out, N * C, `(N=${N}, C=${C})`);
  checkLength("rmsnormForward", "rstd", rstd, N, `(N=${N})`);
  checkLength("rmsnormForward", "weight", weight, C, `(C=${C})`);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[row + i] * x[row + i];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    // Use the stored rstd so forward and backward see the same value when rstd is fp32.
    const rs = rstd[n];
    for (let i = 0; i < C; i++) out[row + i] = x[row + i] * rs * weight[i];
  }
}

/**
 * dx (N,C) = rstd · (dout·w − x · rstd² · mean(dout·w·x)); dweight (C) += Σ_rows dout · x · rstd.
 * The mean term is the derivative of rstd through mean(x²). `dx` may alias `dout`.
 */
export function rmsnormBackward(
  dx: FloatArray,
  dweight: FloatArray,
  dout: FloatArray,
  x: FloatArray,
  weight: FloatArray,
  rstd: FloatArray,
  N: number,
  C: number,
): void {
  checkLength("rmsnormBackward", "x", x, N * C, `(N=${N}, C=${C})`);
  checkLength("rmsnormBackward", "dout", dout, N * C, `(N=${N}, C=${C})`);
  checkLength("rmsnormBackward", "dx", dx, N * C, `(N=${N}, C=${C})`);
  checkLength("rmsnormBackward", "rstd", rstd, N, `(N=${N})`);
  checkLength("rmsnormBackward", "weight", weight, C, `(C=${C})`);
  checkLength("rmsnormBackward", "dweight", dweight, C, `(C=${C})`);
  // dweight's sum over rows runs in float64 and is added once, so an fp32 dweight is rounded once.
  const dw = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    const r = rstd[n];
    let dot = 0; // Σ_i dout_i · w_i · x_i
    for (let i = 0; i < C; i++) dot += dout[row + i] * weight[i] * x[row + i];
    const k = (r * r * dot) / C;
    for (let i = 0; i < C; i++) {
      const g = dout[row + i];
      const xi = x[row + i];
      dw[i] += g * xi * r;
      dx[row + i] = r * (g * weight[i] - xi * k);
    }
  }
  for (let i = 0; i < C; i++) dweight[i] += dw[i];
}
