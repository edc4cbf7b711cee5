/**
 * NVFP4 operands with 16x16 tiles (RTN, no RHT: the recipe's weights) quantized once for both
 * orientations (operand.ts transposeInvariant, Backend.shareOperand, Linear): quantizing xᵀ gives
 * x's values transposed, bit for bit, for any shape; so Dgrad reading Fprop's W operand transposed
 * trains exactly like quantizing Wᵀ again (FP4LM_SHARE_TILES=0), one quantize per NVFP4 linear
 * fewer per step. 1x16 blocks are not orientation-free, and are never shared.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend } from "../src/backends/cpu/cpu-backend.ts";
import type { ModelConfig } from "../src/nn/model-config.ts";
import { sameValuesTransposed, transposeInvariant, type OperandSpec } from "../src/recipes/operand.ts";
import { quantizeOperand } from "../src/recipes/quantize-operand.ts";
import { transpose } from "../src/quant/tensor-checks.ts";
import { twoStepsAndEval } from "./model-steps.ts";

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const TILE: OperandSpec = { format: "nvfp4", block: "16x16", rounding: "rtn" };
const ROW: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "rtn" };

/** values spread over ~6 binades, with exact ties and zeros, seeded */
function spread(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: n }, (_, i) => (i % 17 === 0 ? 0 : (next() - 0.5) * 2 ** Math.floor(next() * 6 - 3) * (i % 29 === 0 ? 6 : 1)));
}

test("which specs are orientation-free: bf16/fp32 RTN and NVFP4 16x16 RTN without RHT; not 1x16, SR, RHT, MXFP4, FP8", () => {
  assert.equal(transposeInvariant(TILE), true);
  assert.equal(transposeInvariant({ format: "bf16", rounding: "rtn" }), true);
  for (const s of [ROW, { ...TILE, rounding: "sr" }, { ...TILE, rht: { size: 16, signs: "fixed" } }, { format: "mxfp4", block: "1x32", rounding: "rtn" },
    { format: "fp8", block: "128x128", rounding: "rtn", fp8: "e4m3" }] as OperandSpec[]) {
    assert.equal(transposeInvariant(s), false, JSON.stringify(s));
  }
  assert.equal(sameValuesTransposed(TILE, { format: "bf16", rounding: "rtn" }), false, "formats differ");
  assert.equal(sameValuesTransposed(TILE, { ...TILE }), true);
});

test("NVFP4 16x16 RTN: quantizing xᵀ gives x's values transposed and the same amax, bit for bit (1x16 does not)", () => {
  const stream = { seed: 9, gemmId: 3, slot: 0 as const };
  let rowDiffers = false;
  for (const [r, c] of [[16, 16], [48, 80], [32, 144], [64, 48], [160, 32]]) {
    const x = spread(r * c, r * 1000 + c);
    const a = quantizeOperand(x, r, c, TILE, false, stream, "w");
    const b = quantizeOperand(x, r, c, TILE, true, { ...stream, slot: 1 as const }, "wT");
    assert.deepEqual([b.rows, b.cols], [c, r]);
    assert.deepEqual(bits(transpose(a.values, [r, c])), bits(b.values), `${r}x${c} values`);
    assert.equal(a.amax, b.amax, `${r}x${c} amax`);
    const ra = quantizeOperand(x, r, c, ROW, false, stream, "w"), rb = quantizeOperand(x, r, c, ROW, true, stream, "wT");
    if (bits(transpose(ra.values, [r, c])).some((v, i) => v !== bits(rb.values)[i])) rowDiffers = true;
  }
  assert.ok(rowDiffers, "1x16 blocks give different values in the two orientations (so they must not be shared)");
});

const MODEL: ModelConfig = { vocabSize: 40, dModel: 32, nLayers: 3, nHeads: 2, nKvHeads: 1, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5 };
const HYBRID: ModelConfig = { ...MODEL, nLayers: 4, pattern: "M-*-", mamba: { nGroups: 1, dState: 12, headDim: 8, expand: 2, convWindow: 4, chunkSize: 6 } };

/** 2 training micro-steps and an evaluation forward: losses, every gradient, and the NVFP4 quantize calls by GEMM */
function run(cfg: ModelConfig, shareTiles: boolean) {
  const be = new CpuBackend({ threads: 1, shareTiles });
  const calls: string[] = [];
  const q = be.quantize.bind(be);
  be.quantize = (x, rows, cols, spec, tr, stream, name) => {
    if (spec.format === "nvfp4") calls.push(name);
    return q(x, rows, cols, spec, tr, stream, name);
  };
  try {
    return { ...twoStepsAndEval(be, cfg, "nvfp4"), calls };
  } finally {
    be.close();
  }
}

for (const [what, cfg] of [["GPT", MODEL], ["hybrid", HYBRID]] as const) {
  test(`${what} nvfp4: Dgrad reading Fprop's 16x16 W operand transposed trains like quantizing Wᵀ again, bit for bit, one quantize fewer per NVFP4 linear`, () => {
    const again = run(cfg, false), shared = run(cfg, true);
    assert.deepEqual(shared.losses, again.losses);
    shared.grads.forEach((g, i) => assert.deepEqual(g, again.grads[i], `${shared.names[i]} gradient`));
    const dgradW = again.calls.filter((n) => n.endsWith(".dgrad.weight"));
    assert.ok(dgradW.length >= 4, `quantizing again: ${dgradW.length} Dgrad weight operands`);
    assert.deepEqual(shared.calls.filter((n) => n.endsWith(".dgrad.weight")), [], "shared: no Dgrad weight is quantized");
    assert.equal(shared.calls.length, again.calls.length - dgradW.length);
  });
}
