/**
 * Hugging Face tokenizer files for an fp4lm tokenizer, so that `AutoTokenizer.from_pretrained` on
 * an exported folder encodes text to the ids the model was trained on:
 *   gpt2 (tiktoken's ranks)  → vocab.json + merges.txt (GPT-2's own layout; the merges recovered
 *                              from the ranks), tokenizer.json, tokenizer_config.json
 *                              (GPT2Tokenizer), special_tokens_map.json;
 *   bpe (bpe-train.ts), byte → tokenizer.json (our pattern and merges), tokenizer_config.json
 *                              (PreTrainedTokenizerFast), special_tokens_map.json.
 * All are byte-level BPE as GPT-2's: each byte is a printable character (`bytes_to_unicode`),
 * pieces are split by the pre-tokenization regex, then merged pair by pair in merge order.
 *
 * Exactness. tiktoken merges the adjacent pair whose concatenation has the lowest rank; HF merges
 * the adjacent pair listed earliest in `merges`. With one merge per token (token 256+i = merge i,
 * for gpt2 the split that the lower ranks themselves produce) the two agree whenever a piece
 * never holds an adjacent pair whose bytes are a token but which is not that token's merge. No
 * text where that happens on a BPE-trained vocabulary is known to us (hf-tokenizer.test.ts checks
 * against tiktoken and our encoder; checked once with `tokenizers` 0.23 on the bundled corpora,
 * fuzzed strings and random code points: no difference, with or without ignore_merges).
 * `ignore_merges: true` makes HF take a piece that is a whole token as that token, as tiktoken
 * does. The one known difference: HF treats the text "<|endoftext|>" as the special EOT token,
 * fp4lm's `encode` treats it as ordinary text.
 * Patterns other than GPT-2's go into a `Split` pre-tokenizer in tiktoken's regex syntax, which
 * the Oniguruma engine of `tokenizers` reads the same way for the constructs pre-tokenizers use
 * (`\p{L}`, `\p{N}`, `\s`, `(?!\S)`, alternation, classes); such a pattern must match every
 * character, as GPT-2's does: tiktoken drops text no alternative matches, HF keeps it.
 * Method: GPT-2 `encoder.py` (bytes_to_unicode, merges), tiktoken `load.py` / transformers'
 * tiktoken conversion (merges from ranks), `tokenizers` tokenizer.json format (v0.20+).
 */
import { createRequire } from "node:module";
import { EOT_TEXT, GPT2_PATTERN, tokenBytesFromMerges } from "../data/bpe-encode.ts";
import type { TokenizerJSON } from "../data/tokenizer.ts";
import { Fp4lmError } from "../errors.ts";

/** GPT-2's byte → printable character map: printable Latin-1 bytes map to themselves, the rest to U+0100 on. */
export function bytesToUnicode(): string[] {
  const map: string[] = new Array(256);
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCharCode(keep(b) ? b : 256 + n++);
  return map;
}

const latin1 = (b: Uint8Array, from = 0, to = b.length) => {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]);
  return s;
};

/**
 * The merge that creates each multi-byte token of a rank table (`tokenBytes[rank]`), in rank
 * order: BPE-encode the token's bytes with the lower ranks only (tiktoken's rule: lowest-ranked
 * adjacent concatenation first, leftmost on ties); the two parts left are its merge. Throws when
 * a token does not end as two parts (the table is not a BPE vocabulary).
 */
export function mergesFromRanks(tokenBytes: readonly Uint8Array[]): Array<[number, number]> {
  const rank = new Map<string, number>();
  tokenBytes.forEach((b, r) => rank.set(latin1(b), r));
  const merges: Array<[number, number]> = [];
  tokenBytes.forEach((bytes, r) => {
    if (bytes.length < 2) return;
    const starts = Array.from({ length: bytes.length + 1 }, (_, i) => i);
    for (;;) {
      let best = r, at = -1;
      for (let i = 0; i + 2 < starts.length; i++) {
        const k = rank.get(latin1(bytes, starts[i], starts[i + 2]));
        if (k !== undefined && k < best) { best = k; at = i; }
      }
      if (at < 0) break;
      starts.splice(at + 1, 1);
    }
    if (starts.length !== 3) {
      throw new Fp4lmError(`rank ${r} (${bytes.length} bytes) ends as ${starts.length - 1} parts under the lower ranks, not 2: not a BPE vocabulary, no merges.txt can reproduce it`);
    }
    merges.push([rank.get(latin1(bytes, 0, starts[1]))!, rank.get(latin1(bytes, starts[1]))!]);
  });
  return merges;
}

/** A byte-level BPE as HF needs it: token bytes by id (EOT excluded), merges in order, the pattern. */
interface ByteLevelBpe {
  tokenBytes: Uint8Array[];
  merges: Array<[number, number]>;
  eotToken: number;
  pattern: string;
  gpt2: boolean;
}

