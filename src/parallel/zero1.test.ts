import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rng } from "../../test/random.ts";
import { CpuBackend, CpuTensor } from "../backends/cpu/cpu-backend.ts";
import type { Param } from "../nn/param.ts";
import { Optimizer } from "../optim/optimizer.ts";
import { FileCommunicator } from "./file-communicator.ts";
import { GradBuckets } from "./grad-buckets.ts";
import { shardSegments, tensorView, Zero1Optimizer } from "./zero1.ts";

const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 };

function params(sizes: number[], seed: number): Param[] {
  const rng = new Rng(seed);
  const t = (n: number) => new CpuTensor([n], Float32Array.from({ length: n }, () => rng.normal()));
  return sizes.map((n, i) => ({ name: `p${i}`, shape: [n], data: t(n), grad: t(n), decay: i % 2 === 0 }));
}

test("gradient buckets: backward order, the plain all-reduce's cut, a bucket handed over only when it and all before it are complete", () => {
  const ps = params([4, 6, 3, 20, 2], 1);
  const g = new GradBuckets(ps, 10);
  // backward order p4 p3 p2 p1 p0 (sizes 2 20 3 6 4), cut at ≤ 10: [p4], [p3], [p2 p1], [p0]
  assert.deepEqual(g.buckets.map((b) => b.map((p) => p.name)), [["p4"], ["p3"], ["p2", "p1"], ["p0"]]);
  assert.deepEqual(g.buckets.map((_, b) => g.size(b)), [2, 20, 9, 4]);
  assert.deepEqual(g.ready([ps[3]]), [], "bucket 0 (p4) is not done yet");
  assert.deepEqual(g.ready([ps[4]]), [0, 1]);
  assert.deepEqual(g.ready([ps[1]]), []);
  assert.deepEqual(g.ready([ps[2], ps[0]]), [2, 3]);
  assert.deepEqual(g.rest(), []);
  assert.deepEqual(g.rest(), [0, 1, 2, 3], "the next step starts afresh; without overlap every bucket goes at the end");
  assert.throws(() => g.ready(params([1], 2)), /not a parameter of this model/);
});

test("ZeRO-1 shards: every element of every parameter belongs to exactly one rank's slice; slices are ⌈n/N⌉ per bucket", () => {
  const ps = params([5, 17, 3, 40, 1, 9], 3);
  const plan = new GradBuckets(ps, 16);
  for (const N of [1, 2, 3, 4, 7]) {
    const seen = ps.map((p) => new Uint8Array(p.grad.size));
    for (let r = 0; r < N; r++) {
      const { S, segments } = shardSegments(plan, ps, N, r);
      assert.deepEqual(S, plan.buckets.map((_, b) => Math.ceil(plan.size(b) / N)));
      for (const s of segments) {
        assert.ok(s.at >= 0 && s.at + s.length <= S[s.bucket]);
        for (let j = s.offset; j < s.offset + s.length; j++) seen[s.index][j]++;
      }
    }
    seen.forEach((c, i) => assert.ok(c.every((x) => x === 1), `N = ${N}: parameter ${i} covered once`));
  }
  const t = new CpuTensor([6], Float32Array.of(0, 1, 2, 3, 4, 5));
  assert.deepEqual([...(tensorView(t, 2, 3) as CpuTensor).data], [2, 3, 4]);
  assert.throws(() => tensorView(t, 4, 3), RangeError);
});

test("ZeRO-1 moments per rank: 1/N of the unsharded optimizer's, plus at most one element of padding per bucket", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-zero1-mem-"));
  const be = new CpuBackend({ threads: 1 });
  try {
    const ps = params([4096, 513, 64, 4096, 777, 64, 12288], 9);
    const plan = new GradBuckets(ps, 5000);
    const rows: string[] = [];
    for (const N of [1, 2, 3, 4, 8]) {
      const per = Array.from({ length: N }, (_, r) => new Zero1Optimizer(be, ps, cfg, new FileCommunicator({ dir, rank: r, size: N }), plan).momentElements());
      const { unsharded } = per[0];
      for (const { here } of per) assert.ok(here >= unsharded / N && here <= unsharded / N + 2 * plan.buckets.length, `N = ${N}: ${here} of ${unsharded}`);
      rows.push(`${N}: ${per[0].here} (${(per[0].here / unsharded).toFixed(4)})`);
    }
    console.log(`# ZeRO-1 moment values per rank (share of ${2 * ps.reduce((a, p) => a + p.grad.size, 0)}), by rank count: ${rows.join(", ")}`);
  } finally {
    be.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ZeRO-1 on one rank = the plain optimizer bit for bit (norm, update, clip); moments gather and load back", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-zero1-"));
  const be = new CpuBackend({ threads: 1 });
  try {
    const sizes = [7, 33, 2, 16];
    const a = params(sizes, 5), b = params(sizes, 5);
    const plain = new Optimizer(be, a, cfg);
    const comm = new FileCommunicator({ dir, rank: 0, size: 1 });
    const plan = new GradBuckets(b, 20);
    const zero = new Zero1Optimizer(be, b, cfg, comm, plan);
    assert.deepEqual(zero.momentElements(), { here: 2 * 58, unsharded: 2 * 58 });
    for (let step = 0; step < 3; step++) {
      plan.buckets.forEach((ps, k) => comm.reduceScatterSumAsync(ps.map((p) => p.grad), zero.gradShards[k]));
      const [gp, gz] = [plain.gradNorm(), zero.gradNorm()];
      assert.ok(Math.abs(gp.norm - gz.norm) <= 1e-12 * gp.norm && gp.norm > cfg.gradClip, `norms ${gp.norm} ${gz.norm} (and clipping active)`);
      plain.step(1e-2, gp.norm);
      zero.step(1e-2, gp.norm);
      a.forEach((p, i) => assert.deepEqual((b[i].data as CpuTensor).data, (p.data as CpuTensor).data, `step ${step}, ${p.name}`));
    }
    const { m, v } = zero.gatherMoments();
    a.forEach((_, i) => {
      assert.deepEqual(m[i], (plain.m[i] as CpuTensor).data);
      assert.deepEqual(v[i], (plain.v[i] as CpuTensor).data);
    });
    const again = new Zero1Optimizer(be, b, cfg, comm, new GradBuckets(b, 20));
    again.loadMoments(m, v);
    assert.deepEqual(again.gatherMoments(), { m, v });
    (b[1].grad as CpuTensor).data[3] = NaN;
    plan.buckets.forEach((ps, k) => comm.reduceScatterSumAsync(ps.map((p) => p.grad), zero.gradShards[k]));
    assert.deepEqual(zero.gradNorm(), { norm: NaN, nonFinite: "p1" });
  } finally {
    be.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
