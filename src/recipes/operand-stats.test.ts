import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend } from "../backends/cpu/cpu-backend.ts";
import { roundBf16 } from "../formats/bf16.ts";
import { E4M3_DECODE } from "../formats/e4m3.ts";
import { dequantizeFP8, quantizeFP8 } from "../quant/fp8.ts";
import { randomSigns, rht, TE_SIGN_VECTOR } from "../quant/hadamard.ts";
import { dequantizeMXFP4, quantizeMXFP4Columnwise } from "../quant/mxfp4.ts";
import { dequantizeNVFP4, INV2688, quantizeNVFP4, quantizeNVFP4Columnwise } from "../quant/nvfp4.ts";
import { normals, Rng, transposeRef, withOutliers } from "../../test/random.ts";
import type { OperandSpec } from "./operand.ts";
import { operandStats, statsFromSums, type QuantStats } from "./operand-stats.ts";
import { mixIds, quantizeOperand } from "./quantize-operand.ts";

const fr = Math.fround;

/** The four numbers straight from their definitions, given the reference, the dequantized values and each element's block top. */
function direct(ref: Float32Array, deq: Float32Array, top: (i: number) => number): QuantStats {
  let e2 = 0, r2 = 0, nz = 0, fl = 0, sat = 0, amax = 0;
  ref.forEach((r, i) => {
    e2 += (deq[i] - r) ** 2;
    r2 += r ** 2;
    amax = Math.max(amax, Math.abs(r));
    if (r !== 0) { nz++; if (deq[i] === 0) fl++; }
    if (Math.abs(r) > top(i)) sat++;
  });
  return { relErr: Math.sqrt(e2 / r2), flushed: fl / nz, saturated: sat / ref.length, amax };
}

function close(got: QuantStats, want: QuantStats, what: string) {
  assert.ok(Math.abs(got.relErr - want.relErr) <= 1e-12 * want.relErr, `${what} relErr ${got.relErr} vs ${want.relErr}`);
  assert.equal(got.flushed, want.flushed, `${what} flushed`);
  assert.equal(got.saturated, want.saturated, `${what} saturated`);
  assert.equal(got.amax, want.amax, `${what} amax`);
}

const stream = { seed: 77, gemmId: 12345, slot: 1 as const };

test("NVFP4 1x16 RTN: error, flushed and saturated shares equal a direct computation from the quantizer's scales", () => {
  const R = 32, C = 64;
  const x = withOutliers(new Rng(1), R * C, 0.02, 50);
  const spec: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "rtn" };
  const q = quantizeNVFP4(x, [R, C]);
  const deq = dequantizeNVFP4(q);
  // the top of block k's grid: 6 · fl(fl(sf·amax)·fl(1/2688))
  const top = (i: number) => fr(6 * fr(fr(E4M3_DECODE[q.scales[i >> 4]] * q.amax) * INV2688));
  const want = direct(x, deq, top);
  const got = operandStats(x, R, C, spec, false, stream);
  close(got, want, "nvfp4");
  // blocks whose E4M3 scale rounded down clip their largest value: some, not most
  assert.ok(want.saturated > 0 && want.saturated < 1 / 16, `saturated ${want.saturated}`);
  // a block with an outlier flushes most of its other values
  assert.ok(want.flushed > 0.05 && want.flushed < 0.5, `flushed ${want.flushed}`);
  assert.ok(want.relErr > 0.03 && want.relErr < 0.3, `relErr ${want.relErr}`);
});

