/**
 * Data-parallel scaling on one host: GPT-124M (the gpt124m preset, GPT-2 tokenizer, bundled
 * State of the Union text, B 16 × T 1024 per GPU) trained through the real launcher
 * (`fp4lm train --gpus N`: one process per GPU, NCCL) with each recipe on 1 GPU and on N, weak
 * scaling (the batch per GPU fixed), with each way of exchanging gradients: `plain` (FP32
 * all-reduce in 25 MiB buckets after the backward pass, --parallel.overlap=false), `overlap` (each
 * bucket all-reduced on a second stream as soon as the backward pass has finished its gradients,
 * the default) and `zero1` (overlapped reduce-scatter, AdamW moments sharded, weights all-gathered:
 * --parallel.zero1). Tokens/s = the median of the per-step figures after the warm-up steps (all
 * ranks' tokens); scaling efficiency = tokens/s on N / (N × tokens/s of the same recipe and
 * exchange on 1 GPU); the issue's target is ≥ 90%. Prints a table (GPUs, recipe, exchange,
 * tokens/s, scaling efficiency) and writes bench/results/scaling-gpu.json. Usage:
 *   npx tsx bench/scaling-gpu.bench.ts [--gpus 1,8] [--recipes bf16,nvfp4] [--exchange plain,overlap,zero1] [--steps 20] [--warmup 3] [--batch 16]
 * (--gpus defaults to 1 and every GPU of the machine). Needs NCCL (FP4LM_NCCL_LIB to point at it).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { getDriver } from "../src/backends/cuda/driver.ts";
import { getNccl } from "../src/backends/cuda/nccl.ts";
import { textTable } from "../src/cli/text-table.ts";
import { launchDataParallel } from "../src/parallel/launch.ts";
import { buildConfig } from "../src/train/config.ts";
import { preparedDir } from "../src/train/data-setup.ts";
import { readMetrics } from "../src/train/metrics.ts";

const { values } = parseArgs({ options: { gpus: { type: "string" }, recipes: { type: "string" }, exchange: { type: "string" }, steps: { type: "string" }, warmup: { type: "string" }, batch: { type: "string" } } });
const available = getDriver().deviceCount();
const gpuCounts = (values.gpus ?? [...new Set([1, available])].join(",")).split(",").map(Number);
const recipes = (values.recipes ?? "bf16,nvfp4").split(",");
const EXCHANGES: Record<string, string[]> = { plain: ["parallel.overlap=false"], overlap: ["parallel.overlap=true"], zero1: ["parallel.overlap=true", "parallel.zero1=true"] };
const exchanges = (values.exchange ?? "plain,overlap,zero1").split(",");
const unknown = exchanges.filter((e) => !(e in EXCHANGES));
if (unknown.length) throw new Error(`--exchange ${unknown.join(",")}: choose from ${Object.keys(EXCHANGES).join(", ")}`);
const warmup = Number(values.warmup ?? 3), steps = warmup + Number(values.steps ?? 20), B = Number(values.batch ?? 16);
if (gpuCounts.some((n) => !(n >= 1 && n <= available))) throw new Error(`--gpus ${gpuCounts}: this machine has ${available} GPUs`);

const dir = mkdtempSync(join(tmpdir(), "fp4lm-scaling-"));
const base = [`outDir=${dir}`, "model.preset=gpt124m", "data.bundled=sotu", "data.tokenizer=gpt2", `batchSize=${B}`, "gradAccum=1",
  `steps=${steps}`, `evalEvery=${steps}`, "evalBatches=1", "checkpointEvery=0", "log=quiet", "device=cuda", "schedule.warmupSteps=2"];
const rows: { recipe: string; exchange: string; gpus: number; msPerStep: number; tokensPerS: number; efficiency?: number }[] = [];
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
try {
  preparedDir(buildConfig(base), (s) => process.stderr.write(s + "\n"));
  for (const recipe of recipes) {
    for (const exchange of exchanges) {
      for (const n of gpuCounts) {
        const name = `${recipe}-${exchange}-${n}`;
        await launchDataParallel(buildConfig([...base, `recipe=${recipe}`, `name=${name}`, `ranks=${n}`, ...EXCHANGES[exchange]]), { log: (s) => process.stderr.write(s + "\n") });
        const st = readMetrics(join(dir, name, "metrics.jsonl")).filter((l) => l.type === "step" && (l.step as number) >= warmup);
        const row = { recipe, exchange, gpus: n, msPerStep: median(st.map((l) => l.ms as number)), tokensPerS: median(st.map((l) => l.tokens_per_s as number)) };
        rows.push(row);
        process.stderr.write(`  ${recipe}, ${exchange}, ${n} GPU${n > 1 ? "s" : ""}: ${row.msPerStep.toFixed(1)} ms/step, ${Math.round(row.tokensPerS)} tok/s\n`);
        rmSync(join(dir, name), { recursive: true, force: true });
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const r of rows) {
  const one = rows.find((o) => o.recipe === r.recipe && o.exchange === r.exchange && o.gpus === 1);
  if (one && r.gpus > 1) r.efficiency = r.tokensPerS / (r.gpus * one.tokensPerS);
}
const d = getDriver().deviceInfo(0);
const v = getNccl().version();
const machine = `${available}× ${d.name}, NCCL ${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}, Node ${process.version}`;
console.log(`data-parallel scaling, gpt124m, B ${B} × T 1024 per GPU, median of ${steps - warmup} steps after ${warmup} warm-up; efficiency against the same recipe and exchange on 1 GPU; ${machine}`);
console.log(textTable([["GPUs", "recipe", "exchange", "ms/step", "tokens/s", "tokens/s per GPU", "scaling efficiency"],
  ...rows.map((r) => [r.gpus, r.recipe, r.exchange, r.msPerStep.toFixed(1), Math.round(r.tokensPerS), Math.round(r.tokensPerS / r.gpus), r.efficiency === undefined ? "" : `${(100 * r.efficiency).toFixed(1)}%`])],
[true, false, false, true, true, true, true]));
writeFileSync(new URL("./results/scaling-gpu.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, B, steps, warmup, rows }, null, 1) + "\n");
