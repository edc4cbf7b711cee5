/**
 * NCCL (libnccl.so.2) through koffi: unique ids, communicators, the collectives data-parallel
 * training needs (all-reduce, reduce-scatter, all-gather, broadcast), group calls and error
 * strings. Every status goes through `check`, which throws NcclError naming the call, the
 * ncclResult_t and NCCL's own text (and the communicator's last error where the library has
 * ncclGetLastError). Device buffers are `bigint` pointers, as in driver.ts; streams are the
 * driver's handles (`null` = the legacy default stream, the one the CUDA backend runs on).
 * Not a communicator (src/parallel/nccl-communicator.ts builds one on this), not a launcher.
 *
 * Signatures and enum values are from nccl.h of NCCL 2.2x (the one next to CUDA 13); the unique
 * id is a 128-byte struct passed by value to ncclCommInitRank, so it is declared as a koffi struct.
 * The library is found like the CUDA pieces (libraries.ts: FP4LM_NCCL_LIB, then the toolkit, the
 * `nvidia/nccl` wheel, LD_LIBRARY_PATH, the loader's cache, the system folders).
 */
import koffi from "koffi";
import { Fp4lmError } from "../../errors.ts";
import { binder, CudaError, loadCudaLibrary, type LibraryHandle, type SearchOptions } from "./libraries.ts";
import type { Stream } from "./driver.ts";

/** NCCL_UNIQUE_ID_BYTES, nccl.h */
export const NCCL_UNIQUE_ID_BYTES = 128;

// ncclRedOp_t, nccl.h
export const ncclSum = 0;
export const ncclProd = 1;
export const ncclMax = 2;
export const ncclMin = 3;
export const ncclAvg = 4;
export type NcclRedOp = typeof ncclSum | typeof ncclProd | typeof ncclMax | typeof ncclMin | typeof ncclAvg;

// ncclDataType_t, nccl.h
export const ncclInt8 = 0;
export const ncclUint8 = 1;
export const ncclInt32 = 2;
export const ncclFloat16 = 6;
export const ncclFloat32 = 7;
export const ncclFloat64 = 8;
export const ncclBfloat16 = 9;
export type NcclDataType = typeof ncclInt8 | typeof ncclUint8 | typeof ncclInt32 | typeof ncclFloat16 | typeof ncclFloat32 | typeof ncclFloat64 | typeof ncclBfloat16;

/** Bytes per element of each data type we use. */
export const NCCL_TYPE_BYTES: Record<NcclDataType, number> = { 0: 1, 1: 1, 2: 4, 6: 2, 7: 4, 8: 8, 9: 2 };

// ncclResult_t, nccl.h
export const ncclSuccess = 0;
export const ncclInProgress = 7;
const RESULT_NAMES = [
  "ncclSuccess", "ncclUnhandledCudaError", "ncclSystemError", "ncclInternalError",
  "ncclInvalidArgument", "ncclInvalidUsage", "ncclRemoteError", "ncclInProgress",
];

/** The name of an ncclResult_t. */
export function ncclResultName(status: number): string {
  return RESULT_NAMES[status] ?? `ncclResult_t ${status}`;
}

/** An NCCL call failed (or a communicator reported an asynchronous error). */
export class NcclError extends CudaError {
  override name = "NcclError";
}

/** An opaque ncclComm_t. */
export type NcclComm = { readonly __ncclComm: unique symbol };

/** A 128-byte ncclUniqueId, as bytes. */
export type NcclUniqueId = Uint8Array;

/** The id as 256 hex digits, to hand to another process (argv, environment). */
export function uniqueIdToHex(id: NcclUniqueId): string {
  if (id.length !== NCCL_UNIQUE_ID_BYTES) throw new RangeError(`an ncclUniqueId has ${NCCL_UNIQUE_ID_BYTES} bytes, got ${id.length}`);
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("hex");
}

/** The inverse of uniqueIdToHex; a malformed string is an error that says what it got. */
export function uniqueIdFromHex(hex: string): NcclUniqueId {
  if (!new RegExp(`^[0-9a-fA-F]{${2 * NCCL_UNIQUE_ID_BYTES}}$`).test(hex)) {
    throw new Fp4lmError(`an NCCL unique id is ${2 * NCCL_UNIQUE_ID_BYTES} hex digits, got ${hex.length} characters (${JSON.stringify(hex.slice(0, 16))}...)`);
  }
  return new Uint8Array(Buffer.from(hex, "hex"));
}

