import { test } from "node:test";
import assert from "node:assert/strict";
import { dequantizeFP8, fp8ScaleFromAmax, quantizeFP8, type FP8Options, type FP8Tensor } from "./fp8.ts";
import { E4M3_DECODE } from "../formats/e4m3.ts";
import { E5M2_DECODE } from "../formats/e5m2.ts";
import { NonFiniteError } from "../errors.ts";
import { f32Bits, heavyTailed, normals, Rng, transposeRef, withOutliers } from "../../test/random.ts";

const isPow2 = (v: number) => v > 0 && (f32Bits(v) & 0x7fffff) === 0 && (f32Bits(v) >>> 23) !== 0;

/** Block geometry of a scaling mode, from the spec: 1 × cols, 1 × 128 or 128 × 128. */
function geometry(rows: number, cols: number, scaling: string): { bh: number; bw: number; gr: number; gc: number } {
  const bh = scaling === "tensor" ? rows : scaling === "1x128" ? 1 : 128;
  const bw = scaling === "tensor" ? cols : 128;
  return { bh, bw, gr: Math.ceil(rows / bh), gc: Math.ceil(cols / bw) };
}

/** Largest power of two ≤ v (v a positive finite fp32), from the bits. */
function pow2Floor(v: number): number {
  return 2 ** (((f32Bits(v) >>> 23) & 0xff) - 127);
}

/** Check the scale and the elements of every block against the spec, return the max relative error in the normal range. */
function checkBlocks(x: Float32Array, q: FP8Tensor, pow2: boolean): number {
  const [rows, cols] = q.shape;
  const fmax = q.format === "e4m3" ? 448 : 57344;
  const minNormal = q.format === "e4m3" ? 2 ** -6 : 2 ** -14;
  const halfSub = q.format === "e4m3" ? 2 ** -10 : 2 ** -17;
  const relBound = q.format === "e4m3" ? 2 ** -4 : 2 ** -3;
  const table = q.format === "e4m3" ? E4M3_DECODE : E5M2_DECODE;
  const { bh, bw, gr, gc } = geometry(rows, cols, q.scaling);
  assert.equal(q.scaleInv.length, gr * gc);
  const y = dequantizeFP8(q);
  let worst = 0;
  for (let br = 0; br < gr; br++) {
    for (let bc = 0; bc < gc; bc++) {
      let amax = 0;
      for (let r = br * bh; r < Math.min((br + 1) * bh, rows); r++) for (let c = bc * bw; c < Math.min((bc + 1) * bw, cols); c++) amax = Math.max(amax, Math.abs(x[r * cols + c]));
      const raw = Math.fround(fmax / amax);
      const scale = amax === 0 ? 1 : pow2 ? pow2Floor(raw) : raw;
      const sInv = q.scaleInv[br * gc + bc];
      assert.equal(sInv, Math.fround(1 / scale), `block (${br},${bc}) scaleInv`);
      if (pow2) assert.ok(isPow2(sInv), `block (${br},${bc}) power of two`);
      let bmaxDecoded = 0;
      for (let r = br * bh; r < Math.min((br + 1) * bh, rows); r++) {
        for (let c = bc * bw; c < Math.min((bc + 1) * bw, cols); c++) {
          const i = r * cols + c;
          const fp8 = table[q.data[i]];
          bmaxDecoded = Math.max(bmaxDecoded, Math.abs(fp8));
          const scaled = Math.abs(x[i]) * scale;
          if (scaled >= minNormal) {
            const rel = Math.abs(y[i] - x[i]) / Math.abs(x[i]);
            worst = Math.max(worst, rel);
            assert.ok(rel <= relBound * (1 + 1e-6), `element [${r},${c}] x=${x[i]} y=${y[i]} rel ${rel}`);
          } else {
            assert.ok(Math.abs(y[i] - x[i]) <= halfSub * sInv * (1 + 1e-6), `subnormal element [${r},${c}]`);
          }
        }
      }
      // the block max lands in the top binade: (fmax/2, fmax] with pow2 scales, ≈ fmax otherwise
      if (amax === 0) assert.equal(bmaxDecoded, 0);
      else if (pow2) assert.ok(bmaxDecoded > fmax / 2 * 0.99 && bmaxDecoded <= fmax, `block (${br},${bc}) max ${bmaxDecoded}`);
      else assert.equal(bmaxDecoded, fmax, `block (${br},${bc}) max`);
    }
  }
  return worst;
}

