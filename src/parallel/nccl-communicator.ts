/**
 * The communicator of GPU ranks: NCCL (src/backends/cuda/nccl.ts) on the stream the CUDA backend
 * runs on, so collectives are ordered after the backward pass's kernels without extra syncs.
 * Gradients are summed in buckets (≤ 25 MiB by default, PyTorch DDP's size): a bucket of several
 * tensors is packed into one flat buffer (device-to-device copies), all-reduced in place and
 * unpacked; a tensor alone in its bucket is reduced in place. NCCL's ring and tree all-reduces
 * end with every rank holding the same bits.
 * Waiting: after enqueueing, the rank polls the stream and ncclCommGetAsyncError (and whether its
 * launcher is alive) instead of blocking in the driver, so a dead peer or a network failure
 * becomes a CommError within a poll interval (then ncclCommAbort) rather than a hang.
 * Overlap (data-parallel.ts): `allReduceSumAsync` / `reduceScatterSumAsync` enqueue one bucket
 * on a second, non-blocking stream (a blocking one would serialise with the legacy default stream
 * the backend uses) after an event recorded on the compute stream, so the bucket's NCCL kernel runs
 * beside the rest of the backward pass; `flush` makes the compute stream wait on the side stream's
 * event and polls the side stream as above. Every synchronous collective flushes first, so the
 * communicator never has NCCL work in flight on both streams.
 * The device side is injected (`DeviceOps`) so the bucketing and the error paths are tested on the
 * CPU against a host-memory fake NCCL (test/fake-nccl.c).
 */
import type { Tensor } from "../backends/backend.ts";
import { deviceAllocator } from "../backends/cuda/allocator.ts";
import { getDriver, type CuEvent, type CuStream, type Stream } from "../backends/cuda/driver.ts";
import {
  getNccl, ncclFloat32, ncclFloat64, ncclInProgress, ncclMax, ncclResultName, ncclSuccess, ncclSum,
  type Nccl, type NcclComm, type NcclUniqueId,
} from "../backends/cuda/nccl.ts";
import { buckets, checkParent, CommError, commTimeoutMs, DEFAULT_BUCKET_BYTES, shardElements, sleepMs, type Communicator } from "./communicator.ts";

/** What the communicator needs from the device: memory, copies on a stream, a second stream, and whether a stream is idle. */
export interface DeviceOps {
  /** the compute stream (the CUDA backend's): synchronous collectives and their copies run on it */
  stream: Stream;
  /** the communication stream of the overlapped buckets (made on first use; must not synchronise with `stream`) */
  sideStream(): Stream;
  /** work queued on `waiter` from now on runs after everything queued so far on `on` (an event; the host does not wait) */
  order(waiter: Stream, on: Stream): void;
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
  /** device-to-device copy, enqueued on `on` (default `stream`) */
  copyAsync(dst: bigint, src: bigint, bytes: number, on?: Stream): void;
  /** zero `bytes` bytes, enqueued on `on` */
  zeroAsync(dst: bigint, bytes: number, on: Stream): void;
  /** host → device, synchronous */
  upload(dst: bigint, src: ArrayBufferView): void;
  /** device → host, synchronous (called only once the stream is idle) */
  download(dst: ArrayBufferView, src: bigint): void;
  /** true when everything enqueued on `on` (default `stream`) has finished; throws on a device error */
  streamDone(on?: Stream): boolean;
  /** release the side stream and events (abort: the work may not have finished; leave them) */
  close(abort: boolean): void;
}

/**
 * The CUDA backend's side: the caching allocator, the driver's copies, the legacy default stream
 * (everything the backend launches goes there), and a non-blocking second stream (a blocking one
 * would wait for the legacy stream's later kernels, which is the overlap we want to avoid).
 */
