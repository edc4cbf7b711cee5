/**
 * HF tokenizer files: a small reader of the exported files (GPT-2's bytes_to_unicode written
 * afresh here, tokenizer.json's vocab and merges, HF's BPE rule: lowest-listed adjacent merge
 * first, leftmost on ties, with and without `ignore_merges`) encodes text to the ids of fp4lm's
 * tokenizers: tiktoken for gpt2, our trained BPE, bytes. Also: vocab.json / merges.txt match
 * tokenizer.json, known GPT-2 entries, merges recovered from ranks, the export wiring, and the
 * case where the files are skipped. `transformers` itself: test/interop_check.py (GPU machine).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveCheckpoint } from "../checkpoint/checkpoint.ts";
import { EOT_TEXT, GPT2_PATTERN, jsPattern, tokenBytesFromMerges } from "../data/bpe-encode.ts";
import { trainBpe, type BpeModel } from "../data/bpe-train.ts";
import { loadBundledCorpus } from "../data/corpus.ts";
import { bpeTokenizer, byteTokenizer, gpt2Tokenizer, type Tokenizer } from "../data/tokenizer.ts";
import { initValues } from "../nn/param.ts";
import { buildConfig } from "../train/config.ts";
import { hfNames } from "./hf-config.ts";
import { exportHf } from "./hf-export.ts";
import { bytesToUnicode, hfTokenizerFiles, mergesFromRanks, type HfTokenizerFile } from "./hf-tokenizer.ts";

/** GPT-2 encoder.py's bytes_to_unicode, transcribed: printable ranges keep their code point, the rest get 256, 257, ... */
function gpt2ByteMap(): Map<number, string> {
  const bs: number[] = [];
  for (const [lo, hi] of [[0x21, 0x7e], [0xa1, 0xac], [0xae, 0xff]]) for (let b = lo; b <= hi; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  return new Map(bs.map((b, i) => [b, String.fromCharCode(cs[i])]));
}

interface HfTokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  pre_tokenizer: { type: string; use_regex?: boolean; pretokenizers?: { type: string; pattern?: { Regex: string }; use_regex?: boolean }[] };
  model: { type: string; vocab: Record<string, number>; merges: string[]; ignore_merges: boolean };
}

/** An encoder that reads only the exported tokenizer.json, with HF's BPE rule. */
function hfReader(json: HfTokenizerJson, ignoreMerges: boolean): (text: string) => number[] {
  assert.equal(json.model.type, "BPE");
  const vocab = new Map(Object.entries(json.model.vocab));
  const rank = new Map(json.model.merges.map((m, i) => [m, i]));
  const pre = json.pre_tokenizer;
  const pattern = pre.type === "ByteLevel" ? (assert.equal(pre.use_regex, true), GPT2_PATTERN) : pre.pretokenizers![0].pattern!.Regex;
  const byteMap = gpt2ByteMap();
  return (text) => {
    const ids: number[] = [];
    for (const m of text.matchAll(jsPattern(pattern))) {
      let sym = [...Buffer.from(m[0], "utf8")].map((b) => byteMap.get(b)!);
      const whole = sym.join("");
      if (ignoreMerges && vocab.has(whole)) { ids.push(vocab.get(whole)!); continue; }
      for (;;) {
        let best = Infinity, at = -1;
        for (let i = 0; i + 1 < sym.length; i++) {
          const r = rank.get(`${sym[i]} ${sym[i + 1]}`);
          if (r !== undefined && r < best) { best = r; at = i; }
        }
        if (at < 0) break;
        sym = [...sym.slice(0, at), sym[at] + sym[at + 1], ...sym.slice(at + 2)];
      }
      for (const s of sym) {
        const id = vocab.get(s);
        assert.ok(id !== undefined, `symbol ${JSON.stringify(s)} of ${JSON.stringify(m[0])} is not in the vocabulary`);
        ids.push(id);
      }
    }
    return ids;
  };
}

/** Seeded strings over awkward pieces: whitespace kinds, contractions, astral chars, repeats. */
function fuzzStrings(seed: number, count: number): string[] {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pool = [" ", "  ", "\n", "\t", "\r\n", "\u0085", "\u00a0", "\ufeff", "'", "'s", "ll", "a", "Z", "the", " the", "ing", "1", "42", "٣", "日",
    "😀", "é", "e\u0301", ".", "!", "\u2029", "\u000b", "\u200b", "—", "“", "aaaa", "----", "ab", "ba"];
  return Array.from({ length: count }, () => {
    let out = "";
    const n = 1 + Math.floor(rnd() * 24);
    for (let i = 0; i < n; i++) out += pool[Math.floor(rnd() * pool.length)];
    return out;
  });
}

