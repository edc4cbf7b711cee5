/**
 * Squared ReLU, the MLP non-linearity of the paper's models (non-gated FFN: up-projection,
 * relu(x)², down-projection): out = max(x, 0)². Elementwise; the up/down linears are elsewhere.
 * Kept in high precision by the recipe (docs/paper.md: non-linearities are never quantized).
 * Method: So et al. 2021, "Primer", arXiv 2109.08668.
 *
 * Gradient convention: `dx` is OVERWRITTEN with dout · 2·relu(x). The derivative is continuous
 * (0 at x = 0 from both sides), so unlike plain ReLU there is no kink convention to choose.
 * All arguments may alias one another (each element is read before it is written).
 * A NaN input gives NaN in both directions (as torch.relu): a poisoned pre-activation must reach
 * the non-finite checks of the next quantizer, not become 0.
 */
import { checkLength, type FloatArray } from "./float-array.ts";

/** out (n) = relu(x)². */
export function sqreluForward(out: FloatArray, x: FloatArray, n: number): void {
  checkLength("sqreluForward", "x", x, n, `(n=${n})`);
  checkLength("sqreluForward", "out", out, n, `(n=${n})`);
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    out[i] = xi > 0 ? xi * xi : xi !== xi ? xi : 0;
  }
}

/** dx (n) = dout · 2·relu(x). */
export function sqreluBackward(dx: FloatArray, dout: FloatArray, x: FloatArray, n: number): void {
  checkLength("sqreluBackward", "x", x, n, `(n=${n})`);
  checkLength("sqreluBackward", "dout", dout, n, `(n=${n})`);
  checkLength("sqreluBackward", "dx", dx, n, `(n=${n})`);
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    dx[i] = xi > 0 ? 2 * xi * dout[i] : xi !== xi ? xi : 0;
  }
}
