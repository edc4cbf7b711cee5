/**
 * cuBLASLt facade: one handle, `matmul` with cached plans (descriptor, layouts, preference and the
 * heuristic's algorithm per shape/type/transpose/alignment key), and `gemmRowMajorTN`, the one
 * GEMM shape the model needs, for BF16 and FP8 (per-tensor or 1x128 / 128x128 block scaled).
 * Not a BLAS: no batching, no epilogue beyond the default, column-major layouts only.
 *
 * Row-major on column-major. cuBLASLt computes D = alpha·op(A)·op(B) + beta·C on column-major
 * matrices. A row-major (R,C) matrix with leading dimension L is, byte for byte, a column-major
 * (C,R) matrix with the same L. So the row-major product
 *     C (M,N) = A (M,K) · B (N,K)ᵀ          (all row-major, lda = ldb = K, ldc = N)
 * read column-major is
 *     Cᵀ (N,M) = B (N,K) · Aᵀ (K,M)
 * where cuBLASLt sees our B as a column-major (K,N) matrix (so op = T gives (N,K)) and our A as a
 * column-major (K,M) matrix (op = N). The call is therefore: cuBLAS-A = our B with transa = T,
 * cuBLAS-B = our A with transb = N, m = N, n = M, k = K, lda = ldb = K, ldc = ldd = N
 * (`rowMajorTN`). That is "TN" in cuBLASLt's terms, the only layout Hopper's FP8 GEMMs support
 * (cuBLAS docs, cublasLtMatmul FP8 requirements), so FP8 needs no transposed copy here.
 *
 * Enum values from CUDA 13.0's library_types.h, cublas_api.h and cublasLt.h (lines cited).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Stream } from "./driver.ts";
import { binder, CudaError, cudaIncludeDir, loadCudaLibrary, type LibraryHandle } from "./libraries.ts";

// cudaDataType_t, library_types.h:57-93
export const CUDA_R_32F = 0; // library_types.h:63
export const CUDA_R_16F = 2; // library_types.h:59
export const CUDA_R_16BF = 14; // library_types.h:61
export const CUDA_R_8F_E4M3 = 28; // library_types.h:87
export const CUDA_R_8F_E5M2 = 29; // library_types.h:89
// cublasComputeType_t, cublas_api.h:208; cublasOperation_t, cublas_api.h:109-110
export const CUBLAS_COMPUTE_32F = 68;
export const CUBLAS_OP_N = 0;
export const CUBLAS_OP_T = 1;
// cublasStatus_t, cublas_api.h:90-99
export const CUBLAS_STATUS_SUCCESS = 0;
export const CUBLAS_STATUS_NOT_SUPPORTED = 15;
// cublasLtMatmulDescAttributes_t, cublasLt.h:1268-1596
export const CUBLASLT_MATMUL_DESC_POINTER_MODE = 2; // cublasLt.h (int32_t, cublasLtPointerMode_t)
export const CUBLASLT_MATMUL_DESC_TRANSA = 3; // cublasLt.h:1295 (int32_t)
export const CUBLASLT_MATMUL_DESC_TRANSB = 4; // cublasLt.h:1301 (int32_t)
export const CUBLASLT_MATMUL_DESC_EPILOGUE = 7; // cublasLt.h:1321 (uint32_t)
export const CUBLASLT_MATMUL_DESC_A_SCALE_POINTER = 17; // cublasLt.h:1430 (const void*)
export const CUBLASLT_MATMUL_DESC_B_SCALE_POINTER = 18; // cublasLt.h:1443
export const CUBLASLT_MATMUL_DESC_D_SCALE_POINTER = 20; // cublasLt.h:1469
export const CUBLASLT_MATMUL_DESC_FAST_ACCUM = 25; // cublasLt.h:1533 (int8_t)
export const CUBLASLT_MATMUL_DESC_A_SCALE_MODE = 31; // cublasLt.h:1552 (int32_t)
export const CUBLASLT_MATMUL_DESC_B_SCALE_MODE = 32; // cublasLt.h:1557 (int32_t)
// cublasLtPointerMode_t: alpha and beta are host floats (0) or both device pointers (1)
export const CUBLASLT_POINTER_MODE_HOST = 0;
export const CUBLASLT_POINTER_MODE_DEVICE = 1;
// cublasLtEpilogue_t, cublasLt.h:1936
export const CUBLASLT_EPILOGUE_DEFAULT = 1;
// cublasLtMatmulMatrixScale_t, cublasLt.h:921-941
export const CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F = 0; // cublasLt.h:923
export const CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F = 4; // cublasLt.h:936
export const CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F = 5; // cublasLt.h:939
// cublasLtMatmulPreferenceAttributes_t, cublasLt.h:2077-2151
export const CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1; // cublasLt.h:2088 (uint64_t)
export const CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5; // cublasLt.h:2106 (uint32_t)
export const CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6; // cublasLt.h:2115
export const CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7; // cublasLt.h:2124
export const CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8; // cublasLt.h:2133
/**
 * cublasLtMatmulHeuristicResult_t, cublasLt.h:2225-2245: cublasLtMatmulAlgo_t algo (uint64_t[8],
 * cublasLt.h:113-115) at 0, size_t workspaceSize at 64, cublasStatus_t state at 72, float wavesCount
 * at 76, int reserved[4] at 80; 96 bytes (x86-64 C layout; the test checks it against koffi.struct).
 */
