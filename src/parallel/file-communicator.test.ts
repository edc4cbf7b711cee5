import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { rankTensors } from "../../test/file-comm-rank.ts";
import { CpuTensor } from "../backends/cpu/cpu-backend.ts";
import { CommError } from "./communicator.ts";
import { FileCommunicator } from "./file-communicator.ts";

const RANK_SCRIPT = fileURLToPath(new URL("../../test/file-comm-rank.ts", import.meta.url));

interface RankResult { rank: number; sum: number[][]; max: number[][]; bcast: number[][]; gathered: number[]; asyncSum: number[][]; rs: number[][]; ag: number[][][] }

function runRanks(dir: string, size: number): Promise<RankResult[]> {
  return Promise.all(Array.from({ length: size }, (_, rank) => new Promise<RankResult>((resolve, reject) => {
    const c = spawn(process.execPath, ["--import", "tsx", RANK_SCRIPT, dir, String(rank), String(size)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    c.stdout.on("data", (d: Buffer) => (out += d));
    c.stderr.on("data", (d: Buffer) => (err += d));
    c.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as RankResult) : reject(new Error(`rank ${rank} exited ${code}: ${err}`))));
  })));
}

test("file communicator, 3 processes: every rank gets the same bits, sums in rank order in FP32, in buckets (also bucket by bucket); reduce-scatter, all-gather of shards; max, broadcast, gather", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-filecomm-"));
  try {
    const N = 3;
    const results = await runRanks(dir, N);
    const inputs = Array.from({ length: N }, (_, r) => rankTensors(r));
    // expected: ((x0 + x1) + x2), each partial sum rounded to FP32
    const sum = inputs[0].map((_, i) => inputs[0][i].map((_, j) => Math.fround(Math.fround(inputs[0][i][j] + inputs[1][i][j]) + inputs[2][i][j])));
    const other = inputs[0].map((_, i) => inputs[0][i].map((_, j) => Math.fround(inputs[0][i][j] + Math.fround(inputs[1][i][j] + inputs[2][i][j]))));
    assert.ok(sum.some((t, i) => t.some((v, j) => v !== other[i][j])), "the data makes the summation order visible");
    for (const r of results) {
      assert.deepEqual(r.sum, sum.map((t) => [...t]), `rank ${r.rank} sum`);
      assert.deepEqual(r.max, inputs[0].map((_, i) => [...inputs[0][i]].map((_, j) => Math.max(inputs[0][i][j], inputs[1][i][j], inputs[2][i][j]))));
      assert.deepEqual(r.bcast, inputs[N - 1].map((t) => [...t]));
      assert.deepEqual(r.gathered, [0.5, -0.25, 1.5, -1.25, 2.5, -2.25]);
      assert.deepEqual(r.asyncSum, r.sum, `rank ${r.rank}: bucket by bucket = the bucketed all-reduce`);
      // reduce-scatter: this rank's slice of the same sums (zero padding past the end); all-gather: rank k's slice from rank k
      const flatSum = [sum.flatMap((t) => [...t]), [...sum[0], ...sum[2]]];
      const S = [10, 4];
      [0, 1].forEach((k) => {
        const want = Array.from({ length: S[k] }, (_, j) => flatSum[k][r.rank * S[k] + j] ?? 0);
        assert.deepEqual(r.rs[k], want, `rank ${r.rank} reduce-scatter ${k}`);
        const own = (q: number) => (k === 0 ? inputs[q] : [inputs[q][0], inputs[q][2]]).flatMap((t) => [...t]);
        const full = own(0).map((_, j) => own(Math.floor(j / S[k]))[j]);
        assert.deepEqual(r.ag[k].flat(), full, `rank ${r.rank} all-gather ${k}`);
      });
    }
    // 15 exchanges (sum and max in 3 buckets each of ≤ 16 values: [7], [20], [3]; broadcast, gather;
    // 2 async buckets, 2 reduce-scatters, 2 all-gathers; barrier); each rank deleted its parts of all but the last
    assert.deepEqual(readdirSync(dir).sort(), ["14.0", "14.1", "14.2"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("file communicator: a peer that never arrives is a CommError naming it, after the timeout", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-filecomm-"));
  try {
    const c = new FileCommunicator({ dir, rank: 0, size: 3, timeoutMs: 100 });
    const t0 = performance.now();
    assert.throws(() => c.allReduceSum([new CpuTensor([2], Float32Array.of(1, 2))]),
      (e: unknown) => e instanceof CommError && /^rank 0: waited 0 s in collective #0 \(allReduceSum\) for ranks 1, 2; is it alive\?/.test(e.message));
    assert.ok(performance.now() - t0 < 3000);
    const d = new FileCommunicator({ dir: mkdtempSync(join(dir, "d-")), rank: 1, size: 2, parentPid: process.ppid + 1 });
    assert.throws(() => d.barrier(), (e: unknown) => e instanceof CommError && /launcher .* is gone/.test(e.message));
    assert.throws(() => new FileCommunicator({ dir, rank: 2, size: 2 }), RangeError);
    assert.throws(() => new FileCommunicator({ dir, rank: 0, size: 1 }).allReduceSum([{ shape: [1], size: 1 }]), (e: unknown) => e instanceof CommError && /CPU tensors/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
