/**
 * A communicator for CPU ranks: each collective is one exchange through a folder all ranks share
 * (the launcher makes it, under /dev/shm where there is one). Rank r writes its part as
 * `<seq>.<r>` (temp file + rename, so a reader never sees half a file), waits until all N parts
 * of `seq` exist, reads them and reduces in rank order 0, 1, ..., N-1 (FP32, rounded after each
 * add), so every rank computes the same bits and a run is reproducible whatever the arrival
 * order (a reduce-scatter reduces only this rank's slice, the same way; the "async" calls run at
 * once, so the overlapped schedule gives the same bits as the plain one). Having finished `seq`, a rank deletes its part of `seq − 1`: every peer has posted
 * `seq`, so has read `seq − 1`. Synchronous (the training loop is), polling with short sleeps.
 * Not fast (every rank reads every part: N² reads) and not for GPU tensors (nccl-communicator.ts).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Tensor } from "../backends/backend.ts";
import { buckets, checkParent, CommError, commTimeoutMs, DEFAULT_BUCKET_BYTES, shardElements, sleepMs, type Communicator } from "./communicator.ts";

export interface FileCommunicatorOptions {
  /** the shared folder (exists; one per job) */
  dir: string;
  rank: number;
  size: number;
  bucketBytes?: number;
  /** default commTimeoutMs() */
  timeoutMs?: number;
  /** the launcher's pid: a rank whose launcher died stops instead of waiting */
  parentPid?: number;
}

function f32(t: Tensor, what: string): Float32Array {
  const data = (t as { data?: unknown }).data;
  if (!(data instanceof Float32Array)) throw new CommError(`${what}: the file communicator works on CPU tensors; a GPU run uses NCCL`);
  return data;
}

const bytesOf = (a: Float32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A part's bytes as n floats (copied where the buffer is not 4-byte aligned). */
function floats(b: Buffer, n: number): Float32Array {
  return b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, n) : new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
}

/** The arrays one after another (n = their total length). */
function concat(data: readonly Float32Array[], n: number): Float32Array {
  const flat = new Float32Array(n);
  let o = 0;
  for (const d of data) { flat.set(d, o); o += d.length; }
  return flat;
}

/** The inverse of concat: flat's leading elements back into the arrays. */
function scatter(flat: Float32Array, data: readonly Float32Array[]): void {
  let o = 0;
  for (const d of data) { d.set(flat.subarray(o, o + d.length)); o += d.length; }
}

