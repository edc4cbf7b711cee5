import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { GPT2_PATTERN, RankEncoder } from "./bpe-encode.ts";
import { trainBpe } from "./bpe-train.ts";
import { loadBundledCorpus, splitTrainVal } from "./corpus.ts";
import { bpeTokenizer, byteTokenizer, encodeInPieces, gpt2Tokenizer, tokenizerFromJSON, type Tokenizer } from "./tokenizer.ts";

/** Strings that stress pre-tokenization: contractions, every kind of whitespace, astral chars, marks. */
const TRICKY = [
  "Hello world",
  "x\u0085y \ufeffz\u00a0\u00a0a  \n\n b\t\t\n",
  "I'm can't we'll THEY'LL 's 'S '' 'x",
  "日本語のテキスト 😀😀 👩‍👩‍👧 e\u0301 café",
  "   leading\r\n\r\ncrlf   ",
  "12345 3.14159 ½ ٣٤ Ⅻ",
  "a\u2028b\u3000c\u1680d\u200be\u180ef",
  "<|endoftext|> foo <|endoftext|>",
  "\u0000\u0001\u007f\ud7ff\ue000\uffff \u{10ffff}",
  "wow!!!??? ... ---- ====\n",
  "",
  " ",
  "\n",
];

/** Seeded random strings over a pool of awkward pieces. */
function fuzzStrings(seed: number, count: number): string[] {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pool = [" ", "  ", "\n", "\t", "\r\n", "\u0085", "\u00a0", "\ufeff", "'", "'s", "ll", "a", "Z", "the", "1", "42", "٣", "日", "😀", "é", "e\u0301", ".", "!", "\u2029", "\u000b", "\u001c", "\u200b", "—", "“"];
  return Array.from({ length: count }, () => {
    let out = "";
    const n = 1 + Math.floor(rnd() * 24);
    for (let i = 0; i < n; i++) out += pool[Math.floor(rnd() * pool.length)];
    return out;
  });
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => assert.deepEqual(Array.from(a), Array.from(b));

test("gpt2: known GPT-2 ids, EOT, ordinary text only", () => {
  const g = gpt2Tokenizer();
  try {
    assert.equal(g.vocabSize, 50257);
    assert.equal(g.eotToken, 50256);
    same(g.encode("Hello world"), [15496, 995]);
    same(g.encode("Hello, world!"), [15496, 11, 995, 0]);
    same(g.encode(" the"), [262]);
    assert.equal(g.decode([50256]), "<|endoftext|>");
    assert.ok(!g.encode("<|endoftext|>").includes(50256), "the EOT text in input must be ordinary text");
    for (const s of [...TRICKY, ...fuzzStrings(1, 200)]) assert.equal(g.decode(g.encode(s)), s);
    assert.throws(() => g.decode([50257]), Fp4lmError);
  } finally {
    g.free();
  }
});

test("TS twin on GPT-2's own ranks gives tiktoken's ids (regex dialect and merge rule)", () => {
  const tk = createRequire(import.meta.url)("tiktoken") as typeof import("tiktoken");
  const enc = tk.get_encoding("gpt2");
  try {
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < 50256; i++) bytes.push(enc.decode_single_token_bytes(i));
    const twin = new RankEncoder(bytes, GPT2_PATTERN);
    for (const s of [...TRICKY, ...fuzzStrings(2, 1500)]) same(twin.encodeOrdinary(s), enc.encode_ordinary(s));
  } finally {
    enc.free();
  }
});

test("encodeInPieces splits long text without changing the ids", () => {
  const g = gpt2Tokenizer();
  try {
    const text = loadBundledCorpus().slice(0, 60_000) + fuzzStrings(3, 300).join("\n");
    const whole = g.encode(text.slice(0, 2000)); // below the default chunk: one call
    const pieces = (s: string) => encodeInPieces(s, (p) => g.encode(p), 997);
    same(pieces(text.slice(0, 2000)), whole);
    same(pieces(text), g.encode(text));
  } finally {
    g.free();
  }
});

