import { test } from "node:test";
import assert from "node:assert/strict";
import { convSiluBackward, convSiluForward } from "./causal-conv1d.ts";
import { dot, gradCheck, randn } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-10). */
const GRAD_TOL = 1e-7;

test("conv+SiLU gradients (x, weight, bias) match central differences in float64", (t) => {
  for (const [B, T, Cc, W, seed] of [[2, 7, 3, 4, 501], [1, 3, 5, 4, 511], [2, 5, 2, 2, 521], [1, 4, 3, 1, 531]]) {
    const x = randn(B * T * Cc, seed), w = randn(Cc * W, seed + 1, 0.7), bias = randn(Cc, seed + 2, 0.5), proj = randn(B * T * Cc, seed + 3);
    const out = new Float64Array(B * T * Cc);
    const loss = () => (convSiluForward(out, x, w, bias, B, T, Cc, W), dot(proj, out));
    const dx = randn(B * T * Cc, seed + 4); // garbage: overwritten
    const dw0 = randn(Cc * W, seed + 5), db0 = randn(Cc, seed + 6);
    const dw = dw0.slice(), db = db0.slice(); // accumulated into
    convSiluBackward(dx, dw, db, proj, x, w, bias, B, T, Cc, W);
    dw.forEach((v, i) => (dw[i] = v - dw0[i]));
    db.forEach((v, i) => (db[i] = v - db0[i]));
    const ex = gradCheck(x, dx, loss), ew = gradCheck(w, dw, loss), eb = gradCheck(bias, db, loss);
    t.diagnostic(`B ${B} T ${T} Cc ${Cc} W ${W}: dx ${ex.toExponential(2)} dw ${ew.toExponential(2)} dbias ${eb.toExponential(2)}`);
    assert.ok(ex < GRAD_TOL && ew < GRAD_TOL && eb < GRAD_TOL, `errors ${ex} ${ew} ${eb}`);
  }
});

test("conv+SiLU values: y[t] = silu(bias + Σ_k w[k]·x[t+k−(W−1)]), zero left padding, causal, per channel and sequence", () => {
  // one channel, W = 3, weights [w0 w1 w2] = [1, 10, 100], x = 1, 2, 3, 4
  const x = Float64Array.from([1, 2, 3, 4]), w = Float64Array.from([0.01, 0.1, 1]), bias = Float64Array.from([-0.5]);
  const out = new Float64Array(4);
  convSiluForward(out, x, w, bias, 1, 4, 1, 3);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const pre = [-0.5 + 1, -0.5 + 0.1 * 1 + 2, -0.5 + 0.01 * 1 + 0.1 * 2 + 3, -0.5 + 0.01 * 2 + 0.1 * 3 + 4];
  pre.forEach((p, i) => assert.ok(Math.abs(out[i] - silu(p)) < 1e-15, `t ${i}: ${out[i]} vs ${silu(p)}`));
  // causality and sequence independence: changing x at (b=1, t=3) changes only out[b=1, t>=3]
  const B = 2, T = 6, Cc = 3, W = 4;
  const xs = randn(B * T * Cc, 7), ws = randn(Cc * W, 8), bs = randn(Cc, 9);
  const o1 = new Float64Array(B * T * Cc), o2 = new Float64Array(B * T * Cc);
  convSiluForward(o1, xs, ws, bs, B, T, Cc, W);
  xs[(1 * T + 3) * Cc + 2] += 1;
  convSiluForward(o2, xs, ws, bs, B, T, Cc, W);
  for (let i = 0; i < B * T * Cc; i++) {
    const b = Math.floor(i / (T * Cc)), t = Math.floor(i / Cc) % T, c = i % Cc;
    const changed = o1[i] !== o2[i];
    assert.equal(changed, b === 1 && t >= 3 && c === 2, `element b ${b} t ${t} c ${c}`);
  }
  assert.throws(() => convSiluForward(new Float64Array(3), xs, ws, bs, B, T, Cc, W), /out \(B,T,Cc\).*needs 36 elements/);
  assert.throws(() => convSiluForward(o1, xs, ws, bs, B, T, Cc, 0), /W must be a positive integer/);
});
