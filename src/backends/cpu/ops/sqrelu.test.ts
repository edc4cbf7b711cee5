import { test } from "node:test";
import assert from "node:assert/strict";
import { sqreluBackward, sqreluForward } from "./sqrelu.ts";
import { dot, gradCheck, randn } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-11). */
const GRAD_TOL = 1e-7;

test("sqrelu gradient (x) matches central differences in float64", (t) => {
  const n = 64;
  const x = randn(n, 301), w = randn(n, 302);
  const out = new Float64Array(n);
  const loss = () => (sqreluForward(out, x, n), dot(w, out));
  const dx = randn(n, 303); // garbage: overwritten
  sqreluBackward(dx, w, x, n);
  const e = gradCheck(x, dx, loss);
  t.diagnostic(`normwise rel. error: dx ${e.toExponential(2)}`);
  assert.ok(e < GRAD_TOL, `dx error ${e}`);
});

test("sqrelu values: relu(x)², zero (not −0 squared) for x ≤ 0; backward zero there too; in place", () => {
  const x = Float32Array.from([-2, -0, 0, 0.5, 3, -1e-30, 1e-20]);
  const out = new Float32Array(x.length);
  sqreluForward(out, x, x.length);
  assert.deepEqual(Array.from(out), [0, 0, 0, 0.25, 9, 0, Math.fround(1e-40)]);
  const g = Float32Array.from([1, 2, 3, 4, 5, 6, 7]);
  sqreluBackward(g, g, x, x.length); // dx aliases dout
  assert.deepEqual(Array.from(g), [0, 0, 0, 4, 30, 0, Math.fround(2 * Math.fround(1e-20) * 7)]);
  sqreluForward(x, x, x.length);
  assert.deepEqual(x, out);
});

test("sqrelu propagates NaN in both directions (a poisoned pre-activation is not silently zeroed); ±Inf as relu(x)²", () => {
  const x = Float32Array.from([NaN, -Infinity, Infinity, -1]);
  const out = new Float32Array(x.length);
  sqreluForward(out, x, x.length);
  assert.ok(Number.isNaN(out[0]), `relu(NaN)² = ${out[0]}`);
  assert.deepEqual(Array.from(out.subarray(1)), [0, Infinity, 0]);
  const dx = new Float32Array(x.length);
  sqreluBackward(dx, Float32Array.from([1, 1, 1, NaN]), x, x.length);
  assert.ok(Number.isNaN(dx[0]), `d relu(NaN)² = ${dx[0]}`);
  assert.deepEqual(Array.from(dx.subarray(1)), [0, Infinity, 0]);
});
