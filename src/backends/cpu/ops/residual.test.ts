import { test } from "node:test";
import assert from "node:assert/strict";
import { accumulate, addInto } from "./residual.ts";
import { dot, gradCheck, randn } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-11). */
const GRAD_TOL = 1e-7;

test("residual: the backward of addInto is accumulate into both inputs' gradients (central differences)", (t) => {
  const n = 20;
  const a = randn(n, 601), b = randn(n, 602), w = randn(n, 603);
  const out = new Float64Array(n);
  const loss = () => (addInto(out, a, b, n), dot(w, out));
  const da0 = randn(n, 604), da = da0.slice(), db = new Float64Array(n);
  accumulate(da, w, n);
  accumulate(db, w, n);
  for (let i = 0; i < n; i++) da[i] -= da0[i];
  const ea = gradCheck(a, da, loss), eb = gradCheck(b, db, loss);
  t.diagnostic(`normwise rel. error: da ${ea.toExponential(2)}, db ${eb.toExponential(2)}`);
  assert.ok(ea < GRAD_TOL && eb < GRAD_TOL, `da ${ea}, db ${eb}`);
});

test("addInto may alias either input; accumulate adds; neither touches elements past n", () => {
  const a = Float32Array.from([1, 2, 3, 4]), b = Float32Array.from([0.5, -2, 1e-8, 9]);
  const sum = Array.from(a, (x, i) => Math.fround(x + b[i]));
  const x = a.slice();
  addInto(x, x, b, 3);
  assert.deepEqual(Array.from(x), [...sum.slice(0, 3), 4]);
  const y = b.slice();
  addInto(y, a, y, 4);
  assert.deepEqual(Array.from(y), sum);
  const d = a.slice();
  accumulate(d, b, 2);
  assert.deepEqual(Array.from(d), [1.5, 0, 3, 4]);
});
