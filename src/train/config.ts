/**
 * Training configuration: typed defaults, an optional JSON config file, then `--key=value`
 * overrides with dotted paths (`--model.dModel=128`, `--recipe.sr.gradients=false`,
 * `--recipe=nvfp4` picks a preset before field overrides). Every problem (unknown key, wrong
 * type, impossible shape such as heads not dividing the width) is collected and reported in one
 * ConfigError before any work starts. nanoGPT's configurator, typed.
 */
import { readFileSync } from "node:fs";
import { ConfigError, MODEL_PRESETS, modelConfigProblems, type ModelConfig } from "../nn/model-config.ts";
import { hybridLinearWidths, isHybrid, NEMOTRON_H_MAMBA } from "../nn/hybrid-config.ts";
import { RECIPES, validateRecipe, type RecipeConfig, type RecipeName } from "../recipes/recipe.ts";
import type { ScheduleConfig } from "../optim/schedule.ts";
import type { AdamWConfig } from "../optim/adamw.ts";
import { Fp4lmError } from "../errors.ts";

export interface TrainConfig {
  /** run name: outputs go to `${outDir}/${name}` */
  name: string;
  outDir: string;
  seed: number;
  device: "cpu" | "cuda" | "auto";
  /** GEMM threads on the CPU (0 = all cores; with several CPU ranks, the cores shared out) */
  threads: number;
  /** data-parallel ranks, one process each (`--gpus N`: one per GPU); batchSize and gradAccum are per rank */
  ranks: number;
  /** how data-parallel ranks exchange gradients (src/parallel/data-parallel.ts); ignored with one process */
  parallel: ParallelConfig;
  model: ModelConfig & { preset: string };
  recipe: RecipeConfig;
  data: {
    /** a folder written by `fp4lm prepare` (train.bin, val.bin, tokenizer.json); empty = bundled corpus */
    dir: string;
    /** bundled corpus used when dir is empty */
    bundled: string;
    tokenizer: "bpe" | "byte" | "gpt2";
    /** BPE vocabulary size when the bundled corpus is tokenized on the fly */
    vocabSize: number;
    valFraction: number;
  };
  /** micro-batch size B (sequences) */
  batchSize: number;
  gradAccum: number;
  steps: number;
  schedule: ScheduleConfig;
  optim: AdamWConfig;
  evalEvery: number;
  evalBatches: number;
  /** 0 = only at the end */
  checkpointEvery: number;
  resume: boolean;
  /** start a new run from the weights of this checkpoint (e.g. one made by `fp4lm import`): its
   * model shape is used, optimizer state and data position start fresh */
  init: string;
  /** replace an existing run of the same name (otherwise that is an error) */
  overwrite: boolean;
  /** progress display: "auto" = a live bar on a terminal, plain lines otherwise */
  log: "auto" | "plain" | "quiet";
  /** plain logs: a line every N steps */
  logEvery: number;
  /** quantization telemetry (nn/telemetry.ts) every N steps into telemetry.jsonl; 0 = off */
  telemetryEvery: number;
}

export interface ParallelConfig {
  /** hand each bucket of final gradients to the communicator during the backward pass (false: all after it) */
  overlap: boolean;
  /** ZeRO-1: shard the AdamW moments over the ranks (reduce-scatter gradients, all-gather weights) */
  zero1: boolean;
  /** gradient bucket size in MiB (PyTorch DDP's 25) */
  bucketMB: number;
}

