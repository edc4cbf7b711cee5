import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileFormatError, UsageError } from "../errors.ts";
import { loadBundledCorpus } from "../data/corpus.ts";
import { TokenLoader } from "../data/loader.ts";
import { byteTokenizer } from "../data/tokenizer.ts";
import { firstInvalidUtf8, prepareTokens, writePrepared, type PrepareMeta } from "../data/prepare.ts";
import { readShard } from "../data/shards.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { PREPARE_HELP, prepareCommand } from "./prepare-command.ts";

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-prepare-"));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Three small text files cut from the bundled book. */
function writeTexts(dir: string): string[] {
  const book = loadBundledCorpus();
  const files = [[0, 20_000], [300_000, 310_000], [600_000, 625_000]].map(([a, b], i) => {
    const f = join(dir, `part${i}.txt`);
    writeFileSync(f, (i === 1 ? "\ufeff" : "") + book.slice(a, b));
    return f;
  });
  return files;
}

function run(argv: string[]): { code: number; lines: string[] } {
  const lines: string[] = [];
  const code = prepareCommand(argv, (s) => lines.push(s));
  return { code, lines };
}

test("prepare FILES --tokenizer bpe: shards, tokenizer and meta that agree with each other", () => {
  withDir((dir) => {
    const files = writeTexts(dir);
    const out = join(dir, "out");
    const { code, lines } = run([...files, "--tokenizer", "bpe", "--vocab-size", "600", "--out", out]);
    assert.equal(code, 0);
    assert.match(lines.join("\n"), /bpe-600.*\n.*train\.bin +\d[\d,]* tokens \(uint16\)/);
    assert.deepEqual(readdirSync(out).sort(), ["meta.json", "tokenizer.json", "train.bin", "val.bin"]);
    assert.deepEqual(readdirSync(dir).sort(), ["out", "part0.txt", "part1.txt", "part2.txt"], "no temporary folder left behind");

    const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8")) as PrepareMeta;
    const tok = loadTokenizer(join(out, "tokenizer.json"));
    const train = readShard(join(out, "train.bin")), val = readShard(join(out, "val.bin"));
    try {
      assert.equal(tok.vocabSize, 600);
      assert.equal(train.header.vocabSize, 600);
      assert.equal(meta.train.tokens, train.header.tokens);
      assert.equal(meta.val.tokens, val.header.tokens);
      assert.equal(meta.train.sha256, sha(readFileSync(join(out, "train.bin"))));
      assert.equal(meta.val.sha256, sha(readFileSync(join(out, "val.bin"))));
      assert.deepEqual(meta.sources.map((s) => [s.name, s.sha256]), files.map((f) => [f, sha(readFileSync(f))]));
      // Decoding both shards gives back the three texts (BOM dropped), each document after an EOT.
      const texts = files.map((f) => readFileSync(f, "utf8").replace(/^\ufeff/, ""));
      const decoded = tok.decode(train.tokens) + tok.decode(val.tokens);
      assert.equal(train.tokens[0], tok.eotToken);
      assert.equal(val.tokens[0], tok.eotToken);
      assert.equal(decoded.replaceAll("<|endoftext|>", ""), texts.join(""));
      assert.equal(meta.train.documents, 3);
      assert.equal(decoded.split("<|endoftext|>").length - 1, meta.train.documents + meta.val.documents);
      assert.ok(Math.abs(meta.val.textBytes / (meta.val.textBytes + meta.train.textBytes) - 0.05) < 0.01);
      // The shards feed the loader.
      const L = TokenLoader.open(join(out, "train.bin"), { B: 4, T: 64 });
      assert.equal(L.next().inputs.length, 256);
      assert.equal([...TokenLoader.open(join(out, "val.bin"), { B: 2, T: 64 }).evalBatches(2)].length, 2);
    } finally {
      tok.free();
    }

    // Same inputs, same options → byte-identical outputs.
    const again = join(dir, "again");
    assert.equal(run([...files, "--tokenizer", "bpe", "--vocab-size", "600", "--out", again]).code, 0);
    for (const f of ["train.bin", "val.bin", "tokenizer.json", "meta.json"]) {
      assert.deepEqual(readFileSync(join(again, f)), readFileSync(join(out, f)), f);
    }
  });
});

