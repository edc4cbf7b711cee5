/**
 * Scores a trained model on the tasks of tasks.ts (issue 5, part 4): bits per byte of the
 * held-out token stream, the greedy last-word cloze (accuracy, and the word's mean log-probability)
 * and multiple choice by length-normalised log-likelihood (the sum of the continuation's token
 * log-probabilities over its UTF-8 bytes, lm-evaluation-harness's acc_norm). Items run as rows of
 * (B, T) forward passes with the context cut on the left to fit; log-softmax on the host from the
 * model's logits. Runs on the backend the model lives on; not a task builder.
 */
import { join } from "node:path";
import type { Backend } from "../backends/backend.ts";
import { TokenLoader } from "../data/loader.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { createModel, type Model } from "../nn/create-model.ts";
import { loadModel } from "../train/load-model.ts";
import type { ChoiceItem, TaskName, TaskSet } from "./tasks.ts";

export interface TaskScores {
  /** bits per byte of the held-out stream */
  bpb?: number;
  /** share of cloze words produced greedily, and their mean log-probability (nats) */
  cloze?: number;
  cloze_logprob?: number;
  /** multiple-choice accuracy (length-normalised log-likelihood) */
  gloss?: number;
  ending?: number;
  /** tokens (bpb) or items behind each score */
  counts: Partial<Record<TaskName, number>>;
}

/** Log-probability of a continuation given its context, and whether greedy decoding produces it. */
export interface ContinuationScore {
  logprob: number;
  greedy: boolean;
}

/** Score (context, continuation) token pairs, B rows per forward pass. */
export function scoreContinuations(g: Model, be: Backend, reqs: { ctx: Uint32Array; cont: Uint32Array }[]): ContinuationScore[] {
  const { B, T } = g, V = g.cfg.vocabSize;
  const out: ContinuationScore[] = [];
  for (let b0 = 0; b0 < reqs.length; b0 += B) {
    const batch = reqs.slice(b0, b0 + B);
    const inputs = new Int32Array(B * T), targets = new Int32Array(B * T);
    const rows = batch.map((r, row) => {
      if (r.cont.length === 0 || r.cont.length > T) throw new RangeError(`a continuation of ${r.cont.length} tokens does not fit T = ${T} (cut it with fitContinuation)`);
      // the context keeps its last tokens; input = seq[0 .. len−1), position p predicts seq[p + 1]
      const keep = Math.min(r.ctx.length, T + 1 - r.cont.length);
      const seq = [...r.ctx.subarray(r.ctx.length - keep), ...r.cont];
      for (let i = 0; i < seq.length - 1; i++) { inputs[row * T + i] = seq[i]; targets[row * T + i] = seq[i + 1]; }
      return { start: keep - 1, cont: r.cont };
    });
    g.step(be.tokens(inputs, [B, T]), be.tokens(targets, [B, T]), false);
    const logits = g.lastLogits();
    rows.forEach(({ start, cont }, row) => {
      let logprob = 0, greedy = true;
      cont.forEach((tok, j) => {
        const o = (row * T + start + j) * V;
        let max = -Infinity, arg = 0;
        for (let v = 0; v < V; v++) if (logits[o + v] > max) { max = logits[o + v]; arg = v; }
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
        logprob += logits[o + tok] - max - Math.log(sum);
        if (arg !== tok) greedy = false;
      });
      out.push({ logprob, greedy });
    });
  }
  return out;
}

/** Bits per byte over up to `maxBatches` (B, T) windows of a token shard; end-of-text tokens count zero bytes. */
export function bitsPerByte(g: Model, be: Backend, tok: Tokenizer, file: string, maxBatches: number): { bpb: number; tokens: number } {
  const val = TokenLoader.open(file, { B: g.B, T: g.T, shuffle: false });
  try {
    const n = Math.min(maxBatches, Math.floor(val.windows / g.B));
    let nats = 0, bytes = 0, tokens = 0;
    for (const b of val.evalBatches(n)) {
      nats += g.step(be.tokens(b.inputs, [g.B, g.T]), be.tokens(b.targets, [g.B, g.T]), false) * b.targets.length;
      bytes += tok.decodeBytes(b.targets.filter((t) => t !== tok.eotToken)).length;
      tokens += b.targets.length;
    }
    return { bpb: nats / Math.LN2 / bytes, tokens };
  } finally {
    val.close();
  }
}

