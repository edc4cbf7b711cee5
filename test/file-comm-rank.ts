/**
 * One rank of the file-communicator test (src/parallel/file-communicator.test.ts), run as its own
 * process: `node --import tsx test/file-comm-rank.ts DIR RANK SIZE`. Runs a fixed sequence of
 * collectives on seeded per-rank data and prints the results as one JSON line. The test imports
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
  c.barrier();
  c.close();
  process.stdout.write(JSON.stringify({ rank, sum, max: mx.map((t) => [...t.data]), bcast: b.map((t) => [...t.data]), gathered }) + "\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv[2], Number(process.argv[3]), Number(process.argv[4]));
