import { test } from "node:test";
import assert from "node:assert/strict";
import { rmsnormBackward, rmsnormForward } from "./rmsnorm.ts";
import { dot, gradCheck, randn, randUniform } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-10). */
const GRAD_TOL = 1e-7;

test("rmsnorm gradients (x, weight) match central differences in float64", (t) => {
  const N = 5, C = 12, eps = 1e-5;
  const x = randn(N * C, 11), weight = randUniform(C, 12, 0.5, 1.5), w = randn(N * C, 13);
  const out = new Float64Array(N * C), rstd = new Float64Array(N);
  const loss = () => (rmsnormForward(out, rstd, x, weight, N, C, eps), dot(w, out));
  loss();
  const dx = randn(N * C, 14); // garbage: the backward must overwrite it
  const dw0 = randn(C, 15);
  const dweight = dw0.slice(); // the backward must add to it
  rmsnormBackward(dx, dweight, w, x, weight, rstd, N, C);
  for (let i = 0; i < C; i++) dweight[i] -= dw0[i];
  const ex = gradCheck(x, dx, loss), ew = gradCheck(weight, dweight, loss);
  t.diagnostic(`normwise rel. error: dx ${ex.toExponential(2)}, dweight ${ew.toExponential(2)}`);
  assert.ok(ex < GRAD_TOL, `dx error ${ex}`);
  assert.ok(ew < GRAD_TOL, `dweight error ${ew}`);
});

test("rmsnorm with constant weight c gives rows of RMS |c|·sqrt(ms/(ms+eps)) ≈ |c|", () => {
  const N = 4, C = 64, eps = 1e-6, c = -0.7;
  const x = randn(N * C, 21, 3);
  const weight = new Float64Array(C).fill(c);
  const out = new Float64Array(N * C), rstd = new Float64Array(N);
  rmsnormForward(out, rstd, x, weight, N, C, eps);
  for (let n = 0; n < N; n++) {
    let ssx = 0, sso = 0;
    for (let i = 0; i < C; i++) {
      ssx += x[n * C + i] ** 2;
      sso += out[n * C + i] ** 2;
    }
    const ms = ssx / C;
    assert.ok(Math.abs(Math.sqrt(sso / C) - Math.abs(c) * Math.sqrt(ms / (ms + eps))) < 1e-14, `row ${n}`);
    assert.ok(Math.abs(Math.sqrt(sso / C) - Math.abs(c)) < 1e-6, `row ${n}`);
    assert.ok(Math.abs(rstd[n] - 1 / Math.sqrt(ms + eps)) < 1e-14, `rstd row ${n}`);
  }
});

test("rmsnorm: eps is inside the square root (a zero-ish row is scaled by 1/sqrt(eps), not blown up)", () => {
  const C = 8, eps = 1e-2;
  const x = randn(C, 31, 1e-6), weight = randUniform(C, 32, 0.5, 1.5);
  const out = new Float64Array(C), rstd = new Float64Array(1);
  rmsnormForward(out, rstd, x, weight, 1, C, eps);
  let ms = 0;
  for (let i = 0; i < C; i++) ms += x[i] * x[i] / C;
  assert.ok(Math.abs(rstd[0] - 1 / Math.sqrt(ms + eps)) < 1e-12);
  for (let i = 0; i < C; i++) assert.ok(Math.abs(out[i] - x[i] * weight[i] / Math.sqrt(ms + eps)) < 1e-15);
});

test("rmsnorm in float32 matches the float64 result on the same inputs to fp32 round-off; out may alias x", () => {
  const N = 3, C = 32, eps = 1e-5;
  const x32 = Float32Array.from(randn(N * C, 41)), w32 = Float32Array.from(randUniform(C, 42, 0.5, 1.5));
  const oRef = new Float64Array(N * C), rRef = new Float64Array(N);
  rmsnormForward(oRef, rRef, Float64Array.from(x32), Float64Array.from(w32), N, C, eps);
  const r32 = new Float32Array(N);
  rmsnormForward(x32, r32, x32, w32, N, C, eps); // in place
  // Two fp32 roundings (rstd stored, then out): at most ~2 ulp.
  for (let i = 0; i < N * C; i++) assert.ok(Math.abs(x32[i] - oRef[i]) <= 2.5e-7 * Math.abs(oRef[i]), `element ${i}`);
});
