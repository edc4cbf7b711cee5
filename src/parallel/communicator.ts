/**
 * The collectives data-parallel training needs, over the ranks of one job (one process each):
 * sum gradients (in buckets, also started bucket by bucket during the backward pass), reduce-scatter
 * gradients and all-gather weight shards (ZeRO-1), max (a global amax), broadcast parameters from
 * rank 0, gather a few host numbers (the micro-batch losses), a barrier. Two implementations: nccl-communicator.ts
 * (CUDA tensors, NCCL; the real thing) and file-communicator.ts (CPU tensors, files in a shared
 * folder; for CPU runs and tests without GPUs). Both give every rank the same bits.
 * Not a launcher (launch.ts) and not the training hook (data-parallel.ts).
 */
import type { Tensor } from "../backends/backend.ts";
import { Fp4lmError } from "../errors.ts";

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** what it runs on, for the run header */
  readonly description: string;
  /** each tensor := Σ over ranks, in place, in buckets of at most bucketBytes */
  allReduceSum(tensors: readonly Tensor[]): void;
  /** each tensor := elementwise max over ranks, in place (the global amax of a tensor split across ranks) */
  allReduceMax(tensors: readonly Tensor[]): void;
  /**
   * Start summing one bucket of gradients over ranks, in place (the tensors taken as one
   * concatenated vector). NCCL enqueues it on a second stream, behind the work queued so far on
   * the compute stream, and returns; the file communicator does it now. `flush` completes it.
   */
  allReduceSumAsync(bucket: readonly Tensor[]): void;
  /**
   * Start a bucket's reduce-scatter (ZeRO-1): the tensors concatenated and zero-padded to
   * size·S (S = shard.size), summed over ranks; this rank's slice [rank·S, rank·S + S) goes into
   * `shard`. Completed by `flush`.
   */
  reduceScatterSumAsync(bucket: readonly Tensor[], shard: Tensor): void;
  /** Wait for what the async calls started; afterwards the compute stream runs after them. */
  flush(): void;
  /**
   * The inverse of the reduce-scatter: the bucket's concatenation (padded to size·S) := every
   * rank's own slice [r·S, r·S + S) of it, in rank order (ZeRO-1's all-gather of updated weights).
   */
  allGatherShards(bucket: readonly Tensor[], S: number): void;
  /** each tensor := root's, in place */
  broadcast(tensors: readonly Tensor[], root: number): void;
  /** every rank's `values` (the same length on each), concatenated in rank order */
  allGather(values: Float64Array): Float64Array;
  barrier(): void;
  /** release what it holds; `abort` after a failure: do not wait for the peers */
  close(abort?: boolean): void;
}

/** A collective failed: a peer is gone, timed out or reported an error. Names the rank(s) when known. */
export class CommError extends Fp4lmError {
  override name = "CommError";
}

/** Exit code of a rank that stopped because a peer failed (the launcher then blames the peer). */
export const PEER_FAILED_EXIT = 3;

/** PyTorch DDP's default bucket size (bucket_cap_mb = 25). */
export const DEFAULT_BUCKET_BYTES = 25 << 20;

/** Elements per rank when n elements are split over `size` ranks (the last slices padded with zeros). */
export function shardElements(n: number, size: number): number {
  return Math.ceil(n / size);
}

/**
 * Split tensors of these sizes (elements) into consecutive buckets of at most `cap` elements; a
 * tensor larger than `cap` is a bucket of its own. Returns the tensor indices of each bucket.
 */
export function buckets(sizes: readonly number[], cap: number): number[][] {
  if (!(cap >= 1)) throw new RangeError(`bucket capacity must be at least one element, got ${cap}`);
  const out: number[][] = [];
  let cur: number[] = [], used = 0;
  sizes.forEach((n, i) => {
    if (cur.length > 0 && used + n > cap) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(i);
    used += n;
  });
  if (cur.length) out.push(cur);
  return out;
}

/** Seconds a rank waits for its peers in one collective before giving up (FP4LM_COMM_TIMEOUT_S, default 900). */
export function commTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const s = Number(env.FP4LM_COMM_TIMEOUT_S ?? 900);
  if (!(s > 0)) throw new Fp4lmError(`FP4LM_COMM_TIMEOUT_S must be a positive number of seconds, got ${env.FP4LM_COMM_TIMEOUT_S}`);
  return s * 1000;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Block the thread for `ms` (the training loop is synchronous: waiting for peers cannot yield). */
export function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Throws CommError when the launcher that started this rank is gone (this process was re-parented). */
export function checkParent(parentPid: number | undefined, rank: number): void {
  if (parentPid !== undefined && process.ppid !== parentPid) {
    throw new CommError(`rank ${rank}: the launcher (pid ${parentPid}) is gone; stopping`);
  }
}
