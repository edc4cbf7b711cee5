/**
 * Multi-threaded FP32 GEMM on the CPU: a pool of worker_threads over SharedArrayBuffer operands,
 * synchronous from the caller's side (the training loop is synchronous). Not a general task pool;
 * not faster than gemm.ts for small problems, which it runs inline.
 *
 * How one GEMM runs: the calling thread packs op(B) once into shared scratch (gemm.ts packB),
 * writes the job into a shared control block and wakes the workers (Atomics.notify); then every
 * thread, the caller included, claims blocks of C rows from a shared counter (Atomics.compareExchange)
 * and runs gemm.ts's gemmPackedRows on them; the caller finally Atomics.waits until every block is
 * done. Each C element is computed by exactly one thread with the k order fixed by gemm.ts, so the
 * result is bit-identical to gemmBlocked/gemmReference for any thread count and any interleaving;
 * dynamic claiming only decides who computes a block, which keeps 2 shared cores busy when one is
 * stolen and lets the caller finish alone while the workers are still starting.
 *
 * Failure is an exception, never a hang: an exception in a worker is reported through a shared
 * error count plus a message on its port (read with receiveMessageOnPort) and rethrown by the
 * caller; a worker that stops making progress (killed, stuck) trips a stall timeout. Workers are
 * unref()'d, so an idle pool never keeps the process alive.
 *
 * Protocol (Int32 words of `control`, all accesses Atomics): SEQ is odd while the caller writes a
 * job and even once published; the caller writes the parameters, resets DONE and ERROR, then sets
 * NEXT = number of blocks, then SEQ. A worker claims by decrementing NEXT and reads the parameters
 * only after a successful claim: an unfinished claimed block keeps the caller from starting the
 * next job, so those parameters cannot change under it, and SEQ tells it whether its copy is stale.
 */
import { availableParallelism } from "node:os";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import { Fp4lmError } from "../../errors.ts";
import { checkGemmArgs, gemmBlocked, gemmPackedRows, MC, MR, newGemmScratch, packB, packedBLength, type GemmArgs, type GemmScratch } from "./gemm.ts";

/** Int32 word indices of the control block, shared with gemm-worker.ts. */
export const Ctl = {
  SEQ: 0,
  NEXT: 1,
  DONE: 2,
  ERROR: 3,
  SHUTDOWN: 4,
  READY: 5,
  FAULT: 6,
  M: 7,
  N: 8,
  K: 9,
  FLAGS: 10,
  NBLOCKS: 11,
  ROWS_PER_BLOCK: 12,
  /** three descriptors (A, packed B, C) of three words each: buffer id, byte offset, length */
  DESC: 13,
  /** a word nobody notifies: the "hang" test fault waits on it forever */
  HANG: 22,
  /** Float64 index of alpha (beta follows) */
  F64_ALPHA: 16,
  WORDS: 40,
} as const;

/** Messages the caller posts to each worker's port before a job that uses new buffers. */
export interface BufferMessage {
  add: [id: number, buffer: SharedArrayBuffer][];
  drop: number[];
}

/** A worker failed, stalled, or the pool was used after close(). */
export class GemmPoolError extends Error {
  override name = "GemmPoolError";
}

/** Problems below this many multiply-adds (M·N·K) run inline: waking workers costs more. */
const INLINE_MACS = 1 << 18;
/** Upper bound on one block's work (multiply-adds), so progress is visible to the stall check. */
const BLOCK_MACS = 1 << 26;
/** Workers keep at most this many buffers; older ones are dropped and re-sent if used again. */
const MAX_CACHED_BUFFERS = 64;

/** Options of GemmPool.create. */
export interface GemmPoolOptions {
  /**
   * Throw if no block finishes for this long while the caller waits (a dead or stuck worker).
   * Default 60 s; a block is at most 2^26 multiply-adds, well under a second on any current core.
   */
  stallTimeoutMs?: number;
}

/** Thread count from `FP4LM_THREADS`, else os.availableParallelism(). */
function defaultThreads(): number {
  const env = process.env.FP4LM_THREADS;
  if (env === undefined || env === "") return availableParallelism();
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Fp4lmError(`FP4LM_THREADS must be a positive integer, got '${env}'`);
  return n;
}

const isShared = (a: Float32Array) => a.buffer instanceof SharedArrayBuffer;

/**
 * `threads` threads computing FP32 GEMMs together (the caller and threads - 1 workers), with the
 * exact results of gemm.ts. Create one per process, reuse it, close() it when done.
 */
