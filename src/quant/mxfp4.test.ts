import { test } from "node:test";
import assert from "node:assert/strict";
import { dequantizeMXFP4, e8m0FloorFromAmax, e8m0RceilFromAmax, quantizeMXFP4, quantizeMXFP4Columnwise, type MXFP4Tensor } from "./mxfp4.ts";
import { E2M1_DECODE } from "../formats/e2m1.ts";
import { NonFiniteError, ShapeError } from "../errors.ts";
import { heavyTailed, normals, Rng, transposeRef } from "../../test/random.ts";

const FLT_MAX = 3.4028234663852886e38;
const scaleOf = (q: MXFP4Tensor, k: number) => 2 ** (q.scales[k] - 127);
const codeOf = (q: MXFP4Tensor, i: number) => (i & 1 ? q.packed[i >> 1] >> 4 : q.packed[i >> 1] & 15);
const halfGap = (v: number) => (v < 2 ? 0.25 : v < 4 ? 0.5 : 1);
const GRID = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** A 32-element block: x[0] = top, the rest small values on or between grid points. */
function handBlock(top: number): Float32Array {
  const x = new Float32Array(32);
  x[0] = top;
  for (let i = 1; i < 32; i++) x[i] = (i % 8) * 0.5 * (i % 2 ? -1 : 1);
  return x;
}

test("amax 7.5: floor picks scale 1 and clips 7.5 to 6; rceil picks scale 2 and gives 8", () => {
  const x = handBlock(7.5);
  const qf = quantizeMXFP4(x, [1, 32]);
  const qr = quantizeMXFP4(x, [1, 32], { scaleRounding: "rceil" });
  assert.equal(qf.scaleRounding, "floor");
  assert.equal(qf.scales[0], 127); // floor(log2 7.5) − 2 = 0
  assert.equal(qr.scales[0], 128); // 7.5/6 = 1.25 → up to 2
  const yf = dequantizeMXFP4(qf), yr = dequantizeMXFP4(qr);
  assert.equal(yf[0], 6);
  assert.equal(codeOf(qf, 0), 7);
  assert.equal(yr[0], 8); // 3.75 → 4, times 2
  assert.ok(Math.abs(yf[0] - 7.5) > Math.abs(yr[0] - 7.5));
  // with scale 1 the other values are on the grid or ties: 2.5 → 2, 3.5 → 4 (even codes)
  for (let i = 1; i < 32; i++) {
    const a = Math.abs(x[i]);
    const want = a === 2.5 ? 2 : a === 3.5 ? 4 : a;
    assert.equal(Math.abs(yf[i]), want, `floor element ${i}`);
  }
  // amax 3.9: floor scale 0.5 clips to 3 (error 0.9); rceil scale 1 gives 4 (error 0.1)
  const z = handBlock(3.9);
  assert.equal(dequantizeMXFP4(quantizeMXFP4(z, [1, 32]))[0], 3);
  assert.equal(dequantizeMXFP4(quantizeMXFP4(z, [1, 32], { scaleRounding: "rceil" }))[0], 4);
  // amax exactly 6: both modes use scale 1 and reproduce 6
  for (const mode of ["floor", "rceil"] as const) {
    const q = quantizeMXFP4(handBlock(6), [1, 32], { scaleRounding: mode });
    assert.equal(q.scales[0], 127, mode);
    assert.equal(dequantizeMXFP4(q)[0], 6, mode);
  }
});

test("scale rules: floor = 2^(floor(log2 amax) − 2), rceil = smallest power of two ≥ fl(amax·fl(1/6))", () => {
  const inv6 = Math.fround(1 / 6);
  const rng = new Rng(5);
  for (let n = 0; n < 5000; n++) {
    const amax = Math.fround((1 + rng.uniform()) * 2 ** rng.int(-120, 120));
    const sf = 2 ** (e8m0FloorFromAmax(amax) - 127);
    assert.ok(4 * sf <= amax && amax < 8 * sf, `floor ${amax}`);
    const sr = 2 ** (e8m0RceilFromAmax(amax) - 127);
    const d = Math.fround(amax * inv6);
    assert.ok(sr >= d && sr / 2 < d, `rceil ${amax}`);
  }
  for (const p of [-3, 0, 5, 100]) assert.equal(e8m0RceilFromAmax(6 * 2 ** p), 127 + p, `6·2^${p} is exact`);
  assert.equal(e8m0FloorFromAmax(0), 0);
  assert.equal(e8m0RceilFromAmax(0), 0);
  assert.equal(e8m0FloorFromAmax(1e-40), 0, "fp32-subnormal amax → byte 0");
  assert.equal(e8m0FloorFromAmax(FLT_MAX), 252);
  assert.equal(e8m0RceilFromAmax(FLT_MAX), 253);
  for (const bad of [NaN, Infinity]) {
    assert.equal(e8m0FloorFromAmax(bad), 0xff);
    assert.equal(e8m0RceilFromAmax(bad), 0xff);
  }
});

