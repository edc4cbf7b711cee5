import { test } from "node:test";
import assert from "node:assert/strict";
import { gatedRmsnormBackward, gatedRmsnormForward } from "./gated-rmsnorm.ts";
import { dot, gradCheck, randn, randUniform } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-10). */
const GRAD_TOL = 1e-7;

test("gated RMSNorm gradients (y, z, weight) match central differences in float64", (t) => {
  for (const [rows, D, S, seed] of [[3, 12, 4, 601], [2, 8, 8, 611], [4, 6, 1, 621]]) {
    const y = randn(rows * D, seed), z = randn(rows * D, seed + 1, 2), w = randUniform(D, seed + 2, 0.5, 1.5), proj = randn(rows * D, seed + 3);
    const out = new Float64Array(rows * D), rstd = new Float64Array(rows * (D / S)), eps = S === 1 ? 1e-2 : 1e-5; // one-element groups: h/sqrt(h²+eps) bends sharply for small eps
    const loss = () => (gatedRmsnormForward(out, rstd, y, z, w, rows, D, S, eps), dot(proj, out));
    loss();
    const dy = randn(rows * D, seed + 4), dz = randn(rows * D, seed + 5), dw0 = randn(D, seed + 6), dw = dw0.slice();
    gatedRmsnormBackward(dy, dz, dw, proj, y, z, w, rstd, rows, D, S);
    dw.forEach((v, i) => (dw[i] = v - dw0[i]));
    const ey = gradCheck(y, dy, loss), ez = gradCheck(z, dz, loss), ew = gradCheck(w, dw, loss);
    t.diagnostic(`rows ${rows} D ${D} group ${S}: dy ${ey.toExponential(2)} dz ${ez.toExponential(2)} dw ${ew.toExponential(2)}`);
    assert.ok(ey < GRAD_TOL && ez < GRAD_TOL && ew < GRAD_TOL, `errors ${ey} ${ez} ${ew}`);
  }
});

test("gated RMSNorm = w · norm_group(y·silu(z)): gate before the norm, one rstd per group, eps inside the sqrt", () => {
  const rows = 2, D = 8, S = 4, eps = 1e-3;
  const y = randn(rows * D, 31), z = randn(rows * D, 32), w = randUniform(D, 33, 0.5, 1.5);
  const out = new Float64Array(rows * D), rstd = new Float64Array(rows * 2);
  gatedRmsnormForward(out, rstd, y, z, w, rows, D, S, eps);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < 2; g++) {
      const h = Array.from({ length: S }, (_, i) => y[r * D + g * S + i] * z[r * D + g * S + i] / (1 + Math.exp(-z[r * D + g * S + i])));
      const rs = 1 / Math.sqrt(h.reduce((s, v) => s + v * v, 0) / S + eps);
      assert.ok(Math.abs(rstd[r * 2 + g] - rs) < 1e-14);
      h.forEach((v, i) => assert.ok(Math.abs(out[r * D + g * S + i] - w[g * S + i] * v * rs) < 1e-14, `r ${r} g ${g} i ${i}`));
    }
  }
  // groups are independent: scaling group 1's y by 100 leaves group 0's output unchanged
  const y2 = y.slice();
  for (let i = 4; i < 8; i++) y2[i] *= 100;
  const out2 = new Float64Array(rows * D);
  gatedRmsnormForward(out2, new Float64Array(4), y2, z, w, rows, D, S, eps);
  for (let i = 0; i < 4; i++) assert.equal(out2[i], out[i]);
  assert.notEqual(out2[4], out[4]);
  assert.throws(() => gatedRmsnormForward(out, rstd, y, z, w, rows, D, 3, eps), /groupSize 3 must divide the width D = 8/);
});
