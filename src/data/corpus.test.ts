import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync } from "node:zlib";
import { FileFormatError, Fp4lmError, UsageError } from "../errors.ts";
import { BUNDLED_CORPORA, defaultDataDir, loadBundledCorpus, loadBundledDocuments, splitDocuments, splitTrainVal } from "./corpus.ts";

test("bundled corpora decompress to the recorded sha256", () => {
  const moby = loadBundledCorpus();
  assert.equal(Buffer.byteLength(moby, "utf8"), 1_204_997);
  assert.equal(createHash("sha256").update(moby).digest("hex"), BUNDLED_CORPORA["moby-dick"].sha256);
  assert.ok(moby.startsWith("CHAPTER 1. Loomings.\n\nCall me Ishmael."));
  const speeches = loadBundledDocuments("sotu");
  assert.equal(speeches.length, 79);
  assert.ok(speeches[0].startsWith("To the Congress:"));
  assert.equal(speeches.join(""), loadBundledCorpus("sotu"));
  assert.deepEqual(loadBundledDocuments("moby-dick"), [moby]);
  assert.throws(() => loadBundledCorpus("tiny-shakespeare"), (e: unknown) => e instanceof UsageError && /moby-dick, sotu/.test(e.message));
});

test("a missing, corrupt or altered corpus file gives a clear error", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-corpus-"));
  try {
    const file = join(dir, "moby-dick.txt.br");
    assert.throws(() => loadBundledCorpus("moby-dick", dir), (e: unknown) => e instanceof Fp4lmError && /missing.*git checkout/.test(e.message));
    const good = readFileSync(join(defaultDataDir(), "moby-dick.txt.br"));
    const bad = Buffer.from(good);
    bad[1000] ^= 0x55;
    writeFileSync(file, bad);
    assert.throws(() => loadBundledCorpus("moby-dick", dir), (e: unknown) => e instanceof FileFormatError && e.file === file);
    writeFileSync(file, brotliCompressSync(Buffer.from("Call me Ishmael.")));
    assert.throws(() => loadBundledCorpus("moby-dick", dir), (e: unknown) => e instanceof FileFormatError && /sha256/.test(e.message));
    copyFileSync(join(defaultDataDir(), "moby-dick.txt.br"), file);
    assert.equal(loadBundledCorpus("moby-dick", dir).length, loadBundledCorpus().length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("default split: the last ~5% of the book, cut at a paragraph start", () => {
  const text = loadBundledCorpus();
  const s = splitTrainVal(text);
  assert.equal(s.train + s.val, text);
  assert.equal(s.unit, "paragraph");
  assert.equal(s.valEnd, text.length);
  assert.ok(Math.abs(s.val.length / text.length - 0.05) < 0.002, `val share ${s.val.length / text.length}`);
  assert.ok(s.train.endsWith("\n\n") && !/^\s/.test(s.val), "the cut falls between paragraphs");
  assert.deepEqual(splitTrainVal(text), s);
  const none = splitTrainVal(text, 0);
  assert.equal(none.val, "");
  assert.equal(none.train, text);
});

test("seeded split: one contiguous paragraph-aligned span, a function of the seed", () => {
  const text = loadBundledCorpus();
  const a = splitTrainVal(text, 0.05, 1), b = splitTrainVal(text, 0.05, 2);
  assert.deepEqual(splitTrainVal(text, 0.05, 1), a);
  assert.notEqual(a.valStart, b.valStart);
  for (const s of [a, b]) {
    assert.equal(text.slice(0, s.valStart) + s.val + text.slice(s.valEnd), text);
    assert.equal(s.train, text.slice(0, s.valStart) + text.slice(s.valEnd));
    assert.ok(Math.abs(s.val.length / text.length - 0.05) < 0.005);
    assert.ok(text.slice(0, s.valStart).endsWith("\n\n"));
  }
});

test("texts without paragraphs fall back to lines, whitespace, characters", () => {
  assert.equal(splitTrainVal("one line\nanother line\nthird line\nlast line\n", 0.3).unit, "line");
  const w = splitTrainVal("a single long line of words without any break at all", 0.2);
  assert.equal(w.unit, "whitespace");
  assert.equal(w.train + w.val, "a single long line of words without any break at all");
  const c = splitTrainVal("😀😀😀😀😀😀😀😀😀😀", 0.1); // 10% of 20 UTF-16 units
  assert.equal(c.unit, "character");
  assert.equal(c.val, "😀");
  assert.throws(() => splitTrainVal("x", 0.5), UsageError);
  assert.throws(() => splitTrainVal("abc", 1), UsageError);
});

test("splitDocuments: document starts are boundaries; the held-out span's pieces go to val", () => {
  const docs = ["first document.\n", "second one, a bit longer.\n", "third.\n", "the fourth and last document of this small set.\n"];
  const s = splitDocuments(docs, 0.4);
  assert.equal(s.unit, "paragraph");
  assert.deepEqual(s.val, [docs[3]]);
  assert.deepEqual(s.train, docs.slice(0, 3));
  const seeded = splitDocuments(docs, 0.25, 3);
  assert.equal([...seeded.train, ...seeded.val].join("").length, docs.join("").length);
  assert.ok(seeded.val.length >= 1 && seeded.val.every((v) => docs.includes(v)));
});
