/**
 * `fp4lm prepare`: text files or a bundled corpus → DIR/train.bin, val.bin (llm.c token shards),
 * tokenizer.json and meta.json, written atomically; prints a short summary. The work is done by
 * data/prepare.ts; this file parses the command line and reports.
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { BUNDLED_CORPORA } from "../data/corpus.ts";
import { bundledSource, fileSource, prepareTokens, writePrepared, checkOutDir, type TokenizerKind } from "../data/prepare.ts";
import { resolve } from "node:path";

export const PREPARE_HELP = `fp4lm prepare FILES... --out DIR [options]      tokenize UTF-8 text files into token shards
fp4lm prepare --bundled NAME --out DIR [options]  the same for a bundled corpus (${Object.keys(BUNDLED_CORPORA).join(", ")})

Writes DIR/train.bin and DIR/val.bin (llm.c .bin token shards: 1 KiB header, uint16 ids when the
vocabulary has at most 65535 entries, else uint32), DIR/tokenizer.json and DIR/meta.json (counts,
sources and sha256s). Each file is one document; every document starts with the end-of-text token.
The validation part is the last --val-fraction of the text, cut at a paragraph boundary.

Options:
  --tokenizer gpt2|byte|bpe   gpt2: GPT-2's 50257 ids (tiktoken); byte: 256 bytes + end-of-text;
                              bpe: train a byte-level BPE on the train split (default: gpt2)
  --vocab-size N              BPE vocabulary size including end-of-text (bpe only; e.g. 4096)
  --out DIR                   output folder; must not exist or be empty unless --force
  --val-fraction F            held-out share of the text, in [0, 1) (default 0.05)
  --seed S                    hold out a seeded span of the text instead of its end
  --force                     replace DIR if it exists
`;

function parseNumber(flag: string, value: string | undefined, isInt: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (isInt && !Number.isSafeInteger(n))) {
    throw new UsageError(`${flag} needs ${isInt ? "an integer" : "a number"}, got '${value}'`);
  }
  return n;
}

const fmt = (n: number) => n.toLocaleString("en-US");

/** Run the command; returns the process exit code. */
export function prepareCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + "\n")): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bundled: { type: "string" }, tokenizer: { type: "string" }, "vocab-size": { type: "string" }, out: { type: "string" },
      "val-fraction": { type: "string" }, seed: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) { out(PREPARE_HELP); return 0; }
  if ((positionals.length > 0) === (values.bundled !== undefined)) {
    throw new UsageError("fp4lm prepare needs text FILES or --bundled NAME (not both); see fp4lm prepare --help");
  }
  if (values.out === undefined) throw new UsageError("fp4lm prepare needs --out DIR (the folder to write); see fp4lm prepare --help");
  const kind = values.tokenizer ?? "gpt2";
  if (kind !== "gpt2" && kind !== "byte" && kind !== "bpe") throw new UsageError(`--tokenizer must be gpt2, byte or bpe, got '${kind}'`);
  const vocabSize = parseNumber("--vocab-size", values["vocab-size"], true);
  const valFraction = parseNumber("--val-fraction", values["val-fraction"], false) ?? 0.05;
  if (!(valFraction >= 0 && valFraction < 1)) throw new UsageError(`--val-fraction must be in [0, 1), got ${valFraction}`);
  const seed = parseNumber("--seed", values.seed, true);
  if (seed !== undefined && seed < 0) throw new UsageError(`--seed must be ≥ 0, got ${seed}`);
  if (kind === "bpe" && vocabSize === undefined) throw new UsageError("--tokenizer bpe needs --vocab-size N (e.g. 4096; includes the end-of-text token)");
  if (kind === "bpe" && (vocabSize! < 257 || vocabSize! > 1 << 20)) throw new UsageError(`--vocab-size must be in [257, ${1 << 20}] (256 bytes + merges + end-of-text), got ${vocabSize}`);
  checkOutDir(resolve(values.out), values.force ?? false);

  const t0 = performance.now();
  const sources = values.bundled !== undefined ? [bundledSource(values.bundled)] : positionals.map(fileSource);
  const data = prepareTokens(sources, { tokenizer: kind as TokenizerKind, vocabSize, valFraction, seed });
  try {
    writePrepared(values.out, data, { force: values.force });
  } finally {
    data.tokenizer.free();
  }
  const m = data.meta;
  const bytes = sources.reduce((n, s) => n + s.bytes, 0);
  const names = sources.length === 1 ? sources[0].name : `${sources.length} files`;
  const bpt = (s: typeof m.train) => (s.tokens > s.documents ? (s.textBytes / (s.tokens - s.documents)).toFixed(2) : "-");
  out(`fp4lm prepare: ${names}, ${fmt(bytes)} bytes of text, ${fmt(m.sources.reduce((n, s) => n + s.documents, 0))} document(s)`);
  out(`  split      val = ${m.split.seed === null ? "last" : `seeded (seed ${m.split.seed})`} ${(valFraction * 100).toFixed(1)}% of the text, cut at ${m.split.unit} boundaries`);
  const trained = kind === "bpe" ? `, trained on the train split in ${data.seconds.bpe.toFixed(2)} s` : "";
  const short = kind === "bpe" && m.tokenizer.vocabSize < vocabSize! ? ` (asked for ${fmt(vocabSize!)}: the text has too few distinct pairs)` : "";
  out(`  tokenizer  ${m.tokenizer.name}, ${fmt(m.tokenizer.vocabSize)} ids${short}${trained}`);
  out(`  train.bin  ${fmt(m.train.tokens)} tokens (${m.train.dtype}), ${bpt(m.train)} bytes/token`);
  out(`  val.bin    ${fmt(m.val.tokens)} tokens (${m.val.dtype})`);
  out(`  tokenized ${(bytes / 1e6).toFixed(2)} MB in ${data.seconds.tokenize.toFixed(2)} s; wrote ${values.out}/ {train.bin, val.bin, tokenizer.json, meta.json} in ${((performance.now() - t0) / 1e3).toFixed(2)} s`);
  return 0;
}
