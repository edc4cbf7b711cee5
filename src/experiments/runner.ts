/**
 * Runs a suite (suites.ts): builds and checks every run's config before any training, then
 * trains the runs one after another in this process with `train()`, seed by seed (seed index i
 * gets the same seed, hence the same initial weights and data order, in every run), and writes
 * `OUT/SUITE/`: a run folder per run and seed (metrics.jsonl, config.json, checkpoint, as
 * train() writes them), `results.json` and the report (report.ts) after every run, so that a
 * killed invocation keeps what it finished. A run that produces NaN/Inf (DivergedError) or
 * whose training loss spikes above `spikeFactor` × its running minimum is recorded as diverged;
 * it never stops the suite. With `tasks`, every seed that went through is scored on the downstream
 * tasks (eval/), built once per suite from the held-out text and evaluated with BF16 GEMMs, so
 * that the scores compare the trained weights; a suite that asks for it (or telemetryEvery=N)
 * records quantization telemetry, kept per seed as per-layer means (nn/telemetry.ts).
 * Not a scheduler: one run at a time, on the device the config names.
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { evaluateCheckpoint, type TaskScores } from "../eval/score.ts";
import { buildTasks, preparedDocuments, type TaskName, type TaskSet } from "../eval/tasks.ts";
import { readTelemetry, summarizeTelemetry } from "../nn/telemetry.ts";
import { parameterCount } from "../nn/model-config.ts";
import { decayStart } from "../optim/schedule.ts";
import type { GemmName } from "../recipes/operand.ts";
import { bf16LastBlocks, type RecipeConfig } from "../recipes/recipe.ts";
import { buildConfig, type TrainConfig } from "../train/config.ts";
import { preparedDir } from "../train/data-setup.ts";
import { readMetrics } from "../train/metrics.ts";
import { train } from "../train/train.ts";
import { mergeSuiteResults, readResults, writeReport } from "./report.ts";
import { DECAY_START, getSuite, selectRuns, type Suite, type SuiteRun } from "./suites.ts";

export interface SuiteOptions {
  /** model preset (model.preset); finer changes go in `extra` (model.dModel=...) */
  model?: string;
  /** training steps of a run with tokensFactor 1 (default: the config's steps) */
  steps?: number;
  /** alternative to steps: tokens of a run with tokensFactor 1 (rounded to whole steps) */
  tokens?: number;
  /** alternative to steps and tokens: this many tokens per non-embedding parameter (20, 200, ...) */
  tokensPerParam?: number;
  /** folders of earlier suites (results.json, or folders holding suite folders): a seed whose run
   * there has the same setup, recipe, steps, seed, telemetry and tasks is reused, not trained again */
  reuse?: string[];
  /** number of seeds: seed index i uses the config's seed + i in every run (default 1) */
  seeds?: number;
  /** run only these runs of the suite */
  only?: string[];
  /** the suite goes in `${outDir}/${suite}` (default "runs") */
  outDir?: string;
  device?: "cpu" | "cuda" | "auto";
  /** buildConfig overrides for every run (`model.dModel=32`, `schedule.lr=1e-3`, `log=plain`, ...) */
  extra?: string[];
  /** a training loss above spikeFactor × its running minimum (after warmup) marks the run diverged; 0 = off (default 2) */
  spikeFactor?: number;
  /** progress lines (default: none) */
  log?: (line: string) => void;
  /** the command line, recorded in the report */
  command?: string;
  /** downstream tasks to score every seed on (default none) */
  tasks?: TaskName[];
  /** items per task (default 200) and the seed that picks them (default 0) */
  taskItems?: number;
  taskSeed?: number;
}

