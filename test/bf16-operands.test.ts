/**
 * BF16 GEMM operands written by the ops that produce the tensors (Backend.bf16Operand, Linear's
 * bf16Input/bf16Grad) on the CPU oracle: the same values as quantize's cast, so the same losses and
 * gradients bit for bit as a backend that casts every operand (bf16, and nvfp4 whose last block and
 * head are BF16; the Transformer and the hybrid); the same NonFiniteError, naming the same operand;
 * a GEMM refuses an operand no op filled.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend, type CpuOperand, type CpuTensor } from "../src/backends/cpu/cpu-backend.ts";
import { GPT } from "../src/nn/gpt.ts";
import { HybridLM } from "../src/nn/hybrid-model.ts";
import type { ModelConfig } from "../src/nn/model-config.ts";
import { NonFiniteError } from "../src/errors.ts";
import type { OperandSpec } from "../src/recipes/operand.ts";
import { twoStepsAndEval } from "./model-steps.ts";

const MODEL: ModelConfig = { vocabSize: 40, dModel: 32, nLayers: 3, nHeads: 2, nKvHeads: 1, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5 };
const HYBRID: ModelConfig = {
  ...MODEL, nLayers: 4, pattern: "M-*-", mamba: { nGroups: 1, dState: 8, headDim: 8, expand: 2, convWindow: 4, chunkSize: 6 },
};


/** 2 training micro-steps and an evaluation forward; losses and every gradient, and how many operands quantize cast */
function run(cfg: ModelConfig, recipe: string, bf16Operands: boolean, poison?: (m: GPT | HybridLM) => void) {
  const be = new CpuBackend({ threads: 1, bf16Operands });
  let casts = 0, handed = 0;
  const ops: CpuOperand[] = [];
  const q = be.quantize.bind(be), h = be.bf16Operand.bind(be);
  be.quantize = (...a) => (casts++, q(...a));
  be.bf16Operand = (...a) => {
    const op = h(...a);
    if (op) handed++, ops.push(op);
    return op;
  };
  try {
    const r = twoStepsAndEval(be, cfg, recipe, (_ctx, model) => poison?.(model));
    // operands whose producer was told its FP32 output has no other reader (the CPU poisons that output with NaN)
    const unused = ops.filter((o) => o.fp32Unused).length;
    return { ...r, casts, handed, unused };
  } finally {
    be.close();
  }
}

for (const [what, cfg, recipe] of [["GPT bf16", MODEL, "bf16"], ["GPT nvfp4 (BF16 last block and head)", MODEL, "nvfp4"], ["hybrid bf16", HYBRID, "bf16"]] as const) {
  test(`${what}: operands filled by the producing ops give the cast's losses and gradients bit for bit`, () => {
    const cast = run(cfg, recipe, false), given = run(cfg, recipe, true);
    assert.deepEqual(given.losses, cast.losses);
    given.grads.forEach((g, i) => assert.deepEqual(g, cast.grads[i], `${given.names[i]} gradient`));
    assert.equal(cast.handed, 0);
    assert.ok(given.handed > 0, "operands handed out");
    // every operand handed out is one cast fewer
    assert.equal(given.casts + given.handed, cast.casts, `casts ${given.casts} + handed ${given.handed} vs ${cast.casts}`);
  });
}

test("bf16 operands: a GPT step hands out X for every linear and dY for all but the last block's fc2 (written by the final norm's backward)", () => {
  const r = run({ ...MODEL, nLayers: 2 }, "bf16", true);
  // per training step: X of 2 × 4 linears + head; dY of 2 × 3 (qkv, proj, fc1) + block 0's fc2 + head; the eval forward: X only
  assert.equal(r.handed, 2 * (9 + 8) + 9);
  // FP32 outputs left unwritten (their one reader is the GEMM, Wgrad shares the operand): per training step
  // the norms' outputs (2 × 2 + final), squared ReLU's (2) and its gradient (2), dqkv (2) and dlogits;
  // the eval forward: the norms' and squared ReLU's outputs (not attention's: its backward reads it; not
  // the residual adds': the residual stream goes on)
  assert.equal(r.unused, 2 * (5 + 2 + 2 + 2 + 1) + (5 + 2));
  // without the operands nothing is skipped
  assert.equal(run({ ...MODEL, nLayers: 2 }, "bf16", false).unused, 0);
});

test("fp32Unused: the op fills the operand as before and the CPU poisons the FP32 output it was told nobody reads", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const s: OperandSpec = { format: "bf16", rounding: "rtn" };
    const x = be.fromArray(Float32Array.from([1.5, -2, 3.0009765625, 0.25]), [1, 4]);
    const [kept, skipped] = [false, true].map((unused) => {
      const op = be.bf16Operand(1, 4, s, "a.fprop.input")!;
      op.fp32Unused = unused;
      const out = be.alloc([1, 4]);
      be.sqreluForward(out, x, op);
      return { values: Array.from(op.values), out: Array.from(out.data) };
    });
    assert.deepEqual(skipped.values, kept.values);
    assert.deepEqual(kept.out, [2.25, 0, Math.fround(3.0009765625 * 3.0009765625), 0.0625]);
    assert.ok(skipped.out.every(Number.isNaN), `poisoned: ${skipped.out}`);
  } finally {
    be.close();
  }
});

test("bf16 operands: NaN reaches the same NonFiniteError, naming the same operand, as the cast", () => {
  const poison = (m: GPT | HybridLM) => {
    const w = (m.params.find((p) => p.name === "blocks.1.norm2.weight")!.data as CpuTensor).data;
    w[3] = NaN;
  };
  const err = (ops: boolean) => {
    try {
      run(MODEL, "bf16", ops, poison);
    } catch (e) {
      return e as Error;
    }
    assert.fail("no error");
  };
  const a = err(false), b = err(true);
  assert.ok(a instanceof NonFiniteError && b instanceof NonFiniteError, `${a} / ${b}`);
  assert.equal(b.message, a.message);
  assert.match(b.message, /^blocks\.1\.mlp\.fc1\.fprop\.input: element \[0, 3\]/);
});

test("bf16 operands: a GEMM refuses one no op filled; an op refuses one of the wrong size or filled twice", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const s: OperandSpec = { format: "bf16", rounding: "rtn" };
    const op = be.bf16Operand(2, 4, s, "x.fprop.input")!;
    const w = be.quantize(be.fromArray(new Float32Array(12).fill(1), [3, 4]), 3, 4, s, false, { seed: 1, gemmId: 1, slot: 1 }, "w");
    assert.throws(() => be.gemm(be.alloc([2, 3]), op, w, false), /x\.fprop\.input was never filled/);
    assert.throws(() => be.sqreluForward(be.alloc([3, 4]), be.alloc([3, 4]), op), /a BF16 operand of 2x4 for 12 values/);
    const x = be.fromArray(Float32Array.from([1, -2, 3.0009765625, -4, 5, 6, 7, 8]), [2, 4]);
    be.add(be.alloc([2, 4]), x, x, op);
    assert.deepEqual(Array.from(op.values), [2, -4, 6, -8, 10, 12, 14, 16]);
    assert.throws(() => be.add(be.alloc([2, 4]), x, x, op), /filled already/);
    assert.equal(be.bf16Operand(2, 4, { ...s, rounding: "sr" }, "n"), null);
    assert.equal(be.bf16Operand(2, 4, { format: "fp32", rounding: "rtn" }, "n"), null);
  } finally {
    be.close();
  }
});