const filesOf = (r: ReturnType<typeof hfTokenizerFiles>): Map<string, string> => {
  assert.ok("files" in r, `tokenizer files skipped: ${"skipped" in r ? r.skipped : ""}`);
  return new Map((r.files as HfTokenizerFile[]).map((f) => [f.name, f.text]));
};

function sameIds(tok: Tokenizer, files: Map<string, string>, texts: string[]): void {
  const json = JSON.parse(files.get("tokenizer.json")!) as HfTokenizerJson;
  for (const ignore of [true, false]) {
    const enc = hfReader(json, ignore);
    for (const s of texts) assert.deepEqual(enc(s), Array.from(tok.encode(s)), `${tok.name} (ignore_merges ${ignore}): ${JSON.stringify(s.slice(0, 60))}`);
  }
}

const TEXTS = [
  "Hello world", "Call me Ishmael. Some years ago—never mind how long precisely—", "I'm can't we'll THEY'LL 's 'S '' 'x",
  "x\u0085y \ufeffz\u00a0\u00a0a  \n\n b\t\t\n", "日本語のテキスト 😀😀 👩‍👩‍👧 e\u0301 café", "   leading\r\n\r\ncrlf   ", "12345 3.14159 ½ ٣٤ Ⅻ",
  "wow!!!??? ... ---- ====\n", "", " ", "\n",
];

test("bytesToUnicode is GPT-2's map: 256 distinct printable characters, ' ' → 'Ġ', '\\n' → 'Ċ', 'a' → 'a'", () => {
  const u = bytesToUnicode(), ref = gpt2ByteMap();
  assert.equal(new Set(u).size, 256);
  for (let b = 0; b < 256; b++) assert.equal(u[b], ref.get(b), `byte ${b}`);
  assert.deepEqual([u[32], u[10], u[97], u[0], u[255]], ["Ġ", "Ċ", "a", "Ā", "ÿ"]);
});

test("mergesFromRanks recovers a trained BPE's merges exactly and refuses a table that is not BPE", () => {
  const model = trainBpe(loadBundledCorpus().slice(0, 60_000), 700);
  assert.deepEqual(mergesFromRanks(tokenBytesFromMerges(model.merges)), model.merges);
  const bytes = tokenBytesFromMerges([]);
  const notBpe = [...bytes, Uint8Array.from(Buffer.from("abc"))]; // "abc" with neither "ab" nor "bc" below it
  assert.throws(() => mergesFromRanks(notBpe), /rank 256 \(3 bytes\) ends as 3 parts under the lower ranks, not 2/);
});

test("gpt2: vocab.json, merges.txt and tokenizer.json agree, hold GPT-2's entries, and encode as tiktoken does", () => {
  const g = gpt2Tokenizer();
  try {
    const files = filesOf(hfTokenizerFiles(g.toJSON(), 1024));
    assert.deepEqual([...files.keys()].sort(), ["merges.txt", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json"]);
    const vocab = JSON.parse(files.get("vocab.json")!) as Record<string, number>;
    const mergesTxt = files.get("merges.txt")!.split("\n");
    assert.equal(mergesTxt[0], "#version: 0.2");
    assert.equal(mergesTxt.at(-1), "");
    const merges = mergesTxt.slice(1, -1);
    assert.equal(Object.keys(vocab).length, 50257);
    assert.equal(merges.length, 50000);
    assert.deepEqual([vocab["!"], vocab["Ġthe"], vocab["Hello"], vocab["Ġworld"], vocab[EOT_TEXT]], [0, 262, 15496, 995, 50256]);
    assert.deepEqual(merges.slice(0, 3), ["Ġ t", "Ġ a", "h e"]);
    const json = JSON.parse(files.get("tokenizer.json")!) as HfTokenizerJson;
    assert.deepEqual(json.model.vocab, vocab);
    assert.deepEqual(json.model.merges, merges);
    assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [[50256, EOT_TEXT, true]]);
    const cfg = JSON.parse(files.get("tokenizer_config.json")!);
    assert.deepEqual([cfg.tokenizer_class, cfg.eos_token, cfg.bos_token, cfg.add_bos_token, cfg.model_max_length], ["GPT2Tokenizer", EOT_TEXT, EOT_TEXT, false, 1024]);
    // each merge builds the token with the next id (GPT-2's encoder.json order)
    merges.forEach((m, i) => assert.equal(vocab[m.replace(" ", "")], 256 + i, m));
    sameIds(g, files, [...TEXTS, ...loadBundledCorpus("sotu").slice(0, 20_000).split("\n"), ...fuzzStrings(3, 300)]);
  } finally {
    g.free();
  }
});

test("our BPE and bytes: tokenizer.json encodes held-out text, unseen bytes and fuzz as fp4lm does", () => {
  const corpus = loadBundledCorpus();
  const bpe = bpeTokenizer(trainBpe(corpus.slice(0, 200_000), 900));
  const heldOut = [...TEXTS, ...corpus.slice(600_000, 640_000).split("\n"), ...fuzzStrings(5, 400)];
  const files = filesOf(hfTokenizerFiles(bpe.toJSON(), 64));
  assert.deepEqual([...files.keys()].sort(), ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]);
  const json = JSON.parse(files.get("tokenizer.json")!) as HfTokenizerJson;
  assert.equal(Object.keys(json.model.vocab).length, bpe.vocabSize);
  assert.equal(json.model.vocab[EOT_TEXT], bpe.eotToken);
  assert.equal(json.model.merges.length, bpe.vocabSize - 257);
  assert.equal(JSON.parse(files.get("tokenizer_config.json")!).tokenizer_class, "PreTrainedTokenizerFast");
  sameIds(bpe, files, heldOut);
  // a pattern other than GPT-2's goes into a Split pre-tokenizer
  const digits = bpeTokenizer(trainBpe(corpus.slice(0, 50_000), 400, { pattern: " ?\\p{L}+| ?\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" }));
  const dFiles = filesOf(hfTokenizerFiles(digits.toJSON(), 64));
  const pre = (JSON.parse(dFiles.get("tokenizer.json")!) as HfTokenizerJson).pre_tokenizer;
  assert.deepEqual([pre.type, pre.pretokenizers?.map((p) => p.type), pre.pretokenizers?.[1].use_regex], ["Sequence", ["Split", "ByteLevel"], false]);
  sameIds(digits, dFiles, [...heldOut.slice(0, 200), "1234567 89 12,345.6789"]);
  const bytes = byteTokenizer();
  const bFiles = filesOf(hfTokenizerFiles(bytes.toJSON(), 64));
  assert.equal((JSON.parse(bFiles.get("tokenizer.json")!) as HfTokenizerJson).model.merges.length, 0);
  sameIds(bytes, bFiles, heldOut.slice(0, 100));
});

