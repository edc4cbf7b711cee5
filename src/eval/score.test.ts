import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend } from "../backends/cpu/cpu-backend.ts";
import { writeShard } from "../data/shards.ts";
import { byteTokenizer } from "../data/tokenizer.ts";
import { RunContext } from "../nn/context.ts";
import { GPT } from "../nn/gpt.ts";
import type { ModelConfig } from "../nn/model-config.ts";
import { recipeByName } from "../recipes/recipe.ts";
import { bitsPerByte, scoreContinuations, scoreItems } from "./score.ts";
import type { TaskSet } from "./tasks.ts";

const CFG: ModelConfig = { vocabSize: 257, dModel: 32, nLayers: 2, nHeads: 2, nKvHeads: 1, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5 };
const be = new CpuBackend({ threads: 1 });
const dir = mkdtempSync(join(tmpdir(), "fp4lm-score-"));
after(() => { be.close(); rmSync(dir, { recursive: true, force: true }); });

/** A randomly initialised model (fp32: no rounding) with B rows of T = 16; the same weights for every B. */
function model(B: number): GPT {
  const ctx = new RunContext(be, recipeByName("fp32"), 99);
  ctx.training = false;
  return new GPT(ctx, CFG, B, CFG.seqLen);
}

/** log p(seq[i+1] | seq[..i]) for i ≥ from, straight from one row's logits, and whether each is the argmax. */
function direct(seq: number[], from: number): { logprob: number; greedy: boolean } {
  const g = model(1), T = CFG.seqLen, V = CFG.vocabSize;
  const inputs = new Int32Array(T), targets = new Int32Array(T);
  seq.slice(0, -1).forEach((t, i) => { inputs[i] = t; targets[i] = seq[i + 1]; });
  g.step(be.tokens(inputs, [1, T]), be.tokens(targets, [1, T]), false);
  const logits = g.lastLogits();
  let logprob = 0, greedy = true;
  for (let i = from; i < seq.length - 1; i++) {
    const row = Array.from(logits.subarray(i * V, (i + 1) * V));
    const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    logprob += row[seq[i + 1]] - lse;
    if (row.indexOf(Math.max(...row)) !== seq[i + 1]) greedy = false;
  }
  return { logprob, greedy };
}

const ids = (s: string) => Uint32Array.from(Buffer.from(s, "utf8"));

test("continuation log-probabilities: batched rows equal one sequence at a time; long contexts keep their end", () => {
  const reqs = [
    { ctx: ids("Call me Ishmael."), cont: ids(" Some") }, // 16 + 5 > T + 1: the context loses its first 4 bytes
    { ctx: ids("The whale"), cont: ids(" swam") },
    { ctx: ids("x"), cont: ids("yz") },
  ];
  const got = scoreContinuations(model(2), be, reqs);
  assert.equal(got.length, 3);
  reqs.forEach((r, i) => {
    const keep = Math.min(r.ctx.length, CFG.seqLen + 1 - r.cont.length);
    const seq = [...r.ctx.subarray(r.ctx.length - keep), ...r.cont];
    const want = direct(seq, keep - 1);
    assert.ok(Math.abs(got[i].logprob - want.logprob) < 1e-9, `${i}: ${got[i].logprob} vs ${want.logprob}`);
    assert.equal(got[i].greedy, want.greedy);
    assert.ok(got[i].logprob < 0);
  });
});

test("bits per byte: the held-out windows' log-likelihood over their bytes (end-of-text counts no bytes)", () => {
  const tok = byteTokenizer();
  const text = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.";
  const stream = [tok.eotToken, ...ids(text), tok.eotToken, ...ids(text.toUpperCase())];
  const file = join(dir, "val.bin");
  writeShard(file, stream, tok.vocabSize);
  const g = model(2);
  const r = bitsPerByte(g, be, tok, file, 3);
  // the same windows (file order, T + 1 tokens, stride T) scored token by token on the host
  let nats = 0, bytes = 0;
  for (let w = 0; w < 6; w++) {
    const win = stream.slice(w * 16, w * 16 + 17);
    nats -= direct(win, 0).logprob;
    bytes += win.slice(1).filter((t) => t !== tok.eotToken).length;
  }
  assert.equal(r.tokens, 6 * 16);
  assert.ok(Math.abs(r.bpb - nats / Math.LN2 / bytes) < 1e-5 * r.bpb, `${r.bpb} vs ${nats / Math.LN2 / bytes}`);
});

test("multiple choice picks the highest log-likelihood per byte; cloze counts greedy words", () => {
  const tok = byteTokenizer();
  const g = model(4);
  const tasks: TaskSet = {
    cloze: [{ context: "abcabcab", target: " c" }, { context: "the sea", target: " and" }],
    gloss: [],
    ending: [0, 1, 2, 3].map((answer) => ({ context: "Call me", choices: [" Ishmael.", " a", " whale of a tale", " zz"], answer })),
    notes: [],
  };
  const s = scoreItems(g, be, tok, tasks, ["cloze", "ending", "gloss"]);
  const per = tasks.ending[0].choices.map((c) => scoreContinuations(g, be, [{ ctx: ids("Call me"), cont: ids(c) }])[0].logprob / Buffer.byteLength(c));
  const best = per.indexOf(Math.max(...per));
  assert.equal(s.ending, 1 / 4, "the same four choices with the answer at each place: one is right");
  assert.equal(s.counts.ending, 4);
  assert.equal(s.gloss, undefined, "no items, no score");
  // the item whose answer is the best-scored choice is the one counted right
  const one = scoreItems(g, be, tok, { ...tasks, ending: [tasks.ending[best]] }, ["ending"]);
  assert.equal(one.ending, 1);
  const cl = tasks.cloze.map((it) => scoreContinuations(g, be, [{ ctx: ids(it.context), cont: ids(it.target) }])[0]);
  assert.equal(s.cloze, cl.filter((c) => c.greedy).length / 2);
  assert.ok(Math.abs(s.cloze_logprob! - (cl[0].logprob + cl[1].logprob) / 2) < 1e-9);
});
