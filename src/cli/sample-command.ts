/**
 * `fp4lm sample CKPT --prompt "..."`: generate text from a checkpoint, greedy (`--topk 1` or
 * `--temperature 0`) or top-k sampling with a seeded generator. The forward pass runs in the
 * checkpoint's recipe (as it trained) unless `--recipe` says otherwise. Recomputes the whole
 * window per token: simple, and fast enough for the small models the CPU trains.
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { philoxUniform } from "../quant/philox.ts";
import { loadModel } from "../train/load-model.ts";

export const SAMPLE_HELP = `fp4lm sample CKPT --prompt TEXT [--tokens 200] [--topk 40] [--temperature 0.8] [--seed 1] [--recipe NAME]`;

/** Index of the next token from logits: greedy, or top-k sampling at a temperature with uniform u. */
export function pickToken(logits: Float32Array, topk: number, temperature: number, u: number): number {
  if (topk === 1 || temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const idx = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topk);
  const max = logits[idx[0]];
  const w = idx.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let j = 0; j < idx.length; j++) {
    acc += w[j] / total;
    if (u < acc) return idx[j];
  }
  return idx[idx.length - 1];
}

export function sampleCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      prompt: { type: "string" }, tokens: { type: "string" }, topk: { type: "string" }, temperature: { type: "string" },
      seed: { type: "string" }, recipe: { type: "string" }, help: { type: "boolean" },
    },
  });
  if (values.help) { console.log(SAMPLE_HELP); return 0; }
  if (positionals.length !== 1) throw new UsageError("fp4lm sample needs one checkpoint file; see fp4lm sample --help");
  const n = Number(values.tokens ?? 200), topk = Number(values.topk ?? 40), temperature = Number(values.temperature ?? 0.8), seed = Number(values.seed ?? 1);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--tokens must be a positive integer, got ${values.tokens}`);
  if (!Number.isInteger(topk) || topk < 1) throw new UsageError(`--topk must be a positive integer, got ${values.topk}`);
  if (!(temperature >= 0)) throw new UsageError(`--temperature must be ≥ 0, got ${values.temperature}`);
  const m = loadModel(positionals[0], { B: 1, recipe: values.recipe });
  try {
    const T = m.config.model.seqLen, V = m.config.model.vocabSize;
    const ids = [m.tokenizer.eotToken, ...m.tokenizer.encode(values.prompt ?? "")];
    const u = philoxUniform(seed, 0x5a3, n);
    const out: number[] = [];
    const x = new Int32Array(T), y = new Int32Array(T);
    for (let i = 0; i < n; i++) {
      const ctxIds = ids.slice(-T);
      x.fill(0);
      x.set(ctxIds);
      m.model.step(m.be.tokens(x, [1, T]), m.be.tokens(y, [1, T]), false);
      const pos = ctxIds.length - 1;
      const next = pickToken(m.model.lastLogits().subarray(pos * V, (pos + 1) * V), topk, temperature, u[i]);
      ids.push(next);
      out.push(next);
      if (next === m.tokenizer.eotToken) break;
    }
    process.stdout.write((values.prompt ?? "") + m.tokenizer.decode(out.filter((t) => t !== m.tokenizer.eotToken)) + "\n");
    return 0;
  } finally {
    m.be.close();
  }
}
