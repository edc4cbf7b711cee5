/**
 * A GemmPool worker thread: waits on the shared control block, claims blocks of C rows and runs
 * gemm.ts's gemmPackedRows on them. Not started directly: gemm-pool.ts starts it through the
 * gemm-worker.mjs shim, and the protocol (word layout, claim rule) is documented there.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { gemmPackedRows, newGemmScratch, packB, packedBLength, type GemmArgs } from "./gemm.ts";
import { Ctl, type BufferMessage } from "./gemm-pool.ts";

const { control, port } = workerData as { control: SharedArrayBuffer; port: MessagePort };
const ctl = new Int32Array(control);
const f64 = new Float64Array(control);
const buffers = new Map<number, SharedArrayBuffer>();
const scratch = newGemmScratch();

/** The job whose parameters we hold, read after a claim (see gemm-pool.ts for why that is safe). */
interface Job {
  seq: number;
  args: GemmArgs;
  nBlocks: number;
  rows: number;
  fault: number;
  A: Float32Array;
  bp: Float32Array;
  C: Float32Array;
}
let job: Job | undefined;

function view<T>(make: (b: SharedArrayBuffer, off: number, n: number) => T, d: number): T {
  const id = Atomics.load(ctl, Ctl.DESC + d), off = Atomics.load(ctl, Ctl.DESC + d + 1), n = Atomics.load(ctl, Ctl.DESC + d + 2);
  const buf = buffers.get(id);
  if (buf === undefined) throw new Error(`gemm worker: buffer ${id} was never sent to this worker`);
  return make(buf, off, n);
}

function readJob(seq: number): Job {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const msg = m.message as BufferMessage;
    for (const id of msg.drop) buffers.delete(id);
    for (const [id, buf] of msg.add) buffers.set(id, buf);
  }
  const flags = Atomics.load(ctl, Ctl.FLAGS);
  return {
    seq,
    args: {
      M: Atomics.load(ctl, Ctl.M), N: Atomics.load(ctl, Ctl.N), K: Atomics.load(ctl, Ctl.K),
      transA: (flags & 1) !== 0, transB: (flags & 2) !== 0,
      alpha: f64[Ctl.F64_ALPHA], beta: f64[Ctl.F64_ALPHA + 1],
    },
    nBlocks: Atomics.load(ctl, Ctl.NBLOCKS),
    rows: Atomics.load(ctl, Ctl.ROWS_PER_BLOCK),
    fault: Atomics.load(ctl, Ctl.FAULT),
    A: view((b, o, n) => new Float32Array(b, o, n), 0),
    bp: view((b, o, n) => new Float32Array(b, o, n), 3),
    C: view((b, o, n) => new Float32Array(b, o, n), 6),
  };
}

/** Claim and compute blocks until none are left or a thread has failed. */
function work(): void {
  while (Atomics.load(ctl, Ctl.ERROR) === 0) {
    const left = Atomics.load(ctl, Ctl.NEXT);
    if (left === 0) return;
    if (Atomics.compareExchange(ctl, Ctl.NEXT, left, left - 1) !== left) continue;
    const seq = Atomics.load(ctl, Ctl.SEQ);
    let nBlocks = 0;
    try {
      if (job === undefined || job.seq !== seq) job = readJob(seq);
      nBlocks = job.nBlocks;
      if (job.fault === 1) throw new Error("injected fault (GemmPool._injectWorkerFault)");
      if (job.fault === 2) for (;;) Atomics.wait(ctl, Ctl.HANG, 0);
      const r0 = (job.nBlocks - left) * job.rows;
      gemmPackedRows(job.A, job.bp, job.C, job.args, r0, Math.min(job.args.M, r0 + job.rows), scratch);
    } catch (e) {
      port.postMessage({ seq: seq + (seq & 1), error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      Atomics.add(ctl, Ctl.ERROR, 1);
    } finally {
      const done = Atomics.add(ctl, Ctl.DONE, 1) + 1;
      if (done >= nBlocks || Atomics.load(ctl, Ctl.ERROR) !== 0) Atomics.notify(ctl, Ctl.DONE);
    }
  }
}

/**
 * Get the kernel optimised before the first job: a cold worker runs its first blocks in the
 * interpreter, tens of times slower, and the caller would wait for them.
 */
function warmUp(): void {
  const args: GemmArgs = { M: 16, N: 64, K: 256, transA: false, transB: false };
  const A = new Float32Array(16 * 256).fill(0.5), B = new Float32Array(256 * 64).fill(0.25), C = new Float32Array(16 * 64);
  const bp = new Float32Array(packedBLength(256, 64));
  for (let i = 0; i < 30; i++) {
    args.transA = (i & 1) === 1;
    packB(B, args, bp);
    gemmPackedRows(A, bp, C, args, 0, 16, scratch);
  }
}

warmUp();
Atomics.add(ctl, Ctl.READY, 1);
Atomics.notify(ctl, Ctl.READY);
let seen = 0;
while (Atomics.load(ctl, Ctl.SHUTDOWN) === 0) {
  const seq = Atomics.load(ctl, Ctl.SEQ);
  if (seq === seen) {
    Atomics.wait(ctl, Ctl.SEQ, seq);
    continue;
  }
  seen = seq;
  work();
}