export const HEURISTIC_RESULT_BYTES = 96;
export const HEURISTIC_ALGO_BYTES = 64;
export const HEURISTIC_WORKSPACE_OFFSET = 64;
export const HEURISTIC_STATE_OFFSET = 72;
/** cuBLAS version (major·10000 + minor·100 + patch) that introduced VEC128/BLK128x128 scaling. */
export const BLOCK_SCALE_MIN_VERSION = 120900;

const TYPE_NAMES: Record<number, string> = { 0: "f32", 2: "f16", 14: "bf16", 28: "e4m3", 29: "e5m2" };
const typeName = (t: number) => TYPE_NAMES[t] ?? `cudaDataType ${t}`;
const isFp8 = (t: number) => t === CUDA_R_8F_E4M3 || t === CUDA_R_8F_E5M2;

type Fn = (...args: unknown[]) => number;

function bind(lib: LibraryHandle) {
  const { f } = binder<Fn>(lib);
  return {
    cublasLtCreate: f("int cublasLtCreate(_Out_ void **handle)"), // cublasLt.h:69
    cublasLtDestroy: f("int cublasLtDestroy(void *handle)"), // cublasLt.h:71
    cublasLtGetStatusName: lib.func("const char *cublasLtGetStatusName(int status)") as unknown as (s: number) => string, // cublasLt.h:73
    cublasLtGetStatusString: lib.func("const char *cublasLtGetStatusString(int status)") as unknown as (s: number) => string, // cublasLt.h:75
    cublasLtGetVersion: lib.func("size_t cublasLtGetVersion()") as unknown as () => number, // cublasLt.h:77
    cublasLtMatmul: f(
      "int cublasLtMatmul(void *handle, void *desc, const void *alpha, uint64_t A, void *Adesc, uint64_t B, void *Bdesc, const void *beta, uint64_t C, void *Cdesc, uint64_t D, void *Ddesc, const void *algo, uint64_t workspace, size_t workspaceBytes, void *stream)",
    ), // cublasLt.h:1011
    /** the same symbol with alpha and beta as device addresses (CUBLASLT_POINTER_MODE_DEVICE) */
    cublasLtMatmulDeviceScalars: f(
      "int cublasLtMatmul(void *handle, void *desc, uint64_t alpha, uint64_t A, void *Adesc, uint64_t B, void *Bdesc, uint64_t beta, uint64_t C, void *Cdesc, uint64_t D, void *Ddesc, const void *algo, uint64_t workspace, size_t workspaceBytes, void *stream)",
    ),
    cublasLtMatrixLayoutCreate: f("int cublasLtMatrixLayoutCreate(_Out_ void **layout, int type, uint64_t rows, uint64_t cols, int64_t ld)"), // cublasLt.h:1212
    cublasLtMatrixLayoutDestroy: f("int cublasLtMatrixLayoutDestroy(void *layout)"), // cublasLt.h:1223
    cublasLtMatmulDescCreate: f("int cublasLtMatmulDescCreate(_Out_ void **desc, int computeType, int scaleType)"), // cublasLt.h:1623
    cublasLtMatmulDescDestroy: f("int cublasLtMatmulDescDestroy(void *desc)"), // cublasLt.h:1631
    cublasLtMatmulDescSetAttribute: f("int cublasLtMatmulDescSetAttribute(void *desc, int attr, const void *buf, size_t size)"), // cublasLt.h:1644
    cublasLtMatmulPreferenceCreate: f("int cublasLtMatmulPreferenceCreate(_Out_ void **pref)"), // cublasLt.h:2171
    cublasLtMatmulPreferenceDestroy: f("int cublasLtMatmulPreferenceDestroy(void *pref)"), // cublasLt.h:2177
    cublasLtMatmulPreferenceSetAttribute: f("int cublasLtMatmulPreferenceSetAttribute(void *pref, int attr, const void *buf, size_t size)"), // cublasLt.h:2190
    cublasLtMatmulAlgoGetHeuristic: f(
      "int cublasLtMatmulAlgoGetHeuristic(void *handle, void *desc, void *Adesc, void *Bdesc, void *Cdesc, void *Ddesc, void *pref, int requested, _Out_ uint8_t *results, _Out_ int *returned)",
    ), // cublasLt.h:2270
  };
}

