/**
 * A run's folder, `${outDir}/${name}`: `metrics.jsonl`, `config.json`, `precision.json` (what each
 * GEMM of each layer actually runs in) and `checkpoint.safetensors`. Owns starting, resuming
 * (with every check that the checkpoint belongs to this config) and checkpointing. In a
 * data-parallel run only rank 0 (the leader) writes; the other ranks open it as followers, which
 * read the checkpoint to resume and write nothing.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../backends/backend.ts";
import { checkCheckpointMatches, loadCheckpoint, saveCheckpoint, type NamedTensor } from "../checkpoint/checkpoint.ts";
import { textTable } from "../cli/text-table.ts";
import { ConfigError } from "../nn/model-config.ts";
import type { Model } from "../nn/create-model.ts";
import type { PrecisionRow } from "../nn/language-model.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { Zero1Optimizer } from "../parallel/zero1.ts";
import type { TrainConfig } from "./config.ts";
import { MetricsWriter } from "./metrics.ts";
import type { Progress } from "./progress.ts";

/** What a data loader must offer for checkpoints. */
export interface ResumableLoader {
  state(): unknown;
  restore(state: unknown): void;
}

/** Config fields that must match for a bit-exact resume (and the global batch, gradAccum × ranks). */
const MUST_MATCH = ["model", "recipe", "data", "batchSize", "seed", "schedule", "optim", "steps"] as const;

/** Micro-batches per optimizer step over all ranks (configs from before `ranks` ran on one). */
const microBatchesPerStep = (c: Record<string, unknown> | undefined) => Number(c?.gradAccum ?? 1) * Number(c?.ranks ?? 1);

/** JSON with object keys sorted: configs compare equal whatever order their fields were set in (presets, files, overrides, fields checkpoint.ts fills in). */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x);
}

/** The precision table as text. */
export function describePrecision(rows: PrecisionRow[]): string {
  if (!rows.some((r) => r.engine)) return textTable([["layer", "Fprop", "Dgrad", "Wgrad", "why"], ...rows.map((r) => [r.layer, r.fprop, r.dgrad, r.wgrad, r.why])]);
  return textTable([["layer", "Fprop", "Dgrad", "Wgrad", "why", "runs on"], ...rows.map((r) => [r.layer, r.fprop, r.dgrad, r.wgrad, r.why, r.engine ?? ""])]);
}

export class RunDir {
  readonly metrics: Pick<MetricsWriter, "write">;
  readonly checkpointPath: string;

  private constructor(readonly dir: string, readonly cfg: TrainConfig, readonly log: (s: string) => void, readonly leader: boolean) {
    this.metrics = leader ? new MetricsWriter(join(dir, "metrics.jsonl")) : { write: () => {} };
    this.checkpointPath = join(dir, "checkpoint.safetensors");
  }

  /** Open (leader: check, create or replace) the run's folder; a follower only reads from it. */
  static open(cfg: TrainConfig, leader = true): RunDir {
    const dir = join(cfg.outDir, cfg.name);
    if (!leader) return new RunDir(dir, cfg, () => {}, false);
    const quiet = cfg.log === "quiet";
    const log = (s: string) => { if (!quiet) process.stdout.write(s + "\n"); };
    if (existsSync(join(dir, "metrics.jsonl")) && !cfg.resume) {
      if (!cfg.overwrite) {
        throw new ConfigError(`${dir} already holds a run; pass --resume to continue it, --overwrite to replace it, or --name=OTHER to start another`);
      }
      rmSync(dir, { recursive: true, force: true });
    }
    if (cfg.resume && !existsSync(join(dir, "checkpoint.safetensors"))) {
      throw new ConfigError(`--resume: ${dir} has no checkpoint.safetensors to resume from`);
    }
    mkdirSync(dir, { recursive: true });
    return new RunDir(dir, cfg, log, true);
  }

  /** Load the checkpoint into model, optimizer and loader; returns the step to continue from. */
  restore(model: Model, opt: Optimizer | Zero1Optimizer, loader: ResumableLoader, be: Backend): number {
    const c = loadCheckpoint(this.checkpointPath);
    const saved = c.state.config as Record<string, unknown>;
    const now = this.cfg as unknown as Record<string, unknown>;
    const diffs: string[] = MUST_MATCH.filter((k) => canonicalJson(saved?.[k]) !== canonicalJson(now[k]));
    const [was, is] = [microBatchesPerStep(saved), microBatchesPerStep(now)];
    if (was !== is) diffs.push(`the global batch (gradAccum × ranks: saved ${was}, now ${is}; with N ranks use gradAccum = ${was} / N)`);
    if (diffs.length) {
      throw new ConfigError(
        `${this.checkpointPath} was written with different settings for ${diffs.join(", ")}; a resumed run must use the same config ` +
          `(the saved one is in ${join(this.dir, "config.json")})`,
      );
    }
    checkCheckpointMatches(this.checkpointPath, c, model.params, true);
    const byName = (list: NamedTensor[]) => new Map(list.map((t) => [t.name, t.data]));
    const P = byName(c.params), M = byName(c.m), V = byName(c.v);
    model.params.forEach((p, i) => {
      be.copy(p.data, be.fromArray(P.get(p.name)!, p.shape));
      if (opt instanceof Zero1Optimizer) return;
      be.copy(opt.m[i], be.fromArray(M.get(p.name)!, p.shape));
      be.copy(opt.v[i], be.fromArray(V.get(p.name)!, p.shape));
    });
    // ZeRO-1 keeps its slices of the full moments, whatever rank count wrote them
    if (opt instanceof Zero1Optimizer) opt.loadMoments(model.params.map((p) => M.get(p.name)!), model.params.map((p) => V.get(p.name)!));
    opt.t = c.state.optimizerT;
    loader.restore(c.state.loader);
    this.metrics.write({ type: "resume", step: c.state.step, time: new Date().toISOString() });
    this.log(`resumed from ${this.checkpointPath} at step ${c.state.step}`);
    return c.state.step;
  }

