import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { encodeShard, HEADER_BYTES, MAGIC_U16, MAGIC_U32, parseShard, readShard, readShardHeader, ShardFile, writeShard } from "./shards.ts";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "fp4lm-shards-"));
}

/** Seeded ids in [0, vocab). */
function ids(n: number, vocab: number, seed: number): Uint32Array {
  let s = seed >>> 0;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s % vocab; }
  return out;
}

function throwsFormat(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected FileFormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, re);
    return true;
  });
}

test("round trip: uint16 for vocab ≤ 65535 (llm.c gpt-2 header), uint32 above (llm.c llama-3 header)", () => {
  const dir = tmp();
  try {
    for (const [vocab, dtype, magic, version, size] of [[50257, "uint16", MAGIC_U16, 1, 2], [65535, "uint16", MAGIC_U16, 1, 2], [65536, "uint32", MAGIC_U32, 7, 4], [200_019, "uint32", MAGIC_U32, 7, 4]] as const) {
      const file = join(dir, `v${vocab}.bin`);
      const toks = ids(1001, vocab, vocab);
      toks[0] = vocab - 1;
      const h = writeShard(file, toks, vocab);
      assert.deepEqual(h, { magic, version, dtype, tokens: 1001, vocabSize: vocab });
      assert.equal(statSync(file).size, HEADER_BYTES + 1001 * size);
      const raw = readFileSync(file);
      assert.deepEqual([raw.readInt32LE(0), raw.readInt32LE(4), raw.readInt32LE(8), raw.readInt32LE(12), raw.readInt32LE(16)], [magic, version, 1001, vocab, 0]);
      assert.equal(raw.subarray(16, HEADER_BYTES).every((b) => b === 0), true);
      const back = readShard(file);
      assert.deepEqual(back.header, h);
      assert.equal(back.tokens instanceof (dtype === "uint16" ? Uint16Array : Uint32Array), true);
      assert.deepEqual(Array.from(back.tokens), Array.from(toks));
      assert.deepEqual(readShardHeader(file), h);
      const f = new ShardFile(file);
      try {
        assert.deepEqual(Array.from(f.read(990, 11)), Array.from(toks.subarray(990)));
        assert.throws(() => f.read(995, 7), RangeError);
      } finally {
        f.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("reads llm.c files (vocab not recorded) and empty shards; unaligned buffers parse too", () => {
  const bytes = encodeShard([5, 6, 7], 50257);
  new DataView(bytes.buffer).setInt32(12, 0, true);
  const padded = new Uint8Array(bytes.length + 1);
  padded.set(bytes, 1);
  const s = parseShard(padded.subarray(1), "llmc.bin");
  assert.equal(s.header.vocabSize, 0);
  assert.deepEqual(Array.from(s.tokens), [5, 6, 7]);
  assert.equal(parseShard(encodeShard([], 300), "empty.bin").tokens.length, 0);
});

test("corrupt or truncated shards throw FileFormatError naming the file", () => {
  const dir = tmp();
  try {
    const file = join(dir, "train.bin");
    const good = encodeShard(ids(100, 50257, 1), 50257);
    const put = (b: Uint8Array) => writeFileSync(file, b);
    const patched = (off: number, v: number) => { const b = good.slice(); new DataView(b.buffer).setInt32(off, v, true); return b; };

    put(good.subarray(0, good.length - 1));
    throwsFormat(() => readShard(file), file, /truncated/);
    throwsFormat(() => readShardHeader(file), file, /truncated/);
    put(Buffer.concat([good, Buffer.from([0, 0])]));
    throwsFormat(() => readShard(file), file, /trailing bytes/);
    put(good.subarray(0, 500));
    throwsFormat(() => readShard(file), file, /shorter than the 1024-byte/);
    put(new Uint8Array(0));
    throwsFormat(() => readShardHeader(file), file, /0 bytes/);
    put(patched(0, 12345));
    throwsFormat(() => readShard(file), file, /magic number 12345/);
    put(patched(4, 2));
    throwsFormat(() => readShard(file), file, /version 2/);
    put(patched(8, -1));
    throwsFormat(() => readShard(file), file, /-1 tokens/);
    put(patched(8, 101));
    throwsFormat(() => readShard(file), file, /truncated/);
    const badId = good.slice();
    new DataView(badId.buffer).setUint16(HEADER_BYTES + 2 * 7, 60000, true);
    put(badId);
    throwsFormat(() => readShard(file), file, /token 7 is 60000/);
    const f = new ShardFile(file);
    try { throwsFormat(() => f.read(0, 10), file, /token 7 is 60000/); } finally { f.close(); }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writing ids that do not fit the vocabulary is refused", () => {
  assert.throws(() => encodeShard([1, 2, 300], 300), (e: unknown) => e instanceof Fp4lmError && /token 2 is 300/.test(e.message));
  assert.throws(() => encodeShard([1.5], 300), Fp4lmError);
  assert.throws(() => readShard(join(tmpdir(), "fp4lm-no-such-dir", "x.bin")), /cannot read token shard/);
});
