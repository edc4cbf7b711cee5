import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend } from "../backends/cpu/cpu-backend.ts";
import { operandStats } from "../recipes/operand-stats.ts";
import { buildConfig } from "../train/config.ts";
import { train } from "../train/train.ts";
import { RunContext } from "./context.ts";
import { GPT } from "./gpt.ts";
import { readTelemetry, summarizeTelemetry } from "./telemetry.ts";

const root = mkdtempSync(join(tmpdir(), "fp4lm-tel-"));
after(() => rmSync(root, { recursive: true, force: true }));
const TINY = [
  "data.tokenizer=byte", "model.dModel=32", "model.nLayers=2", "model.nHeads=2", "model.nKvHeads=1", "model.dFF=64", "model.seqLen=16",
  "batchSize=2", "gradAccum=2", "evalEvery=100", "evalBatches=1", "schedule.warmupSteps=1", "threads=1", "log=quiet", "overwrite", "recipe.bf16Last=0",
  `outDir=${root}`, "steps=5",
];

test("telemetry every 2 steps: six operands per linear layer on steps 0, 2, 4, and training unchanged", () => {
  const cfg = buildConfig([...TINY, "name=tel", "telemetryEvery=2"]);
  const withTel = train(cfg);
  const plain = train(buildConfig([...TINY, "name=plain"]));
  assert.deepEqual(withTel.losses, plain.losses, "measuring does not change a bit of training");
  assert.ok(!existsSync(join(root, "plain", "telemetry.jsonl")), "off by default");

  const lines = readTelemetry(join(root, "tel", "telemetry.jsonl"));
  const layers = ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2", "blocks.1.attn.qkv", "blocks.1.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "head"];
  assert.deepEqual([...new Set(lines.map((l) => l.step))], [0, 2, 4]);
  assert.equal(lines.length, 3 * layers.length * 6, "one micro-batch of two is measured");
  const sums = summarizeTelemetry(lines);
  assert.deepEqual([...new Set(sums.map((s) => s.layer))], layers, "model order");
  const at = (step: number, layer: string, gemm: string, operand: string) => lines.find((l) => l.step === step && l.layer === layer && l.gemm === gemm && l.operand === operand)!;
  assert.equal(at(0, "blocks.0.mlp.fc2", "wgrad", "dY").format, "nvfp4 1x16 SR RHT16");
  assert.equal(at(0, "blocks.0.mlp.fc2", "fprop", "W").format, "nvfp4 16x16 RTN");
  assert.equal(at(2, "head", "fprop", "X").format, "bf16");
  for (const l of lines) {
    assert.ok(l.rel_err > 0 && l.rel_err < (l.format === "bf16" ? 2 ** -8 : 0.5), `${l.layer} ${l.gemm} ${l.operand}: ${l.rel_err}`);
    assert.ok(l.flushed >= 0 && l.flushed < 1 && l.saturated >= 0 && l.saturated < 0.2 && l.amax > 0);
  }

  // step 0's weight operand is the initial weight, quantized as the layer's plan says
  const be = new CpuBackend({ threads: 1 });
  try {
    const ctx = new RunContext(be, cfg.recipe, cfg.seed);
    ctx.totalSteps = cfg.steps;
    const g = new GPT(ctx, cfg.model, 2, 16);
    const lin = g.linears[2];
    const want = operandStats(ctx.be.toArray(lin.weight.data), lin.outF, lin.inF, ctx.plan(lin.site).fprop.b, false, { seed: cfg.seed, gemmId: ctx.gemmId(lin.index, 0), slot: 1 });
    const got = at(0, lin.name, "fprop", "W");
    assert.deepEqual([got.rel_err, got.flushed, got.saturated, got.amax], [want.relErr, want.flushed, want.saturated, want.amax]);
    // and its weight two steps later is another one
    assert.notEqual(at(2, lin.name, "fprop", "W").amax, got.amax);
  } finally {
    be.close();
  }
  assert.match(readFileSync(join(root, "tel", "telemetry.jsonl"), "utf8").split("\n")[0], /^\{"step":0,"layer":"blocks\.0\.attn\.qkv","gemm":"fprop","operand":"X",/);
});

test("telemetryEvery must be 0 or a positive integer; --telemetry-every is its spelling on the command line", async () => {
  assert.throws(() => buildConfig(["telemetryEvery=-1"]), /telemetryEvery must be 0 \(off\) or a positive integer/);
  const { parseOverrides } = await import("../cli/train-command.ts");
  assert.deepEqual(parseOverrides(["--telemetry-every", "5", "--data.bundled=moby-dick"])[0], ["telemetryEvery=5", "data.bundled=moby-dick"]);
  assert.equal(buildConfig(parseOverrides(["--telemetry-every=7"])[0]).telemetryEvery, 7);
});
