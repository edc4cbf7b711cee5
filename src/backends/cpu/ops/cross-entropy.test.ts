import { test } from "node:test";
import assert from "node:assert/strict";
import { crossEntropyForwardBackward } from "./cross-entropy.ts";
import { gradCheck, randn, randTokens } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-11). */
const GRAD_TOL = 1e-7;

test("cross-entropy gradient (logits) matches central differences of the scaled mean in float64", (t) => {
  const N = 6, V = 9, scale = 0.37;
  const logits = randn(N * V, 501, 2), targets = randTokens(N, V, 502);
  const losses = new Float64Array(N);
  // Objective: scale · mean loss, so dlossScale = scale / N.
  const loss = () => scale * crossEntropyForwardBackward(losses, null, logits, targets, N, V, 0);
  const dlogits = randn(N * V, 503); // garbage: overwritten
  crossEntropyForwardBackward(losses, dlogits, logits, targets, N, V, scale / N);
  const e = gradCheck(logits, dlogits, loss);
  t.diagnostic(`normwise rel. error: dlogits ${e.toExponential(2)}`);
  assert.ok(e < GRAD_TOL, `dlogits error ${e}`);
});

test("cross-entropy of uniform logits is ln V; the gradient sums to 0 per row", () => {
  const N = 4, V = 50;
  const logits = new Float64Array(N * V).fill(3.25);
  const losses = new Float64Array(N), dlogits = new Float64Array(N * V);
  const mean = crossEntropyForwardBackward(losses, dlogits, logits, randTokens(N, V, 511), N, V, 1);
  assert.ok(Math.abs(mean - Math.log(V)) < 1e-14);
  for (const l of losses) assert.ok(Math.abs(l - Math.log(V)) < 1e-14);
  const random = randn(N * V, 512, 5), dr = new Float64Array(N * V);
  crossEntropyForwardBackward(losses, dr, random, randTokens(N, V, 513), N, V, 1);
  for (const d of [dlogits, dr]) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let i = 0; i < V; i++) s += d[n * V + i];
      assert.ok(Math.abs(s) < 1e-15, `row ${n} sum ${s}`);
    }
  }
});

test("cross-entropy: per-row loss is logsumexp − target logit, mean returned, stable for huge logits", () => {
  const N = 3, V = 5;
  const logits = randn(N * V, 521);
  const targets = randTokens(N, V, 522);
  const losses = new Float64Array(N);
  const mean = crossEntropyForwardBackward(losses, null, logits, targets, N, V, 1);
  let total = 0;
  for (let n = 0; n < N; n++) {
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(logits[n * V + i]);
    assert.ok(Math.abs(losses[n] - (Math.log(z) - logits[n * V + targets[n]])) < 1e-14, `row ${n}`);
    total += losses[n];
  }
  assert.equal(mean, total / N);
  // exp(1e4) overflows; the max-subtracted form does not.
  const big = Float32Array.from([1e4, 1e4 - 1, -1e4, 1e4 - 2, 0]);
  const l32 = new Float32Array(1), d32 = new Float32Array(V);
  const m = crossEntropyForwardBackward(l32, d32, big, Int32Array.from([1]), 1, V, 1);
  const ref = Math.log(1 + Math.exp(-1) + Math.exp(-2)) + 1;
  assert.ok(Math.abs(m - ref) < 1e-12 && Math.abs(l32[0] - ref) < 1e-6);
  assert.ok(d32.every(Number.isFinite));
});

test("cross-entropy refuses out-of-range targets before writing anything", () => {
  const N = 3, V = 4;
  const logits = randn(N * V, 531), losses = new Float64Array(N).fill(7);
  assert.throws(
    () => crossEntropyForwardBackward(losses, null, logits, Int32Array.from([0, 3, 4]), N, V, 1),
    (e: unknown) => e instanceof RangeError && /target id 4 at position 2/.test(e.message),
  );
  assert.deepEqual(Array.from(losses), [7, 7, 7]);
  assert.throws(() => crossEntropyForwardBackward(losses, null, logits, Int32Array.from([-1, 0, 0]), N, V, 1), RangeError);
});
