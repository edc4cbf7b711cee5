/**
 * Text → token shards: split documents into train/val (corpus.ts rule), train a BPE on the
 * train split if asked, tokenize, and write DIR/{train.bin, val.bin, tokenizer.json,
 * meta.json} atomically (a temporary sibling folder renamed into place; nothing is left behind
 * on error). The outputs hold no timestamps: the same inputs and options give identical files.
 * Not the command-line parsing (cli/prepare-command.ts) and not a multi-shard writer.
 *
 * Token stream layout (llm.c dev/data/fineweb.py): every document, and every piece of a
 * document cut by the held-out span, starts with the end-of-text token, so train.bin and
 * val.bin both begin with EOT.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { FileFormatError, Fp4lmError, UsageError } from "../errors.ts";
import { trainBpe } from "./bpe-train.ts";
import { loadBundledDocuments, splitDocuments, type SplitUnit } from "./corpus.ts";
import { encodeShard, dtypeForVocab } from "./shards.ts";
import { bpeTokenizer, byteTokenizer, gpt2Tokenizer, type Tokenizer } from "./tokenizer.ts";

export type TokenizerKind = "gpt2" | "byte" | "bpe";

/** One input: a file or a bundled corpus, already divided into documents. */
export interface TextSource {
  /** path or bundled corpus name, as recorded in meta.json */
  name: string;
  documents: string[];
  /** size of the source text in UTF-8 bytes */
  bytes: number;
  /** sha256 of the source text (file bytes, or the bundled corpus's decompressed text) */
  sha256: string;
}

export interface PrepareOptions {
  tokenizer: TokenizerKind;
  /** BPE vocabulary size including end-of-text (bpe only) */
  vocabSize?: number;
  /** held-out share of the characters (default 0.05) */
  valFraction?: number;
  /** seeded held-out span instead of the end of the corpus */
  seed?: number;
}

export interface SplitMeta {
  file: string;
  tokens: number;
  dtype: string;
  /** UTF-8 bytes of the text encoded (without the EOT tokens) */
  textBytes: number;
  /** documents or document pieces, each preceded by one EOT */
  documents: number;
  /** sha256 of the .bin file */
  sha256: string;
}

export interface PrepareMeta {
  format: "fp4lm-prepared";
  version: 1;
  sources: Array<{ name: string; bytes: number; sha256: string; documents: number }>;
  tokenizer: { file: "tokenizer.json"; name: string; vocabSize: number; eotToken: number; requestedVocabSize?: number };
  split: { valFraction: number; seed: number | null; unit: SplitUnit; valStart: number; valEnd: number; rule: string };
  train: SplitMeta;
  val: SplitMeta;
}