export interface SeedResult {
  seed: number;
  /** the run folder: relative to the results folder, or absolute after a merge */
  dir: string;
  backend: string;
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerS: number;
  /** null when the run went through */
  diverged: null | { step: number; reason: string };
  evals: { step: number; tokens: number; valLoss: number }[];
  finalValLoss: number | null;
  finalTrainLoss: number | null;
  /** downstream task scores of the final weights (absent: not asked, or the seed diverged) */
  tasks?: TaskScores;
  /** "SUITE/RUN": this seed was not trained here but taken from that suite's results (--reuse) */
  reusedFrom?: string;
  /** quantization telemetry: per layer (model order), the mean over the telemetry steps of
   * [relative error, flushed share, saturated share, amax] per "gemm.operand" (fprop.X, wgrad.dY, ...) */
  telemetry?: SeedTelemetry;
}

export interface SeedTelemetry {
  steps: number[];
  layers: { layer: string; format: string; ops: Record<string, [number, number, number, number]> }[];
}

export interface RunResult {
  name: string;
  about: string;
  groups: string[];
  baseline: boolean;
  tokensFactor: number;
  /** the run's overrides as applied (placeholders resolved, clamps added), after the suite's setup */
  overrides: string[];
  recipe: RecipeConfig;
  steps: number;
  tokens: number;
  /** all parameters, embedding and head included (null until a seed has run) */
  params: number | null;
  /** parameters outside the embedding and the output head */
  nonEmbeddingParams: number;
  nLayers: number;
  /** blocks whose linear layers run in BF16 */
  bf16Blocks: number[];
  notes: string[];
  /** this run's config equals an earlier run's: not trained again, that run's numbers repeated */
  sameAs?: string;
  /** why the run was not trained at all */
  skipped?: string;
  seeds: SeedResult[];
}

export interface SuiteSetup {
  /** steps and tokens of a run with tokensFactor 1 */
  steps: number;
  tokens: number;
  tokensPerStep: number;
  model: TrainConfig["model"];
  extra: string[];
  device: string;
  /** what must be equal for results to be merged */
  fingerprint: Record<string, unknown>;
  /** the downstream tasks every seed was scored on */
  tasks?: { names: TaskName[]; items: Partial<Record<TaskName, number>>; seed: number; recipe: string; notes: string[] };
  /** quantization telemetry every N steps (0 or absent: off) */
  telemetryEvery?: number;
}

export interface SuiteResult {
  version: 1;
  suite: string;
  title: string;
  claim: string;
  /** the command lines that made these results (several after a merge) */
  commands: string[];
  created: string;
  setup: SuiteSetup;
  runs: RunResult[];
}

export interface PlannedRun {
  run: SuiteRun;
  /** one config per seed (empty when skipped or sameAs) */
  configs: TrainConfig[];
  result: RunResult;
}

export interface SuitePlan {
  suite: Suite;
  dir: string;
  seeds: number[];
  setup: SuiteSetup;
  runs: PlannedRun[];
}

/** set by the suite itself; a base seed (`seed=N`) is allowed: seed index i runs with N + i */
const FORBIDDEN_EXTRA = ["outDir", "name", "resume", "steps"];

/** The first step ≥ `from` whose loss exceeds factor × the minimum of all earlier losses. */
export function lossSpike(losses: number[], from: number, factor: number): { step: number; loss: number; min: number } | undefined {
  if (!(factor > 0)) return undefined;
  let min = Infinity;
  for (let i = 0; i < losses.length; i++) {
    if (i >= from && i > 0 && losses[i] > factor * min) return { step: i, loss: losses[i], min };
    min = Math.min(min, losses[i]);
  }
  return undefined;
}