export function defaultConfig(): TrainConfig {
  return {
    name: "run",
    outDir: "runs",
    seed: 1337,
    device: "auto",
    threads: 0,
    ranks: 1,
    parallel: { overlap: true, zero1: false, bucketMB: 25 },
    model: { preset: "tiny", vocabSize: 1024, ...MODEL_PRESETS.tiny, mlp: "sqrelu" },
    recipe: structuredClone(RECIPES.nvfp4),
    data: { dir: "", bundled: "moby-dick", tokenizer: "bpe", vocabSize: 1024, valFraction: 0.05 },
    batchSize: 8,
    gradAccum: 1,
    steps: 200,
    schedule: { kind: "wsd", lr: 3e-3, minLrRatio: 0.01, warmupSteps: 20, decayFraction: 0.2, decayShape: "linear" },
    optim: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 },
    evalEvery: 25,
    evalBatches: 8,
    checkpointEvery: 0,
    resume: false,
    init: "",
    overwrite: false,
    log: "auto",
    logEvery: 10,
    telemetryEvery: 0,
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Parse an override value: JSON if it parses (numbers, booleans, null, arrays), comma lists, else a string. */
function parseValue(raw: string, like: unknown): Json {
  if (Array.isArray(like) && !raw.trim().startsWith("[")) return raw === "" ? [] : raw.split(",").map((s) => s.trim());
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

/** Fields whose type is a union: an override may switch between these types. */
const UNION_FIELDS: Record<string, string[]> = { "recipe.bf16Last": ["number", "string"] };

/** Set a dotted path in an object, recording problems instead of throwing. */
function setPath(obj: Record<string, unknown>, path: string, raw: string, errs: string[]): void {
  const keys = path.split(".");
  let cur: Record<string, unknown> = obj;
  for (let i = 0; i < keys.length - 1; i++) {
    const next = cur[keys[i]];
    if (next === null || typeof next !== "object" || Array.isArray(next)) {
      errs.push(`unknown setting '${path}' ('${keys.slice(0, i + 1).join(".")}' has no fields)`);
      return;
    }
    cur = next as Record<string, unknown>;
  }
  const last = keys[keys.length - 1];
  if (!(last in cur)) {
    errs.push(`unknown setting '${path}'; known here: ${Object.keys(cur).join(", ")}`);
    return;
  }
  const old = cur[last];
  const v = parseValue(raw, old);
  const typeOf = (x: unknown) => (x === null ? "null" : Array.isArray(x) ? "list" : typeof x);
  // null-able fields (precisionSwitch.atStep) accept numbers; others keep their type
  const allowed = UNION_FIELDS[path] ?? [typeOf(old)];
  if (old !== null && v !== null && !allowed.includes(typeOf(v))) {
    errs.push(`setting '${path}' must be a ${typeOf(old)}, got ${JSON.stringify(raw)}`);
    return;
  }
  cur[last] = v;
}

/** Merge a plain object (config file) into the config, path by path. */
function mergeObject(cfg: Record<string, unknown>, obj: Record<string, unknown>, prefix: string, errs: string[]): void {
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) mergeObject(cfg, v as Record<string, unknown>, path, errs);
    else setPath(cfg, path, JSON.stringify(v), errs);
  }
}

/**
 * Build a config from defaults, an optional config file and `key=value` overrides (already
 * stripped of `--`). Throws ConfigError listing every problem.
 */