test("per-tensor scaling: one fl(fmax/amax) scale (not a power of two), error ≤ 2^-4 in the normal range", () => {
  const x = normals(new Rng(1), 64 * 96);
  x[5] = 3; // make amax 3 or more so that 448/amax is unlikely to be a power of two
  const q = quantizeFP8(x, [64, 96]);
  assert.equal(q.scaling, "tensor");
  assert.equal(q.format, "e4m3");
  assert.equal(q.scaleInv.length, 1);
  assert.ok(!isPow2(q.scaleInv[0]));
  const worst = checkBlocks(x, q, false);
  assert.ok(worst > 2 ** -6, `errors are real (${worst})`);
  // pow2Scales: true makes the per-tensor scale a power of two
  checkBlocks(x, quantizeFP8(x, [64, 96], { pow2Scales: true }), true);
});

test("1x128 and 128x128 blocks with partial edge blocks (130×200): shapes, pow2 scales, errors", () => {
  const [R, C] = [130, 200];
  const rng = new Rng(2);
  const x = withOutliers(rng, R * C, 0.005, 1000);
  x[129 * C + 199] = 5e4; // an outlier in the corner (partial) block must not affect the others
  for (const scaling of ["1x128", "128x128"] as const) {
    const q = quantizeFP8(x, [R, C], { scaling });
    assert.equal(q.scaleInv.length, scaling === "1x128" ? 130 * 2 : 2 * 2);
    checkBlocks(x, q, true);
    const qf = quantizeFP8(x, [R, C], { scaling, pow2Scales: false });
    checkBlocks(x, qf, false);
    assert.ok(Array.from(qf.scaleInv).some((s) => !isPow2(s)), "pow2Scales: false keeps fp32 scales");
  }
  const q = quantizeFP8(x, [R, C], { scaling: "128x128" });
  for (let k = 0; k < 3; k++) assert.ok(q.scaleInv[3] > q.scaleInv[k], "corner block has its own (larger) decode scale");
});

test("128x128 blocks of W and Wᵀ give transposed scales and transposed data", () => {
  const [R, C] = [200, 260];
  const W = heavyTailed(new Rng(3), R * C);
  const q = quantizeFP8(W, [R, C], { scaling: "128x128" });
  const qt = quantizeFP8(transposeRef(W, R, C), [C, R], { scaling: "128x128" });
  const gr = Math.ceil(R / 128), gc = Math.ceil(C / 128);
  assert.equal(q.scaleInv.length, gr * gc);
  for (let br = 0; br < gr; br++) for (let bc = 0; bc < gc; bc++) assert.equal(qt.scaleInv[bc * gr + br], q.scaleInv[br * gc + bc]);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) assert.equal(qt.data[c * R + r], q.data[r * C + c]);
  // 1x128 is not transpose-symmetric in general
  const a = quantizeFP8(W, [R, C], { scaling: "1x128" });
  assert.equal(a.scaleInv.length, R * gc);
});

test("E5M2 format: scale from 57344, error ≤ 2^-3 in the normal range, all scaling modes", () => {
  const x = heavyTailed(new Rng(4), 40 * 300);
  for (const scaling of ["tensor", "1x128", "128x128"] as const) {
    const opts: FP8Options = { format: "e5m2", scaling };
    const q = quantizeFP8(x, [40, 300], opts);
    assert.equal(q.format, "e5m2");
    const worst = checkBlocks(x, q, scaling !== "tensor");
    assert.ok(worst > 2 ** -5, `${scaling}: errors are real (${worst})`);
  }
});

test("scale rule edge cases, zero blocks and non-finite input", () => {
  assert.equal(fp8ScaleFromAmax(0, 448, true), 1);
  assert.equal(fp8ScaleFromAmax(Infinity, 448, false), 1);
  assert.equal(fp8ScaleFromAmax(1e-40, 448, false), 3.4028234663852886e38, "overflow → FLT_MAX");
  assert.equal(fp8ScaleFromAmax(1e-40, 448, true), 2 ** 127);
  assert.equal(fp8ScaleFromAmax(3, 448, false), Math.fround(448 / 3));
  assert.equal(fp8ScaleFromAmax(3, 448, true), 128);
  assert.equal(fp8ScaleFromAmax(448, 448, true), 1);

  const x = normals(new Rng(5), 2 * 256);
  x.fill(0, 0, 128); // first 1x128 block all zero
  const q = quantizeFP8(x, [2, 256], { scaling: "1x128" });
  assert.equal(q.scaleInv[0], 1);
  for (let i = 0; i < 128; i++) assert.equal(q.data[i], 0);
  checkBlocks(x, q, true);

  const bad = normals(new Rng(6), 3 * 10);
  bad[2 * 10 + 7] = -Infinity;
  assert.throws(() => quantizeFP8(bad, [3, 10], { name: "act" }), (e: Error) => e instanceof NonFiniteError && e.index === 27 && /act/.test(e.message) && /\[2, 7\]/.test(e.message));
  assert.throws(() => quantizeFP8(x, [2, 256], { format: "e3m4" as never }), /format/);
  assert.throws(() => quantizeFP8(x, [2, 256], { scaling: "64x64" as never }), /scaling/);
});
