/**
 * A communicator for CPU ranks: each collective is one exchange through a folder all ranks share
 * (the launcher makes it, under /dev/shm where there is one). Rank r writes its part as
 * `<seq>.<r>` (temp file + rename, so a reader never sees half a file), waits until all N parts
 * of `seq` exist, reads them and reduces in rank order 0, 1, ..., N-1 (FP32, rounded after each
 * add), so every rank computes the same bits and a run is reproducible whatever the arrival
 * order. Having finished `seq`, a rank deletes its part of `seq − 1`: every peer has posted
 * `seq`, so has read `seq − 1`. Synchronous (the training loop is), polling with short sleeps.
 * Not fast (every rank reads every part: N² reads) and not for GPU tensors (nccl-communicator.ts).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Tensor } from "../backends/backend.ts";
import { buckets, checkParent, CommError, commTimeoutMs, DEFAULT_BUCKET_BYTES, sleepMs, type Communicator } from "./communicator.ts";

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
    for (const bucket of buckets(data.map((d) => d.length), this.cap)) {
      const n = bucket.reduce((s, i) => s + data[i].length, 0);
      const flat = new Float32Array(n);
      let o = 0;
      for (const i of bucket) { flat.set(data[i], o); o += data[i].length; }
      const parts = this.exchange(what, bytesOf(flat)).map((b) => {
        if (b.byteLength !== n * 4) throw new CommError(`rank ${this.rank}: a peer sent ${b.byteLength} bytes for a ${n}-element ${what} bucket; are all ranks running the same model?`);
        return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      });
      const acc = parts[0];
      for (let r = 1; r < parts.length; r++) {
        const x = parts[r];
        for (let j = 0; j < n; j++) acc[j] = op(acc[j], x[j]);
      }
      o = 0;
      for (const i of bucket) { data[i].set(acc.subarray(o, o + data[i].length)); o += data[i].length; }
    }
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
