import { test } from "node:test";
import assert from "node:assert/strict";
import { GPT2_PATTERN, jsPattern, tokenBytesFromMerges } from "./bpe-encode.ts";
import { bpeVocabSize, trainBpe, type BpeModel } from "./bpe-train.ts";
import { loadBundledCorpus, splitTrainVal } from "./corpus.ts";
import { bpeTokenizer } from "./tokenizer.ts";

/**
 * The boring twin of trainBpe: recount every pair over every piece occurrence before each merge,
 * same tie-breaking (highest count, then smallest (left, right)), same reuse of existing bytes.
 */
function naiveTrain(text: string, vocabSize: number): Array<[number, number]> {
  const words = [...text.matchAll(jsPattern(GPT2_PATTERN))].map((m) => Array.from(Buffer.from(m[0], "utf8")));
  const bytes = new Map<string, number>();
  const str: string[] = [];
  for (let b = 0; b < 256; b++) { str.push(String.fromCharCode(b)); bytes.set(str[b], b); }
  const merges: Array<[number, number]> = [];
  while (merges.length < vocabSize - 257) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]},${w[i + 1]}`, (counts.get(`${w[i]},${w[i + 1]}`) ?? 0) + 1);
    let best: [number, number] | undefined, bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(",").map(Number);
      if (c > bestCount || (c === bestCount && best !== undefined && (a < best[0] || (a === best[0] && b < best[1])))) { best = [a, b]; bestCount = c; }
    }
    if (best === undefined) break;
    const [a, b] = best;
    let id = bytes.get(str[a] + str[b]);
    if (id === undefined) {
      id = 256 + merges.length;
      merges.push([a, b]);
      str.push(str[a] + str[b]);
      bytes.set(str[id], id);
    }
    for (let w = 0; w < words.length; w++) {
      const out: number[] = [];
      const word = words[w];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) { out.push(id); i++; } else out.push(word[i]);
      }
      words[w] = out;
    }
  }
  return merges;
}

/** Seeded small texts over a tiny alphabet, so pairs repeat, tie, overlap ("aaa") and collide. */
function smallText(seed: number, n: number): string {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pool = ["a", "b", "c", "ab", "bc", "aaa", " ", " ", "\n", "é", "'s", "1"];
  let t = "";
  for (let i = 0; i < n; i++) t += pool[Math.floor(rnd() * pool.length)];
  return t;
}

function checkModel(model: BpeModel): void {
  const bytes = tokenBytesFromMerges(model.merges);
  model.merges.forEach(([l, r], i) => {
    assert.ok(Number.isInteger(l) && Number.isInteger(r) && l >= 0 && r >= 0 && l < 256 + i && r < 256 + i, `merge ${i} = [${l}, ${r}] must use earlier ids`);
  });
  const keys = new Set(bytes.map((b) => Buffer.from(b).toString("latin1")));
  assert.equal(keys.size, bytes.length, "token byte strings must be unique");
}

test("trainBpe equals the recount-everything reference on small random texts", () => {
  for (let seed = 1; seed <= 25; seed++) {
    const text = smallText(seed, 40 + seed * 7);
    for (const vocab of [257, 262, 300]) {
      assert.deepEqual(trainBpe(text, vocab).merges, naiveTrain(text, vocab), `seed ${seed}, vocab ${vocab}`);
    }
  }
});

test("trainBpe equals the reference on real prose", () => {
  const text = loadBundledCorpus().slice(0, 20_000);
  assert.deepEqual(trainBpe(text, 400).merges, naiveTrain(text, 400));
});

test("Moby Dick: vocab 2048 reached, merges valid, deterministic, independent of document order", () => {
  const { train } = splitTrainVal(loadBundledCorpus());
  const t0 = performance.now();
  const model = trainBpe(train, 2048);
  const seconds = (performance.now() - t0) / 1e3;
  assert.equal(bpeVocabSize(model), 2048);
  assert.equal(model.pattern, GPT2_PATTERN);
  checkModel(model);
  assert.ok(seconds < 10, `training 2048 on 1.1 MB took ${seconds.toFixed(1)} s; the incremental trainer should take ~1 s`);
  // The first merges of English prose: " t", "he", ...
  const bytes = tokenBytesFromMerges(model.merges).map((b) => Buffer.from(b).toString("utf8"));
  assert.deepEqual(bytes.slice(256, 260), [" t", "he", " a", "in"]);
  assert.ok(bytes.includes(" the") && bytes.includes(" whale"));
  // Same text → same merges; pieces' order does not matter (counts, not positions, decide).
  const half = Math.floor(train.length / 2);
  const cut = train.indexOf("\n\n", half) + 2;
  assert.deepEqual(trainBpe([train.slice(cut), train.slice(0, cut)], 2048).merges, model.merges);
});

test("round trip of text full of bytes never seen in training", () => {
  const model = trainBpe("abc abc abd", 300);
  assert.ok(bpeVocabSize(model) < 300, "a tiny text runs out of pairs before the vocabulary is full");
  checkModel(model);
  const tok = bpeTokenizer(model);
  try {
    const raw = new Uint8Array(512);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) & 0xff;
    const s = "abc " + new TextDecoder().decode(raw) + "\u0000😀 日本 \ud7ff";
    assert.equal(tok.decode(tok.encode(s)), s);
  } finally {
    tok.free();
  }
});

test("trainBpe: minFrequency stops early; bad vocab sizes are refused", () => {
  const text = loadBundledCorpus().slice(0, 30_000);
  const model = trainBpe(text, 5000, { minFrequency: 5 });
  assert.ok(bpeVocabSize(model) < 5000);
  checkModel(model);
  assert.throws(() => trainBpe(text, 256), RangeError);
  assert.throws(() => trainBpe(text, 1.5e3 + 0.5), RangeError);
});