/** A continuation's tokens, cut to the first T − 1 when longer (a model of short context judges those). */
export function fitContinuation(tok: Tokenizer, text: string, T: number): Uint32Array {
  const ids = tok.encode(text);
  return ids.length < T ? ids : ids.subarray(0, T - 1);
}

/** Accuracy of choice items: the choice with the highest log-likelihood per byte (of the tokens scored). */
function choiceAccuracy(g: Model, be: Backend, tok: Tokenizer, items: ChoiceItem[]): number {
  const reqs = items.flatMap((it) => {
    const ctx = tok.encode(it.context);
    return it.choices.map((c) => ({ ctx, cont: fitContinuation(tok, c, g.T) }));
  });
  const scores = scoreContinuations(g, be, reqs);
  let k = 0, right = 0;
  for (const it of items) {
    const norm = it.choices.map((_, j) => scores[k + j].logprob / Math.max(1, tok.decodeBytes(reqs[k + j].cont).length));
    k += it.choices.length;
    if (norm.indexOf(Math.max(...norm)) === it.answer) right++;
  }
  return right / items.length;
}

/** Score a model on the item tasks among `names` (cloze, gloss, ending); tasks without items get no score. */
export function scoreItems(g: Model, be: Backend, tok: Tokenizer, tasks: TaskSet, names: readonly TaskName[]): TaskScores {
  const s: TaskScores = { counts: {} };
  if (names.includes("cloze") && tasks.cloze.length) {
    const r = scoreContinuations(g, be, tasks.cloze.map((it) => ({ ctx: tok.encode(it.context), cont: fitContinuation(tok, it.target, g.T) })));
    s.cloze = r.filter((x) => x.greedy).length / r.length;
    s.cloze_logprob = r.reduce((a, x) => a + x.logprob, 0) / r.length;
    s.counts.cloze = r.length;
  }
  for (const t of ["gloss", "ending"] as const) {
    if (names.includes(t) && tasks[t].length) {
      s[t] = choiceAccuracy(g, be, tok, tasks[t]);
      s.counts[t] = tasks[t].length;
    }
  }
  return s;
}

export interface CheckpointEvalOptions {
  /** prepared-data folder whose val.bin gives bpb */
  dataDir: string;
  device?: "cpu" | "cuda" | "auto";
  threads?: number;
  /** recipe to evaluate in (default: the checkpoint's) */
  recipe?: string;
  /** rows per bpb pass (default 8) */
  B?: number;
  /** rows and sequence length of the item passes (default B, and 256 at most the model's: items are short) */
  itemB?: number;
  itemT?: number;
  /** (B, T) windows of val.bin for bpb at most (default 64) */
  bpbBatches?: number;
}

/** Load a checkpoint and score it; the backend is closed afterwards. */
export function evaluateCheckpoint(path: string, tasks: TaskSet, names: readonly TaskName[], opts: CheckpointEvalOptions): TaskScores & { step: number; recipe: string } {
  const B = opts.B ?? 8;
  const m = loadModel(path, { B, device: opts.device, threads: opts.threads, recipe: opts.recipe });
  try {
    const T = m.config.model.seqLen, itemT = Math.min(T, opts.itemT ?? 256), itemB = opts.itemB ?? B;
    const itemModel = itemT === T && itemB === B ? m.model : createModel(m.ctx, m.config.model, itemB, itemT);
    if (itemModel !== m.model) itemModel.params.forEach((p, i) => m.be.copy(p.data, m.model.params[i].data));
    const s = scoreItems(itemModel, m.be, m.tokenizer, tasks, names);
    if (names.includes("bpb")) {
      const r = bitsPerByte(m.model, m.be, m.tokenizer, join(opts.dataDir, "val.bin"), opts.bpbBatches ?? 64);
      s.bpb = r.bpb;
      s.counts.bpb = r.tokens;
    }
    return { ...s, step: m.step, recipe: m.ctx.recipe.name };
  } finally {
    m.be.close();
  }
}