type Fn = (...args: unknown[]) => unknown;

let uniqueIdType: ReturnType<typeof koffi.struct> | undefined;

/** The entry points, bound once from libnccl. */
function bind(lib: LibraryHandle) {
  // koffi type names are global to the process: declare the struct once
  uniqueIdType ??= koffi.struct("fp4lm_ncclUniqueId", { internal: koffi.array("uint8_t", NCCL_UNIQUE_ID_BYTES) });
  const { f, optional } = binder<Fn>(lib);
  return {
    ncclGetVersion: f("int ncclGetVersion(_Out_ int *version)"),
    ncclGetErrorString: f("const char *ncclGetErrorString(int result)"),
    // NCCL 2.13+; older libraries have no per-communicator message
    ncclGetLastError: optional("const char *ncclGetLastError(void *comm)"),
    ncclGetUniqueId: f("int ncclGetUniqueId(_Out_ uint8_t *uniqueId)"),
    ncclCommInitRank: f("int ncclCommInitRank(_Out_ void **comm, int nranks, fp4lm_ncclUniqueId commId, int rank)"),
    ncclCommDestroy: f("int ncclCommDestroy(void *comm)"),
    ncclCommAbort: f("int ncclCommAbort(void *comm)"),
    ncclCommGetAsyncError: f("int ncclCommGetAsyncError(void *comm, _Out_ int *asyncError)"),
    ncclCommCount: f("int ncclCommCount(void *comm, _Out_ int *count)"),
    ncclCommUserRank: f("int ncclCommUserRank(void *comm, _Out_ int *rank)"),
    ncclAllReduce: f("int ncclAllReduce(uint64_t sendbuff, uint64_t recvbuff, size_t count, int datatype, int op, void *comm, void *stream)"),
    ncclReduceScatter: f("int ncclReduceScatter(uint64_t sendbuff, uint64_t recvbuff, size_t recvcount, int datatype, int op, void *comm, void *stream)"),
    ncclAllGather: f("int ncclAllGather(uint64_t sendbuff, uint64_t recvbuff, size_t sendcount, int datatype, void *comm, void *stream)"),
    ncclBroadcast: f("int ncclBroadcast(uint64_t sendbuff, uint64_t recvbuff, size_t count, int datatype, int root, void *comm, void *stream)"),
    ncclGroupStart: f("int ncclGroupStart()"),
    ncclGroupEnd: f("int ncclGroupEnd()"),
  };
}