type Api = ReturnType<typeof bind>;
let apiCache: { api: Api; path: string } | undefined;
function lt(): { api: Api; path: string } {
  if (!apiCache) {
    const { lib, path } = loadCudaLibrary("cublasLt");
    apiCache = { api: bind(lib), path };
  }
  return apiCache;
}

function check(call: string, status: number, context = ""): void {
  if (status === CUBLAS_STATUS_SUCCESS) return;
  const { api } = lt();
  throw new CudaError(
    `${call}${context ? ` (${context})` : ""} failed with ${api.cublasLtGetStatusName(status)} (${status}): ${api.cublasLtGetStatusString(status)}`,
    call,
    status,
  );
}

/** cuBLASLt's version, major·10000 + minor·100 + patch (e.g. 130000). */
export function cublasLtVersion(): number {
  return Number(lt().api.cublasLtGetVersion());
}

export interface MatmulArgs {
  /** rows of op(A) and D */
  m: number;
  /** columns of op(B) and D */
  n: number;
  /** columns of op(A), rows of op(B) */
  k: number;
  /** op(A) = Aᵀ (A stored k×m column-major); else A stored m×k */
  transA: boolean;
  /** op(B) = Bᵀ (B stored n×k column-major); else B stored k×n */
  transB: boolean;
  A: bigint;
  B: bigint;
  /** read when beta ≠ 0; may equal D */
  C: bigint;
  D: bigint;
  lda: number;
  ldb: number;
  ldc: number;
  ldd: number;
  typeA: number;
  typeB: number;
  typeC: number;
  typeD: number;
  alpha?: number;
  beta?: number;
  /**
   * Device pointers to FP32 alpha and beta (CUBLASLT_POINTER_MODE_DEVICE: both or neither; `alpha`
   * and `beta` are ignored then). Read by the GEMM when it runs on the stream, so a kernel queued
   * before it may compute them.
   */
  alphaPtr?: bigint;
  betaPtr?: bigint;
  /** CUBLAS_COMPUTE_32F (the default; the only one used here) */
  computeType?: number;
  /** CUDA_R_32F (the default; alpha and beta are passed as host floats) */
  scaleType?: number;
  workspace: bigint;
  workspaceBytes: number;
  stream: Stream;
  /** device pointer: FP32 scale of A (per tensor), or A's scale array under aScaleMode */
  aScale?: bigint;
  bScale?: bigint;
  /** device pointer to the FP32 scale of D (FP8 outputs) */
  dScale?: bigint;
  /** cublasLtMatmulMatrixScale_t for A (default SCALAR_32F) */
  aScaleMode?: number;
  bScaleMode?: number;
  /** FP8 fast accumulation (no periodic promotion to FP32); default off */
  fastAccum?: boolean;
}

/** Largest power of two dividing the address, capped at 256 (cuBLASLt's default assumption). */
export function pointerAlignment(p: bigint): number {
  if (p === 0n) return 256;
  let a = 1;
  while (a < 256 && (p & BigInt(a * 2 - 1)) === 0n) a *= 2;
  return a;
}

