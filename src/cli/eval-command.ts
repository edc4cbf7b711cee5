/**
 * `fp4lm eval CKPT`: validation loss (and bits per byte) of a checkpoint on its run's held-out
 * split, or on another prepared folder, in the precision it trained with or another recipe.
 * `--tasks` scores the downstream tasks built from that held-out text instead (eval/tasks.ts,
 * eval/score.ts): bits per byte, last-word cloze, WordNet-gloss and sentence-ending choice.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TokenLoader } from "../data/loader.ts";
import { UsageError } from "../errors.ts";
import { loadModel } from "../train/load-model.ts";
import { preparedDir } from "../train/data-setup.ts";
import { loadCheckpoint } from "../checkpoint/checkpoint.ts";
import type { TrainConfig } from "../train/config.ts";
import { evaluateCheckpoint, type TaskScores } from "../eval/score.ts";
import { buildTasks, parseTasks, preparedDocuments, TASK_NAMES } from "../eval/tasks.ts";
import { textTable } from "./text-table.ts";

export const EVAL_HELP = `fp4lm eval CKPT [--data DIR] [--batches N] [--recipe NAME] [--json]
  validation loss of a checkpoint (default: its own held-out split, its training recipe)
fp4lm eval CKPT --tasks ${TASK_NAMES.join(",")} [--items 200] [--task-seed 0] [--device cpu|cuda|auto]
  downstream tasks built from the held-out text (never from training text): bits per byte, last-word
  cloze accuracy (greedy), WordNet-gloss and sentence-ending 4-way choice (length-normalised likelihood)`;

/** Task scores as table rows: task, score, what it counts. */
export function taskRows(s: TaskScores): string[][] {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const rows: string[][] = [];
  if (s.bpb !== undefined) rows.push(["bpb", s.bpb.toFixed(4), `bits per byte over ${s.counts.bpb} held-out tokens`]);
  if (s.cloze !== undefined) rows.push(["cloze", pct(s.cloze), `${s.counts.cloze} last words produced greedily; mean log-prob ${s.cloze_logprob!.toFixed(3)} nats`]);
  if (s.gloss !== undefined) rows.push(["gloss", pct(s.gloss), `${s.counts.gloss} WordNet glosses, 4-way (chance 25%)`]);
  if (s.ending !== undefined) rows.push(["ending", pct(s.ending), `${s.counts.ending} sentence endings, 4-way (chance 25%)`]);
  return rows;
}

function tasksCommand(ckpt: string, spec: string, v: Record<string, string | boolean | undefined>): number {
  const names = parseTasks(spec);
  const int = (name: string, d: number, min: number) => {
    const raw = v[name];
    const n = raw === undefined ? d : Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${raw}`);
    return n;
  };
  const items = int("items", 200, 1), seed = int("task-seed", 0, 0);
  const device = (v.device as string | undefined) ?? "cpu";
  if (!["cpu", "cuda", "auto"].includes(device)) throw new UsageError(`--device must be cpu, cuda or auto, got '${device}'`);
  const cfg = loadCheckpoint(ckpt).state.config as TrainConfig;
  const dir = (v.data as string | undefined) ?? preparedDir(cfg, () => {});
  const docs = preparedDocuments(dir);
  const tasks = buildTasks(docs.heldOut, { items, seed, train: docs.train });
  const s = evaluateCheckpoint(ckpt, tasks, names, { dataDir: dir, device: device as "cpu" | "cuda" | "auto", recipe: v.recipe as string | undefined });
  if (v.json) {
    console.log(JSON.stringify({ checkpoint: ckpt, data: dir, task_seed: seed, notes: tasks.notes, ...s }));
    return 0;
  }
  console.log(`${ckpt} (step ${s.step}, recipe ${s.recipe}); tasks from the held-out text of ${dir}, seed ${seed}`);
  console.log(textTable([["task", "score", "over"], ...taskRows(s)], [false, true, false]));
  for (const n of tasks.notes) console.log(`note: ${n}`);
  return 0;
}

export function evalCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      data: { type: "string" }, batches: { type: "string" }, recipe: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" },
      tasks: { type: "string" }, items: { type: "string" }, "task-seed": { type: "string" }, device: { type: "string" },
    },
  });
  if (values.help) { console.log(EVAL_HELP); return 0; }
  if (positionals.length !== 1) throw new UsageError("fp4lm eval needs one checkpoint file; see fp4lm eval --help");
  if (values.tasks !== undefined) return tasksCommand(positionals[0], values.tasks, values);
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
