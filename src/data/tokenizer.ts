/**
 * Tokenizers: GPT-2 BPE (tiktoken's WASM port of OpenAI's encoder), bytes (256 + EOT), and our
 * own trained byte-level BPE (bpe-train.ts) encoded through tiktoken's custom-ranks constructor,
 * with the plain TS encoder of bpe-encode.ts as its twin. `toJSON`/`tokenizerFromJSON` store
 * and restore any of them (checkpoints and `fp4lm prepare` write tokenizer.json).
 * Not a chat/special-token framework: the only special token is end-of-text, which `encode`
 * never produces from text (the string "<|endoftext|>" in text is encoded as ordinary text);
 * callers insert `eotToken` between documents themselves.
 *
 * Sources: tiktoken 1.0.22 (npm, MIT; github.com/dqbd/tiktoken), GPT-2 vocabulary (Radford et
 * al. 2019); choice and speed measurements in docs/data.md.
 */
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { EOT_TEXT, GPT2_PATTERN, isWhiteSpace, jsPattern, RankEncoder, tokenBytesFromMerges, utf8Bytes } from "./bpe-encode.ts";
import { bpeVocabSize, MAX_BPE_VOCAB, type BpeModel } from "./bpe-train.ts";

/** A text ↔ token id codec. Ids are in [0, vocabSize); `eotToken` is one of them. */
export interface Tokenizer {
  /** e.g. "gpt2", "byte", "bpe-8192" */
  readonly name: string;
  readonly vocabSize: number;
  /** end-of-text id, put before each document (GPT-2/llm.c convention) */
  readonly eotToken: number;
  /** Ids of `text` (ordinary text only: never emits eotToken). decode(encode(s)) === s for any well-formed string. */
  encode(text: string): Uint32Array;
  /** Text of `ids`; eotToken decodes as "<|endoftext|>"; byte sequences cut inside a UTF-8 character decode as U+FFFD. */
  decode(ids: ArrayLike<number>): string;
  /** Exact bytes of `ids` (for bits-per-byte). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array;
  /** Everything needed to rebuild this tokenizer with `tokenizerFromJSON`. */
  toJSON(): TokenizerJSON;
  /** Release WASM memory (tiktoken); the tokenizer must not be used afterwards. No-op where nothing is held. */
  free(): void;
}

export type TokenizerJSON =
  | { kind: "gpt2"; name: "gpt2"; vocabSize: 50257; eotToken: 50256; encoder: string }
  | { kind: "byte"; name: "byte"; vocabSize: 257; eotToken: 256 }
  | { kind: "bpe"; name: string; vocabSize: number; eotToken: number; pattern: string; merges: Array<[number, number]> };

/** The tiktoken package this code was written and tested against (pinned in package.json). */
export const TIKTOKEN_VERSION = "1.0.22";

type TiktokenModule = typeof import("tiktoken");
type TiktokenEncoding = InstanceType<TiktokenModule["Tiktoken"]>;
let tiktokenModule: TiktokenModule | undefined;

/** Load tiktoken (and compile its WASM, ~0.1 s) on first use only. */
function tiktoken(): TiktokenModule {
  if (tiktokenModule === undefined) {
    try {
      tiktokenModule = createRequire(import.meta.url)("tiktoken") as TiktokenModule;
    } catch (e) {
      throw new Fp4lmError(`cannot load the npm package tiktoken (${(e as Error).message}); run npm ci in the fp4lm checkout`);
    }
  }
  return tiktokenModule;
}

/** Non-fatal (U+FFFD for cut characters) and keeping a leading U+FEFF, which TextDecoder drops by default. */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

function checkIds(ids: ArrayLike<number>, vocabSize: number, name: string): Uint32Array {
  const out = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Fp4lmError(`token id ${id} at position ${i} is outside the ${name} vocabulary [0, ${vocabSize}); were these ids made with another tokenizer?`);
    }
    out[i] = id;
  }
  return out;
}

/**
 * Encode a long text piece by piece (~`chunk` chars each) with identical results: pieces end
 * right after a non-whitespace char followed by "\n", where no pre-tokenization match of
 * GPT-2's pattern can cross (whitespace never joins a preceding non-whitespace match, and
 * matches before it do not look past it). Keeps WASM and cache memory bounded.
 */
