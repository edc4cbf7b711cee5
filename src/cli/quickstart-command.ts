/**
 * `fp4lm quickstart` (what `npm start` runs): trains the same small model on the bundled corpus
 * twice on the CPU, with the `bf16` and the `nvfp4` recipes, as two processes side by side (one
 * core each), then prints both validation-loss curves, the relative loss gap (the paper's
 * Fig. 2 measure: (nvfp4 − bf16) / bf16), and writes metrics, checkpoints and an SVG plot under
 * `runs/quickstart/`.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Fp4lmError } from "../errors.ts";
import { readMetrics } from "../train/metrics.ts";
import { linePlotSvg } from "../train/plot-svg.ts";
import { preparedDir } from "../train/data-setup.ts";
import { buildConfig } from "../train/config.ts";
import { textTable } from "./text-table.ts";

export const QUICKSTART_HELP = `fp4lm quickstart [--steps N] [--outDir DIR] [--key=value ...]
  trains the tiny model with bf16 and with nvfp4 side by side on the CPU and compares them
  (extra --key=value settings go to both runs, e.g. --model.preset=small)`;

const RECIPES = ["bf16", "nvfp4"] as const;

export async function quickstartCommand(argv: string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: argv, strict: false, tokens: true, options: { steps: { type: "string" }, outDir: { type: "string" }, help: { type: "boolean" } } });
  if (values.help) { console.log(QUICKSTART_HELP); return 0; }
  const outDir = String(values.outDir ?? "runs");
  const steps = Number(values.steps ?? 300);
  const extra = (tokens ?? []).filter((t) => t.kind === "option" && !["steps", "outDir"].includes(t.name))
    .map((t) => (t.kind === "option" ? `--${t.name}${t.value !== undefined ? `=${t.value}` : ""}` : ""));
  const group = join(outDir, "quickstart");
  const common = [`--outDir=${group}`, `--steps=${steps}`, `--evalEvery=${Math.max(1, Math.round(steps / 15))}`, "--threads=1", "--log=quiet", "--overwrite", "--device=cpu", ...extra];
  // validate once and prepare the shared data (cached in OUTDIR/.data) before starting two processes
  const cfg = buildConfig(common.map((a) => a.slice(2)).concat(["recipe=nvfp4", "name=nvfp4", `outDir=${outDir}`]));
  mkdirSync(group, { recursive: true });
  const dataDir = preparedDir(cfg, (s) => console.log(s));

  console.log(`fp4lm quickstart: ${steps} steps of the '${cfg.model.preset}' model (d=${cfg.model.dModel}, ${cfg.model.nLayers} blocks, T=${cfg.model.seqLen}) ` +
    `on the bundled corpus, recipes ${RECIPES.join(" and ")}, one CPU core each`);
  const bin = fileURLToPath(new URL("../../bin/fp4lm.mjs", import.meta.url));
  const started = performance.now();
  const children = RECIPES.map((r) => {
    const c = spawn(process.execPath, [bin, "train", `--recipe=${r}`, `--name=${r}`, ...common, `--data.dir=${dataDir}`], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr.on("data", (d: Buffer) => (err += d.toString()));
    return { r, c, done: new Promise<number>((res) => c.on("exit", (code) => { if (code) process.stderr.write(`${r}: ${err}`); res(code ?? 1); })) };
  });
  const tty = Boolean(process.stdout.isTTY);
  const timer = setInterval(() => {
    const parts = RECIPES.map((r) => {
      const m = readMetrics(join(group, r, "metrics.jsonl")).filter((l) => l.type === "step");
      const last = m[m.length - 1];
      return `${r} ${m.length}/${steps}${last ? ` loss ${(last.loss as number).toFixed(3)}` : ""}`;
    });
    const line = `  ${((performance.now() - started) / 1000).toFixed(0)} s  ${parts.join("   ")}`;
    process.stdout.write(tty ? `\r\x1b[2K${line}` : line + "\n");
  }, tty ? 500 : 15000);
  const codes = await Promise.all(children.map((c) => c.done));
  clearInterval(timer);
  if (tty) process.stdout.write("\n");
  if (codes.some((c) => c !== 0)) throw new Fp4lmError(`quickstart: a training run failed (${RECIPES.filter((_, i) => codes[i]).join(", ")}); see the messages above`);

  const evals = Object.fromEntries(RECIPES.map((r) => [r, readMetrics(join(group, r, "metrics.jsonl")).filter((l) => l.type === "eval")]));
  const speed = Object.fromEntries(RECIPES.map((r) => [r, readMetrics(join(group, r, "metrics.jsonl")).find((l) => l.type === "end")?.tokens_per_s as number]));
  const rows: (string | number)[][] = [["step", "bf16 val", "nvfp4 val", "gap"]];
  const gaps: [number, number][] = [];
  for (const e of evals.bf16) {
    const n = evals.nvfp4.find((x) => x.step === e.step);
    if (!n) continue;
    const gap = ((n.val_loss as number) - (e.val_loss as number)) / (e.val_loss as number);
    gaps.push([e.step as number, 100 * gap]);
    rows.push([e.step as number, (e.val_loss as number).toFixed(4), (n.val_loss as number).toFixed(4), `${(100 * gap).toFixed(2)}%`]);
  }
  console.log("\nvalidation loss (nats/token) and the relative gap (nvfp4 − bf16) / bf16:");
  console.log(textTable(rows, [true, true, true, true]));
  const svg = linePlotSvg(RECIPES.map((r) => ({ name: r, points: evals[r].map((e) => [e.step as number, e.val_loss as number] as [number, number]) })),
    { title: `fp4lm quickstart: validation loss, ${cfg.model.preset} model`, xLabel: "step", yLabel: "validation loss" });
  writeFileSync(join(group, "val-loss.svg"), svg);
  writeFileSync(join(group, "gap.svg"), linePlotSvg([{ name: "nvfp4 vs bf16", points: gaps }], { title: "relative validation-loss gap, %", xLabel: "step", yLabel: "(nvfp4 − bf16) / bf16, %" }));
  const final = gaps[gaps.length - 1];
  console.log(`\nfinal gap: ${final ? final[1].toFixed(2) : "n/a"}%  (the paper: ~1.5% at 12B after 10T tokens)`);
  console.log(`speed: bf16 ${Math.round(speed.bf16)} tok/s, nvfp4 ${Math.round(speed.nvfp4)} tok/s per core; wall ${((performance.now() - started) / 1000).toFixed(0)} s`);
  console.log(`wrote ${group}/{bf16,nvfp4}/ (metrics.jsonl, precision.json, checkpoint.safetensors), ${group}/val-loss.svg, ${group}/gap.svg`);
  return 0;
}
