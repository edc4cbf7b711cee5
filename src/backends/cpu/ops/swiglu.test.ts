import { test } from "node:test";
import assert from "node:assert/strict";
import { swigluBackward, swigluForward } from "./swiglu.ts";
import { dot, gradCheck, randn } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-11). */
const GRAD_TOL = 1e-7;

test("swiglu gradient (gate and up) matches central differences in float64", (t) => {
  for (const [rows, F, seed] of [[3, 16, 401], [1, 5, 411], [7, 2, 421]]) {
    const gateUp = randn(rows * 2 * F, seed, 2.5), w = randn(rows * F, seed + 1);
    const out = new Float64Array(rows * F);
    const loss = () => (swigluForward(out, gateUp, rows, F), dot(w, out));
    const d = randn(rows * 2 * F, seed + 2); // garbage: overwritten
    swigluBackward(d, w, gateUp, rows, F);
    const e = gradCheck(gateUp, d, loss);
    t.diagnostic(`rows ${rows}, F ${F}: normwise rel. error ${e.toExponential(2)}`);
    assert.ok(e < GRAD_TOL, `rows ${rows} F ${F}: error ${e}`);
  }
});

test("swiglu values: silu(gate)·up per row, gate first; saturation without NaN; backward in place", () => {
  // rows [g0 g1 | u0 u1]
  const gu = Float64Array.from([0, 2, 3, -1, -1e4, 1e4, 5, 7]);
  const out = new Float64Array(4);
  swigluForward(out, gu, 2, 2);
  // silu(2) = 2·σ(2) = 1.76159415595576489 (σ(2) = 0.88079707797788244); silu(−1e4) = −0; silu(1e4) = 1e4
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-15 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
  [0, -1.7615941559557649, -0, 7e4].forEach((v, i) => near(out[i], v));
  assert.ok(Object.is(out[2], -0), "silu(−1e4)·5 saturates to −0, not NaN");
  const dout = Float64Array.from([1, 2, 3, 4]);
  const ref = new Float64Array(8);
  swigluBackward(ref, dout, gu, 2, 2);
  const s2 = 0.8807970779778824;
  assert.equal(ref[0], 1 * 3 * 0.5); // silu'(0) = 1/2
  near(ref[1], -2 * s2 * (1 + 2 * (1 - s2)));
  assert.equal(ref[2], 0); // dup at g = 0
  near(ref[3], 2 * 1.7615941559557649);
  assert.equal(ref[5], 4 * 7); // silu'(1e4) = 1
  assert.ok(ref.every(Number.isFinite));
  const inPlace = Float64Array.from(gu);
  swigluBackward(inPlace, dout, inPlace, 2, 2);
  assert.deepEqual(inPlace, ref);
  const f32 = new Float32Array(4);
  swigluForward(f32, Float32Array.from(gu), 2, 2);
  assert.deepEqual(Array.from(f32), Array.from(out, Math.fround));
  assert.throws(() => swigluForward(new Float32Array(3), gu, 2, 2), /out \(rows, F\).*needs 4 elements/);
});