export function encodeInPieces(text: string, encodePiece: (s: string) => Uint32Array, chunk = 1 << 20): Uint32Array {
  if (text.length <= chunk) return encodePiece(text);
  const parts: Uint32Array[] = [];
  let start = 0, total = 0;
  while (start < text.length) {
    let end = text.length;
    if (text.length - start > chunk) {
      end = -1;
      for (let p = start + chunk; p < text.length; p++) {
        if (text.charCodeAt(p) === 10 && !isWhiteSpace(text.charCodeAt(p - 1))) { end = p; break; }
      }
      if (end < 0) end = text.length;
    }
    const ids = encodePiece(text.slice(start, end));
    parts.push(ids); total += ids.length;
    start = end;
  }
  const out = new Uint32Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Piecewise encoding where it is proven exact (GPT-2's pattern), else in one go. */
function encodeLong(text: string, pattern: string, encodePiece: (s: string) => Uint32Array): Uint32Array {
  return pattern === GPT2_PATTERN ? encodeInPieces(text, encodePiece) : encodePiece(text);
}

/** Wraps a tiktoken encoding whose only special token is EOT; `pattern` is its pre-tokenization regex. */
function tiktokenTokenizer(name: string, vocabSize: number, eotToken: number, pattern: string, enc: TiktokenEncoding, json: () => TokenizerJSON): Tokenizer {
  let live: TiktokenEncoding | undefined = enc;
  const get = (): TiktokenEncoding => {
    if (live === undefined) throw new Error(`tokenizer ${name} was freed and cannot be used any more`);
    return live;
  };
  const decodeBytes = (ids: ArrayLike<number>) => get().decode(checkIds(ids, vocabSize, name));
  return {
    name, vocabSize, eotToken,
    encode: (text) => encodeLong(text, pattern, (s) => get().encode_ordinary(s)),
    decode: (ids) => utf8.decode(decodeBytes(ids)),
    decodeBytes,
    toJSON: json,
    free: () => { live?.free(); live = undefined; },
  };
}

/** GPT-2's tokenizer (50257 ids, EOT 50256) through tiktoken. Creating one takes ~0.3 s. */
export function gpt2Tokenizer(): Tokenizer {
  const enc = tiktoken().get_encoding("gpt2");
  return tiktokenTokenizer("gpt2", 50257, 50256, GPT2_PATTERN, enc, () => ({
    kind: "gpt2", name: "gpt2", vocabSize: 50257, eotToken: 50256, encoder: `tiktoken@${TIKTOKEN_VERSION} gpt2`,
  }));
}

/** UTF-8 bytes as ids 0..255, EOT = 256 (vocab 257). */
export function byteTokenizer(): Tokenizer {
  const eotBytes = utf8Bytes(EOT_TEXT);
  const decodeBytes = (ids: ArrayLike<number>): Uint8Array => {
    const checked = checkIds(ids, 257, "byte");
    let eots = 0;
    for (let i = 0; i < checked.length; i++) if (checked[i] === 256) eots++;
    if (eots === 0) return Uint8Array.from(checked);
    const out = new Uint8Array(checked.length + eots * (eotBytes.length - 1));
    let o = 0;
    for (let i = 0; i < checked.length; i++) {
      if (checked[i] === 256) { out.set(eotBytes, o); o += eotBytes.length; } else out[o++] = checked[i];
    }
    return out;
  };
  return {
    name: "byte", vocabSize: 257, eotToken: 256,
    encode: (text) => Uint32Array.from(utf8Bytes(text)),
    decode: (ids) => utf8.decode(decodeBytes(ids)),
    decodeBytes,
    toJSON: () => ({ kind: "byte", name: "byte", vocabSize: 257, eotToken: 256 }),
    free: () => {},
  };
}

export interface BpeTokenizerOptions {
  /** "tiktoken" (default, WASM, fast) or "ts" (the plain TypeScript twin in bpe-encode.ts) */
  engine?: "tiktoken" | "ts";
}

/** base64(bytes) + " " + rank per line: tiktoken's `.tiktoken` ranks format. */
function tiktokenRanks(tokenBytes: readonly Uint8Array[]): string {
  return tokenBytes.map((b, rank) => `${Buffer.from(b).toString("base64")} ${rank}`).join("\n");
}

/**
 * Our trained byte-level BPE: ids 0..255 are bytes, 256+i is merge i, EOT is the last id.
 * Encodes with tiktoken's custom ranks (rank = id) or, with engine "ts", the TS twin; both
 * give the same ids.
 */
export function bpeTokenizer(model: BpeModel, opts: BpeTokenizerOptions = {}): Tokenizer {
  validateBpeModel(model, "BPE model");
  const vocabSize = bpeVocabSize(model);
  const eotToken = vocabSize - 1;
  const name = `bpe-${vocabSize}`;
  const tokenBytes = tokenBytesFromMerges(model.merges);
  const json = (): TokenizerJSON => ({ kind: "bpe", name, vocabSize, eotToken, pattern: model.pattern, merges: model.merges.map(([l, r]) => [l, r]) });
  if ((opts.engine ?? "tiktoken") === "tiktoken") {
    const enc = new (tiktoken().Tiktoken)(tiktokenRanks(tokenBytes), { [EOT_TEXT]: eotToken }, model.pattern);
    return tiktokenTokenizer(name, vocabSize, eotToken, model.pattern, enc, json);
  }
  const encoder = new RankEncoder(tokenBytes, model.pattern);
  const allBytes = [...tokenBytes, utf8Bytes(EOT_TEXT)];
  const decodeBytes = (ids: ArrayLike<number>): Uint8Array => {
    const checked = checkIds(ids, vocabSize, name);
    let len = 0;
    for (let i = 0; i < checked.length; i++) len += allBytes[checked[i]].length;
    const out = new Uint8Array(len);
    let o = 0;
    for (let i = 0; i < checked.length; i++) { const b = allBytes[checked[i]]; out.set(b, o); o += b.length; }
    return out;
  };
  return {
    name, vocabSize, eotToken,
    encode: (text) => encodeLong(text, model.pattern, (s) => encoder.encodeOrdinary(s)),
    decode: (ids) => utf8.decode(decodeBytes(ids)),
    decodeBytes,
    toJSON: json,
    free: () => {},
  };
}

/** Check a BPE model's merges: ids in range, token byte strings unique. Throws FileFormatError naming `source`. */
export function validateBpeModel(model: BpeModel, source: string): void {
  if (typeof model !== "object" || model === null) throw new FileFormatError(source, "BPE model is not an object");
  if (typeof model.pattern !== "string" || model.pattern.length === 0) throw new FileFormatError(source, "BPE model has no pre-tokenization pattern (string)");
  if (!Array.isArray(model.merges)) throw new FileFormatError(source, "BPE model has no merges array");
  if (256 + model.merges.length + 1 > MAX_BPE_VOCAB) throw new FileFormatError(source, `BPE model has ${model.merges.length} merges; at most ${MAX_BPE_VOCAB - 257} are supported`);
  const seen = new Set<string>();
  for (let b = 0; b < 256; b++) seen.add(String.fromCharCode(b));
  const strs: string[] = [...seen];
  model.merges.forEach((m, i) => {
    const id = 256 + i;
    if (!Array.isArray(m) || m.length !== 2 || !m.every((x) => Number.isInteger(x) && x >= 0 && x < id)) {
      throw new FileFormatError(source, `merge ${i} (token ${id}) must be a pair of earlier token ids [left, right] with ids < ${id}, got ${JSON.stringify(m)}`);
    }
    const s = strs[m[0]] + strs[m[1]];
    if (seen.has(s)) throw new FileFormatError(source, `merge ${i} (token ${id}) repeats the bytes of an earlier token; the model is corrupt`);
    seen.add(s); strs.push(s);
  });
  try { jsPattern(model.pattern); } catch (e) {
    throw new FileFormatError(source, `BPE pre-tokenization pattern does not compile: ${(e as Error).message}`);
  }
}

/**
 * Rebuild a tokenizer from `toJSON()` output (e.g. a parsed tokenizer.json or a checkpoint's
 * field). `source` names the file in errors.
 */
export function tokenizerFromJSON(obj: unknown, source = "tokenizer.json", opts: BpeTokenizerOptions = {}): Tokenizer {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new FileFormatError(source, "tokenizer description must be a JSON object");
  const o = obj as Record<string, unknown>;
  const expect = (field: string, value: unknown) => {
    if (o[field] !== value) throw new FileFormatError(source, `tokenizer ${String(o.kind)}: ${field} is ${JSON.stringify(o[field])}, expected ${JSON.stringify(value)}`);
  };
  switch (o.kind) {
    case "gpt2":
      expect("vocabSize", 50257); expect("eotToken", 50256);
      return gpt2Tokenizer();
    case "byte":
      expect("vocabSize", 257); expect("eotToken", 256);
      return byteTokenizer();
    case "bpe": {
      const model = { pattern: o.pattern, merges: o.merges } as BpeModel;
      validateBpeModel(model, source);
      const vocabSize = bpeVocabSize(model);
      expect("vocabSize", vocabSize); expect("eotToken", vocabSize - 1);
      return bpeTokenizer(model, opts);
    }
    default:
      throw new FileFormatError(source, `unknown tokenizer kind ${JSON.stringify(o.kind)}; expected "gpt2", "byte" or "bpe"`);
  }
}

/** Read a tokenizer.json written by `fp4lm prepare` (or `JSON.stringify(tokenizer)`). */
export function loadTokenizer(file: string, opts: BpeTokenizerOptions = {}): Tokenizer {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) {
    throw new Fp4lmError(`cannot read tokenizer file ${file}: ${(e as Error).message}`);
  }
  let obj: unknown;
  try { obj = JSON.parse(text); } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  return tokenizerFromJSON(obj, file, opts);
}

export { EOT_TEXT, GPT2_PATTERN };