test("error bounds on random data: half a grid step, or the clip (floor: v < 8; rceil: no clip)", () => {
  let seed = 10;
  for (const gen of [(r: Rng, n: number) => normals(r, n), (r: Rng, n: number) => heavyTailed(r, n), (r: Rng, n: number) => normals(r, n, 1e-20)]) {
    for (const mode of ["floor", "rceil"] as const) {
      const rng = new Rng(seed++);
      const shape: [number, number] = [16, 128];
      const x = gen(rng, 16 * 128);
      const q = quantizeMXFP4(x, shape, { scaleRounding: mode });
      const y = dequantizeMXFP4(q);
      let clipped = 0;
      for (let i = 0; i < x.length; i++) {
        const s = scaleOf(q, i >> 5);
        assert.equal(y[i], E2M1_DECODE[codeOf(q, i)] * s, "dequant = e2m1 · 2^(b−127) exactly");
        const v = Math.abs(x[i]) / s; // exact: s is a power of two
        if (mode === "floor") assert.ok(v < 8, `${mode} element ${i}: v=${v}`);
        else assert.ok(v <= 6 * (1 + 2 ** -22), `${mode} element ${i}: v=${v}`);
        if (v > 6) clipped++;
        const bound = (v <= 6 ? halfGap(v) : v - 6) * s;
        assert.ok(Math.abs(y[i] - x[i]) <= bound, `${mode} element ${i}: |${y[i]} − ${x[i]}| > ${bound}`);
      }
      if (mode === "rceil") assert.equal(clipped, 0);
    }
  }
});

test("relative RMS error on N(0,1) is in the measured band [0.105, 0.125] for both scale rules", () => {
  // measured 0.114–0.116 (floor) and 0.114–0.117 (rceil) over 5 seeds of 64×256
  const x = normals(new Rng(20), 64 * 256);
  for (const mode of ["floor", "rceil"] as const) {
    const y = dequantizeMXFP4(quantizeMXFP4(x, [64, 256], { scaleRounding: mode }));
    let e = 0, s = 0;
    for (let i = 0; i < x.length; i++) { e += (y[i] - x[i]) ** 2; s += x[i] ** 2; }
    const rel = Math.sqrt(e / s);
    assert.ok(rel > 0.105 && rel < 0.125, `${mode}: ${rel}`);
  }
});

test("SR is unbiased (500 streams) and never leaves the bracketing grid points", () => {
  const shape: [number, number] = [2, 32];
  const x = normals(new Rng(30), 64);
  const draws = 500;
  const sum = new Float64Array(64), sum2 = new Float64Array(64);
  let scales: Uint8Array | undefined;
  for (let t = 0; t < draws; t++) {
    const q = quantizeMXFP4(x, shape, { scaleRounding: "rceil", rounding: "sr", seed: 9, tensorId: t });
    scales ??= q.scales;
    const y = dequantizeMXFP4(q);
    for (let i = 0; i < 64; i++) {
      sum[i] += y[i];
      sum2[i] += y[i] ** 2;
      const s = scaleOf(q, i >> 5), v = Math.abs(x[i]) / s;
      assert.ok(Math.abs(Math.abs(y[i]) / s - v) < 2 * halfGap(Math.min(v, 5.99)), `draw ${t} element ${i}`);
    }
  }
  for (let i = 0; i < 64; i++) {
    const s = 2 ** (scales![i >> 5] - 127), v = Math.abs(x[i]) / s;
    const mean = sum[i] / draws;
    // standard error under the hypothesis E[y] = x: a draw is lo or lo+gap with P(up) = frac
    const gap = 2 * halfGap(v), frac = (v - GRID.filter((g) => g <= v).at(-1)!) / gap;
    const se = gap * s * Math.sqrt((frac * (1 - frac)) / draws);
    const sampleSd = Math.sqrt(Math.max(sum2[i] / draws - mean * mean, 0));
    assert.ok(sampleSd <= gap * s / 2 + 1e-12);
    assert.ok(Math.abs(mean - x[i]) <= 5 * se + (gap * s) / 256, `element ${i}: mean ${mean} vs ${x[i]} (se ${se})`);
  }
});

test("shape and value errors; columnwise equals quantizing the transpose", () => {
  assert.throws(() => quantizeMXFP4(normals(new Rng(40), 2 * 48), [2, 48]), (e: Error) => e instanceof ShapeError && /multiple of 32/.test(e.message));
  assert.throws(() => quantizeMXFP4(normals(new Rng(41), 2 * 16), [2, 16]), ShapeError);
  const x = normals(new Rng(42), 4 * 32);
  x[3 * 32 + 1] = NaN;
  assert.throws(() => quantizeMXFP4(x, [4, 32], { name: "W_up" }), (e: Error) => e instanceof NonFiniteError && e.index === 97 && /W_up/.test(e.message) && /\[3, 1\]/.test(e.message));
  // torchao policy on request: the NaN block gets scale 0xFF and every code +6
  const q = quantizeMXFP4(x, [4, 32], { nonFinite: "te" });
  assert.equal(q.scales[3], 0xff);
  for (let i = 96; i < 128; i++) assert.equal(codeOf(q, i), 7);
  assert.notEqual(q.scales[2], 0xff);
  assert.throws(() => quantizeMXFP4(normals(new Rng(43), 64), [2, 32], { scaleRounding: "even" as never }), /scaleRounding/);

  const [R, C] = [64, 96];
  const w = heavyTailed(new Rng(44), R * C);
  for (const opts of [{}, { scaleRounding: "rceil" as const, rounding: "sr" as const, seed: 2, tensorId: 3 }, { rht: true }]) {
    const a = quantizeMXFP4Columnwise(w, [R, C], opts);
    const b = quantizeMXFP4(transposeRef(w, R, C), [C, R], opts);
    assert.deepEqual(a.shape, [C, R]);
    assert.deepEqual(a.scales, b.scales);
    assert.deepEqual(a.packed, b.packed);
  }
  assert.equal(quantizeMXFP4(w, [R, C], { rht: true }).rht?.size, 32, "rht: true means the 32-point transform");
});