export function cudaDeviceOps(): DeviceOps {
  const drv = getDriver();
  const mem = deviceAllocator();
  let side: CuStream | undefined;
  // one event per stream that others wait on: a wait takes the event as last recorded, so re-recording is safe
  const marks = new Map<Stream, CuEvent>();
  return {
    stream: null,
    sideStream: () => (side ??= drv.streamCreate(true)),
    order: (waiter, on) => {
      let ev = marks.get(on);
      if (!ev) marks.set(on, (ev = drv.eventCreate(false)));
      drv.eventRecord(ev, on);
      drv.streamWaitEvent(waiter, ev);
    },
    alloc: (bytes) => mem.alloc(bytes),
    free: (p) => mem.free(p),
    copyAsync: (dst, src, bytes, on = null) => drv.memcpyDtoDAsync(dst, src, bytes, on),
    zeroAsync: (dst, bytes, on) => drv.memsetD8(dst, 0, bytes, on),
    upload: (dst, src) => drv.memcpyHtoD(dst, src),
    download: (dst, src) => drv.memcpyDtoH(dst, src),
    streamDone: (on = null) => drv.streamQuery(on),
    close: (abort) => {
      if (abort) return;
      if (side) { drv.streamSynchronize(side); drv.streamDestroy(side); side = undefined; }
      for (const ev of marks.values()) drv.eventDestroy(ev);
      marks.clear();
    },
  };
}

export interface NcclCommunicatorOptions {
  rank: number;
  size: number;
  /** the job's unique id (the launcher made it) */
  id: NcclUniqueId;
  /** default: the CUDA backend's (cudaDeviceOps) */
  ops?: DeviceOps;
  /** default: getNccl() */
  nccl?: Nccl;
  bucketBytes?: number;
  timeoutMs?: number;
  parentPid?: number;
}

/** Device tensors as the CUDA backend makes them: a pointer to `size` FP32 values. */
function ptrOf(t: Tensor): bigint {
  const p = (t as { ptr?: unknown }).ptr;
  if (typeof p !== "bigint") throw new CommError("the NCCL communicator works on CUDA tensors; a CPU run uses the file communicator");
  return p;
}