test("NVFP4 Wgrad operand (xᵀ, RHT16, SR): measured in the transform's domain, same random bytes as quantizeOperand", () => {
  const R = 48, C = 32; // tokens × features; the operand is xᵀ (C, R), blocks along tokens
  const x = normals(new Rng(2), R * C, 0.01);
  const spec: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "fixed" } };
  const ref = rht(transposeRef(x, R, C), [C, R], { signs: TE_SIGN_VECTOR, output: "fp32" });
  const q = quantizeNVFP4Columnwise(x, [R, C], { rounding: "sr", seed: stream.seed, tensorId: mixIds(stream.gemmId, stream.slot + 1), rht: { size: 16 } });
  const top = (i: number) => fr(6 * fr(fr(E4M3_DECODE[q.scales[i >> 4]] * q.amax) * INV2688));
  const got = operandStats(x, R, C, spec, true, stream);
  close(got, direct(ref, dequantizeNVFP4(q), top), "nvfp4 wgrad");
  // the operand the GEMM gets (e2m1·sf, tensor scale in alpha) is the one measured
  const op = quantizeOperand(x, R, C, spec, true, stream, "dY");
  const fromOp = direct(ref, op.values.map((v) => v * op.amax! / 2688), () => Infinity).relErr;
  assert.ok(Math.abs(fromOp - got.relErr) < 1e-5 * got.relErr, `${fromOp} vs ${got.relErr}`);
  // a different SR stream gives other bytes: the measurement follows the operand
  const other = operandStats(x, R, C, spec, true, { ...stream, gemmId: 999 });
  assert.notEqual(other.relErr, got.relErr);
});

test("MXFP4 (floor scales) clips values in (6, 8)·2^e; BF16 and FP8 against their definitions", () => {
  const R = 64, C = 32;
  const x = normals(new Rng(3), R * C);
  const mx: OperandSpec = { format: "mxfp4", block: "1x32", rounding: "rtn", rht: { size: 32, signs: "fixed" } };
  const got = operandStats(x, R, C, mx, true, stream);
  const signs = randomSigns(32, 0x5eed); // the recipe's "fixed" signs for sizes other than 16
  const ref = rht(transposeRef(x, R, C), [C, R], { size: 32, signs, output: "fp32" });
  const q = quantizeMXFP4Columnwise(x, [R, C], { rht: { size: 32, signs } });
  close(got, direct(ref, dequantizeMXFP4(q), (i) => 6 * 2 ** (q.scales[i >> 5] - 127)), "mxfp4");
  assert.ok(got.saturated > 0.005, `MXFP4 floor scales saturate: ${got.saturated}`);
  const op = quantizeOperand(x, R, C, mx, true, stream, "x");
  assert.deepEqual(op.values, dequantizeMXFP4(q), "the measured quantization is the operand's");

  const bf = operandStats(x, R, C, { format: "bf16", rounding: "rtn" }, false, stream);
  close(bf, direct(x, x.map(roundBf16), () => Infinity), "bf16");
  assert.ok(bf.relErr > 0 && bf.relErr < 2 ** -8);

  const f8 = quantizeFP8(x, [R, C], { format: "e4m3", scaling: "1x128" });
  const got8 = operandStats(x, R, C, { format: "fp8", block: "1x128", rounding: "rtn", fp8: "e4m3" }, false, stream);
  close(got8, direct(x, dequantizeFP8(f8), (i) => 448 * f8.scaleInv[Math.floor(i / C)]), "fp8");

  // all zeros: nothing to measure, no division by zero
  assert.deepEqual(operandStats(new Float32Array(16 * 16), 16, 16, { format: "nvfp4", block: "16x16", rounding: "rtn" }, false, stream), { relErr: 0, flushed: 0, saturated: 0, amax: 0 });
  assert.deepEqual(statsFromSums({ err2: 1, ref2: 4, n: 10, nonzero: 4, flushed: 1, saturated: 2, amax: 3 }), { relErr: 0.5, flushed: 0.25, saturated: 0.2, amax: 3 });
});

test("the CPU backend's quantStats measures the operand its quantize made", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const R = 32, C = 48;
    const data = normals(new Rng(4), R * C);
    const x = be.fromArray(data, [R, C]);
    const spec: OperandSpec = { format: "nvfp4", block: "16x16", rounding: "rtn" };
    const op = be.quantize(x, R, C, spec, true, stream, "w");
    assert.deepEqual(be.quantStats(x, R, C, true, stream, op), operandStats(data, R, C, spec, true, stream));
  } finally {
    be.close();
  }
});
