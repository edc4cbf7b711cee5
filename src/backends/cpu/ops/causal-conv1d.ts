/**
 * Causal depthwise 1-D convolution over time with bias, then SiLU: the short convolution of the
 * Mamba-2 mixer over its x, B and C channels (Dao & Gu 2024, arXiv 2405.21060 §7; Hugging Face
 * `NemotronHMamba2Mixer`: `act(conv1d(xBC)[..., :T])` with `padding = W − 1`, i.e. zero padding
 * on the left only):
 *   pre[b,t,c] = bias[c] + Σ_{k<W} w[c,k] · x[b, t + k − (W−1), c]      (x = 0 before t = 0)
 *   out[b,t,c] = silu(pre) = pre · σ(pre)
 * Channels are independent ("depthwise", groups = channels); each sequence of the batch starts
 * from zeros. Not a linear layer: the recipe never quantizes it (FP32 here, float64 sums).
 *
 * Gradient convention: `dx` is OVERWRITTEN; `dweight` and `dbias` are ACCUMULATED (+=). The
 * pre-activation is recomputed in the backward pass (W multiply-adds per element) rather than
 * stored.
 */
import { checkLength, type FloatArray } from "./float-array.ts";
import { ShapeError } from "../../../errors.ts";

function check(op: string, B: number, T: number, Cc: number, W: number, arrays: [string, ArrayLike<number>, number][]): void {
  for (const [k, v] of Object.entries({ B, T, Cc, W })) {
    if (!Number.isInteger(v) || v <= 0) throw new ShapeError(`${op}: ${k} must be a positive integer, got ${v}`);
  }
  const shape = `(B=${B}, T=${T}, Cc=${Cc}, W=${W})`;
  for (const [name, a, n] of arrays) checkLength(op, name, a, n, shape);
}

/** pre-activation at (b, t, c): bias + Σ_k w[c,k]·x[t+k−(W−1)], summed in float64. */
function preAct(x: FloatArray, w: FloatArray, bias: FloatArray, base: number, t: number, c: number, Cc: number, W: number): number {
  let s = bias[c];
  const k0 = Math.max(0, W - 1 - t);
  for (let k = k0; k < W; k++) s += w[c * W + k] * x[base + (t + k - (W - 1)) * Cc + c];
  return s;
}

/** out (B,T,Cc) = silu(bias + causal depthwise conv of x (B,T,Cc) with weight (Cc,W)); out must not alias x. */
export function convSiluForward(out: FloatArray, x: FloatArray, weight: FloatArray, bias: FloatArray, B: number, T: number, Cc: number, W: number): void {
  check("convSiluForward", B, T, Cc, W, [["x (B,T,Cc)", x, B * T * Cc], ["out (B,T,Cc)", out, B * T * Cc], ["weight (Cc,W)", weight, Cc * W], ["bias (Cc)", bias, Cc]]);
  for (let b = 0; b < B; b++) {
    const base = b * T * Cc;
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < Cc; c++) {
        const p = preAct(x, weight, bias, base, t, c, Cc, W);
        out[base + t * Cc + c] = p / (1 + Math.exp(-p));
      }
    }
  }
}

/**
 * dx (B,T,Cc) = Σ_k w[c,k]·dpre[t − k + (W−1)] with dpre = dout·silu'(pre); dweight (Cc,W) +=
 * Σ_{b,t} dpre[t]·x[t+k−(W−1)]; dbias (Cc) += Σ_{b,t} dpre. dx must not alias dout or x.
 */
export function convSiluBackward(
  dx: FloatArray, dweight: FloatArray, dbias: FloatArray, dout: FloatArray, x: FloatArray, weight: FloatArray, bias: FloatArray,
  B: number, T: number, Cc: number, W: number,
): void {
  check("convSiluBackward", B, T, Cc, W, [
    ["x (B,T,Cc)", x, B * T * Cc], ["dout (B,T,Cc)", dout, B * T * Cc], ["dx (B,T,Cc)", dx, B * T * Cc],
    ["weight (Cc,W)", weight, Cc * W], ["bias (Cc)", bias, Cc], ["dweight (Cc,W)", dweight, Cc * W], ["dbias (Cc)", dbias, Cc],
  ]);
  const dw = new Float64Array(Cc * W), db = new Float64Array(Cc);
  const dpre = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    const base = b * T * Cc;
    for (let c = 0; c < Cc; c++) {
      for (let t = 0; t < T; t++) {
        const p = preAct(x, weight, bias, base, t, c, Cc, W);
        const s = 1 / (1 + Math.exp(-p));
        dpre[t] = dout[base + t * Cc + c] * s * (1 + p * (1 - s));
        db[c] += dpre[t];
      }
      for (let t = 0; t < T; t++) {
        // x[t] feeds pre[t + (W−1) − k] through w[k]
        let g = 0;
        for (let k = 0; k < W; k++) {
          const to = t + (W - 1) - k;
          if (to < T) g += weight[c * W + k] * dpre[to];
        }
        dx[base + t * Cc + c] = g;
        const xv = x[base + t * Cc + c];
        for (let k = 0; k < W; k++) {
          const to = t + (W - 1) - k;
          if (to < T) dw[c * W + k] += dpre[to] * xv;
        }
      }
    }
  }
  for (let i = 0; i < Cc * W; i++) dweight[i] += dw[i];
  for (let c = 0; c < Cc; c++) dbias[c] += db[c];
}