/** GPT-2's token bytes in rank order (= ids 0..50255), from the tiktoken package's data. */
function gpt2TokenBytes(): Uint8Array[] {
  let tk: typeof import("tiktoken");
  try {
    tk = createRequire(import.meta.url)("tiktoken") as typeof import("tiktoken");
  } catch (e) {
    throw new Fp4lmError(`cannot load the npm package tiktoken (${(e as Error).message}); run npm ci in the fp4lm checkout`);
  }
  const enc = tk.get_encoding("gpt2");
  try {
    return Array.from({ length: 50256 }, (_, i) => enc.decode_single_token_bytes(i));
  } finally {
    enc.free();
  }
}

let gpt2Cache: ByteLevelBpe | undefined;

function byteLevelBpe(tok: TokenizerJSON): ByteLevelBpe {
  switch (tok.kind) {
    case "gpt2": {
      if (!gpt2Cache) {
        const tokenBytes = gpt2TokenBytes();
        const merges = mergesFromRanks(tokenBytes);
        // ids 256.. are the merges in order (GPT-2's encoder.json was built that way)
        merges.forEach(([l, r], i) => {
          const want = latin1(tokenBytes[256 + i]);
          if (latin1(tokenBytes[l]) + latin1(tokenBytes[r]) !== want) throw new Fp4lmError(`gpt2 rank ${256 + i}: recovered merge does not rebuild the token`);
        });
        gpt2Cache = { tokenBytes, merges, eotToken: 50256, pattern: GPT2_PATTERN, gpt2: true };
      }
      return gpt2Cache;
    }
    case "byte":
      return { tokenBytes: tokenBytesFromMerges([]), merges: [], eotToken: 256, pattern: GPT2_PATTERN, gpt2: false };
    case "bpe":
      return { tokenBytes: tokenBytesFromMerges(tok.merges), merges: tok.merges, eotToken: tok.eotToken, pattern: tok.pattern, gpt2: false };
  }
}

export interface HfTokenizerFile {
  name: string;
  text: string;
}

/**
 * The HF tokenizer files of an fp4lm tokenizer, or `{ skipped: reason }` when they cannot be exact.
 * `modelMaxLength` is written as model_max_length (the model's sequence length).
 */
export function hfTokenizerFiles(tok: TokenizerJSON, modelMaxLength: number): { files: HfTokenizerFile[] } | { skipped: string } {
  const bpe = byteLevelBpe(tok);
  const u = bytesToUnicode();
  const str = (b: Uint8Array) => { let s = ""; for (const x of b) s += u[x]; return s; };
  const names = bpe.tokenBytes.map(str);
  const vocab: Record<string, number> = {};
  names.forEach((n, id) => { vocab[n] = id; });
  if (EOT_TEXT in vocab) {
    return { skipped: `token ${vocab[EOT_TEXT]} has the bytes of "${EOT_TEXT}", the name HF needs for the end-of-text token ${bpe.eotToken}` };
  }
  vocab[EOT_TEXT] = bpe.eotToken;
  const merges = bpe.merges.map(([l, r]) => `${names[l]} ${names[r]}`);
  const eot = { id: bpe.eotToken, content: EOT_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const byteLevel = (usesRegex: boolean) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: usesRegex });
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [eot],
    normalizer: null,
    pre_tokenizer: bpe.pattern === GPT2_PATTERN
      ? byteLevel(true)
      : { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: bpe.pattern }, behavior: "Isolated", invert: false }, byteLevel(false)] },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false,
      byte_fallback: false, ignore_merges: true, vocab, merges,
    },
  };
  const special = { bos_token: EOT_TEXT, eos_token: EOT_TEXT, ...(bpe.gpt2 ? { unk_token: EOT_TEXT } : {}) };
  const tokenizerConfig = {
    tokenizer_class: bpe.gpt2 ? "GPT2Tokenizer" : "PreTrainedTokenizerFast",
    ...special,
    add_bos_token: false,
    ...(bpe.gpt2 ? { add_prefix_space: false } : {}),
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    added_tokens_decoder: { [String(bpe.eotToken)]: { ...eot, id: undefined } },
  };
  const json = (o: unknown, indent?: number) => JSON.stringify(o, null, indent) + "\n";
  const files: HfTokenizerFile[] = [
    { name: "tokenizer.json", text: json(tokenizerJson) },
    { name: "tokenizer_config.json", text: json(tokenizerConfig, 2) },
    { name: "special_tokens_map.json", text: json(special, 2) },
  ];
  if (bpe.gpt2) {
    files.push({ name: "vocab.json", text: json(vocab) }, { name: "merges.txt", text: `#version: 0.2\n${merges.join("\n")}\n` });
  }
  return { files };
}
