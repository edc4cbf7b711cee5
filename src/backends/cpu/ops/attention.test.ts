import { test } from "node:test";
import assert from "node:assert/strict";
import { attentionBackward, attentionForward } from "./attention.ts";
import { ShapeError } from "../../../errors.ts";
import { dot, gradCheck, maxAbsDiff, randn } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ≤ 4e-10). */
const GRAD_TOL = 1e-7;

function sizes(B: number, T: number, NH: number, NKV: number, HS: number) {
  return { nq: B * T * NH * HS, nkv: B * T * NKV * HS, np: B * NH * T * T };
}

for (const [NH, NKV] of [[4, 2], [4, 4], [4, 1]] as const) {
  test(`attention gradients (q, k, v) match central differences in float64, NH=${NH} NKV=${NKV}`, (t) => {
    const B = 2, T = 5, HS = 4;
    const { nq, nkv, np } = sizes(B, T, NH, NKV, HS);
    const seed = 1000 * NH + 10 * NKV;
    const q = randn(nq, seed + 1), k = randn(nkv, seed + 2), v = randn(nkv, seed + 3), w = randn(nq, seed + 4);
    const out = new Float64Array(nq), probs = new Float64Array(np);
    const loss = () => (attentionForward(out, probs, q, k, v, B, T, NH, NKV, HS), dot(w, out));
    loss();
    // Garbage in the gradient buffers: all three are overwritten.
    const dq = randn(nq, seed + 5), dk = randn(nkv, seed + 6), dv = randn(nkv, seed + 7);
    attentionBackward(dq, dk, dv, w, q, k, v, probs, B, T, NH, NKV, HS);
    const eq = gradCheck(q, dq, loss), ek = gradCheck(k, dk, loss), ev = gradCheck(v, dv, loss);
    t.diagnostic(`normwise rel. error: dq ${eq.toExponential(2)}, dk ${ek.toExponential(2)}, dv ${ev.toExponential(2)}`);
    assert.ok(eq < GRAD_TOL, `dq error ${eq}`);
    assert.ok(ek < GRAD_TOL, `dk error ${ek}`);
    assert.ok(ev < GRAD_TOL, `dv error ${ev}`);
  });
}

test("attention at T=1 returns v of the head's kv head (h → ⌊h/(NH/NKV)⌋)", () => {
  const B = 2, T = 1, NH = 4, NKV = 2, HS = 3;
  const { nq, nkv, np } = sizes(B, T, NH, NKV, HS);
  const q = randn(nq, 201), k = randn(nkv, 202), v = randn(nkv, 203);
  const out = new Float64Array(nq), probs = new Float64Array(np);
  attentionForward(out, probs, q, k, v, B, T, NH, NKV, HS);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const g = h < 2 ? 0 : 1;
      for (let d = 0; d < HS; d++) assert.equal(out[(b * NH + h) * HS + d], v[(b * NKV + g) * HS + d], `b=${b} h=${h} d=${d}`);
    }
  }
  assert.ok(probs.every((p) => p === 1));
});

test("attention probs: rows sum to 1, zero above the diagonal; output matches a direct softmax", () => {
  const B = 1, T = 6, NH = 2, NKV = 1, HS = 5;
  const { nq, nkv, np } = sizes(B, T, NH, NKV, HS);
  const q = randn(nq, 211), k = randn(nkv, 212), v = randn(nkv, 213);
  const out = new Float64Array(nq), probs = randn(np, 214); // garbage above the diagonal must be cleared
  attentionForward(out, probs, q, k, v, B, T, NH, NKV, HS);
  for (let h = 0; h < NH; h++) {
    for (let i = 0; i < T; i++) {
      const row = probs.subarray((h * T + i) * T, (h * T + i + 1) * T);
      let s = 0;
      for (let j = 0; j < T; j++) {
        if (j > i) assert.equal(row[j], 0, `h=${h} i=${i} j=${j}`);
        else assert.ok(row[j] > 0);
        s += row[j];
      }
      assert.ok(Math.abs(s - 1) < 1e-15, `row sum h=${h} i=${i}: ${s}`);
      // Direct (unstabilised) softmax over j ≤ i, then the weighted sum of v.
      const e = Array.from({ length: i + 1 }, (_, j) => Math.exp(dot(q.subarray((i * NH + h) * HS, (i * NH + h + 1) * HS), k.subarray(j * HS, (j + 1) * HS)) / Math.sqrt(HS)));
      const z = e.reduce((a, c) => a + c, 0);
      for (let d = 0; d < HS; d++) {
        let ref = 0;
        for (let j = 0; j <= i; j++) ref += (e[j] / z) * v[j * HS + d];
        assert.ok(Math.abs(out[(i * NH + h) * HS + d] - ref) < 1e-14, `out h=${h} i=${i} d=${d}`);
      }
    }
  }
});

