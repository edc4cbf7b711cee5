/**
 * `fp4lm experiment SUITE`: runs one of the paper's experiment suites at small scale (the suites
 * are in experiments/suites.ts, the runner in experiments/runner.ts) and writes OUT/SUITE/ with
 * a run folder per run and seed, results.json, report.md, report.html and SVG plots. `--only`
 * splits a suite over several invocations (each within a time limit); `fp4lm report` merges them.
 * Every seed's final weights are scored on the downstream tasks (`--tasks`, eval/) and the
 * `layers` suite records quantization telemetry (any suite with `--telemetry-every N`).
 */
import { UsageError } from "../errors.ts";
import { parseTasks, TASK_NAMES } from "../eval/tasks.ts";
import { sensitivity, summarize, verdict } from "../experiments/report.ts";
import { runSuite } from "../experiments/runner.ts";
import { SUITES, getSuite } from "../experiments/suites.ts";
import { textTable } from "./text-table.ts";
import { camelKey } from "./train-command.ts";

export const EXPERIMENT_HELP = `fp4lm experiment SUITE [--model NAME] [--steps N | --tokens N | --tokens-per-param R] [--seeds K] [--only RUN...]
                 [--out DIR] [--reuse DIR...] [--device cpu|cuda|auto] [--key=value ...]
  runs one of the paper's experiments at small scale and writes DIR/SUITE/ (default runs/SUITE):
  a folder per run and seed, results.json, report.md, report.html and SVG plots.
  suites: ${Object.keys(SUITES).join(", ")}  (fp4lm experiment --list shows their runs)
  --seeds K        seed index i uses seed (--seed, default 1337) + i in every run: same init and data order
  --only RUN...    run only these runs (into the same DIR results accumulate; or merge with fp4lm report)
  --tokens-per-param R   train R tokens per non-embedding parameter (20, 200, ...) in a run with the suite's tokens
  --reuse DIR...   results of earlier suites (a suite folder or a folder of them): a seed that trained exactly
                   the same (setup, recipe, steps, seed, telemetry, tasks) is taken from there, not trained again
  --model exp-short | exp-long   the GPU presets for ~20 and ≥ 200 tokens per parameter (src/nn/model-config.ts)
  --tasks LIST     downstream tasks for every seed's final weights: ${TASK_NAMES.join(",")} (default), or none
  --task-items N   items per task (default 200); --task-seed S picks them (default 0)
  --telemetry-every N   quantization telemetry every N steps (the layers suite: about 10 per run by default)
  --key=value      any training setting for every run (--model.dModel=256, --schedule.lr=1e-3, --log=plain);
                   runs use WSD, decaying over the last 20% (--schedule.decayFraction=0.15 for 15%)`;

const OWN = new Set(["model", "steps", "tokens", "tokens-per-param", "seeds", "only", "out", "device", "tasks", "task-items", "task-seed"]);

function positiveInt(name: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} needs ${min === 1 ? "a positive integer" : `an integer ≥ ${min}`}, got ${v === undefined ? "nothing" : `'${v}'`}`);
  }
  return n;
}

function positiveNumber(name: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${name} needs a positive number, got ${v === undefined ? "nothing" : `'${v}'`}`);
  return n;
}

/** Every suite with its runs, one line each. */
function listSuites(): string {
  return Object.values(SUITES).map((s) => `${s.name}: ${s.title}\n  paper: ${s.claim}\n  runs: ${s.runs.map((r) => r.name).join(", ")}`).join("\n");
}

export function experimentCommand(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) { console.log(EXPERIMENT_HELP); return 0; }
  if (argv.includes("--list")) { console.log(listSuites()); return 0; }
  let suiteName: string | undefined;
  const own: Record<string, string | undefined> = {};
  const only: string[] = [];
  const reuse: string[] = [];
  const extra: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      if (suiteName !== undefined) throw new UsageError(`unexpected argument '${a}' (the suite is '${suiteName}'); settings look like --key=value`);
      suiteName = a;
      continue;
    }
    const eq = a.indexOf("=");
    const key = a.slice(2, eq < 0 ? undefined : eq);
    let value = eq < 0 ? undefined : a.slice(eq + 1);
    if (key === "only" || key === "reuse") {
      const list = key === "only" ? only : reuse;
      const before = list.length;
      if (value !== undefined) list.push(...value.split(",").filter(Boolean));
      while (i + 1 < argv.length && !argv[i + 1].startsWith("--")) list.push(...argv[++i].split(",").filter(Boolean));
      if (list.length === before) throw new UsageError(key === "only" ? "--only needs run names" : "--reuse needs experiment folders");
      continue;
    }
    if (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith("--")) value = argv[++i];
    if (OWN.has(key)) own[key] = value;
    else extra.push(value === undefined ? camelKey(key) : `${camelKey(key)}=${value}`);
  }
  if (suiteName === undefined) throw new UsageError(`fp4lm experiment needs a suite: ${Object.keys(SUITES).join(", ")}`);
  const suite = getSuite(suiteName);
  const device = own.device;
  if (device !== undefined && !["cpu", "cuda", "auto"].includes(device)) throw new UsageError(`--device must be cpu, cuda or auto, got '${device}'`);

  const started = performance.now();
  const results = runSuite(suite, {
    model: own.model,
    steps: own.steps !== undefined ? positiveInt("steps", own.steps) : undefined,
    tokens: own.tokens !== undefined ? positiveInt("tokens", own.tokens) : undefined,
    tokensPerParam: own["tokens-per-param"] !== undefined ? positiveNumber("tokens-per-param", own["tokens-per-param"]) : undefined,
    reuse,
    seeds: own.seeds !== undefined ? positiveInt("seeds", own.seeds) : 1,
    only: only.length ? only : undefined,
    outDir: own.out ?? "runs",
    device: device as "cpu" | "cuda" | "auto" | undefined,
    extra,
    log: (s) => console.log(s),
    command: ["fp4lm experiment", ...argv].join(" "),
    tasks: parseTasks(own.tasks ?? "all"),
    taskItems: own["task-items"] !== undefined ? positiveInt("task-items", own["task-items"]) : undefined,
    taskSeed: own["task-seed"] !== undefined ? positiveInt("task-seed", own["task-seed"], 0) : undefined,
  });

  const sums = summarize(results);
  const rows: (string | number)[][] = [["run", "val loss", "gap", "diverged"], ...sums.filter((s) => !s.run.skipped).map((s) => [
    s.name, s.finalMean === null ? "n/a" : s.finalMean.toFixed(4),
    s.run.baseline ? "baseline" : s.gap === null ? "n/a" : `${s.gap >= 0 ? "+" : ""}${s.gap.toFixed(2)}%`,
    s.nDiverged ? `${s.nDiverged}/${s.nSeeds} (step ${s.divergedAt})` : "no",
  ])];
  const dir = `${own.out ?? "runs"}/${suite.name}`;
  console.log(`\n${textTable(rows, [false, true, true, false])}`);
  console.log(`\npaper: ${suite.claim}\nhere:  ${verdict(results, sums)}`);
  const sens = sensitivity(results, sums);
  if (sens) console.log(`telemetry: ${sens}`);
  console.log(`\nwrote ${dir}/ (report.md, report.html, results.json, SVG plots) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return 0;
}
