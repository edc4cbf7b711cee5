/**
 * quantizePair in the Linear (CPU oracle): every NVFP4 linear makes Fprop X with Wgrad Xᵀ and Dgrad
 * dY with Wgrad dYᵀ as pairs (operand.ts pairable: the recipe's 1x16 X/dY, RHT16 on Wgrad), the
 * CUDA backend in one read of the tensor each; the same operands, so the same losses and gradients
 * bit for bit as a backend without pairs; no pairs on telemetry steps or without a backward.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend } from "../src/backends/cpu/cpu-backend.ts";
import type { ModelConfig } from "../src/nn/model-config.ts";
import { pairable, type OperandSpec } from "../src/recipes/operand.ts";
import { TelemetryRecorder } from "../src/nn/telemetry.ts";
import { twoStepsAndEval } from "./model-steps.ts";

const MODEL: ModelConfig = { vocabSize: 40, dModel: 32, nLayers: 4, nHeads: 2, nKvHeads: 1, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5 };

function run(pairs: boolean, telemetryStep = false) {
  const be = new CpuBackend({ threads: 1 });
  const made: string[] = [];
  let quantizes = 0;
  const q = be.quantize.bind(be);
  be.quantize = (...a) => (quantizes++, q(...a));
  if (!pairs) (be as { quantizePair?: unknown }).quantizePair = undefined;
  else {
    const p = be.quantizePair.bind(be);
    be.quantizePair = (...a) => {
      const r = p(...a);
      if (r) made.push(`${a[7]} + ${a[8]}`);
      return r;
    };
  }
  try {
    const r = twoStepsAndEval(be, MODEL, "nvfp4", (ctx) => { if (telemetryStep) ctx.telemetry = new TelemetryRecorder(1); });
    return { ...r, made, quantizes };
  } finally {
    be.close();
  }
}

test("pairable: NVFP4 1x16 both, no RHT on x's, RHT ≤ 16 on xᵀ's", () => {
  const x16: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "sr" };
  assert.equal(pairable(x16, { ...x16, rht: { size: 16, signs: "fixed" } }), true);
  assert.equal(pairable(x16, x16), true);
  assert.equal(pairable({ ...x16, rht: { size: 16, signs: "fixed" } }, x16), false);
  assert.equal(pairable(x16, { ...x16, rht: { size: 32, signs: "fixed" } }), false);
  assert.equal(pairable({ ...x16, block: "16x16" }, x16), false);
  assert.equal(pairable({ format: "mxfp4", block: "1x32", rounding: "rtn" }, x16), false);
});

test("nvfp4 GPT: X/Xᵀ and dY/dYᵀ of every NVFP4 linear come as pairs, with the losses and gradients of quantizing each apart bit for bit", () => {
  const apart = run(false), paired = run(true);
  assert.deepEqual(paired.losses, apart.losses);
  // each operand quantized once either way: the forward's Xᵀ is the one Wgrad takes, not quantized again
  assert.equal(paired.quantizes, apart.quantizes);
  paired.grads.forEach((g, i) => assert.deepEqual(g, apart.grads[i], `parameter ${i}`));
  // 4 blocks, the last BF16: 3 × 4 NVFP4 linears, each an X pair (forward) and a dY pair (backward) per micro-step; the eval forward none
  assert.equal(paired.made.length, 2 * 3 * 4 * 2);
  assert.ok(paired.made.includes("blocks.0.attn.qkv.fprop.input + blocks.0.attn.qkv.wgrad.input"), paired.made.join("\n"));
  assert.ok(paired.made.includes("blocks.2.mlp.fc2.dgrad.gradOutput + blocks.2.mlp.fc2.wgrad.gradOutput"), paired.made.join("\n"));
  assert.equal(paired.made.filter((m) => m.startsWith("blocks.3.") || m.startsWith("head.")).length, 0, "BF16 layers share instead");
  // telemetry steps measure every operand on its own
  assert.equal(run(true, true).made.length, 0);
});