/** Rows and columns of each stored matrix for a column-major call (cuBLASLt's layout shapes). */
export function layoutShapes(a: Pick<MatmulArgs, "m" | "n" | "k" | "transA" | "transB">): { A: [number, number]; B: [number, number]; C: [number, number] } {
  return {
    A: a.transA ? [a.k, a.m] : [a.m, a.k],
    B: a.transB ? [a.n, a.k] : [a.k, a.n],
    C: [a.m, a.n],
  };
}

interface Plan {
  desc: unknown;
  layouts: unknown[];
  pref: unknown;
  algo: Buffer;
  workspaceNeeded: number;
}

function describe(a: MatmulArgs): string {
  return (
    `m=${a.m} n=${a.n} k=${a.k} op(A)=${a.transA ? "T" : "N"} op(B)=${a.transB ? "T" : "N"} ` +
    `A ${typeName(a.typeA)} lda=${a.lda}, B ${typeName(a.typeB)} ldb=${a.ldb}, C ${typeName(a.typeC)} ldc=${a.ldc}, D ${typeName(a.typeD)} ldd=${a.ldd}` +
    (a.aScaleMode || a.bScaleMode ? `, scale modes A=${a.aScaleMode ?? 0} B=${a.bScaleMode ?? 0}` : "") +
    `, workspace ${a.workspaceBytes} B`
  );
}

/** A cuBLASLt handle with its plan cache. Not thread-safe (Node's main thread only). */
export class CublasLt {
  private readonly plans = new Map<string, Plan>();
  private destroyed = false;

  private constructor(private readonly handle: unknown) {}

  static create(): CublasLt {
    const h = [null as unknown];
    check("cublasLtCreate", lt().api.cublasLtCreate(h), lt().path);
    return new CublasLt(h[0]);
  }

  get planCount(): number {
    return this.plans.size;
  }

  /** D = alpha·op(A)·op(B) + beta·C, column-major. Enqueued on `stream`; returns at once. */
  matmul(a: MatmulArgs): void {
    if (this.destroyed) throw new Error("CublasLt.matmul after destroy()");
    for (const [name, v] of [["m", a.m], ["n", a.n], ["k", a.k]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`cublasLt matmul: ${name} = ${v} must be a positive integer`);
    }
    const computeType = a.computeType ?? CUBLAS_COMPUTE_32F;
    const scaleType = a.scaleType ?? CUDA_R_32F;
    if (scaleType !== CUDA_R_32F) throw new RangeError(`cublasLt matmul: scaleType ${scaleType} unsupported here (alpha and beta are passed as FP32; use CUDA_R_32F)`);
    if ((a.alphaPtr === undefined) !== (a.betaPtr === undefined)) throw new RangeError("cublasLt matmul: alphaPtr and betaPtr come together (device pointer mode covers both)");
    const deviceScalars = a.alphaPtr !== undefined;
    const align = [a.A, a.B, a.C, a.D].map(pointerAlignment);
    const key = JSON.stringify([
      deviceScalars,
      a.m, a.n, a.k, a.transA, a.transB, a.lda, a.ldb, a.ldc, a.ldd, a.typeA, a.typeB, a.typeC, a.typeD, computeType, scaleType,
      a.aScale !== undefined, a.bScale !== undefined, a.dScale !== undefined, a.aScaleMode ?? 0, a.bScaleMode ?? 0, a.fastAccum ?? false,
      a.workspaceBytes, align,
    ]);
    let plan = this.plans.get(key);
    if (!plan) {
      plan = this.makePlan(a, computeType, scaleType, align);
      this.plans.set(key, plan);
    }
    const { api } = lt();
    // the scale pointers may change from call to call; the descriptor holds them by value
    if (a.aScale !== undefined) this.setDescPointer(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a.aScale);
    if (a.bScale !== undefined) this.setDescPointer(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, a.bScale);
    if (a.dScale !== undefined) this.setDescPointer(plan.desc, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, a.dScale);
    const [la, lb, lc, ld] = plan.layouts;
    if (deviceScalars) {
      check(
        "cublasLtMatmul",
        api.cublasLtMatmulDeviceScalars(this.handle, plan.desc, a.alphaPtr, a.A, la, a.B, lb, a.betaPtr, a.C, lc, a.D, ld, plan.algo, a.workspace, a.workspaceBytes, a.stream),
        `${describe(a)}, alpha and beta on the device`,
      );
      return;
    }
    const alpha = new Float32Array([a.alpha ?? 1]);
    const beta = new Float32Array([a.beta ?? 0]);
    check(
      "cublasLtMatmul",
      api.cublasLtMatmul(this.handle, plan.desc, alpha, a.A, la, a.B, lb, beta, a.C, lc, a.D, ld, plan.algo, a.workspace, a.workspaceBytes, a.stream),
      describe(a),
    );
  }

