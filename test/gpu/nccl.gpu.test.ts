/**
 * NCCL on the GPU: the bindings and the communicator with one rank on one GPU (every collective's
 * values, in place and out of place, the bucketed sum's packing, the side stream's ordering after
 * the compute stream, ZeRO-1's reduce-scatter and all-gather), `--gpus 1` training against the plain
 * single-GPU run and the overlapped exchange and ZeRO-1 against the plain one, and, where the
 * machine has 2 or more GPUs (skipped otherwise), `--gpus 2` against 1 GPU with twice the
 * accumulation, overlapped and ZeRO-1 against plain, and a killed GPU rank. NCCL_NVLS_ENABLE=0 throughout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gpuBackend, randn } from "./gpu.ts";
import { killRankMidRun } from "../kill-rank.ts";
import { getDriver } from "../../src/backends/cuda/driver.ts";
import {
  getNccl, ncclFloat32, ncclMax, ncclSum, uniqueIdFromHex, uniqueIdToHex,
} from "../../src/backends/cuda/nccl.ts";
import { loadCheckpoint } from "../../src/checkpoint/checkpoint.ts";
import { launchDataParallel } from "../../src/parallel/launch.ts";
import { NcclCommunicator } from "../../src/parallel/nccl-communicator.ts";
import { buildConfig } from "../../src/train/config.ts";
import { readMetrics } from "../../src/train/metrics.ts";
import { train } from "../../src/train/train.ts";

process.env.NCCL_NVLS_ENABLE = "0";

const BASE = ["log=quiet", "data.tokenizer=byte", "model.dModel=64", "model.nLayers=2", "model.nHeads=4", "model.nKvHeads=2",
  "model.dFF=128", "model.seqLen=32", "batchSize=4", "steps=12", "evalEvery=6", "evalBatches=2", "recipe=nvfp4", "recipe.bf16Last=0"];
const stepLosses = (dir: string, name: string) => readMetrics(join(dir, name, "metrics.jsonl")).filter((l) => l.type === "step").map((l) => l.loss as number);

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
}

test("NCCL bindings, one rank on one GPU: all-reduce (sum, max), reduce-scatter, all-gather, broadcast, groups", (t) => {
  const g = gpuBackend(t);
  if (!g) return;
  const nccl = getNccl();
  const v = nccl.version();
  assert.ok(v >= 20000, `NCCL version code ${v}`);
  const comm = nccl.commInitRank(1, uniqueIdFromHex(uniqueIdToHex(nccl.getUniqueId())), 0);
  try {
    assert.equal(nccl.commCount(comm), 1);
    assert.equal(nccl.commUserRank(comm), 0);
    const n = 4099, x = randn(n, 1);
    const a = g.fromArray(x, [n]), b = g.alloc([n]);
    nccl.allReduce(a.ptr, b.ptr, n, ncclFloat32, ncclSum, comm, null);
    assert.deepEqual(g.toArray(b), x, "out-of-place sum over one rank");
    nccl.allReduce(a.ptr, a.ptr, n, ncclFloat32, ncclMax, comm, null);
    assert.deepEqual(g.toArray(a), x, "in-place max");
    const c = g.alloc([n]);
    nccl.reduceScatter(a.ptr, c.ptr, n, ncclFloat32, ncclSum, comm, null);
    assert.deepEqual(g.toArray(c), x, "reduce-scatter: the one rank's slice is everything");
    const d = g.alloc([n]);
    nccl.allGather(a.ptr, d.ptr, n, ncclFloat32, comm, null);
    assert.deepEqual(g.toArray(d), x);
    const e = g.fromArray(randn(n, 2), [n]);
    nccl.groupStart();
    nccl.broadcast(a.ptr, e.ptr, n, ncclFloat32, 0, comm, null);
    nccl.allReduce(b.ptr, b.ptr, n, ncclFloat32, ncclSum, comm, null);
    nccl.groupEnd();
    assert.deepEqual(g.toArray(e), x, "broadcast inside a group");
    assert.equal(nccl.commGetAsyncError(comm), 0);
    assert.throws(() => nccl.broadcast(a.ptr, e.ptr, n, ncclFloat32, 3, comm, null), (err: Error) => err.name === "NcclError" && /^ncclBroadcast \(4099 elements from rank 3\) failed with nccl\w+ \(\d+\): .*invalid root 3/.test(err.message));
  } finally {
    nccl.commDestroy(comm);
  }
});

test("NCCL communicator, one rank: the bucketed sum packs and unpacks every tensor in place; broadcast, gather, barrier", (t) => {
  const g = gpuBackend(t);
  if (!g) return;
  const nccl = getNccl();
  // 1 KiB buckets: [300, 10] packed, [5000] alone, [7, 1] packed
  const c = new NcclCommunicator({ rank: 0, size: 1, id: nccl.getUniqueId(), bucketBytes: 1024 });
  try {
    const sizes = [300, 10, 5000, 7, 1];
    const xs = sizes.map((n, i) => randn(n, 10 + i));
    const ts = xs.map((x) => g.fromArray(x, [x.length]));
    c.allReduceSum(ts);
    ts.forEach((tt, i) => assert.deepEqual(g.toArray(tt), xs[i], `tensor ${i}`));
    c.allReduceMax(ts);
    c.broadcast(ts, 0);
    ts.forEach((tt, i) => assert.deepEqual(g.toArray(tt), xs[i], `tensor ${i} after max and broadcast`));
    assert.deepEqual([...c.allGather(Float64Array.of(1.25, -7))], [1.25, -7]);
    c.barrier();
    assert.match(c.description, /^NCCL \d+\.\d+\.\d+ /);
  } finally {
    c.close();
  }
});

test("NCCL communicator, one rank: buckets on the side stream wait for the compute stream's kernels; reduce-scatter and all-gather of shards", (t) => {
  const g = gpuBackend(t);
  if (!g) return;
  const c = new NcclCommunicator({ rank: 0, size: 1, id: getNccl().getUniqueId() });
  try {
    // 50 adds into a 64 MB x queued on the compute stream, then x packed with y into one bucket on
    // the side stream: a side stream that did not wait would pack a stale x and unpack it over the sum
    const n = 16 << 20, x = g.alloc([n]), ones = g.fromArray(new Float32Array(n).fill(1), [n]);
    const yv = randn(1000, 7), y = g.fromArray(yv, [1000]);
    for (let i = 0; i < 50; i++) g.add(x, x, ones);
    c.allReduceSumAsync([x, y]);
    c.flush();
    const xs = g.toArray(x);
    assert.ok(xs.every((v) => v === 50), `x after the bucket: ${xs[0]} … ${xs[n - 1]}`);
    assert.deepEqual(g.toArray(y), yv);
    // one rank: the reduce-scatter's shard is the whole bucket; the all-gather leaves it as it is
    const av = randn(300, 8), bv = randn(77, 9);
    const a = g.fromArray(av, [300]), b = g.fromArray(bv, [77]), shard = g.alloc([377]);
    c.reduceScatterSumAsync([a, b], shard);
    c.flush();
    assert.deepEqual(g.toArray(shard), Float32Array.from([...av, ...bv]));
    c.allGatherShards([a, b], 377);
    assert.deepEqual(g.toArray(a), av);
    assert.deepEqual(g.toArray(b), bv);
  } finally {
    c.close();
  }
});

test("--gpus 1 (the launcher, NCCL with one rank) trains like the plain single-GPU run", async (t) => {
  if (!gpuBackend(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-dp1-"));
  try {
    const plain = train(buildConfig([`outDir=${dir}`, ...BASE, "name=plain", "device=cuda"]));
    await launchDataParallel(buildConfig([`outDir=${dir}`, ...BASE, "name=dp", "device=cuda", "ranks=1"]), { log: () => {} });
    const dp = stepLosses(dir, "dp");
    const d = maxDiff(dp, plain.losses);
    console.log(`# --gpus 1 vs plain: max |Δloss| ${d.toExponential(2)}, ${dp.filter((l, i) => l === plain.losses[i]).length}/${dp.length} bit-identical`);
    assert.ok(d <= 1e-4, `max |Δloss| ${d}: ${dp} vs ${plain.losses}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--gpus 1: the overlapped exchange = the plain one bit for bit; ZeRO-1 within 1e-5", async (t) => {
  if (!gpuBackend(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-dp1-overlap-"));
  try {
    // 0.1 MiB buckets: the model's parameters go out in several buckets during the backward pass
    const run = (name: string, extra: string[]) => launchDataParallel(buildConfig([`outDir=${dir}`, ...BASE, `name=${name}`, "device=cuda", "ranks=1", "parallel.bucketMB=0.1", ...extra]), { log: () => {} });
    await run("plain", ["parallel.overlap=false"]);
    await run("overlap", []);
    await run("zero1", ["parallel.zero1=true"]);
    const [plain, overlap, zero1] = ["plain", "overlap", "zero1"].map((n) => stepLosses(dir, n));
    assert.deepEqual(overlap, plain, "one rank: the same sums, only on another stream");
    const d = maxDiff(zero1, plain);
    console.log(`# --gpus 1: overlapped = plain (${plain.length} losses); ZeRO-1 max |Δloss| ${d.toExponential(2)}, ${zero1.filter((l, i) => l === plain[i]).length}/${plain.length} bit-identical`);
    assert.ok(d <= 1e-5, `ZeRO-1: max |Δloss| ${d}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function gpuCount(): number {
  return getDriver().deviceCount();
}

test("2 GPUs: --gpus 2 × gradAccum 1 trains like 1 GPU × 2 (|Δloss| ≤ 1e-3); needs 2 GPUs", async (t) => {
  if (!gpuBackend(t)) return;
  if (gpuCount() < 2) return t.skip(`needs 2 GPUs, this machine has ${gpuCount()}`);
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-dp2-"));
  try {
    const one = train(buildConfig([`outDir=${dir}`, ...BASE, "name=one", "device=cuda", "gradAccum=2"]));
    await launchDataParallel(buildConfig([`outDir=${dir}`, ...BASE, "name=two", "device=cuda", "ranks=2"]), { log: () => {} });
    const two = stepLosses(dir, "two");
    const d = maxDiff(two, one.losses);
    console.log(`# --gpus 2 vs 1 GPU × 2: max |Δloss| ${d.toExponential(2)}; step 0 ${two[0]} vs ${one.losses[0]}`);
    assert.ok(Math.abs(two[0] - one.losses[0]) <= 1e-6, "the first step: same weights, same tokens");
    assert.ok(d <= 1e-3, `max |Δloss| ${d}: ${two} vs ${one.losses}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("2 GPUs: the overlapped exchange = the plain one bit for bit (a sum of two operands has one rounding); ZeRO-1 within 1e-5; needs 2 GPUs", async (t) => {
  if (!gpuBackend(t)) return;
  if (gpuCount() < 2) return t.skip(`needs 2 GPUs, this machine has ${gpuCount()}`);
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-dp2-overlap-"));
  try {
    const run = (name: string, extra: string[]) => launchDataParallel(buildConfig([`outDir=${dir}`, ...BASE, `name=${name}`, "device=cuda", "ranks=2", "parallel.bucketMB=0.1", ...extra]), { log: () => {} });
    await run("plain", ["parallel.overlap=false"]);
    await run("overlap", []);
    await run("zero1", ["parallel.zero1=true"]);
    await run("zero1-after", ["parallel.zero1=true", "parallel.overlap=false"]);
    const [plain, overlap, zero1, after] = ["plain", "overlap", "zero1", "zero1-after"].map((n) => stepLosses(dir, n));
    assert.deepEqual(overlap, plain);
    const [d, da] = [maxDiff(zero1, plain), maxDiff(after, plain)];
    console.log(`# --gpus 2: overlapped = plain (${plain.length} losses); ZeRO-1 max |Δloss| ${d.toExponential(2)} overlapped, ${da.toExponential(2)} after the backward pass`);
    assert.ok(d <= 1e-5 && da <= 1e-5, `ZeRO-1: max |Δloss| ${d}, ${da}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("2 GPUs: a GPU rank killed mid-run stops the job within seconds, naming it; the checkpoint loads; needs 2 GPUs", async (t) => {
  if (!gpuBackend(t)) return;
  if (gpuCount() < 2) return t.skip(`needs 2 GPUs, this machine has ${gpuCount()}`);
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-kill-"));
  try {
    const { pids, code, took, out, err, ckpt } = await killRankMidRun(dir, "k",
      ["--gpus=2", ...BASE.filter((s) => !s.startsWith("steps=") && !s.startsWith("log=")).map((s) => `--${s}`), "--log=plain", "--steps=100000", "--checkpointEvery=5", "--evalEvery=100000"],
      8, 180_000);
    assert.ok(pids.length === 2 && existsSync(ckpt), `started and checkpointed: ${out.slice(-2000)}${err.slice(-2000)}`);
    assert.equal(code, 2, err);
    assert.ok(took < 10_000, `the launcher took ${took.toFixed(0)} ms`);
    assert.match(err, /fp4lm: rank 1 \(pid \d+\) was killed by SIGKILL; stopped all 2 ranks; the last checkpoint, .* is intact/);
    assert.ok(loadCheckpoint(ckpt).state.step >= 5);
    console.log(`# GPU rank killed: the launcher exited after ${took.toFixed(0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
