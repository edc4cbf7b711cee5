import { test } from "node:test";
import assert from "node:assert/strict";
import { ropeBackward, ropeForward, ropeTable } from "./rope.ts";
import { dot, gradCheck, maxAbsDiff, randn } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-10). */
const GRAD_TOL = 1e-7;

test("ropeTable: cos/sin of t·theta^(−2i/HS), (T, HS/2) row-major", () => {
  const tab = ropeTable(5, 4, 10000);
  assert.equal(tab.cos.length, 10);
  // HS=4: inv_freq = [1, 10000^(-1/2) = 0.01].
  assert.equal(tab.cos[3 * 2 + 0], Math.cos(3));
  assert.ok(Math.abs(tab.sin[3 * 2 + 1] - Math.sin(0.03)) < 1e-16);
  assert.ok(Math.abs(tab.cos[4 * 2 + 1] - Math.cos(0.04)) < 1e-16);
  assert.throws(() => ropeTable(4, 6 + 1, 10000), RangeError);
});

test("rope gradient (x) matches central differences in float64", (t) => {
  const B = 2, T = 5, NH = 3, HS = 8, n = B * T * NH * HS;
  const tab = ropeTable(T, HS, 100); // small theta so every pair rotates noticeably
  const x = randn(n, 101), w = randn(n, 102);
  const out = new Float64Array(n);
  const loss = () => (ropeForward(out, x, tab, B, T, NH, HS), dot(w, out));
  const dx = randn(n, 103); // garbage: overwritten
  ropeBackward(dx, w, tab, B, T, NH, HS);
  const e = gradCheck(x, dx, loss);
  t.diagnostic(`normwise rel. error: dx ${e.toExponential(2)}`);
  assert.ok(e < GRAD_TOL, `dx error ${e}`);
});

test("rope pairs (i, i+HS/2) (half-split, HF rotate_half) and matches q·cos + rotate_half(q)·sin", () => {
  const B = 1, T = 4, NH = 2, HS = 6, half = 3, n = B * T * NH * HS;
  const theta = 500000;
  const x = randn(n, 111), out = new Float64Array(n);
  ropeForward(out, x, ropeTable(T, HS, theta), B, T, NH, HS);
  for (let tt = 0; tt < T; tt++) {
    for (let h = 0; h < NH; h++) {
      const base = (tt * NH + h) * HS;
      for (let d = 0; d < HS; d++) {
        const i = d % half;
        const ang = tt / theta ** ((2 * i) / HS);
        const rot = d < half ? -x[base + d + half] : x[base + d - half]; // rotate_half
        const ref = x[base + d] * Math.cos(ang) + rot * Math.sin(ang);
        assert.ok(Math.abs(out[base + d] - ref) < 1e-14, `t=${tt} h=${h} d=${d}`);
      }
    }
  }
});

test("rope: position 0 is the identity, pair norms are preserved, backward inverts forward (in place)", () => {
  const B = 2, T = 6, NH = 2, HS = 8, half = 4, n = B * T * NH * HS;
  const tab = ropeTable(T, HS, 10000);
  const x = randn(n, 121), y = x.slice();
  ropeForward(y, y, tab, B, T, NH, HS);
  for (let b = 0; b < B; b++) {
    for (let tt = 0; tt < T; tt++) {
      for (let h = 0; h < NH; h++) {
        const base = ((b * T + tt) * NH + h) * HS;
        for (let i = 0; i < half; i++) {
          const nx = Math.hypot(x[base + i], x[base + half + i]), ny = Math.hypot(y[base + i], y[base + half + i]);
          assert.ok(Math.abs(nx - ny) < 1e-14 * Math.max(1, nx), `pair norm b=${b} t=${tt} h=${h} i=${i}`);
          if (tt === 0) {
            assert.equal(y[base + i], x[base + i]);
            assert.equal(y[base + half + i], x[base + half + i]);
          }
        }
      }
    }
  }
  ropeBackward(y, y, tab, B, T, NH, HS);
  assert.ok(maxAbsDiff(y, x) < 1e-14);
});

test("rope: q·k after rotation depends only on the position offset", () => {
  const T = 9, HS = 16;
  const tab = ropeTable(T, HS, 10000);
  const q = randn(HS, 131), k = randn(HS, 132);
  // Place q and k at every position (B=1, NH=1) and rotate.
  const Q = new Float64Array(T * HS), K = new Float64Array(T * HS);
  for (let tt = 0; tt < T; tt++) {
    Q.set(q, tt * HS);
    K.set(k, tt * HS);
  }
  ropeForward(Q, Q, tab, 1, T, 1, HS);
  ropeForward(K, K, tab, 1, T, 1, HS);
  const s = (i: number, j: number) => dot(Q.subarray(i * HS, (i + 1) * HS), K.subarray(j * HS, (j + 1) * HS));
  for (const off of [0, 1, 3]) {
    for (let j = 0; j + off < T; j++) assert.ok(Math.abs(s(j + off, j) - s(off, 0)) < 1e-12, `offset ${off} at ${j}`);
  }
});

test("rope: a table for more positions serves shorter sequences; a wrong head size is refused", () => {
  const B = 1, T = 3, NH = 1, HS = 4, n = B * T * NH * HS;
  const x = randn(n, 141), a = new Float64Array(n), b = new Float64Array(n);
  ropeForward(a, x, ropeTable(T, HS, 10000), B, T, NH, HS);
  ropeForward(b, x, ropeTable(16, HS, 10000), B, T, NH, HS);
  assert.deepEqual(a, b);
  assert.throws(() => ropeForward(a, x, ropeTable(T, 8, 10000), B, T, NH, HS), /built for HS=8/);
  assert.throws(() => ropeForward(a, x, ropeTable(2, HS, 10000), B, T, NH, HS), /covers 2 positions/);
});