export class GemmPool {
  /** Threads that compute, the caller included (workers = threads - 1). */
  readonly threads: number;
  private readonly ctl: Int32Array;
  private readonly f64: Float64Array;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly stallTimeoutMs: number;
  private readonly scratch: GemmScratch = newGemmScratch();
  private workerFailure: Error | undefined;
  private broken: string | undefined;
  private closed = false;
  private seq = 0;
  private pendingFault = 0;
  // operand copies and the packed op(B), all shared, grown on demand
  private sharedA = new Float32Array(new SharedArrayBuffer(0));
  private sharedC = new Float32Array(new SharedArrayBuffer(0));
  private packedB = new Float32Array(new SharedArrayBuffer(0));
  // buffer ids the workers know, least recently used first
  private readonly bufIds = new WeakMap<SharedArrayBuffer, number>();
  private readonly known = new Set<number>();
  private nextBufId = 1;
  private readonly toAdd: [number, SharedArrayBuffer][] = [];
  private readonly toDrop: number[] = [];
  private readonly finalizer = new FinalizationRegistry<number>((id) => {
    if (this.known.delete(id)) this.toDrop.push(id);
  });

  private constructor(threads: number, options: GemmPoolOptions) {
    this.threads = threads;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
    const control = new SharedArrayBuffer(Ctl.WORDS * 4);
    this.ctl = new Int32Array(control);
    this.f64 = new Float64Array(control);
    for (let w = 0; w < threads - 1; w++) {
      const { port1, port2 } = new MessageChannel();
      // The .mjs shim registers tsx inside the worker, then imports gemm-worker.ts: on Node 20 a
      // worker does not get tsx's loader from `execArgv: ['--import', 'tsx']` (ERR_UNKNOWN_FILE_EXTENSION).
      const worker = new Worker(new URL("./gemm-worker.mjs", import.meta.url), {
        workerData: { control, port: port2 },
        transferList: [port2],
        // not the caller's flags: `--test` or `--import tsx` there mean nothing useful here
        execArgv: [],
        name: `fp4lm-gemm-${w + 1}`,
      });
      worker.unref();
      worker.on("error", (e) => {
        this.workerFailure ??= e;
      });
      worker.on("exit", (code) => {
        if (!this.closed) this.workerFailure ??= new GemmPoolError(`GemmPool worker ${w + 1} exited with code ${code}`);
      });
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  /**
   * A pool of `threads` computing threads (default: FP4LM_THREADS, else os.availableParallelism()),
   * the caller being one of them, so `threads - 1` workers start. Returns at once; workers join
   * jobs as they come up (waitReady() blocks until they have).
   * @example
   *   const pool = GemmPool.create();
   *   const A = GemmPool.allocShared(M * K), B = GemmPool.allocShared(K * N), C = GemmPool.allocShared(M * N);
   *   pool.gemmSync(A, B, C, { M, N, K, transA: false, transB: false });
   *   pool.close();
   */
  static create(threads?: number, options: GemmPoolOptions = {}): GemmPool {
    const n = threads ?? defaultThreads();
    if (!Number.isInteger(n) || n < 1) throw new Fp4lmError(`GemmPool.create: threads must be a positive integer, got ${n}`);
    return new GemmPool(n, options);
  }

  /** A zeroed Float32Array of n elements on a SharedArrayBuffer: operands the pool uses without copying. */
  static allocShared(n: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(4 * n));
  }

  /** Block until every worker has started (first start loads tsx: ~0.3–1 s), or throw after timeoutMs. */
  waitReady(timeoutMs = 30_000): void {
    this.checkUsable();
    const t0 = performance.now();
    for (;;) {
      const ready = Atomics.load(this.ctl, Ctl.READY);
      if (ready >= this.workers.length) return;
      const left = timeoutMs - (performance.now() - t0);
      if (left <= 0) throw new GemmPoolError(`GemmPool: ${this.workers.length - ready} of ${this.workers.length} workers did not start within ${timeoutMs} ms`);
      Atomics.wait(this.ctl, Ctl.READY, ready, Math.min(left, 100));
    }
  }

  /** Same as gemmSync (the pool is synchronous; the name matches the backends' gemm). */
  gemm(A: Float32Array, B: Float32Array, C: Float32Array, args: GemmArgs): void {
    this.gemmSync(A, B, C, args);
  }

  /**
   * C (M,N) = alpha · op(A) · op(B) + beta · C, bit-identical to gemmReference (see gemm.ts), on
   * all threads; returns when C is written. Operands not on a SharedArrayBuffer are copied into
   * shared scratch (A, and C when beta ≠ 0, in; C out); use allocShared to avoid the copies.
   */
  gemmSync(A: Float32Array, B: Float32Array, C: Float32Array, args: GemmArgs): void {
    this.checkUsable();
    checkGemmArgs("GemmPool.gemm", A, B, C, args);
    const { M, N, K } = args;
    if (M === 0 || N === 0) return;
    if (this.workers.length === 0 || M * N * K < INLINE_MACS || M <= MR) {
      if (this.pendingFault !== 0) throw new GemmPoolError("GemmPool: a fault was injected but this job runs inline");
      gemmBlocked(A, B, C, args);
      return;
    }
    const beta = args.beta ?? 0;
    const nB = packedBLength(K, N);
    if (this.packedB.length < nB) this.packedB = new Float32Array(new SharedArrayBuffer(4 * grow(nB)));
    packB(B, args, this.packedB);
    let a = A;
    if (!isShared(A)) {
      if (this.sharedA.length < M * K) this.sharedA = new Float32Array(new SharedArrayBuffer(4 * grow(M * K)));
      a = this.sharedA.subarray(0, M * K);
      a.set(A.subarray(0, M * K));
    }
    let c = C;
    if (!isShared(C)) {
      if (this.sharedC.length < M * N) this.sharedC = new Float32Array(new SharedArrayBuffer(4 * grow(M * N)));
      c = this.sharedC.subarray(0, M * N);
      if (beta !== 0) c.set(C.subarray(0, M * N));
    }
    this.run(a, this.packedB, c, args);
    if (c !== C) C.set(c);
  }

  /** Publish one job, work on it, wait for the workers; throws if a worker failed or stalled. */
  private run(A: Float32Array, bp: Float32Array, C: Float32Array, args: GemmArgs): void {
    const { M, N, K } = args;
    const ctl = this.ctl;
    // Blocks: ≥ 4 per thread for balance on busy cores, ≤ MC rows and ≤ BLOCK_MACS of work each.
    let rows = Math.min(MC, Math.ceil(M / (4 * this.threads)), Math.floor(BLOCK_MACS / Math.max(1, N * K)));
    rows = Math.max(MR, Math.ceil(rows / MR) * MR);
    const nBlocks = Math.ceil(M / rows);
    const descs = [this.describe(A), this.describe(bp), this.describe(C)];
    this.sendBuffers();

    // even, never 0 (the workers' initial "seen" value), odd (seq - 1) while writing
    const seq = (this.seq = this.seq >= 0x3ffffffe ? 2 : this.seq + 2);
    Atomics.store(ctl, Ctl.SEQ, seq - 1);
    Atomics.store(ctl, Ctl.M, M);
    Atomics.store(ctl, Ctl.N, N);
    Atomics.store(ctl, Ctl.K, K);
    Atomics.store(ctl, Ctl.FLAGS, (args.transA ? 1 : 0) | (args.transB ? 2 : 0));
    Atomics.store(ctl, Ctl.NBLOCKS, nBlocks);
    Atomics.store(ctl, Ctl.ROWS_PER_BLOCK, rows);
    descs.flat().forEach((v, i) => Atomics.store(ctl, Ctl.DESC + i, v));
    this.f64[Ctl.F64_ALPHA] = args.alpha ?? 1;
    this.f64[Ctl.F64_ALPHA + 1] = args.beta ?? 0;
    const fault = this.pendingFault;
    this.pendingFault = 0;
    Atomics.store(ctl, Ctl.FAULT, fault);
    Atomics.store(ctl, Ctl.ERROR, 0);
    Atomics.store(ctl, Ctl.DONE, 0);
    Atomics.store(ctl, Ctl.NEXT, nBlocks);
    Atomics.store(ctl, Ctl.SEQ, seq);
    Atomics.notify(ctl, Ctl.SEQ);

    // The caller's share: claim until none are left (it leaves them all to workers under a test fault).
    let mine = 0;
    while (fault === 0 && Atomics.load(ctl, Ctl.ERROR) === 0) {
      const left = Atomics.load(ctl, Ctl.NEXT);
      if (left === 0) break;
      if (Atomics.compareExchange(ctl, Ctl.NEXT, left, left - 1) !== left) continue;
      const r0 = (nBlocks - left) * rows;
      gemmPackedRows(A, bp, C, args, r0, Math.min(M, r0 + rows), this.scratch);
      mine++;
    }
    Atomics.add(ctl, Ctl.DONE, mine);

    let target = nBlocks, lastDone = -1, lastProgress = performance.now();
    for (;;) {
      const done = Atomics.load(ctl, Ctl.DONE);
      if (done >= target) break;
      if (Atomics.load(ctl, Ctl.ERROR) !== 0 && target === nBlocks) {
        // stop handing out blocks; wait only for those already claimed
        target = nBlocks - Atomics.exchange(ctl, Ctl.NEXT, 0);
        continue;
      }
      const now = performance.now();
      if (done !== lastDone) {
        lastDone = done;
        lastProgress = now;
      } else if (now - lastProgress > this.stallTimeoutMs) {
        this.broken = `a worker stalled: no block of a ${M}x${N}x${K} GEMM finished for ${this.stallTimeoutMs} ms (${done} of ${target} done)`;
        this.close();
        throw new GemmPoolError(`GemmPool: ${this.broken}; the pool is closed, create a new one`);
      }
      Atomics.wait(ctl, Ctl.DONE, done, 100);
    }
    if (Atomics.load(ctl, Ctl.ERROR) !== 0) throw new GemmPoolError(`GemmPool: ${this.collectErrors(seq)}`);
  }

  /** Error messages the workers posted for job `seq`. */
  private collectErrors(seq: number): string {
    const messages: string[] = [];
    this.ports.forEach((port, i) => {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
        const msg = m.message as { seq: number; error: string };
        if (msg.seq === seq) messages.push(`worker ${i + 1} failed: ${msg.error}`);
      }
    });
    return messages.length > 0 ? messages.join("\n") : "a worker failed (no message received)";
  }