type Bindings = ReturnType<typeof bind>;

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what}: element count ${n} is not a non-negative integer`);
}

/** The library. One per process (`getNccl()`); collectives are enqueued on the given stream. */
export class Nccl {
  constructor(
    private readonly api: Bindings,
    readonly libraryPath: string,
  ) {}

  /** Throw NcclError unless `status` is ncclSuccess; `comm` adds the communicator's last error. */
  check(call: string, status: number, context = "", comm?: NcclComm): void {
    if (status === ncclSuccess) return;
    const text = this.errorString(status);
    let last = "";
    if (comm && this.api.ncclGetLastError) {
      const l = this.api.ncclGetLastError(comm) as string | null;
      if (l) last = `; NCCL says: ${l}`;
    }
    throw new NcclError(`${call}${context ? ` (${context})` : ""} failed with ${ncclResultName(status)} (${status}): ${text}${last}`, call, status);
  }

  errorString(status: number): string {
    return (this.api.ncclGetErrorString(status) as string | null) ?? "no description";
  }

  /** NCCL_VERSION_CODE of the loaded library, e.g. 22703 for 2.27.3. */
  version(): number {
    const v = [0];
    this.check("ncclGetVersion", this.api.ncclGetVersion(v) as number);
    return v[0];
  }

  /** A fresh unique id (rank 0's, or the launcher's): 128 bytes. */
  getUniqueId(): NcclUniqueId {
    const id = new Uint8Array(NCCL_UNIQUE_ID_BYTES);
    this.check("ncclGetUniqueId", this.api.ncclGetUniqueId(id) as number);
    return id;
  }

  /**
   * Join a communicator of `nranks` as `rank`, on the calling thread's current CUDA device; blocks
   * until every rank has joined.
   */
  commInitRank(nranks: number, id: NcclUniqueId, rank: number): NcclComm {
    if (id.length !== NCCL_UNIQUE_ID_BYTES) throw new RangeError(`ncclCommInitRank: the unique id has ${id.length} bytes, not ${NCCL_UNIQUE_ID_BYTES}`);
    if (!Number.isInteger(nranks) || nranks < 1 || !Number.isInteger(rank) || rank < 0 || rank >= nranks) {
      throw new RangeError(`ncclCommInitRank: rank ${rank} of ${nranks} is not a valid rank`);
    }
    const comm = [null as unknown];
    this.check("ncclCommInitRank", this.api.ncclCommInitRank(comm, nranks, { internal: id }, rank) as number, `rank ${rank} of ${nranks}`);
    return comm[0] as NcclComm;
  }

  /** Destroy after all work finished (waits for it). */
  commDestroy(comm: NcclComm): void {
    this.check("ncclCommDestroy", this.api.ncclCommDestroy(comm) as number);
  }

  /** Abort: stops pending operations; the way out after an error or a dead peer. */
  commAbort(comm: NcclComm): void {
    this.check("ncclCommAbort", this.api.ncclCommAbort(comm) as number);
  }

  /** The communicator's asynchronous status: ncclSuccess, ncclInProgress, or an error (a peer died, a network failure). */
  commGetAsyncError(comm: NcclComm): number {
    const e = [0];
    this.check("ncclCommGetAsyncError", this.api.ncclCommGetAsyncError(comm, e) as number);
    return e[0];
  }

  commCount(comm: NcclComm): number {
    const n = [0];
    this.check("ncclCommCount", this.api.ncclCommCount(comm, n) as number);
    return n[0];
  }

  commUserRank(comm: NcclComm): number {
    const r = [0];
    this.check("ncclCommUserRank", this.api.ncclCommUserRank(comm, r) as number);
    return r[0];
  }

  /** recv[i] = op over ranks of send[i], `count` elements (in place when send === recv). */
  allReduce(send: bigint, recv: bigint, count: number, type: NcclDataType, op: NcclRedOp, comm: NcclComm, stream: Stream): void {
    checkCount(count, "ncclAllReduce");
    this.check("ncclAllReduce", this.api.ncclAllReduce(send, recv, count, type, op, comm, stream) as number, `${count} elements`, comm);
  }

  /** recv (recvCount) = rank r's slice of the reduction of send (nranks·recvCount). */
  reduceScatter(send: bigint, recv: bigint, recvCount: number, type: NcclDataType, op: NcclRedOp, comm: NcclComm, stream: Stream): void {
    checkCount(recvCount, "ncclReduceScatter");
    this.check("ncclReduceScatter", this.api.ncclReduceScatter(send, recv, recvCount, type, op, comm, stream) as number, `${recvCount} elements per rank`, comm);
  }

  /** recv (nranks·sendCount) = every rank's send, in rank order. */
  allGather(send: bigint, recv: bigint, sendCount: number, type: NcclDataType, comm: NcclComm, stream: Stream): void {
    checkCount(sendCount, "ncclAllGather");
    this.check("ncclAllGather", this.api.ncclAllGather(send, recv, sendCount, type, comm, stream) as number, `${sendCount} elements per rank`, comm);
  }

  /** recv = root's send on every rank (send is read on the root only; in place when equal). */
  broadcast(send: bigint, recv: bigint, count: number, type: NcclDataType, root: number, comm: NcclComm, stream: Stream): void {
    checkCount(count, "ncclBroadcast");
    this.check("ncclBroadcast", this.api.ncclBroadcast(send, recv, count, type, root, comm, stream) as number, `${count} elements from rank ${root}`, comm);
  }

  /** Collectives between groupStart and groupEnd are launched together (NCCL fuses them). */
  groupStart(): void {
    this.check("ncclGroupStart", this.api.ncclGroupStart() as number);
  }

  groupEnd(): void {
    this.check("ncclGroupEnd", this.api.ncclGroupEnd() as number);
  }
}

let nccl: Nccl | undefined;

/** The process's NCCL (loads the library on first use: FP4LM_NCCL_LIB overrides the search). */
export function getNccl(opts: SearchOptions = {}): Nccl {
  if (!nccl) {
    const { lib, path } = loadCudaLibrary("nccl", opts);
    nccl = new Nccl(bind(lib), path);
  }
  return nccl;
}
