import { test, after } from "node:test";
import assert from "node:assert/strict";
import { gemmBlocked, gemmReference, type GemmArgs } from "./gemm.ts";
import { GemmPool, GemmPoolError } from "./gemm-pool.ts";
import { ShapeError } from "../../errors.ts";
import { normals, Rng } from "../../../test/random.ts";

/** Index of the first element whose fp32 bits differ, or -1. */
function firstBitDifference(x: Float32Array, y: Float32Array): number {
  const a = new Uint32Array(x.buffer, x.byteOffset, x.length), b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const i = firstBitDifference(got, want);
  assert.equal(i, -1, `${what}: element ${i} is ${got[i]}, want ${want[i]}`);
}

const describe = (a: GemmArgs) => `${a.M}x${a.N}x${a.K} ${a.transA ? "T" : "N"}${a.transB ? "T" : "N"} alpha=${a.alpha ?? 1} beta=${a.beta ?? 0}`;

/** Seeded operands for one case; C starts as noise so a missed or doubled store shows. */
function operands(seed: number, a: GemmArgs) {
  const rng = new Rng(seed);
  return { A: normals(rng, a.M * a.K), B: normals(rng, a.K * a.N), C: normals(rng, a.M * a.N) };
}

const layouts = [[false, false], [false, true], [true, false], [true, true]] as const;

test("gemmBlocked equals gemmReference bit for bit: odd shapes, all four layouts, alpha/beta", () => {
  // 70x300x600 crosses the MC=64 row block, the NC=256 column block and two KC=256 k-slices
  const shapes = [[1, 1, 1], [17, 33, 65], [70, 300, 600], [300, 3, 7], [2, 200, 9], [5, 1, 40], [9, 13, 0]];
  const scalars = [[undefined, undefined], [0.75, 0], [-1.5, 0.5], [1, 1]] as const;
  let seed = 1;
  for (const [M, N, K] of shapes) {
    for (const [transA, transB] of layouts) {
      for (const [alpha, beta] of scalars) {
        const args: GemmArgs = { M, N, K, transA, transB, alpha, beta };
        const { A, B, C } = operands(seed++, args);
        const want = C.slice(), got = C.slice();
        gemmReference(A, B, want, args);
        gemmBlocked(A, B, got, args);
        assertSameBits(got, want, describe(args));
      }
    }
  }
});

test("the accumulation is double, in k order, rounded once (an fp32 running sum would give 0)", () => {
  // 2^24 + 1 + 1 - 2^24: fp32 running sums give 0, a double sum gives 2
  const A = new Float32Array([2 ** 24, 1, 1, -(2 ** 24)]), B = new Float32Array([1, 1, 1, 1]);
  for (const gemm of [gemmReference, gemmBlocked]) {
    const C = new Float32Array(1);
    gemm(A, B, C, { M: 1, N: 1, K: 4, transA: false, transB: false });
    assert.equal(C[0], 2, gemm.name);
  }
});

test("beta = 0 overwrites C: NaN in the old C does not leak; beta ≠ 0 reads it", () => {
  const args: GemmArgs = { M: 37, N: 29, K: 21, transA: true, transB: false, alpha: 2 };
  const { A, B } = operands(7, args);
  const want = new Float32Array(37 * 29).fill(NaN), got = want.slice();
  gemmReference(A, B, want, args);
  gemmBlocked(A, B, got, args);
  assert.ok(got.every((v) => Number.isFinite(v)), "NaN leaked from C with beta = 0");
  assertSameBits(got, want, describe(args));
  const withBeta = new Float32Array(37 * 29).fill(NaN);
  gemmBlocked(A, B, withBeta, { ...args, beta: 1 });
  assert.ok(withBeta.every((v) => Number.isNaN(v)));
});

