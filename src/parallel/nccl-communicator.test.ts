import { test } from "node:test";
import assert from "node:assert/strict";
import { fakeNccl, type FakeNccl } from "../../test/fake-nccl.ts";
import { Rng } from "../../test/random.ts";
import type { Tensor } from "../backends/backend.ts";
import { getNccl } from "../backends/cuda/nccl.ts";
import { buckets, CommError } from "./communicator.ts";
import { NcclCommunicator, type DeviceOps } from "./nccl-communicator.ts";

type FakeTensor = Tensor & { ptr: bigint };

function setup(t: { skip(m: string): void }): FakeNccl | undefined {
  const fake = fakeNccl();
  if ("skip" in fake) { t.skip(fake.skip); return undefined; }
  process.env.FP4LM_NCCL_LIB = fake.path;
  return fake;
}

/** 2 mirrored ranks (the fake: every peer holds this rank's data). */
function communicator(fake: FakeNccl, o: { ops?: DeviceOps; bucketBytes?: number; timeoutMs?: number; parentPid?: number } = {}) {
  const nccl = getNccl();
  return new NcclCommunicator({ rank: 1, size: 2, id: nccl.getUniqueId(), nccl, ops: o.ops ?? fake.ops, bucketBytes: o.bucketBytes, timeoutMs: o.timeoutMs, parentPid: o.parentPid });
}

function tensors(fake: FakeNccl, sizes: number[], seed: number): { ts: FakeTensor[]; values: Float32Array[] } {
  const rng = new Rng(seed);
  const values = sizes.map((n) => Float32Array.from({ length: n }, () => rng.normal()));
  const ts = values.map((v) => {
    const ptr = fake.ops.alloc(v.byteLength);
    fake.ops.upload(ptr, v);
    return { shape: [v.length], size: v.length, ptr };
  });
  return { ts, values };
}

const read = (fake: FakeNccl, t: FakeTensor) => { const a = new Float32Array(t.size); fake.ops.download(a, t.ptr); return a; };

test("buckets: consecutive, at most cap elements, an oversized tensor alone", () => {
  assert.deepEqual(buckets([5, 3, 1000, 2, 7], 16), [[0, 1], [2], [3, 4]]);
  assert.deepEqual(buckets([4, 4, 4, 4], 8), [[0, 1], [2, 3]]);
  assert.deepEqual(buckets([9], 8), [[0]]);
  assert.deepEqual(buckets([], 8), []);
  assert.throws(() => buckets([1], 0), RangeError);
});

test("NCCL communicator on a fake NCCL: bucketed sum packs and unpacks every element; max, broadcast, gather, barrier", (t) => {
  const fake = setup(t);
  if (!fake) return;
  const c = communicator(fake, { bucketBytes: 16 * 4 });
  assert.match(c.description, /^NCCL 9\.99\.99 /);
  const { ts, values } = tensors(fake, [5, 3, 1000, 2, 7], 11);
  const before = fake.collectives();
  c.allReduceSum(ts);
  assert.equal(fake.collectives() - before, 3, "buckets [5+3], [1000], [2+7]");
  ts.forEach((x, i) => assert.deepEqual(read(fake, x), values[i].map((v) => 2 * v), `tensor ${i}`));
  const m = fake.collectives();
  c.allReduceMax(ts.slice(0, 2));
  assert.equal(fake.collectives() - m, 2);
  assert.deepEqual(read(fake, ts[0]), values[0].map((v) => 2 * v));
  c.broadcast(ts, 0);
  assert.deepEqual(read(fake, ts[4]), values[4].map((v) => 2 * v));
  assert.deepEqual([...c.allGather(Float64Array.of(0.25, 3.5, -1))], [0.25, 3.5, -1, 0.25, 3.5, -1]);
  assert.deepEqual([...c.allGather(new Float64Array(0))], []);
  c.barrier();
  assert.throws(() => c.broadcast(ts, 2), RangeError);
  assert.throws(() => c.allReduceSum([{ shape: [2], size: 2 }]), (e: unknown) => e instanceof CommError && /CUDA tensors/.test(e.message));
  c.close();
  assert.throws(() => c.barrier(), (e: unknown) => e instanceof CommError && /closed/.test(e.message));
  for (const x of ts) fake.ops.free(x.ptr);
});

