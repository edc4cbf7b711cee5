/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter) on FP32 master weights, FP32 moments,
 * and global gradient-norm clipping. The paper's settings: β1 0.9, β2 0.95, weight decay 0.1.
 * Plain TypeScript over Float32Array; per element the arithmetic is done in double and stored as
 * FP32 (the CUDA kernel does it in FP32; tests compare within tolerance). Weight decay applies to
 * matrices (linear weights, embedding, head), not to norm gains (nanoGPT's rule).
 */

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** global gradient-norm clip (0 disables) */
  gradClip: number;
}

export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
}

/**
 * One AdamW update of `param` with `grad` (already scaled by the clip factor), in place.
 * `t` is the 1-based update count (bias correction).
 */
export function adamwUpdate(
  param: Float32Array, grad: Float32Array, st: AdamWState, lr: number, t: number, cfg: AdamWConfig, decay: boolean, gradScale = 1,
): void {
  const { beta1: b1, beta2: b2, eps } = cfg;
  const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
  const wd = decay ? cfg.weightDecay : 0;
  const { m, v } = st;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * gradScale;
    const mi = (m[i] = b1 * m[i] + (1 - b1) * g);
    const vi = (v[i] = b2 * v[i] + (1 - b2) * g * g);
    const mhat = mi / bc1, vhat = vi / bc2;
    param[i] = param[i] - lr * (mhat / (Math.sqrt(vhat) + eps) + wd * param[i]);
  }
}

/** Sum of squares of a gradient, in double. */
export function sumOfSquares(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return s;
}

/** The factor that scales gradients down to norm `clip` (1 when below it or clip is 0). */
export function clipFactor(globalNorm: number, clip: number): number {
  return clip > 0 && globalNorm > clip ? clip / (globalNorm + 1e-6) : 1;
}