test("attention is causal: changing k, v at positions j > i leaves out[i] unchanged", () => {
  const B = 2, T = 6, NH = 4, NKV = 2, HS = 4, cut = 2;
  const { nq, nkv, np } = sizes(B, T, NH, NKV, HS);
  const q = randn(nq, 221), k = randn(nkv, 222), v = randn(nkv, 223);
  const out1 = new Float64Array(nq), out2 = new Float64Array(nq), probs = new Float64Array(np);
  attentionForward(out1, probs, q, k, v, B, T, NH, NKV, HS);
  const k2 = k.slice(), v2 = v.slice(), noise = randn(nkv, 224, 10);
  for (let b = 0; b < B; b++) {
    for (let j = cut + 1; j < T; j++) {
      for (let e = 0; e < NKV * HS; e++) {
        const idx = (b * T + j) * NKV * HS + e;
        k2[idx] += noise[idx];
        v2[idx] -= noise[idx];
      }
    }
  }
  attentionForward(out2, probs, q, k2, v2, B, T, NH, NKV, HS);
  for (let b = 0; b < B; b++) {
    const lo = b * T * NH * HS;
    assert.deepEqual(out2.subarray(lo, lo + (cut + 1) * NH * HS), out1.subarray(lo, lo + (cut + 1) * NH * HS), `batch ${b}, positions ≤ ${cut}`);
    assert.ok(maxAbsDiff(out2.subarray(lo + (cut + 1) * NH * HS, lo + T * NH * HS), out1.subarray(lo + (cut + 1) * NH * HS, lo + T * NH * HS)) > 1e-3);
  }
});

test("GQA equals multi-head attention with each kv head repeated NH/NKV times (HF repeat_kv)", () => {
  const B = 1, T = 4, NH = 6, NKV = 2, HS = 4, rep = 3;
  const q = randn(B * T * NH * HS, 231), k = randn(B * T * NKV * HS, 232), v = randn(B * T * NKV * HS, 233);
  const kr = new Float64Array(B * T * NH * HS), vr = new Float64Array(B * T * NH * HS);
  for (let tt = 0; tt < T; tt++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / rep);
      kr.set(k.subarray((tt * NKV + g) * HS, (tt * NKV + g + 1) * HS), (tt * NH + h) * HS);
      vr.set(v.subarray((tt * NKV + g) * HS, (tt * NKV + g + 1) * HS), (tt * NH + h) * HS);
    }
  }
  const a = new Float64Array(q.length), b = new Float64Array(q.length), probs = new Float64Array(B * NH * T * T);
  attentionForward(a, probs, q, k, v, B, T, NH, NKV, HS);
  attentionForward(b, probs, q, kr, vr, B, T, NH, NH, HS);
  assert.deepEqual(a, b);
});

test("attention stays finite with huge scores (row max subtracted) and refuses NH not a multiple of NKV", () => {
  const B = 1, T = 4, NH = 2, NKV = 2, HS = 4;
  const { nq, nkv, np } = sizes(B, T, NH, NKV, HS);
  const q = randn(nq, 241, 1e4), k = randn(nkv, 242, 1e4), v = randn(nkv, 243);
  const out = new Float32Array(nq), probs = new Float32Array(np);
  attentionForward(out, probs, Float32Array.from(q), Float32Array.from(k), Float32Array.from(v), B, T, NH, NKV, HS);
  assert.ok(out.every(Number.isFinite) && probs.every(Number.isFinite));
  assert.throws(() => attentionForward(out, probs, q, k, v, B, T, 3, 2, HS), ShapeError);
});

test("attention in float32 matches float64 on the same inputs to a few fp32 ulps (forward and backward)", () => {
  const B = 1, T = 7, NH = 4, NKV = 2, HS = 8;
  const { nq, nkv, np } = sizes(B, T, NH, NKV, HS);
  const f32 = (a: Float64Array) => Float32Array.from(a);
  const q = f32(randn(nq, 251)), k = f32(randn(nkv, 252)), v = f32(randn(nkv, 253)), g = f32(randn(nq, 254));
  const run = <A extends Float32Array | Float64Array>(make: (n: number) => A, cast: (a: Float32Array) => A) => {
    const out = make(nq), probs = make(np), dq = make(nq), dk = make(nkv), dv = make(nkv);
    attentionForward(out, probs, cast(q), cast(k), cast(v), B, T, NH, NKV, HS);
    attentionBackward(dq, dk, dv, cast(g), cast(q), cast(k), cast(v), probs, B, T, NH, NKV, HS);
    return [out, dq, dk, dv];
  };
  const r32 = run((n) => new Float32Array(n), (a) => a);
  const r64 = run((n) => new Float64Array(n), (a) => Float64Array.from(a));
  for (let t = 0; t < 4; t++) {
    let scale = 0;
    for (const x of r64[t]) scale = Math.max(scale, Math.abs(x));
    const err = maxAbsDiff(r32[t], r64[t]) / scale;
    assert.ok(err < 2e-6, `${["out", "dq", "dk", "dv"][t]}: normwise error ${err}`);
  }
});