  private setDescAttr(desc: unknown, attr: number, value: ArrayBufferView, what: string): void {
    check("cublasLtMatmulDescSetAttribute", lt().api.cublasLtMatmulDescSetAttribute(desc, attr, value, value.byteLength), what);
  }

  private setDescPointer(desc: unknown, attr: number, ptr: bigint): void {
    this.setDescAttr(desc, attr, new BigUint64Array([ptr]), `pointer attribute ${attr}`);
  }

  private makePlan(a: MatmulArgs, computeType: number, scaleType: number, align: number[]): Plan {
    const { api } = lt();
    const made: { desc?: unknown; layouts: unknown[]; pref?: unknown } = { layouts: [] };
    try {
      const d = [null as unknown];
      check("cublasLtMatmulDescCreate", api.cublasLtMatmulDescCreate(d, computeType, scaleType));
      made.desc = d[0];
      this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_TRANSA, new Int32Array([a.transA ? CUBLAS_OP_T : CUBLAS_OP_N]), "TRANSA");
      this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_TRANSB, new Int32Array([a.transB ? CUBLAS_OP_T : CUBLAS_OP_N]), "TRANSB");
      this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, new Uint32Array([CUBLASLT_EPILOGUE_DEFAULT]), "EPILOGUE");
      if (a.alphaPtr !== undefined) this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, new Int32Array([CUBLASLT_POINTER_MODE_DEVICE]), "POINTER_MODE");
      if (a.fastAccum) this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, new Int8Array([1]), "FAST_ACCUM");
      if (a.aScaleMode !== undefined) this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, new Int32Array([a.aScaleMode]), "A_SCALE_MODE");
      if (a.bScaleMode !== undefined) this.setDescAttr(made.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, new Int32Array([a.bScaleMode]), "B_SCALE_MODE");
      // the heuristic may look at which scale pointers are set, so set them before asking
      if (a.aScale !== undefined) this.setDescPointer(made.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a.aScale);
      if (a.bScale !== undefined) this.setDescPointer(made.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, a.bScale);
      if (a.dScale !== undefined) this.setDescPointer(made.desc, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, a.dScale);

      const shapes = layoutShapes(a);
      const specs: [number, [number, number], number][] = [
        [a.typeA, shapes.A, a.lda],
        [a.typeB, shapes.B, a.ldb],
        [a.typeC, shapes.C, a.ldc],
        [a.typeD, shapes.C, a.ldd],
      ];
      for (const [type, [rows, cols], ld] of specs) {
        if (ld < rows) throw new RangeError(`cublasLt matmul: leading dimension ${ld} < rows ${rows} for a column-major ${rows}x${cols} ${typeName(type)} matrix (${describe(a)})`);
        const l = [null as unknown];
        check("cublasLtMatrixLayoutCreate", api.cublasLtMatrixLayoutCreate(l, type, rows, cols, ld), `${typeName(type)} ${rows}x${cols} ld ${ld}`);
        made.layouts.push(l[0]);
      }

      const p = [null as unknown];
      check("cublasLtMatmulPreferenceCreate", api.cublasLtMatmulPreferenceCreate(p));
      made.pref = p[0];
      const setPref = (attr: number, v: ArrayBufferView, what: string) =>
        check("cublasLtMatmulPreferenceSetAttribute", api.cublasLtMatmulPreferenceSetAttribute(made.pref, attr, v, v.byteLength), what);
      setPref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, new BigUint64Array([BigInt(a.workspaceBytes)]), "MAX_WORKSPACE_BYTES");
      const alignAttrs = [CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES];
      alignAttrs.forEach((attr, i) => setPref(attr, new Uint32Array([align[i]]), "MIN_ALIGNMENT"));

      const results = Buffer.alloc(HEURISTIC_RESULT_BYTES);
      const returned = [0];
      const [la, lb, lc, ld] = made.layouts;
      const status = api.cublasLtMatmulAlgoGetHeuristic(this.handle, made.desc, la, lb, lc, ld, made.pref, 1, results, returned);
      const state = results.readInt32LE(HEURISTIC_STATE_OFFSET);
      if (status === CUBLAS_STATUS_NOT_SUPPORTED || (status === CUBLAS_STATUS_SUCCESS && (returned[0] < 1 || state !== CUBLAS_STATUS_SUCCESS))) {
        const scaled = (a.aScaleMode ?? 0) !== 0 || (a.bScaleMode ?? 0) !== 0;
        throw new CudaError(
          `cuBLASLt has no algorithm for this GEMM: ${describe(a)} (heuristic status ${status}, ${returned[0]} results${returned[0] > 0 ? `, state ${state}` : ""}). ` +
            (scaled
              ? "This cuBLASLt or GPU does not run this block-scaled FP8 GEMM (on an H200 with cuBLASLt 13.1: 128x128·128x128 is refused, " +
                "and a 1x128-scaled operand needs its row count a multiple of 4): fall back to per-tensor FP8 or BF16 explicitly."
              : isFp8(a.typeA) || isFp8(a.typeB)
                ? "FP8 needs op(A)=T, op(B)=N (TN), k and the leading dimensions multiples of 16, and a GPU with FP8 tensor cores (sm_89+)."
                : "Check the types, leading dimensions (multiples of 16 bytes) and pointer alignment."),
          "cublasLtMatmulAlgoGetHeuristic",
          status === CUBLAS_STATUS_SUCCESS ? CUBLAS_STATUS_NOT_SUPPORTED : status,
        );
      }
      check("cublasLtMatmulAlgoGetHeuristic", status, describe(a));
      return {
        desc: made.desc,
        layouts: made.layouts,
        pref: made.pref,
        algo: Buffer.from(results.subarray(0, HEURISTIC_ALGO_BYTES)),
        workspaceNeeded: Number(results.readBigUInt64LE(HEURISTIC_WORKSPACE_OFFSET)),
      };
    } catch (e) {
      this.release(made.desc, made.layouts, made.pref);
      throw e;
    }
  }

  private release(desc: unknown, layouts: unknown[], pref: unknown): void {
    const { api } = lt();
    if (pref) check("cublasLtMatmulPreferenceDestroy", api.cublasLtMatmulPreferenceDestroy(pref));
    for (const l of layouts) check("cublasLtMatrixLayoutDestroy", api.cublasLtMatrixLayoutDestroy(l));
    if (desc) check("cublasLtMatmulDescDestroy", api.cublasLtMatmulDescDestroy(desc));
  }

  /** Free every cached plan and the handle. */
  destroy(): void {
    if (this.destroyed) return;
    for (const p of this.plans.values()) this.release(p.desc, p.layouts, p.pref);
    this.plans.clear();
    check("cublasLtDestroy", lt().api.cublasLtDestroy(this.handle));
    this.destroyed = true;
  }
}