test("K = 0 gives C = beta·C (alpha·0 when beta = 0)", () => {
  const rng = new Rng(3);
  const C0 = normals(rng, 12);
  for (const gemm of [gemmReference, gemmBlocked]) {
    const C = C0.slice();
    gemm(new Float32Array(0), new Float32Array(0), C, { M: 3, N: 4, K: 0, transA: false, transB: true, beta: 0.5 });
    assertSameBits(C, C0.map((v) => 0.5 * v), gemm.name);
    gemm(new Float32Array(0), new Float32Array(0), C, { M: 3, N: 4, K: 0, transA: false, transB: false });
    assertSameBits(C, new Float32Array(12), gemm.name);
  }
});

test("Inf, NaN and signed zeros propagate as in the reference", () => {
  const args: GemmArgs = { M: 9, N: 11, K: 13, transA: false, transB: true };
  const { A, B } = operands(11, args);
  A[5] = Infinity; A[40] = NaN; B[7] = -Infinity;
  // row 8 of A all -0 against positive B: every product is -0, and +0 + (-0)... = +0
  A.fill(-0, 8 * 13, 9 * 13);
  const want = new Float32Array(9 * 11), got = new Float32Array(9 * 11);
  gemmReference(A, B, want, args);
  gemmBlocked(A, B, got, args);
  for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])), `element ${i}: ${got[i]} vs ${want[i]}`);
  assert.ok(want.some((v) => Number.isNaN(v)) && want.some((v) => v === Infinity || v === -Infinity));
});

test("gemmBlocked over any split of the rows equals one call over all rows", () => {
  const args: GemmArgs = { M: 131, N: 70, K: 300, transA: true, transB: true, alpha: 0.5, beta: -1 };
  const { A, B, C } = operands(5, args);
  const whole = C.slice();
  gemmBlocked(A, B, whole, args);
  for (const cuts of [[0, 1, 131], [0, 4, 68, 131], [0, 63, 64, 65, 130, 131]]) {
    const parts = C.slice();
    for (let i = 0; i + 1 < cuts.length; i++) gemmBlocked(A, B, parts, args, cuts[i], cuts[i + 1]);
    assertSameBits(parts, whole, `cuts ${cuts.join(",")}`);
  }
});

test("validation errors name the problem", () => {
  const f = (n: number) => new Float32Array(n);
  const args: GemmArgs = { M: 4, N: 5, K: 6, transA: false, transB: true };
  assert.throws(() => gemmBlocked(f(23), f(30), f(20), args), (e: Error) => e instanceof ShapeError && /A is too short for the shape: stored \(M,K\) = \(4,6\) needs 24 elements but the array has 23/.test(e.message));
  assert.throws(() => gemmReference(f(24), f(29), f(20), args), /B is too short for the shape: stored \(N,K\) = \(5,6\) \(transB\) needs 30/);
  assert.throws(() => gemmBlocked(f(24), f(30), f(19), args), /C is too short .* needs 20 elements but the array has 19/);
  assert.throws(() => gemmBlocked(f(24), f(30), f(20), { ...args, K: -1 }), /K must be a non-negative integer, got -1/);
  assert.throws(() => gemmBlocked(f(24), f(30), f(20), args, 2, 5), /row range \[2, 5\) is not inside \[0, M=4\)/);
  const shared = f(100);
  assert.throws(() => gemmBlocked(shared.subarray(0, 24), f(30), shared.subarray(20, 40), args), /C overlaps A/);
});

// One 2-thread pool for the parity tests: starting workers (tsx in each) is the slow part.
const pool = GemmPool.create(2);
after(() => pool.close());

