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
 * Not overlapped with the backward pass yet: the buckets go out after the last micro-batch's
 * backward (overlap needs per-layer hooks and a second stream).
 * The device side is injected (`DeviceOps`) so the bucketing and the error paths are tested on the
 * CPU against a host-memory fake NCCL (test/fake-nccl.c).
 */
import type { Tensor } from "../backends/backend.ts";
import { deviceAllocator } from "../backends/cuda/allocator.ts";
import { getDriver, type Stream } from "../backends/cuda/driver.ts";
import { loadCudaLibrary } from "../backends/cuda/libraries.ts";
import {
  getNccl, ncclFloat32, ncclFloat64, ncclInProgress, ncclMax, ncclResultName, ncclSuccess, ncclSum,
  type Nccl, type NcclComm, type NcclUniqueId,
} from "../backends/cuda/nccl.ts";
import { buckets, checkParent, CommError, commTimeoutMs, DEFAULT_BUCKET_BYTES, sleepMs, type Communicator } from "./communicator.ts";

/** What the communicator needs from the device: memory, copies on its stream, and whether the stream is idle. */
export interface DeviceOps {
  /** the stream collectives and copies are enqueued on */
  stream: Stream;
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
  /** device-to-device copy, enqueued on `stream` */
  copyAsync(dst: bigint, src: bigint, bytes: number): void;
  /** host → device, synchronous */
  upload(dst: bigint, src: ArrayBufferView): void;
  /** device → host, synchronous (called only once the stream is idle) */
  download(dst: ArrayBufferView, src: bigint): void;
  /** true when everything enqueued on `stream` has finished; throws on a device error */
  streamDone(): boolean;
}

const CUDA_ERROR_NOT_READY = 600; // cuda.h

/** The CUDA backend's side: the caching allocator, the driver's copies, the legacy default stream. */
export function cudaDeviceOps(): DeviceOps {
  const drv = getDriver();
  const mem = deviceAllocator();
  const cuStreamQuery = loadCudaLibrary("libcuda").lib.func("int cuStreamQuery(void *stream)") as (s: Stream) => number;
  return {
    stream: null,
    alloc: (bytes) => mem.alloc(bytes),
    free: (p) => mem.free(p),
    copyAsync: (dst, src, bytes) => drv.memcpyDtoDAsync(dst, src, bytes, null),
    upload: (dst, src) => drv.memcpyHtoD(dst, src),
    download: (dst, src) => drv.memcpyDtoH(dst, src),
    streamDone: () => {
      const rc = cuStreamQuery(null);
      if (rc === CUDA_ERROR_NOT_READY) return false;
      drv.check("cuStreamQuery", rc, "waiting for NCCL");
      return true;
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
  private wait(what: string): void {
    const t0 = performance.now();
    for (let polls = 0; ; polls++) {
      const err = this.nccl.commGetAsyncError(this.live);
      if (err !== ncclSuccess && err !== ncclInProgress) {
        const text = this.nccl.errorString(err);
        this.close(true);
        throw new CommError(`rank ${this.rank}: NCCL reported ${ncclResultName(err)} (${text}) during ${what}: a peer rank died or the interconnect failed`);
      }
      if (this.ops.streamDone()) return;
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

  allReduceSum(tensors: readonly Tensor[]): void {
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
    this.grouped(tensors, (p, n) => this.nccl.allReduce(p, p, n, ncclFloat32, ncclMax, this.live, this.ops.stream));
    this.wait(`allReduceMax of ${tensors.length} tensors`);
  }

  broadcast(tensors: readonly Tensor[], root: number): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) throw new RangeError(`broadcast: root ${root} is not a rank of ${this.size}`);
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
    this.comm = undefined;
    if (this.bucket) {
      if (!abort) this.ops.free(this.bucket.ptr);
      this.bucket = undefined;
    }
    if (abort) this.nccl.commAbort(comm);
    else this.nccl.commDestroy(comm);
  }
}