  begin(model: Model, start: number, nParams: number, backend: string, attention: string, tokenizer: { toJSON(): object; vocabSize: number }): void {
    if (!this.leader) return;
    const precision = model.precisionTable();
    writeFileSync(join(this.dir, "config.json"), JSON.stringify(this.cfg, null, 1) + "\n");
    writeFileSync(join(this.dir, "precision.json"), JSON.stringify({ step: start, layers: precision }, null, 1) + "\n");
    if (start === 0) {
      this.metrics.write({ type: "run", recipe: this.cfg.recipe, config: this.cfg, precision, attention, params: nParams, backend, time: new Date().toISOString() });
    }
    const c = this.cfg;
    this.log(`fp4lm train: ${this.dir}  recipe ${c.recipe.name}  ${(nParams / 1e6).toFixed(2)}M params  backend ${backend}  vocab ${tokenizer.vocabSize}`);
    const m = c.model, mb = m.mamba;
    const shape = m.pattern
      ? `hybrid ${m.pattern} (${m.nLayers} blocks) d=${m.dModel} heads=${m.nHeads}/${m.nKvHeads} ff=${m.dFF} mamba groups=${mb?.nGroups} state=${mb?.dState} head=${mb?.headDim} expand=${mb?.expand} conv=${mb?.convWindow} chunk=${mb?.chunkSize}`
      : `d=${m.dModel} L=${m.nLayers} heads=${m.nHeads}/${m.nKvHeads} ff=${m.dFF}`;
    this.log(`  model ${shape} T=${m.seqLen}; ` +
      `batch ${c.batchSize}x${c.gradAccum}${c.ranks > 1 ? `x${c.ranks} ranks` : ""}; ${c.steps} steps; lr ${c.schedule.lr} ${c.schedule.kind}`);
    this.log("precision of every GEMM (also in precision.json):");
    this.log(describePrecision(precision).replace(/^/gm, "  "));
    this.log(`attention core (softmax(QKᵀ)·V, not a recipe GEMM): ${attention}`);
  }

  precisionChanged(step: number, model: Model, progress: Progress): void {
    if (!this.leader) return;
    const precision = model.precisionTable();
    this.metrics.write({ type: "switch", step, precision });
    writeFileSync(join(this.dir, `precision-from-step-${step}.json`), JSON.stringify({ step, layers: precision }, null, 1) + "\n");
    progress.note(`step ${step}: precision switch (${this.cfg.recipe.precisionSwitch.passes} to BF16):\n${describePrecision(precision).replace(/^/gm, "  ")}`);
  }

  /** Every rank calls it (ZeRO-1 gathers the moments' shards); rank 0 writes. */
  checkpoint(be: Backend, step: number, model: Model, opt: Optimizer | Zero1Optimizer, loader: ResumableLoader, tokenizer: { toJSON(): object }, info: Record<string, unknown>): void {
    const gathered = opt instanceof Zero1Optimizer ? opt.gatherMoments() : undefined;
    if (!this.leader) return;
    const named = (p: { name: string; shape: number[] }, t: Parameters<Backend["toArray"]>[0]): NamedTensor => ({ name: p.name, shape: p.shape, data: be.toArray(t) });
    saveCheckpoint(this.checkpointPath, {
      state: { version: 1, step, optimizerT: opt.t, config: this.cfg, recipe: this.cfg.recipe, tokenizer: tokenizer.toJSON(), loader: loader.state(), info },
      params: model.params.map((p) => named(p, p.data)),
      m: model.params.map((p, i) => (gathered ? { name: p.name, shape: p.shape, data: gathered.m[i] } : named(p, (opt as Optimizer).m[i]))),
      v: model.params.map((p, i) => (gathered ? { name: p.name, shape: p.shape, data: gathered.v[i] } : named(p, (opt as Optimizer).v[i]))),
    });
  }

  end(result: { losses: number[]; evals: { step: number; valLoss: number }[]; tokensPerS: number }): void {
    const last = result.evals[result.evals.length - 1];
    this.metrics.write({ type: "end", time: new Date().toISOString(), tokens_per_s: result.tokensPerS, final_val_loss: last?.valLoss ?? null });
  }
}