// ---- the row-major TN GEMM ------------------------------------------------------------------

/** The column-major call for row-major C (M,N) = A (M,K) · B (N,K)ᵀ (see the file header). */
export function rowMajorTN(M: number, N: number, K: number) {
  return {
    /** cuBLAS-A is our B, cuBLAS-B is our A */
    swapped: true as const,
    transA: true,
    transB: false,
    m: N,
    n: M,
    k: K,
    lda: K,
    ldb: K,
    ldc: N,
    ldd: N,
  };
}

/** FP8 block-scaling granularity of one row-major (rows, K) operand, K being the reduced axis. */
export type BlockScaleKind = "1x128" | "128x128";

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/**
 * Where the FP32 scale of element (r, k) of a row-major (rows, K) operand lives in its scale array
 * (the cuBLASLt layout for CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F / BLK128x128_32F, as
 * TransformerEngine's GEMM-ready format and DeepGEMM lay it out; cublasLt.h itself only says "see
 * documentation"; smoke.gpu.ts checks it on the GPU):
 *   1x128:   column-major (rows, ⌈K/128⌉), leading dimension rows rounded up to 4 (16 bytes):
 *            offset = ⌊k/128⌋·ld + r — the scales of one K-block are contiguous over the rows;
 *   128x128: column-major (⌈K/128⌉, ⌈rows/128⌉), leading dimension ⌈K/128⌉ rounded up to 4:
 *            offset = ⌊r/128⌋·ld + ⌊k/128⌋.
 * A value in the operand is code · scale (the scale is the dequantisation factor). Checked on an H200
 * (cuBLASLt 13.1, smoke.gpu.ts) with per-block magnitudes spread over 2^±4, including a padded
 * 128x128 ld (3 K-blocks → 4) and partial blocks; a 1x128 operand whose rows are not a multiple of 4
 * is refused by cuBLASLt there, so its padding never applies in practice.
 */
