/**
 * `fp4lm eval CKPT`: validation loss (and bits per byte) of a checkpoint on its run's held-out
 * split, or on another prepared folder, in the precision it trained with or another recipe.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TokenLoader } from "../data/loader.ts";
import { UsageError } from "../errors.ts";
import { loadModel } from "../train/load-model.ts";
import { preparedDir } from "../train/data-setup.ts";

export const EVAL_HELP = `fp4lm eval CKPT [--data DIR] [--batches N] [--recipe NAME]
  validation loss of a checkpoint (default: its own held-out split, its training recipe)`;

export function evalCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { data: { type: "string" }, batches: { type: "string" }, recipe: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) { console.log(EVAL_HELP); return 0; }
  if (positionals.length !== 1) throw new UsageError("fp4lm eval needs one checkpoint file; see fp4lm eval --help");
  const batches = Number(values.batches ?? 16);
  if (!Number.isInteger(batches) || batches < 1) throw new UsageError(`--batches must be a positive integer, got ${values.batches}`);
  const m = loadModel(positionals[0], { B: 1, recipe: values.recipe });
  try {
    const cfg = m.config;
    const dir = values.data ?? preparedDir(cfg, () => {});
    const T = cfg.model.seqLen;
    const val = TokenLoader.open(join(dir, "val.bin"), { B: 1, T, shuffle: false });
    const n = Math.min(batches, Math.floor(val.windows));
    let loss = 0, bytes = 0, tokens = 0;
    for (const b of val.evalBatches(n)) {
      loss += m.model.step(m.be.tokens(b.inputs, [1, T]), m.be.tokens(b.targets, [1, T]), false) * T;
      bytes += m.tokenizer.decodeBytes(b.targets).length;
      tokens += T;
    }
    const mean = loss / tokens;
    const bpb = loss / Math.LN2 / bytes;
    const out = { checkpoint: positionals[0], step: m.step, recipe: m.ctx.recipe.name, tokens, val_loss: mean, perplexity: Math.exp(mean), bits_per_byte: bpb };
    console.log(values.json ? JSON.stringify(out) : `${out.checkpoint} (step ${out.step}, recipe ${out.recipe}): val_loss ${mean.toFixed(4)}  ppl ${out.perplexity.toFixed(2)}  ${bpb.toFixed(4)} bits/byte over ${tokens} tokens`);
    return 0;
  } finally {
    m.be.close();
  }
}
