/**
 * GPU training throughput: the GPT-124M-shaped model of the issue (d 768, 12 layers, 12 heads,
 * T 1024, B 16, vocabulary 50304; the paper's block: squared ReLU, RoPE, RMSNorm) on the CUDA
 * backend with each recipe, on random tokens: tokens/s, MFU against the H200's dense BF16 peak
 * (989.4 TFLOP/s, nanoGPT's 6N + 12·L·T·d FLOPs per token), peak device memory. Prints a table and
 * writes bench/results/train-gpu.json. Usage: npx tsx bench/train-gpu.bench.ts [--steps 5] [--recipes bf16,nvfp4,fp8,fp8-emulated] [--batch 16] [--preset gpt124m] [--profile]
 * [--d-model D --layers L --heads H --kv-heads K --d-ff F --seq T] (the preset changed; gpt124m has 12 KV heads unless --kv-heads).
 * A hybrid preset (nemotronh-medium, exp-hybrid-short: a block pattern) runs the Nemotron-H model; its MFU counts attention
 * FLOPs for the attention blocks only (the scan's FLOPs are not counted). Issue 8's comparison, the same non-embedding parameters:
 *   --preset nemotronh-medium   vs   --preset gpt124m --d-model 512 --layers 14 --heads 8 --kv-heads 8 --d-ff 2048 (44.0M vs 43.5M)
 * (fp8: GEMMs on the FP8 tensor cores where cuBLASLt runs them, the default; fp8-emulated: the same
 * recipe with FP4LM_FP8_GEMM=emulated; the table says how many GEMMs per step ran on the FP8 tensor cores)
 * (--profile: one extra step with CUDA events around every kernel and GEMM, printed per kernel name)
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CudaBackend } from "../src/backends/cuda/cuda-backend.ts";
import { RunContext } from "../src/nn/context.ts";
import { createModel } from "../src/nn/create-model.ts";
import { isHybrid } from "../src/nn/hybrid-config.ts";
import { MODEL_PRESETS, parameterCount, type ModelConfig } from "../src/nn/model-config.ts";
import { Optimizer } from "../src/optim/optimizer.ts";
import { recipeByName } from "../src/recipes/recipe.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({
  options: {
    steps: { type: "string" }, recipes: { type: "string" }, batch: { type: "string" }, preset: { type: "string" }, warmup: { type: "string" }, profile: { type: "boolean" },
    "d-model": { type: "string" }, layers: { type: "string" }, heads: { type: "string" }, "kv-heads": { type: "string" }, "d-ff": { type: "string" }, seq: { type: "string" },
  },
});
const steps = Number(values.steps ?? 5), warmup = Number(values.warmup ?? 1), B = Number(values.batch ?? 16);
const presetName = values.preset ?? "gpt124m";
if (!MODEL_PRESETS[presetName]) throw new Error(`unknown preset '${presetName}': ${Object.keys(MODEL_PRESETS).join(", ")}`);
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const given = Object.fromEntries(Object.entries({
  dModel: num(values["d-model"]), nLayers: num(values.layers), nHeads: num(values.heads), nKvHeads: num(values["kv-heads"]), dFF: num(values["d-ff"]), seqLen: num(values.seq),
}).filter(([, v]) => v !== undefined));
// the issue's GPT-124M has 12 heads and no GQA: 12 KV heads unless told otherwise
const cfg: ModelConfig = { ...MODEL_PRESETS[presetName], vocabSize: 50304, ...(presetName === "gpt124m" ? { nKvHeads: 12 } : {}), ...given };
const T = cfg.seqLen;
const rows: Record<string, unknown>[] = [];
for (const recipe of (values.recipes ?? "bf16,nvfp4,fp8,fp8-emulated").split(",")) {
  const be = new CudaBackend({ fp8Gemm: recipe === "fp8-emulated" ? "emulated" : undefined });
  try {
    const ctx = new RunContext(be, recipeByName(recipe === "fp8-emulated" ? "fp8" : recipe), 1);
    ctx.totalSteps = steps + warmup;
    const model = createModel(ctx, cfg, B, T);
    const opt = new Optimizer(be, model.params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 });
    let s = 7;
    // batches made before the clock starts (as the trainer's loader slices a token file): the timed
    // loop uploads them, it does not spend host time making random numbers between steps
    const pool = Array.from({ length: 8 }, () => Int32Array.from({ length: B * T }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % cfg.vocabSize));
    let next = 0;
    const ids = () => pool[next++ % pool.length];
    let loss = 0, t0 = 0, tc0 = 0;
    // host time per phase of the timed steps: queueing the forward and backward (uploads included),
    // the gradient norm (where the host waits for the GPU), AdamW + zeroing
    const host = { queue: 0, norm: 0, update: 0 };
    for (let i = 0; i < warmup + steps; i++) {
      if (i === warmup) { be.synchronize(); t0 = performance.now(); tc0 = be.fp8.counts.tensorCores; host.queue = host.norm = host.update = 0; }
      ctx.step = i;
      // as the trainer: the loss read after the gradient norm (one wait for the GPU per step)
      const h0 = performance.now();
      const read = model.stepQueued(be.tokens(ids(), [B, T]), be.tokens(ids(), [B, T]), true);
      const h1 = performance.now();
      const { norm } = opt.gradNorm();
      loss = read();
      const h2 = performance.now();
      opt.step(3e-4, norm);
      opt.zeroGrad();
      const h3 = performance.now();
      host.queue += h1 - h0;
      host.norm += h2 - h1;
      host.update += h3 - h2;
    }
    be.synchronize();
    const ms = (performance.now() - t0) / steps;
    console.error(`  ${recipe} host per step: queue forward+backward ${(host.queue / steps).toFixed(2)} ms, gradient norm (waits for the GPU) ${(host.norm / steps).toFixed(2)} ms, AdamW + zero grads ${(host.update / steps).toFixed(2)} ms`);
    const fp8TcGemms = (be.fp8.counts.tensorCores - tc0) / steps;
    const engines = [...new Set(model.precisionTable().map((r) => r.engine ?? ""))].join(" | ");
    let profile: { name: string; count: number; ms: number }[] = [];
    if (values.profile) {
      // one more step with events around every kernel and GEMM
      be.profile(true);
      const read = model.stepQueued(be.tokens(ids(), [B, T]), be.tokens(ids(), [B, T]), true);
      const { norm } = opt.gradNorm();
      read();
      opt.step(3e-4, norm);
      opt.zeroGrad();
      profile = be.profileReport();
      be.profile(false);
      const total = profile.reduce((a, p) => a + p.ms, 0);
      console.error(`  ${recipe} profile: ${total.toFixed(1)} ms of kernels in one step (${ms.toFixed(1)} ms wall per step unprofiled)`);
      for (const p of profile.slice(0, 25)) console.error(`    ${p.ms.toFixed(2).padStart(8)} ms ${(100 * p.ms / total).toFixed(1).padStart(5)}%  ${String(p.count).padStart(5)}×  ${p.name}`);
      const idle = be.profileIdle(), idleMs = idle.reduce((a, p) => a + p.ms, 0);
      console.error(`  ${recipe} idle between ops (the GPU waiting for the host; events add host work, so an upper bound): ${idleMs.toFixed(2)} ms, most before:`);
      for (const p of idle.slice(0, 8)) console.error(`    ${p.ms.toFixed(2).padStart(8)} ms  ${String(p.count).padStart(5)}×  ${p.name}`);
    }
    const tokS = (B * T * 1000) / ms;
    const N = parameterCount(cfg) - cfg.vocabSize * cfg.dModel; // nanoGPT: no embedding table
    const attnBlocks = isHybrid(cfg) ? [...cfg.pattern!].filter((c) => c === "*").length : cfg.nLayers;
    const mfu = (tokS * (6 * N + 12 * attnBlocks * T * cfg.dModel)) / 989.4e12;
    const mem = be.memoryStats();
    rows.push({ recipe, msPerStep: ms, tokensPerS: tokS, mfu, peakGiB: mem.peakBytesInUse / 2 ** 30, loss, fp8TcGemms, engines, profile });
    console.error(`  ${recipe}: ${ms.toFixed(1)} ms/step, ${Math.round(tokS)} tok/s, loss ${loss.toFixed(3)}; GEMMs run on: ${engines}; ${fp8TcGemms} per step on the FP8 tensor cores`);
  } finally {
    be.close();
  }
}
console.log(`GPU training, ${presetName}${Object.keys(given).length ? ` ${JSON.stringify(given)}` : ""} (d ${cfg.dModel}, L ${cfg.nLayers}${cfg.pattern ? ` pattern ${cfg.pattern}` : ""}, heads ${cfg.nHeads}/${cfg.nKvHeads}, T ${T}, B ${B}, V ${cfg.vocabSize}; ${(parameterCount({ ...cfg, vocabSize: 0 }) / 1e6).toFixed(1)}M non-embedding parameters), ${steps} timed steps`);
console.log(textTable([["recipe", "ms/step", "tokens/s", "MFU", "peak GiB", "FP8 tensor-core GEMMs/step"], ...rows.map((r) => [r.recipe as string, (r.msPerStep as number).toFixed(1), Math.round(r.tokensPerS as number), ((r.mfu as number) * 100).toFixed(1) + "%", (r.peakGiB as number).toFixed(1), String(r.fp8TcGemms)])], [false, true, true, true, true, true]));
writeFileSync(new URL("./results/train-gpu.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), cfg, B, steps, rows }, null, 1) + "\n");
