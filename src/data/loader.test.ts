import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { TokenLoader, windowOrder, type Batch, type LoaderState } from "./loader.ts";
import { writeShard } from "./shards.ts";

/** A shard whose token i is i (vocab 2^20, uint32), so a window is known by its first token. */
function withShard(n: number, fn: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-loader-"));
  try {
    const file = join(dir, "train.bin");
    writeShard(file, Uint32Array.from({ length: n }, (_, i) => i), 1 << 20);
    fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Window index of each row, checking the row is a contiguous window and targets are inputs shifted. */
function rows(b: Batch): number[] {
  const out: number[] = [];
  for (let r = 0; r < b.B; r++) {
    const first = b.inputs[r * b.T];
    assert.equal(first % b.T, 0, "windows start at multiples of T");
    for (let t = 0; t < b.T; t++) {
      assert.equal(b.inputs[r * b.T + t], first + t);
      assert.equal(b.targets[r * b.T + t], first + t + 1);
    }
    out.push(first / b.T);
  }
  return out;
}

test("windowOrder is a seeded permutation", () => {
  for (const W of [1, 2, 3, 10, 1001]) {
    const p = windowOrder(W, 42, 3);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: W }, (_, i) => i));
    assert.deepEqual(Array.from(windowOrder(W, 42, 3)), Array.from(p));
  }
  assert.notDeepEqual(Array.from(windowOrder(1001, 42, 3)), Array.from(windowOrder(1001, 43, 3)));
  assert.notDeepEqual(Array.from(windowOrder(1001, 42, 3)), Array.from(windowOrder(1001, 42, 4)));
});

test("every window once per epoch, batches straddle epochs, order differs per epoch and seed", () => {
  // 10,000 tokens, T = 16 → W = 624 windows; B = 7 does not divide W.
  withShard(10_000, (file) => {
    const L = TokenLoader.open(file, { B: 7, T: 16, seed: 5 });
    assert.equal(L.windows, 624);
    const seen: number[][] = [[], [], []];
    let straddled = false;
    while (true) {
      const s0 = L.state();
      const b = L.next();
      const r = rows(b);
      const s1 = L.state();
      straddled ||= s1.epoch > s0.epoch && s1.index > 0;
      for (let i = 0; i < r.length; i++) {
        // windows before the wrap belong to the batch's epoch, after it to the next
        const epoch = b.index + i < L.windows ? b.epoch : b.epoch + 1;
        if (epoch < 3) seen[epoch].push(r[i]);
      }
      if (s1.epoch >= 3) break;
    }
    assert.ok(straddled, "with B not dividing W some batch crosses an epoch boundary");
    for (const s of seen) assert.deepEqual([...s].sort((a, b) => a - b), Array.from({ length: 624 }, (_, i) => i));
    assert.notDeepEqual(seen[0], seen[1]);
    const other = TokenLoader.open(file, { B: 7, T: 16, seed: 6 });
    assert.notDeepEqual(rows(other.next()), seen[0].slice(0, 7));
  });
});

test("same seed → same batches; state()/restore continue with exactly the next batch", () => {
  withShard(5_000, (file) => {
    const a = TokenLoader.open(file, { B: 4, T: 32, seed: 9 });
    const b = TokenLoader.open(file, { B: 4, T: 32, seed: 9 });
    for (let i = 0; i < 30; i++) assert.deepEqual(a.next(), b.next());
    const saved = JSON.parse(JSON.stringify(a.state())) as LoaderState;
    const expected = Array.from({ length: 60 }, () => a.next());
    const c = TokenLoader.restore(saved);
    assert.deepEqual(Array.from({ length: 60 }, () => c.next()), expected);
    // In-place restore (checkpoint code that opened the loader itself), reading from disk.
    const d = TokenLoader.open(file, { B: 4, T: 32, seed: 9, inMemory: false });
    d.restore(saved);
    assert.deepEqual(Array.from({ length: 60 }, () => d.next()), expected);
    d.close();
    assert.throws(() => TokenLoader.open(file, { B: 4, T: 16, seed: 9 }).restore(saved), (e: unknown) => e instanceof FileFormatError && /T: saved 32, now 16/.test(e.message));
    assert.throws(() => TokenLoader.restore({ ...saved, version: 2 } as unknown as LoaderState), FileFormatError);
    assert.throws(() => TokenLoader.restore({ ...saved, index: -1 }), FileFormatError);
  });
});