test("GemmPool with 2 threads equals gemmBlocked bit for bit (plain and shared operands)", () => {
  pool.waitReady();
  let seed = 100;
  for (const [M, N, K] of [[256, 384, 200], [301, 67, 129]]) {
    for (const [transA, transB] of layouts) {
      const args: GemmArgs = { M, N, K, transA, transB, alpha: 1.25, beta: transA ? 0 : -0.5 };
      const { A, B, C } = operands(seed++, args);
      const want = C.slice();
      gemmBlocked(A, B, want, args);
      const got = C.slice();
      pool.gemmSync(A, B, got, args); // copied into shared scratch
      assertSameBits(got, want, `copy path ${describe(args)}`);
      const [sA, sB, sC] = [GemmPool.allocShared(A.length), GemmPool.allocShared(B.length), GemmPool.allocShared(C.length)];
      sA.set(A); sB.set(B); sC.set(C);
      pool.gemm(sA, sB, sC, args); // used in place
      assertSameBits(sC, want, `shared path ${describe(args)}`);
      // the caller may have done most blocks itself: once more with every block on the worker
      sC.set(C);
      pool._injectWorkerFault("none");
      pool.gemmSync(sA, sB, sC, args);
      assertSameBits(sC, want, `worker only ${describe(args)}`);
    }
  }
});

test("GemmPool: 1 thread and 2 threads give identical bits; small problems run inline", () => {
  const one = GemmPool.create(1);
  assert.equal(one.threads, 1);
  assert.equal(pool.threads, 2);
  const args: GemmArgs = { M: 512, N: 96, K: 160, transA: false, transB: true, alpha: -0.3, beta: 0.7 };
  const { A, B, C } = operands(200, args);
  const c1 = C.slice(), c2 = C.slice();
  one.gemmSync(A, B, c1, args);
  pool.gemmSync(A, B, c2, args);
  assertSameBits(c2, c1, "1 vs 2 threads");
  const small: GemmArgs = { M: 8, N: 8, K: 8, transA: true, transB: false };
  const s = operands(201, small), want = s.C.slice(), got = s.C.slice();
  gemmReference(s.A, s.B, want, small);
  pool.gemmSync(s.A, s.B, got, small);
  assertSameBits(got, want, "inline");
  one.close();
});

test("GemmPool: an exception in a worker is thrown by the caller, and the pool stays usable", () => {
  const args: GemmArgs = { M: 256, N: 128, K: 64, transA: false, transB: false };
  const { A, B, C } = operands(300, args);
  pool._injectWorkerFault("throw");
  assert.throws(() => pool.gemmSync(A, B, C.slice(), args), (e: Error) => e instanceof GemmPoolError && /worker 1 failed: Error: injected fault/.test(e.message));
  const want = C.slice(), got = C.slice();
  gemmBlocked(A, B, want, args);
  pool.gemmSync(A, B, got, args);
  assertSameBits(got, want, "after a worker error");
});

test("GemmPool: a stuck worker trips the stall timeout instead of hanging", () => {
  const p = GemmPool.create(2, { stallTimeoutMs: 300 });
  p.waitReady();
  const args: GemmArgs = { M: 256, N: 128, K: 64, transA: false, transB: false };
  const { A, B, C } = operands(400, args);
  p._injectWorkerFault("hang");
  assert.throws(() => p.gemmSync(A, B, C, args), /a worker stalled: no block .* finished for 300 ms/);
  assert.throws(() => p.gemmSync(A, B, C, args), /the pool is closed, create a new one/);
});

test("GemmPool: validation errors name the problem; FP4LM_THREADS is checked", () => {
  const args: GemmArgs = { M: 128, N: 64, K: 100, transA: true, transB: false };
  assert.throws(() => pool.gemmSync(new Float32Array(12799), new Float32Array(6400), new Float32Array(8192), args), /GemmPool.gemm: A is too short for the shape: stored \(K,M\) = \(100,128\) \(transA\) needs 12800/);
  const saved = process.env.FP4LM_THREADS;
  try {
    process.env.FP4LM_THREADS = "1";
    const p = GemmPool.create();
    assert.equal(p.threads, 1);
    p.close();
    process.env.FP4LM_THREADS = "two";
    assert.throws(() => GemmPool.create(), /FP4LM_THREADS must be a positive integer, got 'two'/);
  } finally {
    if (saved === undefined) delete process.env.FP4LM_THREADS;
    else process.env.FP4LM_THREADS = saved;
  }
});
