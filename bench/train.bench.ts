/**
 * Training throughput on the CPU for the `npm start` model (tiny preset, B=8, T=64) with each
 * recipe: tokens/s over steps 5..N (after warm-up), with 1 and 2 GEMM threads. Prints a table and
 * writes bench/results/train-cpu.json. Usage: npx tsx bench/train.bench.ts [--steps 30]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildConfig } from "../src/train/config.ts";
import { train } from "../src/train/train.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({ options: { steps: { type: "string" } } });
const steps = Number(values.steps ?? 30);
const dir = mkdtempSync(join(tmpdir(), "fp4lm-bench-"));
const rows: { recipe: string; threads: number; tokensPerS: number; msPerStep: number }[] = [];
try {
  for (const recipe of ["fp32", "bf16", "fp8", "nvfp4", "mxfp4"]) {
    for (const threads of [1, 2]) {
      const cfg = buildConfig([`recipe=${recipe}`, `steps=${steps}`, `evalEvery=${steps}`, "evalBatches=1", `threads=${threads}`, "device=cpu", "log=quiet", `outDir=${dir}`, `name=${recipe}-${threads}`, "checkpointEvery=0"]);
      const r = train(cfg);
      rows.push({ recipe, threads, tokensPerS: r.tokensPerS, msPerStep: (cfg.batchSize * cfg.model.seqLen * 1000) / r.tokensPerS });
      process.stderr.write(`  ${recipe} x${threads}: ${Math.round(r.tokensPerS)} tok/s\n`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const machine = `${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores), Node ${process.version}`;
console.log(`CPU training throughput, tiny model (d=64, 4 blocks, T=64, B=8, vocab 1024), ${steps} steps; ${machine}`);
console.log(textTable([["recipe", "threads", "tokens/s", "ms/step"], ...rows.map((r) => [r.recipe, r.threads, Math.round(r.tokensPerS), r.msPerStep.toFixed(0)])], [false, true, true, true]));
writeFileSync(new URL("./results/train-cpu.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, steps, rows }, null, 1) + "\n");
