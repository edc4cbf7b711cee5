/**
 * Gated group RMSNorm: the Mamba-2 mixer's output norm exactly as Hugging Face NemotronH computes
 * it (`Zamba2RMSNormGated`, mamba_ssm `RMSNormGated` with norm_before_gate = False): the gate is
 * applied BEFORE the norm, and the norm runs over groups of `groupSize` channels (the SSM's
 * ngroups groups of the intermediate width), then one weight per channel:
 *   h = y · silu(z);   out[r, g·S + i] = w[g·S + i] · h[r, g·S + i] · rstd[r, g]
 *   rstd[r, g] = 1 / sqrt(mean_i h[r, g·S + i]² + eps)
 * No bias, eps inside the square root. Never quantized (a norm); sums in float64, rstd saved.
 * Method: Dao & Gu 2024 (arXiv 2405.21060) §7.3 "extra normalization"; transformers
 * models/zamba2 `Zamba2RMSNormGated.forward`.
 *
 * Gradient convention: `dy` and `dz` are OVERWRITTEN, `dweight` is ACCUMULATED (+=).
 */
import { checkLength, type FloatArray } from "./float-array.ts";
import { ShapeError } from "../../../errors.ts";

function check(op: string, rows: number, D: number, S: number, arrays: [string, ArrayLike<number>, number][]): void {
  if (!Number.isInteger(S) || S <= 0 || D % S !== 0) throw new ShapeError(`${op}: groupSize ${S} must divide the width D = ${D}`);
  const shape = `(rows=${rows}, D=${D}, groups=${D / S})`;
  for (const [name, a, n] of arrays) checkLength(op, name, a, n, shape);
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/** out (rows, D), rstd (rows, D/S) ← y, z (rows, D), weight (D). out may alias y. */
export function gatedRmsnormForward(out: FloatArray, rstd: FloatArray, y: FloatArray, z: FloatArray, weight: FloatArray, rows: number, D: number, groupSize: number, eps: number): void {
  const S = groupSize, G = D / S;
  check("gatedRmsnormForward", rows, D, S, [["y (rows,D)", y, rows * D], ["z (rows,D)", z, rows * D], ["out (rows,D)", out, rows * D], ["rstd (rows,groups)", rstd, rows * G], ["weight (D)", weight, D]]);
  const h = new Float64Array(S);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const o = r * D + g * S;
      let ss = 0;
      for (let i = 0; i < S; i++) {
        h[i] = y[o + i] * silu(z[o + i]);
        ss += h[i] * h[i];
      }
      rstd[r * G + g] = 1 / Math.sqrt(ss / S + eps);
      const rs = rstd[r * G + g];
      for (let i = 0; i < S; i++) out[o + i] = h[i] * rs * weight[g * S + i];
    }
  }
}

/**
 * dh = rstd · (dout·w − h · rstd² · mean_group(dout·w·h)); dy = dh · silu(z);
 * dz = dh · y · silu'(z); dweight += Σ_rows dout · h · rstd. dy, dz may alias dout.
 */
export function gatedRmsnormBackward(
  dy: FloatArray, dz: FloatArray, dweight: FloatArray, dout: FloatArray, y: FloatArray, z: FloatArray, weight: FloatArray, rstd: FloatArray,
  rows: number, D: number, groupSize: number,
): void {
  const S = groupSize, G = D / S;
  check("gatedRmsnormBackward", rows, D, S, [
    ["y (rows,D)", y, rows * D], ["z (rows,D)", z, rows * D], ["dout (rows,D)", dout, rows * D], ["dy (rows,D)", dy, rows * D],
    ["dz (rows,D)", dz, rows * D], ["rstd (rows,groups)", rstd, rows * G], ["weight (D)", weight, D], ["dweight (D)", dweight, D],
  ]);
  const dw = new Float64Array(D), h = new Float64Array(S), sg = new Float64Array(S), g0 = new Float64Array(S);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      const o = r * D + g * S, rs = rstd[r * G + g];
      let dot = 0;
      for (let i = 0; i < S; i++) {
        const zi = z[o + i];
        sg[i] = 1 / (1 + Math.exp(-zi));
        h[i] = y[o + i] * zi * sg[i];
        g0[i] = dout[o + i];
        dot += g0[i] * weight[g * S + i] * h[i];
      }
      const k = (rs * rs * dot) / S;
      for (let i = 0; i < S; i++) {
        const zi = z[o + i], yi = y[o + i];
        dw[g * S + i] += g0[i] * h[i] * rs;
        const dh = rs * (g0[i] * weight[g * S + i] - h[i] * k);
        dy[o + i] = dh * zi * sg[i];
        dz[o + i] = dh * yi * sg[i] * (1 + zi * (1 - sg[i]));
      }
    }
  }
  for (let i = 0; i < D; i++) dweight[i] += dw[i];
}