test("prepare --bundled with gpt2 and byte tokenizers; --force replaces, otherwise refuses", () => {
  withDir((dir) => {
    const out = join(dir, "moby");
    assert.equal(run(["--bundled", "moby-dick", "--tokenizer", "byte", "--out", out, "--val-fraction", "0.01"]).code, 0);
    const byteMeta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8")) as PrepareMeta;
    assert.equal(byteMeta.train.tokens + byteMeta.val.tokens, byteMeta.train.textBytes + byteMeta.val.textBytes + 2);
    assert.throws(() => run(["--bundled", "moby-dick", "--tokenizer", "gpt2", "--out", out]), (e: unknown) => e instanceof UsageError && /--force/.test(e.message));
    assert.equal(JSON.parse(readFileSync(join(out, "meta.json"), "utf8")).tokenizer.name, "byte", "refused run leaves the old output alone");
    assert.equal(run(["--bundled", "moby-dick", "--out", out, "--force"]).code, 0);
    const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8")) as PrepareMeta;
    assert.equal(meta.tokenizer.name, "gpt2");
    // 317,756 GPT-2 tokens for the whole book; the cut turns one "\n" "\n" into "\n\n"; + 2 EOT
    assert.equal(meta.train.tokens + meta.val.tokens, 317_757);
    assert.deepEqual(readdirSync(dir), ["moby"]);
  });
});

test("bad arguments and bad input: clear errors, nothing written", () => {
  withDir((dir) => {
    const out = join(dir, "out");
    const txt = join(dir, "a.txt");
    writeFileSync(txt, "Some text.\n\nMore text here.\n");
    const usage: Array<[string[], RegExp]> = [
      [["--tokenizer", "gpt2", "--out", out], /FILES or --bundled/],
      [[txt, "--bundled", "moby-dick", "--out", out], /not both/],
      [[txt], /--out DIR/],
      [[txt, "--out", out, "--tokenizer", "wordpiece"], /gpt2, byte or bpe/],
      [[txt, "--out", out, "--tokenizer", "bpe"], /--vocab-size/],
      [[txt, "--out", out, "--tokenizer", "bpe", "--vocab-size", "100"], /\[257,/],
      [[txt, "--out", out, "--tokenizer", "gpt2", "--vocab-size", "1000"], /only to --tokenizer bpe/],
      [[txt, "--out", out, "--val-fraction", "1.5"], /\[0, 1\)/],
      [[txt, "--out", out, "--val-fraction", "x"], /a number/],
      [["--bundled", "wikipedia", "--out", out], /no bundled corpus/],
    ];
    for (const [argv, re] of usage) {
      assert.throws(() => run(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(" "));
    }
    const latin1 = join(dir, "latin1.txt");
    writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    assert.throws(() => run([latin1, "--out", out, "--tokenizer", "byte"]), (e: unknown) => e instanceof FileFormatError && e.file === latin1 && /UTF-8.*offset 3/.test(e.message));
    assert.throws(() => run([join(dir, "missing.txt"), "--out", out]), /cannot read text file/);
    assert.deepEqual(readdirSync(dir).sort(), ["a.txt", "latin1.txt"]);
  });
});

test("writePrepared removes its temporary folder when writing fails", () => {
  withDir((dir) => {
    const data = prepareTokens([{ name: "t", documents: ["hello there.\n\nand more text.\n"], bytes: 28, sha256: "x" }], { tokenizer: "byte", valFraction: 0.3 });
    data.train[1] = 999; // not a byte id: encodeShard refuses it mid-write
    mkdirSync(join(dir, "keep"));
    assert.throws(() => writePrepared(join(dir, "out"), data), /token 1 is 999/);
    assert.deepEqual(readdirSync(dir), ["keep"]);
    assert.equal(existsSync(join(dir, "out")), false);
  });
});

test("firstInvalidUtf8 agrees with a fatal TextDecoder", () => {
  const pool = [0x41, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xa0, 0x9f, 0xf0, 0xf4, 0x90, 0x8f, 0xf5, 0xff];
  let s = 11;
  const rnd = (n: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n;
  const valid = (b: Uint8Array) => { try { new TextDecoder("utf-8", { fatal: true }).decode(b); return true; } catch { return false; } };
  for (let k = 0; k < 5000; k++) {
    const b = Uint8Array.from({ length: rnd(7) }, () => pool[rnd(pool.length)]);
    const at = firstInvalidUtf8(b);
    assert.equal(at === b.length, valid(b), `[${[...b].map((x) => x.toString(16))}]`);
    assert.ok(valid(b.subarray(0, at)));
  }
});

test("help text names the options", () => {
  const { code, lines } = run(["--help"]);
  assert.equal(code, 0);
  assert.equal(lines[0], PREPARE_HELP);
  for (const flag of ["--tokenizer", "--vocab-size", "--out", "--val-fraction", "--bundled", "--seed", "--force"]) assert.ok(PREPARE_HELP.includes(flag), flag);
  assert.equal(byteTokenizer().name, "byte");
});