test("restore refuses a shard that changed; a moved shard can be given explicitly", () => {
  withShard(3_000, (file) => {
    const saved = TokenLoader.open(file, { B: 2, T: 8 }).state();
    withShard(3_001, (other) => {
      assert.throws(() => TokenLoader.restore(saved, { file: other }), (e: unknown) => e instanceof FileFormatError && /tokens: saved 3000, now 3001/.test(e.message));
    });
    withShard(3_000, (moved) => assert.equal(TokenLoader.restore({ ...saved, file: "/nonexistent/train.bin" }, { file: moved }).state().file, moved));
  });
});

test("shuffle false reads windows in file order", () => {
  withShard(1_000, (file) => {
    const L = TokenLoader.open(file, { B: 3, T: 10, shuffle: false });
    assert.deepEqual([...rows(L.next()), ...rows(L.next())], [0, 1, 2, 3, 4, 5]);
  });
});

test("evalBatches: fixed file order, repeatable, independent of the training position", () => {
  withShard(2_000, (file) => {
    const L = TokenLoader.open(file, { B: 4, T: 20, seed: 1 });
    L.next();
    const first = [...L.evalBatches(3)];
    assert.deepEqual(first.map(rows), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
    L.next();
    assert.deepEqual([...L.evalBatches(3)], first);
    assert.equal([...L.evalBatches()].length, Math.floor(Math.floor(1999 / 20) / 4));
    assert.throws(() => [...L.evalBatches(25)], (e: unknown) => e instanceof Fp4lmError && /asked for 25/.test(e.message));
  });
});

test("a shard shorter than one batch is refused, saying how many tokens are needed", () => {
  withShard(100, (file) => {
    assert.throws(() => TokenLoader.open(file, { B: 4, T: 32 }), (e: unknown) => e instanceof Fp4lmError && /holds 100 tokens.*at least B·T\+1 = 129/.test(e.message));
    assert.equal(TokenLoader.open(file, { B: 3, T: 33 }).windows, 3);
    assert.throws(() => TokenLoader.open(file, { B: 0, T: 8 }), /positive integer/);
  });
});

test("skip(n) lands where n next() calls land, across epochs; ranks that each skip their peers' batches split one stream", () => {
  withShard(2_000, (file) => {
    // 2000 tokens, T 32: 62 windows, B 4: an epoch ends inside batch 16, so the skips cross epochs
    const ref = TokenLoader.open(file, { B: 4, T: 32, seed: 3 });
    const stream = Array.from({ length: 40 }, () => ref.next());
    for (const n of [0, 1, 15, 16, 31]) {
      const l = TokenLoader.open(file, { B: 4, T: 32, seed: 3 });
      l.skip(n);
      assert.deepEqual(l.next(), stream[n], `skip(${n})`);
    }
    // 3 ranks × 2 micro-batches per step, as data-parallel.ts reads them: rank r takes batches 2r, 2r+1 of each step
    const N = 3, A = 2;
    const ranks = Array.from({ length: N }, () => TokenLoader.open(file, { B: 4, T: 32, seed: 3 }));
    for (let step = 0; step < 5; step++) {
      ranks.forEach((l, r) => {
        l.skip(r * A);
        for (let m = 0; m < A; m++) assert.deepEqual(l.next(), stream[step * N * A + r * A + m], `step ${step} rank ${r} micro ${m}`);
        l.skip((N - 1 - r) * A);
      });
      for (const l of ranks) assert.deepEqual(l.state(), ranks[0].state());
    }
    const one = TokenLoader.open(file, { B: 4, T: 32, seed: 3 });
    one.skip(5 * N * A);
    assert.deepEqual(ranks[1].state(), one.state());
    assert.throws(() => one.skip(-1), Fp4lmError);
  });
});