/** Why an RHT of `size` cannot run on this model's GEMMs, or undefined. */
function rhtProblem(c: TrainConfig, size: number): string | undefined {
  if (c.recipe.format !== "nvfp4" && c.recipe.format !== "mxfp4") return undefined;
  const m = c.model, HS = m.dModel / m.nHeads;
  // the transform runs along each GEMM's reduction dimension
  const dims: Record<GemmName, [string, number][]> = {
    wgrad: [["B·T", c.batchSize * m.seqLen]],
    fprop: [["model.dModel", m.dModel], ["attention width", m.nHeads * HS], ["model.dFF", m.dFF]],
    dgrad: [["QKV width", (m.nHeads + 2 * m.nKvHeads) * HS], ["model.dModel", m.dModel], ["model.dFF", m.dFF]],
  };
  const bad = c.recipe.rht.gemms.flatMap((g) => dims[g].filter(([, v]) => v % size !== 0).map(([w, v]) => `${g} ${w} = ${v}`));
  return bad.length ? `RHT size ${size} does not divide ${bad.join(", ")} on this model: skipped` : undefined;
}

const keyOf = (kv: string) => kv.slice(0, kv.indexOf("=") < 0 ? kv.length : kv.indexOf("="));

/** The suite's setup overrides, shared by every run. */
function setupOverrides(opts: SuiteOptions, suite?: Suite, steps?: number): string[] {
  const extra = opts.extra ?? [];
  const bad = extra.filter((kv) => FORBIDDEN_EXTRA.includes(keyOf(kv)));
  if (bad.length) {
    throw new UsageError(`${bad.join(", ")}: the suite sets outDir, name and steps itself (use --out, and --steps or --tokens)`);
  }
  // a suite that reads telemetry measures about ten times per run unless told otherwise
  const telemetry = suite?.telemetry && steps !== undefined && !extra.some((kv) => keyOf(kv) === "telemetryEvery")
    ? [`telemetryEvery=${Math.max(1, Math.round(steps / 10))}`] : [];
  return ["log=quiet", "overwrite", ...(opts.device ? [`device=${opts.device}`] : []), ...(opts.model ? [`model.preset=${opts.model}`] : []), ...telemetry, ...extra];
}

/**
 * Build and check every config of the suite's (selected) runs without training anything:
 * ConfigError/UsageError before any work, skipped runs and notes decided here.
 */
