/**
 * One rank of the file-communicator test (src/parallel/file-communicator.test.ts), run as its own
 * process: `node --import tsx test/file-comm-rank.ts DIR RANK SIZE`. Runs a fixed sequence of
 * collectives (the bucket-wise async ones and ZeRO-1's reduce-scatter and all-gather too) on seeded per-rank data and prints the results as one JSON line. The test imports
 * `rankTensors` to compute what to expect.
 */
import { fileURLToPath } from "node:url";
import { CpuTensor } from "../src/backends/cpu/cpu-backend.ts";
import { FileCommunicator } from "../src/parallel/file-communicator.ts";
import { Rng } from "./random.ts";

/** rank r's tensors: seeded by r, spread over many binades so the FP32 sum order matters */
export function rankTensors(r: number): Float32Array[] {
  const rng = new Rng(100 + r);
  return [7, 20, 3].map((n) => Float32Array.from({ length: n }, () => rng.normal() * 2 ** rng.int(-12, 12)));
}

function main(dir: string, rank: number, size: number): void {
  const c = new FileCommunicator({ dir, rank, size, bucketBytes: 64, timeoutMs: 30_000 });
  const ts = rankTensors(rank).map((d) => new CpuTensor([d.length], d));
  c.allReduceSum(ts);
  const sum = ts.map((t) => [...t.data]);
  const mx = rankTensors(rank).map((d) => new CpuTensor([d.length], d));
  c.allReduceMax(mx);
  const b = rankTensors(rank).map((d) => new CpuTensor([d.length], d));
  c.broadcast(b, size - 1);
  const gathered = [...c.allGather(Float64Array.of(rank + 0.5, -rank - 0.25))];
  // the bucket-wise calls of the overlapped and ZeRO-1 exchanges: buckets [7, 20] and [3]; the
  // reduce-scatters and all-gathers over all 30 values (S = ⌈30/N⌉) and over [7, 3] (padded)
  const as = rankTensors(rank).map((d) => new CpuTensor([d.length], d));
  c.allReduceSumAsync(as.slice(0, 2));
  c.allReduceSumAsync(as.slice(2));
  c.flush();
  const rs = [0, 1].map((k) => {
    const mine = rankTensors(rank).map((d) => new CpuTensor([d.length], d));
    const bucket = k === 0 ? mine : [mine[0], mine[2]];
    const n = bucket.reduce((x, t) => x + t.size, 0);
    const shard = new CpuTensor([Math.ceil(n / size)], new Float32Array(Math.ceil(n / size)));
    c.reduceScatterSumAsync(bucket, shard);
    return [...shard.data];
  });
  c.flush();
  const ag = [0, 1].map((k) => {
    const mine = rankTensors(rank).map((d) => new CpuTensor([d.length], d));
    const bucket = k === 0 ? mine : [mine[0], mine[2]];
    c.allGatherShards(bucket, Math.ceil(bucket.reduce((x, t) => x + t.size, 0) / size));
    return bucket.map((t) => [...t.data]);
  });
  c.barrier();
  c.close();
  process.stdout.write(JSON.stringify({ rank, sum, max: mx.map((t) => [...t.data]), bcast: b.map((t) => [...t.data]), gathered, asyncSum: as.map((t) => [...t.data]), rs, ag }) + "\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv[2], Number(process.argv[3]), Number(process.argv[4]));