export class FileCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly description: string;
  private readonly dir: string;
  private readonly cap: number;
  private readonly timeoutMs: number;
  private readonly parentPid: number | undefined;
  private seq = 0;

  constructor(o: FileCommunicatorOptions) {
    if (!Number.isInteger(o.size) || o.size < 1 || !Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.size) {
      throw new RangeError(`FileCommunicator: rank ${o.rank} of ${o.size} is not a valid rank`);
    }
    this.rank = o.rank;
    this.size = o.size;
    this.dir = o.dir;
    this.cap = Math.max(1, Math.floor((o.bucketBytes ?? DEFAULT_BUCKET_BYTES) / 4));
    this.timeoutMs = o.timeoutMs ?? commTimeoutMs();
    this.parentPid = o.parentPid;
    this.description = `files in ${o.dir}`;
  }

  private part(seq: number, rank: number): string {
    return join(this.dir, `${seq}.${rank}`);
  }

  /** Post this rank's bytes for the next collective and return every rank's, in rank order. */
  private exchange(what: string, payload: Uint8Array): Buffer[] {
    const seq = this.seq++;
    const mine = this.part(seq, this.rank);
    writeFileSync(mine + ".tmp", payload);
    renameSync(mine + ".tmp", mine);
    const t0 = performance.now();
    let pause = 0.05;
    const parts: Buffer[] = [];
    for (let r = 0; r < this.size; r++) {
      const p = this.part(seq, r);
      while (!existsSync(p)) {
        const waited = performance.now() - t0;
        if (waited > this.timeoutMs) {
          const missing = Array.from({ length: this.size }, (_, k) => k).filter((k) => !existsSync(this.part(seq, k)));
          throw new CommError(`rank ${this.rank}: waited ${(waited / 1000).toFixed(0)} s in collective #${seq} (${what}) for rank${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; is it alive? (FP4LM_COMM_TIMEOUT_S sets the limit)`);
        }
        checkParent(this.parentPid, this.rank);
        sleepMs(pause);
        pause = Math.min(pause * 2, 5);
      }
      parts.push(r === this.rank ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : readFileSync(p));
    }
    if (seq > 0) rmSync(this.part(seq - 1, this.rank), { force: true });
    return parts;
  }

  private reduce(tensors: readonly Tensor[], what: string, op: (acc: number, x: number) => number): void {
    const data = tensors.map((t) => f32(t, what));
    for (const bucket of buckets(data.map((d) => d.length), this.cap)) this.reduceBucket(bucket.map((i) => data[i]), what, op, 0, -1);
  }

  /**
   * One exchange of the concatenation of `data` (n elements); elements [from, to) (to < 0: n) are
   * reduced in rank order and returned; the caller writes them where they belong.
   */
  private reduceBucket(data: Float32Array[], what: string, op: (acc: number, x: number) => number, from: number, to: number): Float32Array {
    const n = data.reduce((s, d) => s + d.length, 0);
    const flat = concat(data, n);
    const parts = this.exchange(what, bytesOf(flat)).map((b) => {
      if (b.byteLength !== n * 4) throw new CommError(`rank ${this.rank}: a peer sent ${b.byteLength} bytes for a ${n}-element ${what} bucket; are all ranks running the same model?`);
      return floats(b, n);
    });
    const hi = to < 0 ? n : to;
    const acc = Float32Array.from(parts[0].subarray(from, hi));
    for (let r = 1; r < parts.length; r++) {
      const x = parts[r];
      for (let j = from; j < hi; j++) acc[j - from] = op(acc[j - from], x[j]);
    }
    if (to < 0) scatter(acc, data);
    return acc;
  }

  allReduceSumAsync(bucket: readonly Tensor[]): void {
    this.reduceBucket(bucket.map((t) => f32(t, "allReduceSumAsync")), "allReduceSum", (a, x) => a + x, 0, -1);
  }

  reduceScatterSumAsync(bucket: readonly Tensor[], shard: Tensor): void {
    const out = f32(shard, "reduceScatterSumAsync"), S = out.length;
    const data = bucket.map((t) => f32(t, "reduceScatterSumAsync"));
    const n = data.reduce((s, d) => s + d.length, 0);
    if (S !== shardElements(n, this.size)) throw new RangeError(`reduceScatterSum: a ${n}-element bucket over ${this.size} ranks has shards of ${shardElements(n, this.size)}, got ${S}`);
    const lo = Math.min(n, this.rank * S), hi = Math.min(n, lo + S);
    out.fill(0);
    out.set(this.reduceBucket(data, "reduceScatterSum", (a, x) => a + x, lo, hi));
  }

  flush(): void {
    // every bucket was reduced when it was handed over
  }

  allGatherShards(bucket: readonly Tensor[], S: number): void {
    const data = bucket.map((t) => f32(t, "allGatherShards"));
    const n = data.reduce((s, d) => s + d.length, 0);
    if (S !== shardElements(n, this.size)) throw new RangeError(`allGatherShards: a ${n}-element bucket over ${this.size} ranks has shards of ${shardElements(n, this.size)}, got ${S}`);
    const padded = new Float32Array(S * this.size);
    padded.set(concat(data, n));
    const parts = this.exchange("allGatherShards", bytesOf(padded.subarray(this.rank * S, this.rank * S + S)));
    parts.forEach((b, r) => {
      if (b.byteLength !== S * 4) throw new CommError(`rank ${this.rank}: rank ${r} sent a ${b.byteLength / 4}-element shard, this rank expects ${S}; are all ranks running the same model?`);
      padded.set(floats(b, S), r * S);
    });
    scatter(padded, data);
  }

  allReduceSum(tensors: readonly Tensor[]): void {
    // (a Float32Array store rounds each partial sum to FP32, as an FP32 accumulator would)
    this.reduce(tensors, "allReduceSum", (a, x) => a + x);
  }

  allReduceMax(tensors: readonly Tensor[]): void {
    // NaN wins, as it must for an amax that is then checked
    this.reduce(tensors, "allReduceMax", (a, x) => (a > x || Number.isNaN(a) ? a : x));
  }

  broadcast(tensors: readonly Tensor[], root: number): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) throw new RangeError(`broadcast: root ${root} is not a rank of ${this.size}`);
    const data = tensors.map((t) => f32(t, "broadcast"));
    const n = data.reduce((s, d) => s + d.length, 0);
    const flat = new Float32Array(this.rank === root ? n : 0);
    if (this.rank === root) {
      let o = 0;
      for (const d of data) { flat.set(d, o); o += d.length; }
    }
    const b = this.exchange("broadcast", bytesOf(flat))[root];
    if (b.byteLength !== n * 4) throw new CommError(`rank ${this.rank}: rank ${root} broadcast ${b.byteLength / 4} values, this rank expects ${n}; are all ranks running the same model?`);
    const got = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    let o = 0;
    for (const d of data) { d.set(got.subarray(o, o + d.length)); o += d.length; }
  }

  allGather(values: Float64Array): Float64Array {
    const parts = this.exchange("allGather", bytesOf(values));
    const out = new Float64Array(values.length * this.size);
    parts.forEach((b, r) => {
      if (b.byteLength !== values.byteLength) throw new CommError(`rank ${this.rank}: rank ${r} gathered ${b.byteLength / 8} values, this rank ${values.length}`);
      out.set(new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), r * values.length);
    });
    return out;
  }

  barrier(): void {
    this.exchange("barrier", new Uint8Array(0));
  }

  close(): void {
    // the launcher removes the folder with the last parts
  }
}
