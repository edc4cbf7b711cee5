/**
 * The CPU training engine end to end: the model's full backward pass against finite differences
 * (fp32 recipe), the NVFP4 recipe's quantizer calls per GEMM operand (spied), bit-exact resume
 * (in-process and after SIGKILL), NaN detection with the step and the layer, and config errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend } from "../src/backends/cpu/cpu-backend.ts";
import { RunContext } from "../src/nn/context.ts";
import { GPT } from "../src/nn/gpt.ts";
import type { ModelConfig } from "../src/nn/model-config.ts";
import { recipeByName } from "../src/recipes/recipe.ts";
import type { OperandSpec } from "../src/recipes/operand.ts";
import { buildConfig } from "../src/train/config.ts";
import { readMetrics } from "../src/train/metrics.ts";
import { DivergedError, train } from "../src/train/train.ts";
import { loadCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { lcgTokens as tokens } from "./random.ts";
import { directionalCheck } from "./model-gradcheck.ts";

const MODEL: ModelConfig = { vocabSize: 40, dModel: 32, nLayers: 2, nHeads: 2, nKvHeads: 1, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5 };

test("the whole model's backward pass matches finite differences, both MLP kinds (fp32 recipe, directional derivative)", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    for (const cfg of [MODEL, { ...MODEL, dFF: 48, mlp: "swiglu" as const }]) {
      const ctx = new RunContext(be, recipeByName("fp32"), 7);
      const B = 2, T = cfg.seqLen;
      const model = new GPT(ctx, cfg, B, T);
      const x = be.tokens(tokens(B * T, cfg.vocabSize, 1), [B, T]), y = be.tokens(tokens(B * T, cfg.vocabSize, 2), [B, T]);
      // a random direction over every parameter, and ∇L·d from the analytic gradients
      const { analytic: dot, lossAt } = directionalCheck(model, x, y);
      const h = 1e-3;
      const numeric = (lossAt(h) - lossAt(-h)) / (2 * h);
      const kind = cfg.mlp ?? "sqrelu";
      assert.ok(Math.abs(dot) > 0.05, `${kind}: directional derivative too small to test: ${dot}`);
      assert.ok(Math.abs(numeric - dot) / Math.abs(dot) < 2e-3, `${kind}: analytic ${dot} vs numeric ${numeric}`);
    }
  } finally {
    be.close();
  }
});

test("nvfp4: every GEMM operand of a quantized layer uses the paper's quantizer; BF16 layers and the head do not", () => {
  // shareTiles off: Dgrad quantizes Wᵀ itself, so every operand's quantize call is seen (shared-tiles.test.ts: the shared W gives the same values)
  const be = new CpuBackend({ threads: 1, shareTiles: false });
  try {
    const calls: { name: string; spec: OperandSpec; transpose: boolean; rows: number; cols: number }[] = [];
    const orig = be.quantize.bind(be);
    be.quantize = (x, rows, cols, spec, transpose, stream, name) => {
      calls.push({ name, spec, transpose, rows, cols });
      return orig(x, rows, cols, spec, transpose, stream, name);
    };
    // a BF16 operand the producing op fills (Backend.bf16Operand) replaces a quantize call: count it as one
    const given = be.bf16Operand.bind(be);
    be.bf16Operand = (rows, cols, spec, name) => {
      calls.push({ name, spec, transpose: false, rows, cols });
      return given(rows, cols, spec, name);
    };
    const ctx = new RunContext(be, recipeByName("nvfp4"), 3);
    const B = 2, T = MODEL.seqLen;
    const model = new GPT(ctx, { ...MODEL, nLayers: 4 }, B, T);
    model.step(be.tokens(tokens(B * T, 40, 5), [B, T]), be.tokens(tokens(B * T, 40, 6), [B, T]), true);
    const of = (n: string) => calls.find((c) => c.name === n)!;
    const layer = "blocks.1.mlp.fc1";
    const fp = (block: string, rounding: string, rht?: boolean) => ({ format: "nvfp4", block, rounding, ...(rht ? { rht: { size: 16, signs: "fixed" } } : {}) });
    assert.deepEqual({ ...of(`${layer}.fprop.input`).spec }, { ...fp("1x16", "rtn"), role: "input" });
    assert.deepEqual({ ...of(`${layer}.fprop.weight`).spec }, { ...fp("16x16", "rtn"), role: "weight" });
    assert.deepEqual({ ...of(`${layer}.dgrad.gradOutput`).spec }, { ...fp("1x16", "sr"), role: "gradOutput" });
    assert.deepEqual({ ...of(`${layer}.dgrad.weight`).spec }, { ...fp("16x16", "rtn"), role: "weight" });
    assert.deepEqual({ ...of(`${layer}.wgrad.gradOutput`).spec }, { ...fp("1x16", "sr", true), role: "gradOutput" });
    assert.deepEqual({ ...of(`${layer}.wgrad.input`).spec }, { ...fp("1x16", "rtn", true), role: "input" });
    // orientation: Dgrad uses Wᵀ, Wgrad uses dYᵀ and Xᵀ (reduction over the B·T tokens)
    assert.deepEqual([of(`${layer}.fprop.input`).transpose, of(`${layer}.dgrad.weight`).transpose, of(`${layer}.wgrad.gradOutput`).transpose, of(`${layer}.wgrad.input`).transpose], [false, true, true, true]);
    assert.deepEqual([of(`${layer}.wgrad.input`).rows, of(`${layer}.wgrad.input`).cols], [B * T, 32]);
    // 4 blocks: the last one (15%, at least 1) and the head stay BF16
    for (const n of ["blocks.3.attn.qkv.fprop.input", "blocks.3.mlp.fc2.dgrad.gradOutput", "head.fprop.weight", "head.fprop.input"]) {
      assert.equal(of(n).spec.format, "bf16", n);
    }
    // a BF16 layer's Wgrad takes X and dY, and its Dgrad W, from the other GEMM's operand (Backend.shareOperand)
    assert.equal(calls.find((c) => c.name === "head.wgrad.input"), undefined);
    // every NVFP4 linear quantizes 6 operands, a BF16 one 3 (the 4th block and the head), the embedding and norms none
    assert.equal(calls.length, 3 * 4 * 6 + 5 * 3);
    assert.equal(calls.filter((c) => c.spec.format === "nvfp4").length, 3 * 4 * 6);
  } finally {
    be.close();
  }
});

function tinyConfig(dir: string, extra: string[] = []) {
  return buildConfig([
    `outDir=${dir}`, "name=t", "log=quiet", "data.tokenizer=byte", "model.dModel=32", "model.nLayers=2", "model.nHeads=2",
    "model.nKvHeads=1", "model.dFF=64", "model.seqLen=16", "batchSize=2", "steps=8", "evalEvery=4", "evalBatches=2",
    "schedule.warmupSteps=2", "threads=2", "device=cpu", ...extra,
  ]);
}

test("resume: 3 steps, stop, resume to 8 gives the uninterrupted run's losses bit for bit", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-resume-"));
  try {
    const full = train(tinyConfig(dir, ["name=full"]));
    assert.equal(full.losses.length, 8);
    train(tinyConfig(dir, ["name=cut", "checkpointEvery=3"]), { stopAfter: 3 });
    assert.equal(loadCheckpoint(join(dir, "cut", "checkpoint.safetensors")).state.step, 3);
    const rest = train(tinyConfig(dir, ["name=cut", "checkpointEvery=3", "resume"]));
    assert.deepEqual(rest.losses, full.losses.slice(3));
    assert.deepEqual(rest.evals, full.evals.filter((e) => e.step > 3));
    const steps = readMetrics(join(dir, "cut", "metrics.jsonl")).filter((l) => l.type === "step").map((l) => l.loss);
    assert.deepEqual(steps, full.losses);
    // resuming with another recipe is refused, and the checkpoint is left as it was
    const before = readFileSync(join(dir, "cut", "checkpoint.safetensors"));
    assert.throws(() => train(tinyConfig(dir, ["name=cut", "resume", "recipe=bf16"])), /different settings for recipe/);
    assert.deepEqual(readFileSync(join(dir, "cut", "checkpoint.safetensors")), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("resume after SIGKILL: the killed run continues bit for bit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-kill-"));
  try {
    const args = [`--outDir=${dir}`, "--log=plain", "--data.tokenizer=byte", "--model.dModel=32", "--model.nLayers=2", "--model.nHeads=2", "--model.nKvHeads=1",
      "--model.dFF=64", "--model.seqLen=16", "--batchSize=2", "--steps=8", "--evalEvery=4", "--evalBatches=2", "--schedule.warmupSteps=2", "--threads=2", "--device=cpu"];
    const full = train(tinyConfig(dir, ["name=ref"]));
    const child = spawn(process.execPath, ["bin/fp4lm.mjs", "train", "--name=k", "--checkpointEvery=2", "--logEvery=1", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        // after step 5 the step-4 checkpoint exists: kill mid-run
        if (/step 5\/8/.test(out) && !child.killed) child.kill("SIGKILL");
      });
      child.on("exit", () => resolve());
      child.on("error", reject);
    });
    assert.equal(child.signalCode, "SIGKILL", `the run finished before it could be killed:\n${out}`);
    const saved = loadCheckpoint(join(dir, "k", "checkpoint.safetensors")).state.step;
    assert.ok(saved >= 2 && saved < 8, `checkpoint at step ${saved}`);
    const rest = train(tinyConfig(dir, ["name=k", "checkpointEvery=2", "resume"]));
    assert.deepEqual(rest.losses, full.losses.slice(saved));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("NaN: the run stops with the step and the layer, and writes no checkpoint", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-nan-"));
  try {
    const cfg = tinyConfig(dir, ["checkpointEvery=1", "schedule.lr=1e30", "optim.gradClip=0", "schedule.warmupSteps=0"]);
    let err: unknown;
    try { train(cfg); } catch (e) { err = e; }
    assert.ok(err instanceof DivergedError, `expected DivergedError, got ${err}`);
    assert.match((err as Error).message, /^step \d+: (blocks\.\d\.\w+\.\w+\.\w+\.\w+|head\.\w+\.\w+): element \[\d+, \d+\]|^step \d+: the (loss|gradient)/);
    const ck = join(dir, "t", "checkpoint.safetensors");
    if (existsSync(ck)) {
      // checkpoints written before the blow-up are finite (saveCheckpoint refuses NaN/Inf)
      for (const t of loadCheckpoint(ck).params) assert.ok(t.data.every(Number.isFinite), t.name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("config: every problem is listed before any work starts", () => {
  assert.throws(
    () => buildConfig(["model.nHeads=3", "model.dModel=64", "recipe=nvfp4", "recipe.bf16Lats=2", "steps=-1", "batchSize=oops"]),
    (e: Error) => /nHeads \(3\) must divide model\.dModel \(64\)/.test(e.message) && /unknown setting 'recipe\.bf16Lats'/.test(e.message) &&
      /steps must be a positive integer/.test(e.message) && /'batchSize' must be a number/.test(e.message),
  );
  assert.throws(() => buildConfig(["recipe=nvfp4", "model.dModel=40", "model.nHeads=4", "model.nKvHeads=2"]), /model\.dModel = 40 must be a multiple of 16 for nvfp4/);
  assert.throws(() => buildConfig(["recipe=fp4"]), /unknown recipe 'fp4'/);
});

test("gradient accumulation: B=1 × 2 micro-batches trains like B=2 (fp32 recipe, same windows)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-accum-"));
  try {
    const a = train(tinyConfig(dir, ["name=a", "recipe=fp32", "steps=4", "batchSize=2", "gradAccum=1"]));
    const b = train(tinyConfig(dir, ["name=b", "recipe=fp32", "steps=4", "batchSize=1", "gradAccum=2", "evalBatches=4"]));
    a.losses.forEach((l, i) => assert.ok(Math.abs(l - b.losses[i]) < 1e-5 * l, `step ${i}: ${l} vs ${b.losses[i]}`));
    assert.ok(a.losses[3] < a.losses[0], "the loss goes down");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("precision switch: announced and recorded at the step it happens, with the new table", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-switch-"));
  try {
    train(tinyConfig(dir, ["recipe=nvfp4", "recipe.bf16Last=0", "steps=4", "recipe.precisionSwitch.atStep=2", "recipe.precisionSwitch.passes=forward"]));
    const sw = readMetrics(join(dir, "t", "metrics.jsonl")).filter((l) => l.type === "switch");
    assert.equal(sw.length, 1);
    assert.equal(sw[0].step, 2);
    const row = (sw[0].precision as { layer: string; fprop: string; dgrad: string }[]).find((r) => r.layer === "blocks.0.mlp.fc1")!;
    assert.equal(row.fprop, "bf16");
    assert.equal(row.dgrad, "nvfp4 1x16 SR × nvfp4 16x16 RTN");
    assert.ok(existsSync(join(dir, "t", "precision-from-step-2.json")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