export function buildConfig(overrides: string[], file?: string): TrainConfig {
  const cfg = defaultConfig() as unknown as Record<string, unknown>;
  const errs: string[] = [];
  const pairs = overrides.map((o) => {
    const eq = o.indexOf("=");
    return eq < 0 ? [o, "true"] : [o.slice(0, eq), o.slice(eq + 1)];
  });
  // presets first, so that field overrides apply on top of them
  const apply = (path: string, value: string) => {
    if (path === "recipe") {
      if (!(value in RECIPES)) errs.push(`unknown recipe '${value}'; choose from ${Object.keys(RECIPES).join(", ")}`);
      else cfg.recipe = structuredClone(RECIPES[value as RecipeName]);
    } else if (path === "model.preset") {
      const p = MODEL_PRESETS[value];
      if (!p) errs.push(`unknown model preset '${value}'; choose from ${Object.keys(MODEL_PRESETS).join(", ")}`);
      else {
        // a Transformer preset drops the hybrid fields a preset before it set
        const m = cfg.model as Record<string, unknown>;
        delete m.pattern;
        delete m.mamba;
        Object.assign(m, structuredClone(p), { preset: value });
      }
    }
  };
  let fileObj: Record<string, unknown> | undefined;
  if (file) {
    try {
      fileObj = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`${file}: cannot read the config file as JSON (${(e as Error).message})`);
    }
    if (typeof fileObj.recipe === "string") { apply("recipe", fileObj.recipe); delete fileObj.recipe; }
    const m = fileObj.model as Record<string, unknown> | undefined;
    if (m && typeof m.preset === "string") apply("model.preset", m.preset);
  }
  // `--model NAME` names a preset, as `--model.preset=NAME`
  const isPreset = (k: string) => k === "model.preset" || k === "model";
  for (const [k, v] of pairs) if (k === "recipe" || isPreset(k)) apply(k === "model" ? "model.preset" : k, v);
  // the hybrid fields exist in Transformer configs only when something sets them (so those stay as they were)
  const fileModel = fileObj?.model as Record<string, unknown> | undefined;
  if (pairs.some(([k]) => /^model\.(pattern|mamba)(\.|$)/.test(k)) || fileModel?.pattern !== undefined || fileModel?.mamba !== undefined) {
    const m = cfg.model as Record<string, unknown>;
    m.pattern ??= "";
    m.mamba ??= { ...NEMOTRON_H_MAMBA };
  }
  if (fileObj) mergeObject(cfg, fileObj, "", errs);
  for (const [k, v] of pairs) if (k !== "recipe" && !isPreset(k)) setPath(cfg, k, v, errs);

  const c = cfg as unknown as TrainConfig;
  errs.push(...modelConfigProblems(c.model));
  try {
    c.recipe = validateRecipe(c.recipe);
  } catch (e) {
    if (!(e instanceof Fp4lmError)) throw e;
    errs.push(e.message.replace(/^bad recipe:\n\s*- /, "recipe: ").replace(/\n\s*- /g, "; recipe: "));
  }
  const posInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!posInt(c.batchSize)) errs.push(`batchSize must be a positive integer, got ${c.batchSize}`);
  if (!posInt(c.gradAccum)) errs.push(`gradAccum must be a positive integer, got ${c.gradAccum}`);
  if (!posInt(c.ranks)) errs.push(`ranks must be a positive integer, got ${c.ranks}`);
  if (!(c.parallel.bucketMB > 0)) errs.push(`parallel.bucketMB must be a positive number of MiB, got ${c.parallel.bucketMB}`);
  if (!posInt(c.logEvery)) errs.push(`logEvery must be a positive integer, got ${c.logEvery}`);
  if (!posInt(c.evalEvery)) errs.push(`evalEvery must be a positive integer, got ${c.evalEvery}`);
  if (!posInt(c.evalBatches)) errs.push(`evalBatches must be a positive integer, got ${c.evalBatches}`);
  if (!Number.isInteger(c.checkpointEvery) || c.checkpointEvery < 0) errs.push(`checkpointEvery must be 0 (end only) or a positive integer, got ${c.checkpointEvery}`);
  if (!posInt(c.steps)) errs.push(`steps must be a positive integer, got ${c.steps}`);
  if (!Number.isInteger(c.telemetryEvery) || c.telemetryEvery < 0) errs.push(`telemetryEvery must be 0 (off) or a positive integer, got ${c.telemetryEvery}`);
  if (!(c.schedule.lr > 0)) errs.push(`schedule.lr must be positive, got ${c.schedule.lr}`);
  if (!["wsd", "cosine", "constant"].includes(c.schedule.kind)) errs.push(`schedule.kind must be wsd, cosine or constant`);
  if (!(c.schedule.decayFraction >= 0 && c.schedule.decayFraction <= 1)) errs.push(`schedule.decayFraction must be in [0, 1]`);
  if (!["linear", "1-sqrt", "cosine"].includes(c.schedule.decayShape)) errs.push(`schedule.decayShape must be linear, 1-sqrt or cosine`);
  if (c.init && c.resume) errs.push("init and resume exclude each other: --resume continues this run's own checkpoint, --init starts a new run from other weights");
  if (!["cpu", "cuda", "auto"].includes(c.device)) errs.push(`device must be cpu, cuda or auto, got ${c.device}`);
  if (!["bpe", "byte", "gpt2"].includes(c.data.tokenizer)) errs.push(`data.tokenizer must be bpe, byte or gpt2`);
  if (!["auto", "plain", "quiet"].includes(c.log)) errs.push(`log must be auto, plain or quiet`);
  if (!/^[\w.-]+$/.test(c.name)) errs.push(`name may hold letters, digits, '.', '_' and '-' only, got '${c.name}'`);
  // the quantized GEMMs block along tokens for Wgrad: B·T must fill whole blocks
  const tokens = c.batchSize * c.model.seqLen;
  const blockRule: Record<string, number> = { nvfp4: 16, mxfp4: 32, fp8: 1, bf16: 1, fp32: 1 };
  const need = Math.max(blockRule[c.recipe.format] ?? 1, c.recipe.rht.gemms.length ? c.recipe.rht.size : 1);
  if (tokens % need !== 0) errs.push(`batchSize·model.seqLen = ${tokens} tokens must be a multiple of ${need} for recipe ${c.recipe.name} (Wgrad blocks along tokens)`);
  if (c.recipe.format === "nvfp4" || c.recipe.format === "mxfp4") {
    const blk = c.recipe.format === "nvfp4" ? 16 : 32;
    const HS = c.model.dModel / c.model.nHeads;
    // (a hybrid whose own sizes are wrong has been reported above; its widths are not checked)
    const widths: (readonly [string, number])[] = isHybrid(c.model) ? (modelConfigProblems(c.model).length ? [] : hybridLinearWidths(c.model)) :
      [["model.dModel", c.model.dModel], ["model.dFF", c.model.dFF], ["attention width nHeads·headSize", c.model.nHeads * HS], ["QKV width (nHeads + 2·nKvHeads)·headSize", (c.model.nHeads + 2 * c.model.nKvHeads) * HS]];
    for (const [what, v] of widths) {
      if (v % blk !== 0) errs.push(`${what} = ${v} must be a multiple of ${blk} for ${c.recipe.format} (blocks along the GEMM's reduction dimension)`);
    }
  }
  if (errs.length) throw new ConfigError(`bad training config:\n  - ${errs.join("\n  - ")}`);
  return c;
}