export interface Prepared {
  tokenizer: Tokenizer;
  train: Uint32Array;
  val: Uint32Array;
  meta: PrepareMeta;
  /** seconds spent training the BPE (0 for gpt2/byte) and tokenizing */
  seconds: { bpe: number; tokenize: number };
}

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** A text file as a source: strict UTF-8, a leading BOM dropped, one document. */
export function fileSource(path: string): TextSource {
  let raw: Buffer;
  try { raw = readFileSync(path); } catch (e) {
    throw new Fp4lmError(`cannot read text file ${path}: ${(e as Error).message}`);
  }
  let text: string;
  try { text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw); } catch {
    const bad = firstInvalidUtf8(raw);
    throw new FileFormatError(path, `is not valid UTF-8 (first bad byte at offset ${bad}); convert it to UTF-8 first, e.g. iconv -f latin1 -t utf-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) throw new FileFormatError(path, "is empty; give files with text in them");
  return { name: path, documents: [text], bytes: raw.length, sha256: sha256(raw) };
}

/** Offset of the first byte that starts an invalid UTF-8 sequence (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const c = b[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (n > 1 && (b[i + 1] < lo || b[i + 1] > hi)) return i;
    for (let k = 2; k < n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return i;
    i += n;
  }
  return b.length;
}

/** A bundled corpus as a source. */
export function bundledSource(name: string): TextSource {
  const documents = loadBundledDocuments(name);
  const text = documents.join("");
  return { name, documents, bytes: Buffer.byteLength(text, "utf8"), sha256: sha256(text) };
}

/** Concatenated ids of pieces, each preceded by EOT. */
function tokenizePieces(tok: Tokenizer, pieces: readonly string[]): Uint32Array {
  const parts = pieces.map((p) => tok.encode(p));
  const out = new Uint32Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let o = 0;
  for (const p of parts) { out[o++] = tok.eotToken; out.set(p, o); o += p.length; }
  return out;
}

/** Split, (train a BPE,) and tokenize in memory; `writePrepared` stores the result. */
export function prepareTokens(sources: readonly TextSource[], opts: PrepareOptions): Prepared {
  if (sources.length === 0) throw new UsageError("no text to prepare: give text files or --bundled NAME");
  const valFraction = opts.valFraction ?? 0.05;
  if (opts.tokenizer !== "bpe" && opts.vocabSize !== undefined) {
    throw new UsageError(`--vocab-size applies only to --tokenizer bpe (${opts.tokenizer} has a fixed vocabulary)`);
  }
  const docs = sources.flatMap((s) => s.documents);
  const split = splitDocuments(docs, valFraction, opts.seed);

  let tokenizer: Tokenizer;
  let bpeSeconds = 0;
  if (opts.tokenizer === "bpe") {
    if (opts.vocabSize === undefined) throw new UsageError("--tokenizer bpe needs --vocab-size N (e.g. 4096; includes the end-of-text token)");
    const t0 = performance.now();
    const model = trainBpe(split.train, opts.vocabSize);
    bpeSeconds = (performance.now() - t0) / 1e3;
    tokenizer = bpeTokenizer(model);
  } else if (opts.tokenizer === "gpt2") tokenizer = gpt2Tokenizer();
  else if (opts.tokenizer === "byte") tokenizer = byteTokenizer();
  else throw new UsageError(`unknown tokenizer '${String(opts.tokenizer)}'; choose gpt2, byte or bpe`);

  const t1 = performance.now();
  const train = tokenizePieces(tokenizer, split.train);
  const val = tokenizePieces(tokenizer, split.val);
  const tokenizeSeconds = (performance.now() - t1) / 1e3;

  const dtype = dtypeForVocab(tokenizer.vocabSize);
  const splitMeta = (file: string, ids: Uint32Array, pieces: string[]): SplitMeta => ({
    file, tokens: ids.length, dtype, documents: pieces.length,
    textBytes: pieces.reduce((n, p) => n + Buffer.byteLength(p, "utf8"), 0), sha256: "",
  });
  const meta: PrepareMeta = {
    format: "fp4lm-prepared",
    version: 1,
    sources: sources.map((s) => ({ name: s.name, bytes: s.bytes, sha256: s.sha256, documents: s.documents.length })),
    tokenizer: {
      file: "tokenizer.json", name: tokenizer.name, vocabSize: tokenizer.vocabSize, eotToken: tokenizer.eotToken,
      ...(opts.tokenizer === "bpe" ? { requestedVocabSize: opts.vocabSize } : {}),
    },
    split: {
      valFraction, seed: opts.seed ?? null, unit: split.unit, valStart: split.valStart, valEnd: split.valEnd,
      rule: opts.seed === undefined
        ? "validation = the last valFraction of the sources' characters, cut at a paragraph boundary (src/data/corpus.ts)"
        : "validation = one contiguous span of valFraction of the characters starting at a seeded paragraph boundary (src/data/corpus.ts)",
    },
    train: splitMeta("train.bin", train, split.train),
    val: splitMeta("val.bin", val, split.val),
  };
  return { tokenizer, train, val, meta, seconds: { bpe: bpeSeconds, tokenize: tokenizeSeconds } };
}

/**
 * Write DIR/{train.bin, val.bin, tokenizer.json, meta.json} through a temporary sibling folder
 * renamed into place. DIR must not exist or be empty unless `force` (then it is replaced).
 * Fills in meta's sha256 fields.
 */
export function writePrepared(dir: string, data: Prepared, opts: { force?: boolean } = {}): void {
  const target = resolve(dir);
  checkOutDir(target, opts.force ?? false);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(join(parent, `.${basename(target)}.tmp-`));
  let old: string | undefined;
  try {
    const vocab = data.tokenizer.vocabSize;
    for (const [m, ids] of [[data.meta.train, data.train], [data.meta.val, data.val]] as const) {
      const bytes = encodeShard(ids, vocab);
      writeFileSync(join(tmp, m.file), bytes);
      m.sha256 = sha256(bytes);
    }
    writeFileSync(join(tmp, "tokenizer.json"), JSON.stringify(data.tokenizer.toJSON()) + "\n");
    writeFileSync(join(tmp, "meta.json"), JSON.stringify(data.meta, null, 2) + "\n");
    chmodSync(tmp, 0o755 & ~process.umask()); // mkdtemp makes it private; the result is an ordinary folder
    if (existsSync(target)) {
      old = `${tmp}.old`;
      renameSync(target, old);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (old !== undefined && !existsSync(target)) renameSync(old, target);
    throw e;
  }
  if (old !== undefined) rmSync(old, { recursive: true, force: true });
}

/** Refuse to overwrite a non-empty folder (or a file) unless forced. */
export function checkOutDir(target: string, force: boolean): void {
  if (!existsSync(target)) return;
  let entries: string[];
  try { entries = readdirSync(target); } catch {
    throw new UsageError(`--out ${target} exists and is not a folder; choose another path`);
  }
  if (entries.length > 0 && !force) {
    throw new UsageError(`--out ${target} already exists and is not empty; choose a new folder or add --force to replace it`);
  }
}
