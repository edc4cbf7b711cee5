/**
 * Quantization telemetry on the GPU (kernels/telemetry.cu through CudaBackend.quantStats) against
 * the CPU reference (recipes/operand-stats.ts), for every operand format and orientation: the
 * counts exactly, relative error and amax within float tolerance (the GPU sums in another order
 * and applies NVFP4's tensor scale as one fp32 product).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gpuBackend, randn } from "./gpu.ts";
import { operandStats } from "../../src/recipes/operand-stats.ts";
import type { OperandSpec } from "../../src/recipes/operand.ts";

const SPECS: OperandSpec[] = [
  { format: "nvfp4", block: "1x16", rounding: "rtn" },
  { format: "nvfp4", block: "16x16", rounding: "rtn" },
  { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "fixed" } },
  { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "per-tensor" } },
  { format: "mxfp4", block: "1x32", rounding: "rtn", mxScale: "floor" },
  { format: "mxfp4", block: "1x32", rounding: "sr", mxScale: "rceil", rht: { size: 32, signs: "fixed" } },
  { format: "fp8", block: "1x128", rounding: "rtn", fp8: "e4m3" },
  { format: "fp8", block: "128x128", rounding: "rtn", fp8: "e5m2" },
  { format: "fp8", block: "tensor", rounding: "rtn", fp8: "e4m3" },
  { format: "bf16", rounding: "rtn" },
];

test("quantStats: the GPU's telemetry equals the CPU reference for every format and orientation", (t) => {
  const g = gpuBackend(t);
  if (!g) return;
  for (const [rows, cols] of [[64, 128], [256, 96]] as [number, number][]) {
    const data = randn(rows * cols, rows + cols);
    const x = g.fromArray(data, [rows, cols]);
    for (const spec of SPECS) {
      for (const tr of [false, true]) {
        const st = { seed: 4242, gemmId: 17 + rows, slot: 1 as const };
        const what = `${JSON.stringify(spec)} ${rows}x${cols}${tr ? "ᵀ" : ""}`;
        const op = g.quantize(x, rows, cols, spec, tr, st, "x");
        const got = g.quantStats(x, rows, cols, tr, st, op);
        g.releaseOperand(op);
        const want = operandStats(data, rows, cols, spec, tr, st);
        assert.ok(Math.abs(got.relErr - want.relErr) <= 1e-5 * want.relErr, `${what}: relErr ${got.relErr} vs ${want.relErr}`);
        assert.ok(Math.abs(got.amax - want.amax) <= 1e-6 * want.amax, `${what}: amax ${got.amax} vs ${want.amax}`);
        // counts can differ only for a value within an ulp of a boundary (the GPU's q is one fp32 product; RHT sums in another order)
        const slack = 2 / (rows * cols);
        assert.ok(Math.abs(got.flushed - want.flushed) <= slack, `${what}: flushed ${got.flushed} vs ${want.flushed}`);
        assert.ok(Math.abs(got.saturated - want.saturated) <= slack, `${what}: saturated ${got.saturated} vs ${want.saturated}`);
      }
    }
  }
});
