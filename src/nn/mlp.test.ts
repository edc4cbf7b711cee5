/**
 * The MLP option: the SwiGLU block against a float64 transcription (gate rows first, as the HF
 * export splits them; the whole SwiGLU model's finite-difference check is test/train.test.ts's,
 * run for both kinds), parameter counts of both kinds, config validation, and checkpoints: the kind is recorded, a
 * checkpoint without it (written before the option) loads and resumes as squared ReLU.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend, type CpuTensor } from "../backends/cpu/cpu-backend.ts";
import { loadCheckpoint } from "../checkpoint/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { recipeByName } from "../recipes/recipe.ts";
import { buildConfig } from "../train/config.ts";
import { loadModel } from "../train/load-model.ts";
import { train } from "../train/train.ts";
import { RunContext } from "./context.ts";
import { GPT } from "./gpt.ts";
import { MLP } from "./mlp.ts";
import { modelConfigProblems, parameterCount, type ModelConfig } from "./model-config.ts";

const MODEL: ModelConfig = { vocabSize: 40, dModel: 32, nLayers: 2, nHeads: 2, nKvHeads: 1, dFF: 48, seqLen: 16, ropeTheta: 10000, normEps: 1e-5, mlp: "swiglu" };

function lcg(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

test("SwiGLU MLP = W2·(silu(Wg·x) ⊙ (Wu·x)) with fc1 rows [0, F) the gate, [F, 2F) up (float64 transcription)", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const ctx = new RunContext(be, recipeByName("fp32"), 3);
    const BT = 5, C = MODEL.dModel, F = MODEL.dFF;
    const mlp = new MLP(ctx, "m", MODEL, 0, 0, BT);
    assert.deepEqual(mlp.fc1.weight.shape, [2 * F, C]);
    assert.deepEqual(mlp.fc2.weight.shape, [C, F]);
    const w1 = lcg(2 * F * C, 1), w2 = lcg(C * F, 2), x = lcg(BT * C, 3);
    be.copy(mlp.fc1.weight.data as CpuTensor, be.fromArray(w1, [2 * F, C]));
    be.copy(mlp.fc2.weight.data as CpuTensor, be.fromArray(w2, [C, F]));
    const out = be.alloc([BT, C]);
    mlp.forward(out, be.fromArray(x, [BT, C]));
    const got = be.toArray(out);
    let maxErr = 0, maxRef = 0;
    for (let r = 0; r < BT; r++) {
      const a = new Float64Array(F);
      for (let j = 0; j < F; j++) {
        let g = 0, u = 0;
        for (let i = 0; i < C; i++) { g += w1[j * C + i] * x[r * C + i]; u += w1[(F + j) * C + i] * x[r * C + i]; }
        a[j] = (g / (1 + Math.exp(-g))) * u;
      }
      for (let o = 0; o < C; o++) {
        let y = 0;
        for (let j = 0; j < F; j++) y += w2[o * F + j] * a[j];
        maxErr = Math.max(maxErr, Math.abs(y - got[r * C + o]));
        maxRef = Math.max(maxRef, Math.abs(y));
      }
    }
    assert.ok(maxRef > 0.5, `reference output too small to test: ${maxRef}`);
    assert.ok(maxErr / maxRef < 1e-5, `max rel error ${maxErr / maxRef}`);
  } finally {
    be.close();
  }
});

test("parameterCount counts the model's parameters for both MLP kinds; mlp is validated", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const ctx = new RunContext(be, recipeByName("fp32"), 1);
    for (const cfg of [MODEL, { ...MODEL, mlp: "sqrelu" as const }, { ...MODEL, mlp: undefined }]) {
      const model = new GPT(ctx, cfg, 1, 4);
      assert.equal(parameterCount(cfg), model.params.reduce((s, p) => s + p.data.size, 0), `mlp ${cfg.mlp}`);
    }
  } finally {
    be.close();
  }
  assert.deepEqual(modelConfigProblems(MODEL), []);
  assert.match(modelConfigProblems({ ...MODEL, mlp: "gelu" as never }).join("; "), /model\.mlp must be sqrelu or swiglu, got "gelu"/);
  assert.equal(buildConfig([]).model.mlp, "sqrelu");
  assert.equal(buildConfig(["model.preset=small", "model.mlp=swiglu"]).model.mlp, "swiglu");
  assert.throws(() => buildConfig(["model.mlp=geglu"]), /model\.mlp must be sqrelu or swiglu/);
});

function tinyRun(dir: string, extra: string[]) {
  return buildConfig([
    `outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model.dModel=32", "model.nLayers=2", "model.nHeads=2", "model.nKvHeads=1",
    "model.dFF=64", "model.seqLen=16", "batchSize=2", "steps=4", "evalEvery=4", "evalBatches=1", "schedule.warmupSteps=1",
    "threads=1", "device=cpu", "recipe=bf16", ...extra,
  ]);
}

test("checkpoints record the MLP kind; one written without it loads and resumes as squared ReLU", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-mlp-"));
  try {
    // a SwiGLU run learns, records its kind, and loads back as SwiGLU
    const sw = train(tinyRun(dir, ["name=sw", "model.mlp=swiglu", "steps=6"]));
    assert.ok(sw.losses[5] < sw.losses[0], `SwiGLU run: losses ${sw.losses}`);
    const swPath = join(dir, "sw", "checkpoint.safetensors");
    assert.equal((loadCheckpoint(swPath).state.config as { model: ModelConfig }).model.mlp, "swiglu");
    const lm = loadModel(swPath, { B: 1, T: 8, threads: 1 });
    try {
      assert.deepEqual(lm.model.blocks[0].mlp.fc1.weight.shape, [128, 32]);
    } finally {
      lm.be.close();
    }

    // an "old" checkpoint: the same state without model.mlp
    const full = train(tinyRun(dir, ["name=full"]));
    train(tinyRun(dir, ["name=old", "checkpointEvery=2"]), { stopAfter: 2 });
    const path = join(dir, "old", "checkpoint.safetensors");
    const f = readSafetensors(path);
    const state = JSON.parse(f.metadata["fp4lm.checkpoint"]);
    assert.equal(state.config.model.mlp, "sqrelu");
    delete state.config.model.mlp;
    writeSafetensors(path, f.tensors, { ...f.metadata, "fp4lm.checkpoint": JSON.stringify(state) });
    assert.equal((loadCheckpoint(path).state.config as { model: ModelConfig }).model.mlp, "sqrelu");
    const rest = train(tinyRun(dir, ["name=old", "checkpointEvery=2", "resume"]));
    assert.deepEqual(rest.losses, full.losses.slice(2));
    // and a SwiGLU config may not resume it
    assert.throws(() => train(tinyRun(dir, ["name=old", "resume", "model.mlp=swiglu"])), /different settings for model;/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