export function blockScaleLayout(kind: BlockScaleKind, rows: number, K: number): { length: number; ld: number; offset: (r: number, k: number) => number } {
  const kBlocks = Math.ceil(K / 128);
  if (kind === "1x128") {
    const ld = roundUp(rows, 4);
    return { length: kBlocks * ld, ld, offset: (r, k) => Math.floor(k / 128) * ld + r };
  }
  const ld = roundUp(kBlocks, 4);
  return { length: Math.ceil(rows / 128) * ld, ld, offset: (r, k) => Math.floor(r / 128) * ld + Math.floor(k / 128) };
}

const SCALE_MODE: Record<BlockScaleKind, number> = {
  "1x128": CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F,
  "128x128": CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
};

export interface RowMajorTNArgs {
  M: number;
  N: number;
  K: number;
  /** (M,K) row-major, typeA */
  A: bigint;
  /** (N,K) row-major, typeB */
  B: bigint;
  /** (M,N) row-major, typeD; the output */
  D: bigint;
  /** (M,N) row-major, typeD, read when beta ≠ 0; default D (accumulate in place) */
  C?: bigint;
  /** CUDA_R_16BF, CUDA_R_8F_E4M3 or CUDA_R_8F_E5M2 */
  typeA: number;
  /** default typeA (FP8 may mix E4M3 and E5M2) */
  typeB?: number;
  /** CUDA_R_16BF or CUDA_R_32F */
  typeD: number;
  alpha?: number;
  beta?: number;
  /** device FP32 alpha and beta instead of the host values (both or neither) */
  alphaPtr?: bigint;
  betaPtr?: bigint;
  workspace: bigint;
  workspaceBytes: number;
  stream: Stream;
  /** A is given as Aᵀ: a (K,M) row-major array (BF16/FP32 only; FP8 on Hopper needs TN) */
  aTransposed?: boolean;
  /** B is given as Bᵀ: a (K,N) row-major array (BF16/FP32 only) */
  bTransposed?: boolean;
  /** FP8: device pointer to A's FP32 dequantisation scale (per tensor), or its block-scale array */
  aScale?: bigint;
  /** FP8: the same for B */
  bScale?: bigint;
  /** FP8 only: block scaling instead of per-tensor; aScale/bScale then point at arrays laid out as blockScaleLayout says */
  blockScaling?: { a: BlockScaleKind; b: BlockScaleKind };
}

/**
 * Row-major D (M,N) = alpha · A (M,K) · B (N,K)ᵀ + beta · C on cuBLASLt (column-major TN, see the
 * file header). For FP8 both scales are required; under `blockScaling` the heuristic finding no
 * algorithm throws CudaError saying so — callers fall back explicitly.
 */