export class NcclCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly description: string;
  private readonly nccl: Nccl;
  private readonly ops: DeviceOps;
  private comm: NcclComm | undefined;
  private readonly cap: number;
  private readonly timeoutMs: number;
  private readonly parentPid: number | undefined;
  private bucket: { ptr: bigint; bytes: number } | undefined;
  /** the side stream's packing buffer, and how many buckets were started there since the last flush */
  private sideBucket: { ptr: bigint; bytes: number } | undefined;
  private pending = 0;

  /** Join the job's communicator on the current CUDA device (blocks until every rank has joined). */
  constructor(o: NcclCommunicatorOptions) {
    this.rank = o.rank;
    this.size = o.size;
    this.nccl = o.nccl ?? getNccl();
    this.ops = o.ops ?? cudaDeviceOps();
    this.cap = Math.max(1, Math.floor((o.bucketBytes ?? DEFAULT_BUCKET_BYTES) / 4));
    this.timeoutMs = o.timeoutMs ?? commTimeoutMs();
    this.parentPid = o.parentPid;
    this.comm = this.nccl.commInitRank(o.size, o.id, o.rank);
    const v = this.nccl.version();
    this.description = `NCCL ${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100} (${this.nccl.libraryPath})`;
  }

  private get live(): NcclComm {
    if (!this.comm) throw new CommError(`rank ${this.rank}: the NCCL communicator is closed`);
    return this.comm;
  }

  /**
   * Wait until the stream has finished what was enqueued, checking NCCL's asynchronous status
   * meanwhile: spin briefly (collectives of a step take micro- to milliseconds), then sleep 1 ms
   * between polls.
   */
  private wait(what: string, on: Stream = this.ops.stream): void {
    const t0 = performance.now();
    for (let polls = 0; ; polls++) {
      const err = this.nccl.commGetAsyncError(this.live);
      if (err !== ncclSuccess && err !== ncclInProgress) {
        const text = this.nccl.errorString(err);
        this.close(true);
        throw new CommError(`rank ${this.rank}: NCCL reported ${ncclResultName(err)} (${text}) during ${what}: a peer rank died or the interconnect failed`);
      }
      if (this.ops.streamDone(on)) return;
      const waited = performance.now() - t0;
      if (waited > this.timeoutMs) {
        this.close(true);
        throw new CommError(`rank ${this.rank}: ${what} did not finish in ${(waited / 1000).toFixed(0)} s; is a peer rank stuck? (FP4LM_COMM_TIMEOUT_S sets the limit)`);
      }
      checkParent(this.parentPid, this.rank);
      if (polls > 2000) sleepMs(1);
    }
  }

  private bucketBuffer(bytes: number): bigint {
    if (!this.bucket || this.bucket.bytes < bytes) {
      if (this.bucket) this.ops.free(this.bucket.ptr);
      this.bucket = { ptr: this.ops.alloc(bytes), bytes };
    }
    return this.bucket.ptr;
  }

  /** Start work on the side stream, after what the compute stream has queued so far. */
  private sideBegin(): Stream {
    const side = this.ops.sideStream();
    this.ops.order(side, this.ops.stream);
    this.pending++;
    return side;
  }

  private sideBuffer(bytes: number): bigint {
    if (!this.sideBucket || this.sideBucket.bytes < bytes) {
      // (a smaller buffer may still be read by buckets in flight: let them finish first)
      if (this.sideBucket) { this.wait("the buckets in flight before the bucket buffer grows", this.ops.sideStream()); this.ops.free(this.sideBucket.ptr); }
      this.sideBucket = { ptr: this.ops.alloc(bytes), bytes };
    }
    return this.sideBucket.ptr;
  }

  /** Pack the tensors one after another at `flat`, on `on`. */
  private pack(flat: bigint, tensors: readonly Tensor[], ptrs: bigint[], on: Stream, unpack = false): void {
    let o = 0;
    tensors.forEach((t, i) => {
      const at = flat + BigInt(o * 4);
      if (unpack) this.ops.copyAsync(ptrs[i], at, t.size * 4, on);
      else this.ops.copyAsync(at, ptrs[i], t.size * 4, on);
      o += t.size;
    });
  }

  allReduceSumAsync(bucket: readonly Tensor[]): void {
    const ptrs = bucket.map(ptrOf);
    const side = this.sideBegin();
    if (bucket.length === 1) {
      this.nccl.allReduce(ptrs[0], ptrs[0], bucket[0].size, ncclFloat32, ncclSum, this.live, side);
      return;
    }
    const n = bucket.reduce((s, t) => s + t.size, 0);
    const flat = this.sideBuffer(n * 4);
    this.pack(flat, bucket, ptrs, side);
    this.nccl.allReduce(flat, flat, n, ncclFloat32, ncclSum, this.live, side);
    this.pack(flat, bucket, ptrs, side, true);
  }

  reduceScatterSumAsync(bucket: readonly Tensor[], shard: Tensor): void {
    const ptrs = bucket.map(ptrOf), out = ptrOf(shard);
    const n = bucket.reduce((s, t) => s + t.size, 0), S = shard.size, N = this.size;
    if (S !== shardElements(n, N)) throw new RangeError(`reduceScatterSum: a ${n}-element bucket over ${N} ranks has shards of ${shardElements(n, N)}, got ${S}`);
    const side = this.sideBegin();
    if (bucket.length === 1 && n === S * N) {
      // one tensor that splits evenly: no packing
      this.nccl.reduceScatter(ptrs[0], out, S, ncclFloat32, ncclSum, this.live, side);
      return;
    }
    const flat = this.sideBuffer(S * N * 4);
    this.pack(flat, bucket, ptrs, side);
    if (S * N > n) this.ops.zeroAsync(flat + BigInt(n * 4), (S * N - n) * 4, side);
    this.nccl.reduceScatter(flat, out, S, ncclFloat32, ncclSum, this.live, side);
  }

  flush(): void {
    if (!this.pending) return;
    const side = this.ops.sideStream();
    this.ops.order(this.ops.stream, side);
    this.wait(`${this.pending} overlapped gradient bucket${this.pending > 1 ? "s" : ""}`, side);
    this.pending = 0;
  }

  allGatherShards(bucket: readonly Tensor[], S: number): void {
    this.flush();
    const ptrs = bucket.map(ptrOf);
    const n = bucket.reduce((s, t) => s + t.size, 0), N = this.size;
    if (S !== shardElements(n, N)) throw new RangeError(`allGatherShards: a ${n}-element bucket over ${N} ranks has shards of ${shardElements(n, N)}, got ${S}`);
    const flat = this.bucketBuffer(S * N * 4);
    // this rank's slice of the concatenation, from the tensors it overlaps; zeros past the end
    const lo = this.rank * S, hi = lo + S;
    let o = 0;
    bucket.forEach((t, i) => {
      const a = Math.max(lo, o), e = Math.min(hi, o + t.size);
      if (a < e) this.ops.copyAsync(flat + BigInt(a * 4), ptrs[i] + BigInt((a - o) * 4), (e - a) * 4);
      o += t.size;
    });
    if (hi > n) this.ops.zeroAsync(flat + BigInt(Math.max(lo, n) * 4), (hi - Math.max(lo, n)) * 4, this.ops.stream);
    const mine = flat + BigInt(lo * 4);
    this.nccl.allGather(mine, flat, S, ncclFloat32, this.live, this.ops.stream);
    this.pack(flat, bucket, ptrs, this.ops.stream, true);
    this.wait(`allGatherShards of ${bucket.length} tensors`);
  }

  allReduceSum(tensors: readonly Tensor[]): void {
    this.flush();
    const ptrs = tensors.map(ptrOf);
    for (const b of buckets(tensors.map((t) => t.size), this.cap)) {
      if (b.length === 1) {
        const i = b[0];
        this.nccl.allReduce(ptrs[i], ptrs[i], tensors[i].size, ncclFloat32, ncclSum, this.live, this.ops.stream);
        continue;
      }
      const n = b.reduce((s, i) => s + tensors[i].size, 0);
      const flat = this.bucketBuffer(n * 4);
      let o = 0;
      for (const i of b) { this.ops.copyAsync(flat + BigInt(o * 4), ptrs[i], tensors[i].size * 4); o += tensors[i].size; }
      this.nccl.allReduce(flat, flat, n, ncclFloat32, ncclSum, this.live, this.ops.stream);
      o = 0;
      for (const i of b) { this.ops.copyAsync(ptrs[i], flat + BigInt(o * 4), tensors[i].size * 4); o += tensors[i].size; }
    }
    this.wait(`allReduceSum of ${tensors.length} tensors`);
  }

  allReduceMax(tensors: readonly Tensor[]): void {
    this.flush();
    this.grouped(tensors, (p, n) => this.nccl.allReduce(p, p, n, ncclFloat32, ncclMax, this.live, this.ops.stream));
    this.wait(`allReduceMax of ${tensors.length} tensors`);
  }

  broadcast(tensors: readonly Tensor[], root: number): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) throw new RangeError(`broadcast: root ${root} is not a rank of ${this.size}`);
    this.flush();
    this.grouped(tensors, (p, n) => this.nccl.broadcast(p, p, n, ncclFloat32, root, this.live, this.ops.stream));
    this.wait(`broadcast of ${tensors.length} tensors from rank ${root}`);
  }

  /** One collective per tensor, launched together (ncclGroupStart/End). */
  private grouped(tensors: readonly Tensor[], each: (ptr: bigint, n: number) => void): void {
    this.nccl.groupStart();
    try {
      for (const t of tensors) each(ptrOf(t), t.size);
    } finally {
      this.nccl.groupEnd();
    }
  }

  allGather(values: Float64Array): Float64Array {
    this.flush();
    const n = values.length, N = this.size;
    const send = this.ops.alloc(Math.max(8, n * 8)), recv = this.ops.alloc(Math.max(8, n * N * 8));
    try {
      if (n) this.ops.upload(send, values);
      this.nccl.allGather(send, recv, n, ncclFloat64, this.live, this.ops.stream);
      this.wait(`allGather of ${n} values`);
      const out = new Float64Array(n * N);
      if (n) this.ops.download(out, recv);
      return out;
    } finally {
      this.ops.free(send);
      this.ops.free(recv);
    }
  }

  barrier(): void {
    this.flush();
    const one = this.ops.alloc(4);
    try {
      this.nccl.allReduce(one, one, 1, ncclFloat32, ncclSum, this.live, this.ops.stream);
      this.wait("barrier");
    } finally {
      this.ops.free(one);
    }
  }

  /** Destroy the communicator (abort: without waiting for peers, after a failure). */
  close(abort = false): void {
    const comm = this.comm;
    if (!comm) return;
    if (!abort) this.flush();
    this.comm = undefined;
    for (const b of [this.bucket, this.sideBucket]) if (b && !abort) this.ops.free(b.ptr);
    this.bucket = this.sideBucket = undefined;
    this.pending = 0;
    if (abort) this.nccl.commAbort(comm);
    else this.nccl.commDestroy(comm);
    this.ops.close(abort);
  }
}