/** A checkpoint of a tiny model (vocab of `tok`) that exportHf accepts. */
function tinyCheckpoint(dir: string, tok: Tokenizer): string {
  const config = buildConfig(["data.tokenizer=bpe", `model.vocabSize=${tok.vocabSize}`, "model.dModel=16", "model.nLayers=1", "model.nHeads=2",
    "model.nKvHeads=1", "model.dFF=32", "model.seqLen=8", "recipe=bf16", "model.mlp=swiglu"]);
  const params = hfNames(config.model).map((e) => ({ name: e.param, shape: e.shape, data: initValues(e.param, e.shape.reduce((a, b) => a * b, 1), { kind: "normal", std: 0.1 }, 1) }));
  const zeros = () => params.map((p) => ({ ...p, data: new Float32Array(p.data.length) }));
  const path = join(dir, "ckpt.safetensors");
  saveCheckpoint(path, { state: { version: 1, step: 0, optimizerT: 0, config, recipe: config.recipe, tokenizer: tok.toJSON(), loader: null, info: {} }, params, m: zeros(), v: zeros() });
  return path;
}

test("exportHf writes the tokenizer files next to the weights; a vocabulary with a token named <|endoftext|> gets none, and says why", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-hftok-"));
  try {
    const bpe = bpeTokenizer(trainBpe(loadBundledCorpus().slice(0, 30_000), 300));
    const out = join(dir, "hf");
    const r = exportHf(tinyCheckpoint(dir, bpe), out, { dtype: "bf16" });
    assert.equal(r.tokenizerSkipped, undefined);
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) assert.ok(r.files.includes(join(out, f)) && existsSync(join(out, f)), f);
    assert.equal(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).model_type, "llama");
    assert.equal(JSON.parse(readFileSync(join(out, "tokenizer_config.json"), "utf8")).model_max_length, 8);
    const text = "Call me Ishmael, said the whale.";
    assert.deepEqual(hfReader(JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")), true)(text), Array.from(bpe.encode(text)));

    // merges that spell "<|endoftext|>" as an ordinary token
    const chars = [...Buffer.from(EOT_TEXT)];
    const merges: BpeModel["merges"] = chars.slice(1).map((c, i) => [i === 0 ? chars[0] : 255 + i, c]);
    const odd = bpeTokenizer({ pattern: GPT2_PATTERN, merges });
    const oddOut = join(dir, "odd");
    const r2 = exportHf(tinyCheckpoint(dir, odd), oddOut, { dtype: "bf16", overwrite: true });
    assert.match(r2.tokenizerSkipped ?? "", /token 267 has the bytes of "<\|endoftext\|>", the name HF needs for the end-of-text token 268/);
    assert.equal(existsSync(join(oddOut, "tokenizer.json")), false);
    assert.ok(existsSync(join(oddOut, "fp4lm_tokenizer.json")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