export function gemmRowMajorTN(handle: CublasLt, a: RowMajorTNArgs): void {
  const typeB = a.typeB ?? a.typeA;
  const fp8 = isFp8(a.typeA) || isFp8(typeB);
  if (fp8 !== (isFp8(a.typeA) && isFp8(typeB))) throw new RangeError(`gemmRowMajorTN: A is ${typeName(a.typeA)} but B is ${typeName(typeB)}; both FP8 or neither`);
  if (!fp8 && a.typeA !== CUDA_R_16BF && a.typeA !== CUDA_R_32F && a.typeA !== CUDA_R_16F) throw new RangeError(`gemmRowMajorTN: input type ${typeName(a.typeA)} unsupported`);
  if (fp8) {
    if (a.K % 16 !== 0) throw new RangeError(`gemmRowMajorTN: FP8 needs K % 16 == 0 (K = ${a.K}); pad K`);
    if (a.aScale === undefined || a.bScale === undefined) throw new RangeError("gemmRowMajorTN: FP8 needs aScale and bScale (device FP32 dequantisation scales)");
  } else if (a.blockScaling || a.aScale !== undefined || a.bScale !== undefined) {
    throw new RangeError(`gemmRowMajorTN: scales are for FP8 inputs, not ${typeName(a.typeA)}`);
  }
  if (fp8 && (a.aTransposed || a.bTransposed)) throw new RangeError("gemmRowMajorTN: FP8 operands must be K-contiguous (Hopper runs FP8 as TN only)");
  const c = rowMajorTN(a.M, a.N, a.K);
  // a (K,N) row-major B is column-major N×K (no transpose, ld N); a (K,M) A is M×K (transpose, ld M)
  handle.matmul({
    m: c.m,
    n: c.n,
    k: c.k,
    transA: a.bTransposed ? false : c.transA,
    transB: a.aTransposed ? true : c.transB,
    A: a.B,
    B: a.A,
    C: a.C ?? a.D,
    D: a.D,
    lda: a.bTransposed ? a.N : c.lda,
    ldb: a.aTransposed ? a.M : c.ldb,
    ldc: c.ldc,
    ldd: c.ldd,
    typeA: typeB,
    typeB: a.typeA,
    typeC: a.typeD,
    typeD: a.typeD,
    alpha: a.alpha,
    beta: a.beta,
    alphaPtr: a.alphaPtr,
    betaPtr: a.betaPtr,
    workspace: a.workspace,
    workspaceBytes: a.workspaceBytes,
    stream: a.stream,
    // our A is cuBLAS-B and our B is cuBLAS-A: their scales swap too
    aScale: a.bScale,
    bScale: a.aScale,
    aScaleMode: a.blockScaling ? SCALE_MODE[a.blockScaling.b] : undefined,
    bScaleMode: a.blockScaling ? SCALE_MODE[a.blockScaling.a] : undefined,
  });
}

/**
 * Whether this cuBLASLt offers the FP8 block-scale modes (VEC128_32F, BLK128x128_32F): the library
 * is cuBLAS 12.9 or newer, and a cublasLt.h found next to it or in the CUDA include folder defines
 * CUBLASLT_MATMUL_DESC_A_SCALE_MODE and both modes (`headerDefines` null when no header was found;
 * the library version decides then). Whether the GPU runs them is only known when the heuristic
 * answers (Hopper does). Never throws.
 */
export function blockScaleModesAvailable(): { available: boolean; reason: string; libraryVersion: number | null; headerDefines: boolean | null } {
  let version: number;
  let libPath: string;
  try {
    version = cublasLtVersion();
    libPath = lt().path;
  } catch (e) {
    return { available: false, reason: `cuBLASLt not loadable: ${(e as Error).message}`, libraryVersion: null, headerDefines: null };
  }
  let headerDefines: boolean | null = null;
  const candidates = [join(dirname(libPath), "..", "include", "cublasLt.h"), join(dirname(libPath), "..", "..", "include", "cublasLt.h")];
  try {
    candidates.push(join(cudaIncludeDir(), "cublasLt.h"));
  } catch {
    // no include folder: the library version decides
  }
  let header = "";
  for (const h of candidates) {
    if (existsSync(h)) {
      const text = readFileSync(h, "utf8");
      headerDefines = ["CUBLASLT_MATMUL_DESC_A_SCALE_MODE", "CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F", "CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F"].every((s) => text.includes(s));
      header = h;
      break;
    }
  }
  if (version < BLOCK_SCALE_MIN_VERSION) return { available: false, reason: `cuBLASLt ${version} predates block scaling (needs ${BLOCK_SCALE_MIN_VERSION}+)`, libraryVersion: version, headerDefines };
  if (headerDefines === false) return { available: false, reason: `${header} does not define the block-scale modes`, libraryVersion: version, headerDefines };
  return { available: true, reason: `cuBLASLt ${version}${header ? `, ${header} defines the modes` : ", no header found"}`, libraryVersion: version, headerDefines };
}
