/**
 * SwiGLU, the gated MLP non-linearity of Llama (Shazeer 2020, "GLU Variants Improve
 * Transformer", arXiv 2002.05202): out = silu(gate) · up, silu(g) = g · σ(g), σ(g) = 1/(1+e^−g).
 * The gate and up projections arrive fused as one (rows, 2F) tensor, each row [gate (F) | up (F)]
 * (the fused fc1 of nn/mlp.ts); the linears themselves are elsewhere. Kept in high precision by
 * the recipe, like squared ReLU. The CUDA twin is backends/cuda/kernels/swiglu.cu.
 *
 * Gradient convention: `dGateUp` (rows, 2F) is OVERWRITTEN:
 *   dgate = dout · up · σ(g)·(1 + g·σ(−g))      (d silu/dg; σ(−g) = 1 − σ(g) without the cancellation)
 *   dup   = dout · silu(g)
 * dGateUp may alias gateUp (each element pair is read before it is written); `out` and `dout`
 * (rows, F) must not alias either (different layout).
 */
import { checkLength, type FloatArray } from "./float-array.ts";

/** out (rows, F) = silu(gateUp[:, :F]) · gateUp[:, F:]. */
export function swigluForward(out: FloatArray, gateUp: FloatArray, rows: number, F: number): void {
  const shape = `(rows=${rows}, F=${F})`;
  checkLength("swigluForward", "gateUp (rows, 2F)", gateUp, rows * 2 * F, shape);
  checkLength("swigluForward", "out (rows, F)", out, rows * F, shape);
  for (let r = 0; r < rows; r++) {
    const gi = r * 2 * F, oi = r * F;
    for (let j = 0; j < F; j++) {
      const g = gateUp[gi + j];
      out[oi + j] = (g / (1 + Math.exp(-g))) * gateUp[gi + F + j];
    }
  }
}

/** dGateUp (rows, 2F) = [dout · up · silu'(gate) | dout · silu(gate)]. */
export function swigluBackward(dGateUp: FloatArray, dout: FloatArray, gateUp: FloatArray, rows: number, F: number): void {
  const shape = `(rows=${rows}, F=${F})`;
  checkLength("swigluBackward", "gateUp (rows, 2F)", gateUp, rows * 2 * F, shape);
  checkLength("swigluBackward", "dout (rows, F)", dout, rows * F, shape);
  checkLength("swigluBackward", "dGateUp (rows, 2F)", dGateUp, rows * 2 * F, shape);
  for (let r = 0; r < rows; r++) {
    const gi = r * 2 * F, oi = r * F;
    for (let j = 0; j < F; j++) {
      const g = gateUp[gi + j], u = gateUp[gi + F + j], d = dout[oi + j];
      const s = 1 / (1 + Math.exp(-g)), sNeg = 1 / (1 + Math.exp(g));
      dGateUp[gi + j] = d * u * s * (1 + g * sNeg);
      dGateUp[gi + F + j] = d * g * s;
    }
  }
}
