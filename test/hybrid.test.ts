/**
 * The Nemotron-H hybrid end to end on the CPU: the whole model's backward pass against finite
 * differences, every GEMM of every layer under the NVFP4 recipe (and nothing else quantized),
 * the recipe's BF16 blocks counted in hybrid blocks as the paper does, presets and config errors,
 * parameter counts, and bit-exact checkpoint resume with the Mamba-2 parameters.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend } from "../src/backends/cpu/cpu-backend.ts";
import { loadCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { RunContext } from "../src/nn/context.ts";
import { createModel } from "../src/nn/create-model.ts";
import { HybridLM } from "../src/nn/hybrid-model.ts";
import { HYBRID_PRESETS, PATTERN_12B, PATTERN_8B } from "../src/nn/hybrid-config.ts";
import { MODEL_PRESETS, parameterCount, type ModelConfig } from "../src/nn/model-config.ts";
import type { OperandSpec } from "../src/recipes/operand.ts";
import { bf16Reason, recipeByName, validateRecipe, type RecipeConfig } from "../src/recipes/recipe.ts";
import { buildConfig } from "../src/train/config.ts";
import { train } from "../src/train/train.ts";
import { lcgTokens as tokens } from "./random.ts";
import { directionalCheck } from "./model-gradcheck.ts";

const MODEL: ModelConfig = {
  vocabSize: 40, dModel: 32, nLayers: 5, nHeads: 2, nKvHeads: 1, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5, pattern: "M-*M-",
  mamba: { nGroups: 2, dState: 8, headDim: 8, expand: 2, convWindow: 4, chunkSize: 6 },
};

test("the hybrid's backward pass matches finite differences along a random direction over every parameter (fp32 recipe, Richardson-extrapolated)", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const ctx = new RunContext(be, recipeByName("fp32"), 7);
    const B = 2, T = MODEL.seqLen;
    const model = createModel(ctx, MODEL, B, T);
    assert.ok(model instanceof HybridLM);
    assert.equal(parameterCount(MODEL), model.params.reduce((s, p) => s + p.data.size, 0));
    const x = be.tokens(tokens(B * T, 40, 1), [B, T]), y = be.tokens(tokens(B * T, 40, 2), [B, T]);
    const { analytic: dot, lossAt } = directionalCheck(model, x, y);
    // Richardson extrapolation of two central differences cancels the h² term: the Mamba-2 blocks
    // (exp, softplus, SiLU, norms along every parameter at once) bend sharply at this size
    const D = (h: number) => (lossAt(h) - lossAt(-h)) / (2 * h);
    const numeric = (4 * D(1e-3) - D(2e-3)) / 3;
    assert.ok(Math.abs(dot) > 0.05, `directional derivative too small to test: ${dot}`);
    assert.ok(Math.abs(numeric - dot) / Math.abs(dot) < 2e-3, `analytic ${dot} vs numeric ${numeric}`);
  } finally {
    be.close();
  }
});

test("nvfp4 on the hybrid: both linears of every block quantized as the paper's recipe, names as the pattern says; conv/scan/norm never quantized", () => {
  // shareTiles off: every operand's quantize call is seen (shared-tiles.test.ts: the shared 16x16 W gives the same values)
  const be = new CpuBackend({ threads: 1, shareTiles: false });
  try {
    const calls: { name: string; spec: OperandSpec }[] = [];
    const orig = be.quantize.bind(be);
    be.quantize = (x, rows, cols, spec, transpose, stream, name) => {
      calls.push({ name, spec });
      return orig(x, rows, cols, spec, transpose, stream, name);
    };
    // a BF16 operand the producing op fills (Backend.bf16Operand) replaces a quantize call: count it as one
    const given = be.bf16Operand.bind(be);
    be.bf16Operand = (rows, cols, spec, name) => {
      calls.push({ name, spec });
      return given(rows, cols, spec, name);
    };
    // in_proj: 2·64 + 2·2·8 + 16 heads = 176 rows, a multiple of 16
    const cfg = { ...MODEL, pattern: "M-*M-M-M-*", nLayers: 10, mamba: { ...MODEL.mamba!, headDim: 4 } };
    const ctx = new RunContext(be, recipeByName("nvfp4"), 3);
    const B = 2, T = cfg.seqLen;
    const model = createModel(ctx, cfg, B, T);
    model.step(be.tokens(tokens(B * T, 40, 5), [B, T]), be.tokens(tokens(B * T, 40, 6), [B, T]), true);
    const table = model.precisionTable();
    assert.deepEqual(table.map((r) => r.layer), [
      "blocks.0.mamba.in_proj", "blocks.0.mamba.out_proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "blocks.2.attn.qkv", "blocks.2.attn.proj",
      "blocks.3.mamba.in_proj", "blocks.3.mamba.out_proj", "blocks.4.mlp.fc1", "blocks.4.mlp.fc2", "blocks.5.mamba.in_proj", "blocks.5.mamba.out_proj",
      "blocks.6.mlp.fc1", "blocks.6.mlp.fc2", "blocks.7.mamba.in_proj", "blocks.7.mamba.out_proj", "blocks.8.mlp.fc1", "blocks.8.mlp.fc2",
      "blocks.9.attn.qkv", "blocks.9.attn.proj", "head",
    ]);
    // "auto": 15% of the 10 hybrid blocks = the last 2 blocks (4 of 20 block linears), and the head
    const bf16 = table.filter((r) => r.why !== "quantized").map((r) => r.layer);
    assert.deepEqual(bf16, ["blocks.8.mlp.fc1", "blocks.8.mlp.fc2", "blocks.9.attn.qkv", "blocks.9.attn.proj", "head"]);
    const of = (n: string) => calls.find((c) => c.name === n)!.spec;
    assert.deepEqual({ ...of("blocks.3.mamba.in_proj.fprop.weight") }, { format: "nvfp4", block: "16x16", rounding: "rtn", role: "weight" });
    assert.deepEqual({ ...of("blocks.3.mamba.out_proj.wgrad.gradOutput") }, { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "fixed" }, role: "gradOutput" });
    assert.equal(of("blocks.2.attn.qkv.dgrad.gradOutput").rounding, "sr");
    // only linear layers quantize (6 operands each; a BF16 layer 3: X, W and dY are shared with their second GEMM,
    // Backend.shareOperand): no conv, scan, norm or dt/A/D operand ever
    assert.equal(calls.length, 16 * 6 + 5 * 3);
    assert.ok(calls.every((c) => /^(blocks\.\d\.(mamba\.(in|out)_proj|mlp\.fc[12]|attn\.(qkv|proj))|head)\./.test(c.name)), "only the linears");
    assert.equal(calls.filter((c) => c.spec.format === "nvfp4").length, 16 * 6);
  } finally {
    be.close();
  }
});

test("BF16 blocks count hybrid blocks as the paper: 12B first 2 + last 8 = 16% of linear layers, 8B auto last 8 = 15%", () => {
  const frac = (pattern: string, r: RecipeConfig) => {
    const n = pattern.length;
    const kept = [...pattern].filter((_, i) => bf16Reason(r, { name: `blocks.${i}.x`, block: i, nBlocks: n }) !== undefined).length;
    return { kept, share: (2 * kept) / (2 * n) };
  };
  const paper12 = validateRecipe({ ...structuredClone(recipeByName("nvfp4")), bf16First: 2, bf16Last: 8 } as RecipeConfig);
  assert.deepEqual(frac(PATTERN_12B, paper12).kept, 10);
  assert.ok(Math.abs(frac(PATTERN_12B, paper12).share - 0.161) < 1e-3);
  const auto = recipeByName("nvfp4");
  assert.equal(frac(PATTERN_8B, auto).kept, 8);
  assert.ok(Math.abs(frac(PATTERN_8B, auto).share - 0.154) < 1e-3);
  // the blocks kept are the pattern's last blocks, whichever their kind (FFN or Mamba-2)
  assert.equal(bf16Reason(auto, { name: "blocks.44.mamba.in_proj", block: 44, nBlocks: 52 }), "last 8 block(s) in BF16");
  assert.equal(bf16Reason(auto, { name: "blocks.43.mlp.fc1", block: 43, nBlocks: 52 }), undefined);
});

test("presets: the paper's block counts and ratios, valid for nvfp4 (and mxfp4 where stated), parameter counts; config errors listed", () => {
  const count = (p: string, k: string) => [...p].filter((c) => c === k).length;
  assert.deepEqual([PATTERN_12B.length, count(PATTERN_12B, "M"), count(PATTERN_12B, "-"), count(PATTERN_12B, "*")], [62, 28, 28, 6]);
  assert.deepEqual([PATTERN_8B.length, count(PATTERN_8B, "M"), count(PATTERN_8B, "-"), count(PATTERN_8B, "*")], [52, 24, 24, 4]);
  for (const name of Object.keys(HYBRID_PRESETS)) {
    const p = MODEL_PRESETS[name].pattern!;
    assert.equal(count(p, "M"), count(p, "-"), `${name}: as many Mamba-2 as FFN blocks`);
    // scaled-down presets keep 12+ blocks; the experiment preset (exp-*) is sized for the GPU suites instead
    assert.ok(p.length >= (name.startsWith("exp-") ? 9 : 12), name);
    for (const recipe of name === "nemotronh-small" ? ["nvfp4"] : ["nvfp4", "mxfp4"]) {
      const c = buildConfig([`model=${name}`, `recipe=${recipe}`, "batchSize=1"]);
      assert.equal(c.model.pattern, p);
    }
  }
  const c12 = buildConfig(["model.preset=nemotronh-12b", "batchSize=1"]).model;
  // 12.3B with the 131072-token vocabulary of Nemotron-Nano-12B-v2
  assert.ok(Math.abs(parameterCount({ ...c12, vocabSize: 131072 }) / 1e9 - 12.3) < 0.1, `${parameterCount({ ...c12, vocabSize: 131072 })}`);
  const c8 = buildConfig(["model.preset=nemotronh-8b", "batchSize=1"]).model;
  assert.ok(Math.abs(parameterCount({ ...c8, vocabSize: 131072 }) / 1e9 - 8.1) < 0.2, `${parameterCount({ ...c8, vocabSize: 131072 })}`);
  assert.throws(() => buildConfig(["model=nemotronh-small", "model.pattern=M-X*"]), (e: Error) =>
    /may hold M \(Mamba-2\), \* \(attention\) and - \(FFN\) only, got 'X'/.test(e.message) && /nLayers \(13\) must equal the pattern's length \(4/.test(e.message));
  assert.throws(() => buildConfig(["model=nemotronh-small", "model.mamba.headDim=24"]), /headDim \(24\) must divide the intermediate width expand·dModel = 128/);
  assert.throws(() => buildConfig(["model=nemotronh-small", "recipe=mxfp4"]), /Mamba in_proj width .* = 336 must be a multiple of 32 for mxfp4/);
  assert.throws(() => buildConfig(["model=nemotronh-small", "model.mamba.nGroups=3"]), /nGroups \(3\) must divide the Mamba heads/);
  // a Transformer preset after a hybrid one is a Transformer again
  const back = buildConfig(["model=nemotronh-small", "model.preset=tiny"]).model;
  assert.deepEqual([back.pattern, back.mamba, back.dModel], [undefined, undefined, 64]);
  assert.equal(JSON.stringify(buildConfig([]).model), JSON.stringify({ preset: "tiny", vocabSize: 1024, ...MODEL_PRESETS.tiny, mlp: "sqrelu" }), "Transformer configs carry no hybrid fields");
});

function tiny(dir: string, extra: string[]) {
  return buildConfig([
    `outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model=nemotronh-small", "model.seqLen=16", "model.pattern=M-*M-", "model.nLayers=5",
    "batchSize=2", "steps=6", "evalEvery=3", "evalBatches=1", "schedule.warmupSteps=1", "threads=1", "device=cpu", "recipe=nvfp4", ...extra,
  ]);
}

test("hybrid checkpoints: the Mamba-2 parameters are saved, and a resumed run continues bit for bit", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-hybrid-"));
  try {
    const full = train(tiny(dir, ["name=full"]));
    assert.ok(full.losses[5] < full.losses[0], `losses ${full.losses}`);
    train(tiny(dir, ["name=cut", "checkpointEvery=2"]), { stopAfter: 2 });
    const ck = loadCheckpoint(join(dir, "cut", "checkpoint.safetensors"));
    const names = ck.params.map((t) => t.name);
    for (const n of ["blocks.0.mamba.A_log", "blocks.0.mamba.dt_bias", "blocks.0.mamba.D", "blocks.0.mamba.conv.weight", "blocks.3.mamba.norm.weight", "blocks.2.attn.qkv.weight", "blocks.1.norm.weight"]) {
      assert.ok(names.includes(n), n);
    }
    assert.equal((ck.state.config as { model: ModelConfig }).model.pattern, "M-*M-");
    const rest = train(tiny(dir, ["name=cut", "checkpointEvery=2", "resume"]));
    assert.deepEqual(rest.losses, full.losses.slice(2));
    assert.throws(() => train(tiny(dir, ["name=cut", "resume", "model.mamba.dState=8"])), /different settings for model;/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