test("byte tokenizer: UTF-8 bytes, EOT 256, exact round trip", () => {
  const b = byteTokenizer();
  same(b.encode("aé😀"), [97, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
  assert.equal(b.decode([104, 105, 256, 33]), "hi<|endoftext|>!");
  same(b.decodeBytes([1, 256]), [1, ...Buffer.from("<|endoftext|>")]);
  for (const s of [...TRICKY, ...fuzzStrings(4, 100)]) assert.equal(b.decode(b.encode(s)), s);
  assert.throws(() => b.decode([257]), /outside the byte vocabulary/);
  assert.deepEqual(tokenizerFromJSON(JSON.parse(JSON.stringify(b))).toJSON(), b.toJSON());
});

test("bpe: tiktoken custom ranks and the TS twin agree on held-out text; exact round trip of unseen bytes", () => {
  const { train, val } = splitTrainVal(loadBundledCorpus().slice(0, 300_000), 0.1);
  const model = trainBpe(train, 1024);
  const fast = bpeTokenizer(model), twin = bpeTokenizer(model, { engine: "ts" });
  try {
    assert.equal(fast.vocabSize, 1024);
    assert.equal(fast.eotToken, 1023);
    assert.equal(fast.name, "bpe-1024");
    const ids = fast.encode(val);
    same(twin.encode(val), ids);
    assert.ok(ids.length < Buffer.byteLength(val) / 2, `expected compression, got ${ids.length} ids for ${val.length} chars`);
    assert.equal(fast.decode(ids), val);
    for (const s of [...TRICKY, ...fuzzStrings(5, 400)]) {
      const a = fast.encode(s);
      same(twin.encode(s), a);
      assert.equal(fast.decode(a), s);
      assert.equal(twin.decode(a), s);
      assert.ok(!a.includes(fast.eotToken));
    }
    assert.equal(fast.decode([fast.eotToken]), "<|endoftext|>");
    assert.equal(twin.decode([fast.eotToken]), "<|endoftext|>");
    assert.throws(() => fast.decode([1024]), Fp4lmError);
  } finally {
    fast.free();
  }
});

test("tokenizerFromJSON restores every kind with identical ids", () => {
  const model = trainBpe(loadBundledCorpus().slice(0, 50_000), 400);
  const text = "Call me Ishmael. Some years ago—never mind how long precisely 😀";
  const made: Tokenizer[] = [gpt2Tokenizer(), byteTokenizer(), bpeTokenizer(model)];
  for (const t of made) {
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(t)));
    try {
      assert.equal(back.name, t.name);
      assert.equal(back.vocabSize, t.vocabSize);
      same(back.encode(text), t.encode(text));
    } finally {
      back.free(); t.free();
    }
  }
});

test("tokenizerFromJSON rejects damaged descriptions with FileFormatError naming the source", () => {
  const model = trainBpe("the cat sat on the mat, the end", 270);
  const good = bpeTokenizer(model, { engine: "ts" }).toJSON() as { merges: number[][]; vocabSize: number };
  const bad: Array<[unknown, RegExp]> = [
    [null, /JSON object/],
    [{ kind: "sentencepiece" }, /unknown tokenizer kind/],
    [{ kind: "gpt2", vocabSize: 50000, eotToken: 50256 }, /vocabSize/],
    [{ ...good, vocabSize: good.vocabSize + 1 }, /vocabSize/],
    [{ ...good, merges: [[0, 300], ...good.merges.slice(1)] }, /merge 0/],
    [{ ...good, merges: [...good.merges, good.merges[0]] }, /repeats the bytes/],
    [{ ...good, merges: "x" }, /no merges/],
  ];
  for (const [obj, re] of bad) {
    assert.throws(() => tokenizerFromJSON(obj, "run/tokenizer.json"), (e: unknown) => {
      assert.ok(e instanceof FileFormatError, `expected FileFormatError for ${JSON.stringify(obj)?.slice(0, 60)}, got ${String(e)}`);
      assert.equal(e.file, "run/tokenizer.json");
      assert.match(e.message, re);
      return true;
    });
  }
});