  /** [buffer id, byte offset, length] of a shared array, registering the buffer with the workers. */
  private describe(a: Float32Array): [number, number, number] {
    const sab = a.buffer as SharedArrayBuffer;
    let id = this.bufIds.get(sab);
    if (id === undefined) {
      id = this.nextBufId++;
      this.bufIds.set(sab, id);
      this.finalizer.register(sab, id);
    }
    // only the id is kept here (the workers hold the buffer), so the caller's array can be collected
    if (!this.known.delete(id)) this.toAdd.push([id, sab]);
    this.known.add(id); // (re-)inserted last: most recently used
    return [id, a.byteOffset, a.length];
  }

  /** Post new buffers (and drops of collected or least recently used ones) to every worker. */
  private sendBuffers(): void {
    while (this.known.size > MAX_CACHED_BUFFERS) {
      const oldest = this.known.values().next().value as number;
      this.known.delete(oldest);
      this.toDrop.push(oldest);
    }
    if (this.toAdd.length === 0 && this.toDrop.length === 0) return;
    const msg: BufferMessage = { add: this.toAdd.splice(0), drop: this.toDrop.splice(0) };
    for (const port of this.ports) port.postMessage(msg);
  }

  private checkUsable(): void {
    if (this.broken !== undefined) throw new GemmPoolError(`GemmPool: ${this.broken}; the pool is closed, create a new one`);
    if (this.closed) throw new GemmPoolError("GemmPool: used after close()");
    if (this.workerFailure !== undefined) {
      const e = this.workerFailure;
      this.broken = `a worker failed: ${e.message}`;
      this.close();
      throw new GemmPoolError(`GemmPool: ${this.broken}`, { cause: e });
    }
  }

  /** Stop the workers. The pool cannot be used afterwards; calling close() twice is harmless. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, Ctl.SHUTDOWN, 1);
    Atomics.notify(this.ctl, Ctl.SEQ);
    for (const port of this.ports) port.close();
    for (const w of this.workers) void w.terminate().catch(() => {});
  }

  /**
   * Test hook, not API: the caller leaves the next pooled job to the workers, and the first worker
   * to claim a block throws ("throw"), never finishes it ("hang"), or computes it ("none").
   * @internal
   */
  _injectWorkerFault(kind: "throw" | "hang" | "none"): void {
    if (this.workers.length === 0) throw new GemmPoolError("GemmPool: no workers to inject a fault into (threads = 1)");
    this.pendingFault = kind === "throw" ? 1 : kind === "hang" ? 2 : 3;
  }
}

/** Scratch sizes grow by 1.5x so a slowly increasing shape does not reallocate every call. */
function grow(n: number): number {
  return Math.ceil(n * 1.5);
}