export function planSuite(suiteOrName: Suite | string, opts: SuiteOptions = {}): SuitePlan {
  const suite = typeof suiteOrName === "string" ? getSuite(suiteOrName) : suiteOrName;
  const runs = selectRuns(suite, opts.only);
  const outDir = opts.outDir ?? "runs";
  const dir = join(outDir, suite.name);
  const base = buildConfig([...setupOverrides(opts), `outDir=${outDir}`]);
  const tokensPerStep = base.batchSize * base.model.seqLen * base.gradAccum;
  const nSeeds = opts.seeds ?? 1;
  if (!Number.isInteger(nSeeds) || nSeeds < 1) throw new UsageError(`seeds must be a positive integer, got ${opts.seeds}`);
  const given = [opts.steps !== undefined && "--steps", opts.tokens !== undefined && "--tokens", opts.tokensPerParam !== undefined && "--tokens-per-param"].filter(Boolean);
  if (given.length > 1) throw new UsageError(`give one of --steps, --tokens and --tokens-per-param, not ${given.join(" and ")}`);
  if (opts.tokensPerParam !== undefined && !(opts.tokensPerParam > 0)) throw new UsageError(`tokens per parameter must be positive, got ${opts.tokensPerParam}`);
  const tokens = opts.tokens ?? (opts.tokensPerParam !== undefined ? opts.tokensPerParam * parameterCount({ ...base.model, vocabSize: 0 }) : undefined);
  const steps = opts.steps ?? (tokens !== undefined ? Math.max(1, Math.round(tokens / tokensPerStep)) : base.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new UsageError(`steps must be a positive integer, got ${steps}`);
  const seeds = Array.from({ length: nSeeds }, (_, i) => base.seed + i);
  const setup = setupOverrides(opts, suite, steps);
  const d = base.data;
  const fingerprint = {
    model: { ...base.model, vocabSize: undefined }, batchSize: base.batchSize, gradAccum: base.gradAccum, steps,
    schedule: base.schedule, optim: base.optim, evalEvery: base.evalEvery, evalBatches: base.evalBatches,
    data: { ...d, dir: d.dir ? basename(d.dir) : "" },
  };
  const plan: SuitePlan = {
    suite, dir, seeds, runs: [],
    setup: { steps, tokens: steps * tokensPerStep, tokensPerStep, model: { ...base.model }, extra: opts.extra ?? [], device: base.device, fingerprint },
  };
  const tel = buildConfig([...setup, `outDir=${outDir}`]).telemetryEvery;
  if (tel > 0) plan.setup.telemetryEvery = tel;

  const seen = new Map<string, string>();
  for (const run of runs) {
    const runSteps = Math.max(1, Math.round(steps * (run.tokensFactor ?? 1)));
    const build = (ovr: string[], seed: number) =>
      buildConfig([...setup, ...ovr, `steps=${runSteps}`, `outDir=${dir}`, `name=${run.name}-seed${seed}`, `seed=${seed}`]);
    const notes: string[] = [];
    let ovr = [...run.overrides];
    // a probe without the RHT size and the placeholders: the model and schedule the run will have
    const probe = build(ovr.filter((kv) => !kv.includes(DECAY_START) && keyOf(kv) !== "recipe.rht.size"), seeds[0]);
    const sizeKv = ovr.filter((kv) => keyOf(kv) === "recipe.rht.size").pop();
    const skipped = rhtProblem(probe, sizeKv ? Number(sizeKv.split("=")[1]) : probe.recipe.rht.size);
    if (ovr.some((kv) => kv.includes(DECAY_START))) {
      const at = decayStart(probe.schedule, runSteps);
      ovr = ovr.map((kv) => kv.replace(DECAY_START, String(at)));
      notes.push(probe.schedule.kind === "wsd"
        ? `switches at step ${at} of ${runSteps}, where the LR decay starts`
        : `schedule '${probe.schedule.kind}' has no decay phase: switches at the end of warmup, step ${at} of ${runSteps}`);
    }
    let cfg = skipped ? probe : build(ovr, seeds[0]);
    const L = cfg.model.nLayers;
    let first = cfg.recipe.bf16First, last = bf16LastBlocks(cfg.recipe, L);
    const quantized = !["bf16", "fp32"].includes(cfg.recipe.format);
    if (quantized && (first > L || last > L || first + last > L)) {
      const l2 = Math.min(last, L), f2 = Math.min(first, L - l2);
      notes.push(`asks for first ${first} + last ${last} blocks in BF16 but the model has ${L}: clamped to first ${f2} + last ${l2}`);
      ovr = [...ovr, `recipe.bf16First=${f2}`, `recipe.bf16Last=${l2}`];
      first = f2; last = l2;
      if (!skipped) cfg = build(ovr, seeds[0]);
    }
    const bf16Blocks = quantized ? Array.from({ length: L }, (_, b) => b).filter((b) => b < first || b >= L - last) : Array.from({ length: L }, (_, b) => b);
    if (quantized && bf16Blocks.length === L) notes.push(`all ${L} blocks are BF16 on this model: no linear layer is quantized`);

    const result: RunResult = {
      name: run.name, about: run.about ?? "", groups: run.groups ?? [], baseline: run.baseline ?? false, tokensFactor: run.tokensFactor ?? 1,
      overrides: ovr, recipe: cfg.recipe, steps: runSteps, tokens: runSteps * tokensPerStep, params: null,
      nonEmbeddingParams: parameterCount({ ...cfg.model, vocabSize: 0 }), nLayers: L, bf16Blocks, notes, seeds: [],
    };
    const planned: PlannedRun = { run, configs: [], result };
    if (skipped) {
      result.skipped = skipped;
    } else {
      const key = JSON.stringify({ ...cfg, name: "" });
      const twin = seen.get(key);
      if (twin) {
        result.sameAs = twin;
        notes.push(`same configuration as '${twin}': not trained again, its numbers repeated`);
      } else {
        seen.set(key, run.name);
        planned.configs = seeds.map((s, i) => (i === 0 ? cfg : build(ovr, s)));
      }
    }
    plan.runs.push(planned);
  }
  return plan;
}

const isDiverged = (e: unknown) => e instanceof Error && e.name === "DivergedError";

/** A run's telemetry.jsonl as per-layer means (SeedResult.telemetry), or undefined without one. */
export function seedTelemetry(path: string): SeedTelemetry | undefined {
  const lines = readTelemetry(path);
  if (!lines.length) return undefined;
  const r4 = (v: number) => Number(v.toPrecision(4));
  const layers = new Map<string, SeedTelemetry["layers"][number]>();
  for (const s of summarizeTelemetry(lines)) {
    let l = layers.get(s.layer);
    // the first operand of a layer is its Fprop input: its format names the layer's precision
    if (!l) layers.set(s.layer, (l = { layer: s.layer, format: s.format, ops: {} }));
    l.ops[`${s.gemm}.${s.operand}`] = [r4(s.relErr), r4(s.flushed), r4(s.saturated), r4(s.amax)];
  }
  return { steps: [...new Set(lines.map((l) => l.step))].sort((a, b) => a - b), layers: [...layers.values()] };
}

interface SuiteTasks {
  set: TaskSet;
  names: TaskName[];
}

/** Train one config; a divergence is a result, anything else is thrown. */
function runSeed(cfg: TrainConfig, spikeFactor: number, tasks?: SuiteTasks): SeedResult {
  const t0 = performance.now();
  let error: Error | undefined;
  try {
    train(cfg);
  } catch (e) {
    if (!isDiverged(e)) throw e;
    error = e as Error;
  }
  const seconds = (performance.now() - t0) / 1000;
  const tokensPerStep = cfg.batchSize * cfg.model.seqLen * cfg.gradAccum;
  const lines = readMetrics(join(cfg.outDir, cfg.name, "metrics.jsonl"));
  const losses = lines.filter((l) => l.type === "step").map((l) => (typeof l.loss === "number" ? l.loss : NaN));
  const rawEvals = lines.filter((l) => l.type === "eval").map((l) => ({ step: l.step!, tokens: l.step! * tokensPerStep, valLoss: typeof l.val_loss === "number" ? l.val_loss : NaN }));
  const evals = rawEvals.filter((e) => Number.isFinite(e.valLoss));
  let diverged: SeedResult["diverged"] = null;
  if (error) {
    const m = /^step (\d+)/.exec(error.message);
    diverged = { step: m ? Number(m[1]) : losses.length, reason: error.message.split("\n")[0] };
  } else {
    const badEval = rawEvals.find((e) => !Number.isFinite(e.valLoss));
    const from = Math.min(cfg.schedule.warmupSteps, Math.floor(cfg.steps / 2));
    const spike = lossSpike(losses, from, spikeFactor);
    if (spike) diverged = { step: spike.step, reason: `training loss ${spike.loss.toFixed(3)} at step ${spike.step} exceeds ${spikeFactor} × its running minimum ${spike.min.toFixed(3)}` };
    else if (badEval) diverged = { step: badEval.step, reason: `validation loss is not finite at step ${badEval.step}` };
  }
  const run = lines.find((l) => l.type === "run");
  const end = lines.find((l) => l.type === "end");
  const lastLoss = losses.length ? losses[losses.length - 1] : NaN;
  const out: SeedResult = {
    seed: cfg.seed, dir: cfg.name, backend: String(run?.backend ?? "?"), steps: losses.length, tokens: losses.length * tokensPerStep,
    seconds, tokensPerS: typeof end?.tokens_per_s === "number" ? end.tokens_per_s : 0, diverged, evals,
    finalValLoss: evals.length ? evals[evals.length - 1].valLoss : null, finalTrainLoss: Number.isFinite(lastLoss) ? lastLoss : null,
  };
  const dir = join(cfg.outDir, cfg.name), ckpt = join(dir, "checkpoint.safetensors");
  const telemetry = cfg.telemetryEvery > 0 ? seedTelemetry(join(dir, "telemetry.jsonl")) : undefined;
  if (telemetry) out.telemetry = telemetry;
  if (tasks && tasks.names.length && !diverged && existsSync(ckpt)) {
    // rows per item pass: the training batch's tokens in passes of at most 256
    const itemT = Math.min(cfg.model.seqLen, 256), itemB = cfg.batchSize * Math.max(1, Math.floor(cfg.model.seqLen / itemT));
    const { step: _s, recipe: _r, ...scores } = evaluateCheckpoint(ckpt, tasks.set, tasks.names, {
      dataDir: cfg.data.dir, device: cfg.device, threads: cfg.threads, recipe: TASK_RECIPE, B: cfg.batchSize, itemB, itemT, bpbBatches: cfg.evalBatches,
    });
    out.tasks = scores;
  }
  return out;
}

interface ReusePool {
  dir: string;
  result: SuiteResult;
}

/** The suites' results in `dirs` (a suite folder, or a folder of suite folders); read again before
 * every seed, so that folders other processes are filling count as soon as a run there finishes. */
function reusePool(dirs: string[]): ReusePool[] {
  const pool: ReusePool[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) throw new UsageError(`--reuse ${d}: no such folder`);
    const found = existsSync(join(d, "results.json")) ? [d] : readdirSync(d).map((f) => join(d, f)).filter((f) => existsSync(join(f, "results.json")));
    for (const f of found) {
      try {
        pool.push({ dir: f, result: readResults(f)! });
      } catch {
        // being written by another process: not reusable this time
      }
    }
  }
  return pool;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * A finished seed of an earlier suite that trained exactly this: same setup fingerprint (model,
 * batch, steps, schedule, optimizer, evaluation, data), same recipe and run length, same seed,
 * same telemetry interval, and scored on the same tasks (when this suite scores tasks).
 */
function findReusable(pool: ReusePool[], setup: SuiteSetup, r: RunResult, cfg: TrainConfig): { seed: SeedResult; params: number | null; vocabSize: number } | undefined {
  for (const { dir, result } of pool) {
    if (!same(result.setup.fingerprint, setup.fingerprint) || (result.setup.telemetryEvery ?? 0) !== (setup.telemetryEvery ?? 0)) continue;
    if (setup.tasks && !same([result.setup.tasks?.names, result.setup.tasks?.items, result.setup.tasks?.seed, result.setup.tasks?.recipe], [setup.tasks.names, setup.tasks.items, setup.tasks.seed, setup.tasks.recipe])) continue;
    for (const run of result.runs) {
      if (run.steps !== r.steps || !same(run.recipe, cfg.recipe)) continue;
      const s = run.seeds.find((x) => x.seed === cfg.seed && !x.reusedFrom);
      if (!s || (setup.tasks && !s.tasks && !s.diverged)) continue;
      const seed = { ...structuredClone(s), dir: isAbsolute(s.dir) ? s.dir : resolve(dir, s.dir), reusedFrom: `${result.suite}/${run.name}` };
      return { seed, params: run.params, vocabSize: result.setup.model.vocabSize };
    }
  }
  return undefined;
}

/** Every run's final weights are scored in the same precision, so the tasks compare weights. */
const TASK_RECIPE = "bf16";

/**
 * Run a suite (or the `only` runs of it) and write `${outDir}/${suite}/`. Results already in that
 * folder from an earlier invocation with the same setup are kept for the runs not run now.
 */
export function runSuite(suiteOrName: Suite | string, opts: SuiteOptions = {}): SuiteResult {
  const plan = planSuite(suiteOrName, opts);
  const log = opts.log ?? (() => {});
  const { suite, dir } = plan;
  mkdirSync(dir, { recursive: true });
  const all = plan.runs.flatMap((p) => p.configs);
  if (all.length && !all[0].data.dir) {
    // prepare the bundled corpus once, next to the suites, instead of once per suite folder
    const shared = preparedDir({ ...all[0], outDir: opts.outDir ?? "runs" }, log);
    for (const c of all) c.data.dir = shared;
  }
  const reuseDirs = opts.reuse ?? [];
  if (reusePool(reuseDirs).length === 0 && reuseDirs.length) log(`--reuse ${reuseDirs.join(" ")}: no results there yet`);
  let tasks: SuiteTasks | undefined;
  if (all.length && opts.tasks?.length) {
    const docs = preparedDocuments(all[0].data.dir);
    const seed = opts.taskSeed ?? 0;
    tasks = { set: buildTasks(docs.heldOut, { items: opts.taskItems ?? 200, seed, train: docs.train }), names: opts.tasks };
    const { cloze, gloss, ending, notes } = tasks.set;
    plan.setup.tasks = { names: opts.tasks, items: { cloze: cloze.length, gloss: gloss.length, ending: ending.length }, seed, recipe: TASK_RECIPE, notes };
  }
  let result: SuiteResult = {
    version: 1, suite: suite.name, title: suite.title, claim: suite.claim, commands: opts.command ? [opts.command] : [], created: new Date().toISOString(),
    setup: plan.setup, runs: [],
  };
  const earlier = readResults(dir);
  const keep = earlier && earlier.suite === suite.name && JSON.stringify(earlier.setup.fingerprint) === JSON.stringify(plan.setup.fingerprint);
  if (earlier && !keep) log(`${dir}/results.json holds results of another setup: replacing them`);
  const save = () => {
    const merged = keep ? mergeSuiteResults(earlier, result) : result;
    writeReport(dir, merged);
    return merged;
  };

  const total = all.length;
  let done = 0;
  for (const p of plan.runs) {
    const r = p.result;
    if (r.skipped) log(`${suite.name}/${r.name}: ${r.skipped}`);
    else if (r.sameAs) {
      const twin = result.runs.find((x) => x.name === r.sameAs)!;
      r.seeds = structuredClone(twin.seeds);
      r.params = twin.params;
      log(`${suite.name}/${r.name}: same configuration as ${r.sameAs}`);
    }
    for (const cfg of p.configs) {
      const found = reuseDirs.length ? findReusable(reusePool(reuseDirs), result.setup, r, cfg) : undefined;
      const reused = found?.seed;
      if (reused) {
        r.notes.push(`seed ${cfg.seed}: the same training as ${reused.reusedFrom} (${reused.dir}): its numbers reused, not trained again`);
        cfg.model.vocabSize = found!.vocabSize;
      }
      const s = reused ?? runSeed(cfg, opts.spikeFactor ?? 2, tasks);
      // train() has set the vocabulary size to the tokenizer's
      r.params ??= found?.params ?? parameterCount(cfg.model);
      r.nonEmbeddingParams = parameterCount({ ...cfg.model, vocabSize: 0 });
      result.setup.model.vocabSize = cfg.model.vocabSize;
      r.seeds.push(s);
      done++;
      const fin = s.finalValLoss === null ? "n/a" : s.finalValLoss.toFixed(4);
      log(`[${done}/${total}] ${suite.name}/${r.name} seed ${s.seed}: ${s.diverged ? `DIVERGED at step ${s.diverged.step}` : `val_loss ${fin}`}  (${reused ? `reused from ${reused.reusedFrom}` : `${s.seconds.toFixed(1)} s, ${s.backend}`})`);
    }
    result.runs.push(r);
    result = save();
  }
  return result;
}