test("NCCL communicator on a fake NCCL: buckets started on the side stream (ordered after the compute stream, waited for by flush), reduce-scatter with padding, all-gather of shards", (t) => {
  const fake = setup(t);
  if (!fake) return;
  const c = communicator(fake);
  const { ts, values } = tensors(fake, [5, 3, 1000], 12);
  const [c0, o0] = [fake.collectives(), fake.orders()];
  c.allReduceSumAsync(ts.slice(0, 2));
  c.allReduceSumAsync(ts.slice(2));
  assert.equal(fake.orders() - o0, 2, "each bucket's side-stream work waits for the compute stream");
  c.flush();
  assert.equal(fake.orders() - o0, 3, "flush: the compute stream waits for the side stream");
  c.flush();
  assert.equal(fake.orders() - o0, 3, "nothing pending, nothing to wait for");
  assert.equal(fake.collectives() - c0, 2);
  ts.forEach((x, i) => assert.deepEqual(read(fake, x), values[i].map((v) => 2 * v), `tensor ${i}`));
  // a 7-element bucket over 2 ranks: S = 4, this (rank 1's) slice is elements 4..6 of the sum and one zero of padding
  const { ts: b, values: bv } = tensors(fake, [5, 2], 13);
  const flat = [...bv[0], ...bv[1]];
  const shard = tensors(fake, [4], 14).ts[0];
  c.reduceScatterSumAsync(b, shard);
  assert.throws(() => c.reduceScatterSumAsync(b, tensors(fake, [3], 15).ts[0]), /shards of 4, got 3/);
  c.flush();
  assert.deepEqual([...read(fake, shard)], [...flat.slice(4).map((v) => Math.fround(2 * v)), 0]);
  // one tensor of 2·S elements is reduce-scattered from where it is
  const { ts: [even], values: [ev] } = tensors(fake, [8], 16);
  const shard4 = tensors(fake, [4], 17).ts[0];
  c.reduceScatterSumAsync([even], shard4);
  c.flush();
  assert.deepEqual([...read(fake, shard4)], [...ev.slice(4).map((v) => Math.fround(2 * v))]);
  // all-gather: every slot gets rank 1's slice (the fake's peers mirror it)
  c.allGatherShards(b, 4);
  const mine = [...flat.slice(4), 0];
  assert.deepEqual([...read(fake, b[0]), ...read(fake, b[1])], [...mine, ...mine].slice(0, 7));
  // a synchronous collective first completes the buckets in flight
  c.allReduceSumAsync(ts.slice(0, 1));
  const o1 = fake.orders();
  c.barrier();
  assert.equal(fake.orders() - o1, 1);
  c.close();
  for (const x of [...ts, ...b, shard, even, shard4]) fake.ops.free(x.ptr);
});

test("NCCL communicator: an asynchronous NCCL error, a stream that never drains, a dead launcher all become CommErrors", (t) => {
  const fake = setup(t);
  if (!fake) return;
  // the stream needs a few polls: the wait keeps polling, then returns
  let busy = 5;
  const slow: DeviceOps = { ...fake.ops, streamDone: () => busy-- <= 0 };
  const c1 = communicator(fake, { ops: slow });
  const { ts } = tensors(fake, [4, 4], 3);
  c1.allReduceSum(ts);
  assert.ok(busy < 0);
  // a peer died: NCCL reports it through ncclCommGetAsyncError while the rank waits
  fake.setAsyncError((c1 as unknown as { comm: unknown }).comm, 6);
  assert.throws(() => c1.allReduceSum(ts), (e: unknown) => e instanceof CommError && /^rank 1: NCCL reported ncclRemoteError \(remote process exited.*\) during allReduceSum/.test(e.message));
  assert.throws(() => c1.barrier(), /closed/, "aborted after the error");

  const stuck: DeviceOps = { ...fake.ops, streamDone: () => false };
  const c2 = communicator(fake, { ops: stuck, timeoutMs: 30 });
  const t0 = performance.now();
  assert.throws(() => c2.barrier(), (e: unknown) => e instanceof CommError && /barrier did not finish in 0 s; is a peer rank stuck\?/.test(e.message));
  assert.ok(performance.now() - t0 < 2000);

  const c3 = communicator(fake, { ops: stuck, parentPid: process.ppid + 1 });
  assert.throws(() => c3.barrier(), (e: unknown) => e instanceof CommError && /the launcher \(pid \d+\) is gone/.test(e.message));
  c3.close(true);
  for (const x of ts) fake.ops.free(x.ptr);
});
