import { test } from "node:test";
import assert from "node:assert/strict";
import koffi from "koffi";
import {
  blockScaleLayout,
  CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
  CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F,
  CUDA_R_16BF,
  CUDA_R_32F,
  CUDA_R_8F_E4M3,
  CUDA_R_8F_E5M2,
  gemmRowMajorTN,
  HEURISTIC_ALGO_BYTES,
  HEURISTIC_RESULT_BYTES,
  HEURISTIC_STATE_OFFSET,
  HEURISTIC_WORKSPACE_OFFSET,
  layoutShapes,
  pointerAlignment,
  rowMajorTN,
  type CublasLt,
  type MatmulArgs,
} from "./cublaslt.ts";
import { Rng, normals } from "../../../test/random.ts";

/**
 * Column-major GEMM as BLAS defines it, in float64: D (m,n) = alpha·op(A)·op(B) + beta·C, element
 * (i,j) of a column-major matrix X with leading dimension ld at X[i + j·ld].
 */
function colMajorGemm(a: { m: number; n: number; k: number; transA: boolean; transB: boolean; alpha?: number; beta?: number; lda: number; ldb: number; ldc: number; ldd: number }, A: Float64Array, B: Float64Array, C: Float64Array, D: Float64Array): void {
  const opA = (i: number, p: number) => (a.transA ? A[p + i * a.lda] : A[i + p * a.lda]);
  const opB = (p: number, j: number) => (a.transB ? B[j + p * a.ldb] : B[p + j * a.ldb]);
  for (let j = 0; j < a.n; j++) {
    for (let i = 0; i < a.m; i++) {
      let s = 0;
      for (let p = 0; p < a.k; p++) s += opA(i, p) * opB(p, j);
      D[i + j * a.ldd] = (a.alpha ?? 1) * s + (a.beta ?? 0) * C[i + j * a.ldc];
    }
  }
}

/** Row-major reference: C (M,N) = A (M,K) · B (N,K)ᵀ. */
function rowMajorABt(M: number, N: number, K: number, A: Float64Array, B: Float64Array): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let p = 0; p < K; p++) s += A[i * K + p] * B[j * K + p];
    C[i * N + j] = s;
  }
  return C;
}

const f64 = (x: Float32Array) => Float64Array.from(x);

test("row-major A·Bᵀ maps to column-major TN with the operands swapped: m=N, n=M, k=K", () => {
  assert.deepEqual(rowMajorTN(3, 5, 7), { swapped: true, transA: true, transB: false, m: 5, n: 3, k: 7, lda: 7, ldb: 7, ldc: 5, ldd: 5 });
  const c = rowMajorTN(3, 5, 7);
  // cuBLAS-A (our B, stored (N,K) row-major) is a column-major (K,N) matrix; cuBLAS-B (our A) is (K,M)
  assert.deepEqual(layoutShapes(c), { A: [7, 5], B: [7, 3], C: [5, 3] });
  assert.deepEqual(layoutShapes({ m: 4, n: 6, k: 9, transA: false, transB: true }), { A: [4, 9], B: [6, 9], C: [4, 6] });
});

test("the mapped column-major call computes the row-major product (CPU column-major GEMM)", () => {
  const rng = new Rng(20260301);
  for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [8, 2, 16], [17, 33, 5], [2, 9, 64]]) {
    const A = f64(normals(rng, M * K));
    const B = f64(normals(rng, N * K));
    const want = rowMajorABt(M, N, K, A, B);
    const c = rowMajorTN(M, N, K);
    const D = new Float64Array(M * N).fill(NaN);
    // cuBLAS-A is our B, cuBLAS-B is our A; D's column-major (N,M) with ld N is row-major (M,N)
    colMajorGemm(c, B, A, new Float64Array(M * N), D);
    for (let i = 0; i < M * N; i++) assert.ok(Math.abs(D[i] - want[i]) <= 1e-12 * (1 + Math.abs(want[i])), `${M}x${N}x${K} element ${i}: ${D[i]} vs ${want[i]}`);
  }
});

/** A stand-in for the cuBLASLt handle that records the call and runs it on the CPU over fake device memory. */
function recordingHandle(memory: Map<bigint, Float64Array>) {
  const calls: MatmulArgs[] = [];
  const handle = {
    matmul(a: MatmulArgs) {
      calls.push(a);
      colMajorGemm(a, memory.get(a.A)!, memory.get(a.B)!, memory.get(a.C)!, memory.get(a.D)!);
    },
  } as unknown as CublasLt;
  return { handle, calls };
}

test("gemmRowMajorTN passes swapped operands, beta·C and types through to matmul", () => {
  const rng = new Rng(7);
  const [M, N, K] = [6, 10, 32];
  const A = f64(normals(rng, M * K));
  const B = f64(normals(rng, N * K));
  const C = f64(normals(rng, M * N));
  const memory = new Map<bigint, Float64Array>([[0x1000n, A], [0x2000n, B], [0x3000n, Float64Array.from(C)], [0x4000n, new Float64Array(M * N)]]);
  const { handle, calls } = recordingHandle(memory);
  gemmRowMajorTN(handle, { M, N, K, A: 0x1000n, B: 0x2000n, C: 0x3000n, D: 0x4000n, typeA: CUDA_R_16BF, typeD: CUDA_R_32F, alpha: 0.5, beta: 2, workspace: 0x9000n, workspaceBytes: 1 << 20, stream: null });
  const ab = rowMajorABt(M, N, K, A, B);
  const D = memory.get(0x4000n)!;
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(D[i] - (0.5 * ab[i] + 2 * C[i])) < 1e-12, `element ${i}`);
  const call = calls[0];
  assert.equal(call.A, 0x2000n);
  assert.equal(call.B, 0x1000n);
  assert.equal(call.typeA, CUDA_R_16BF);
  assert.equal(call.typeC, CUDA_R_32F);
  assert.equal(call.aScale, undefined);
  assert.equal(call.aScaleMode, undefined);
});

test("FP8 through gemmRowMajorTN: scales and block-scale modes follow their operands across the swap", () => {
  const memory = new Map<bigint, Float64Array>();
  for (const p of [0x1000n, 0x2000n, 0x4000n]) memory.set(p, new Float64Array(4 * 4 * 128));
  const { handle, calls } = recordingHandle(memory);
  const base = { M: 4, N: 4, K: 128, A: 0x1000n, B: 0x2000n, D: 0x4000n, typeD: CUDA_R_16BF, workspace: 0n, workspaceBytes: 0, stream: null, aScale: 0xa000n, bScale: 0xb000n };
  gemmRowMajorTN(handle, { ...base, typeA: CUDA_R_8F_E4M3, typeB: CUDA_R_8F_E5M2 });
  assert.equal(calls[0].aScale, 0xb000n, "cuBLAS-A is our B: its scale is bScale");
  assert.equal(calls[0].bScale, 0xa000n);
  assert.equal(calls[0].typeA, CUDA_R_8F_E5M2);
  assert.equal(calls[0].typeB, CUDA_R_8F_E4M3);
  gemmRowMajorTN(handle, { ...base, typeA: CUDA_R_8F_E4M3, blockScaling: { a: "1x128", b: "128x128" } });
  assert.equal(calls[1].bScaleMode, CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F, "our A (1x128) is cuBLAS-B");
  assert.equal(calls[1].aScaleMode, CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, "our B (128x128) is cuBLAS-A");
  assert.throws(() => gemmRowMajorTN(handle, { ...base, K: 120, typeA: CUDA_R_8F_E4M3 }), /K % 16/);
  assert.throws(() => gemmRowMajorTN(handle, { ...base, aScale: undefined, typeA: CUDA_R_8F_E4M3 }), /needs aScale and bScale/);
  assert.throws(() => gemmRowMajorTN(handle, { ...base, typeA: CUDA_R_16BF }), /scales are for FP8/);
  assert.throws(() => gemmRowMajorTN(handle, { ...base, typeA: CUDA_R_8F_E4M3, typeB: CUDA_R_16BF }), /both FP8 or neither/);
});

test("block-scale layouts: every block has its own slot, padded to 16 bytes, inside the array", () => {
  for (const [rows, K] of [[256, 512], [130, 384], [3, 128], [384, 200]]) {
    for (const kind of ["1x128", "128x128"] as const) {
      const L = blockScaleLayout(kind, rows, K);
      assert.equal(L.ld % 4, 0, "leading dimension is a multiple of 4 floats");
      const slotOf = new Map<number, string>();
      for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) {
        const block = kind === "1x128" ? `${r},${Math.floor(k / 128)}` : `${Math.floor(r / 128)},${Math.floor(k / 128)}`;
        const o = L.offset(r, k);
        assert.ok(o >= 0 && o < L.length, `${kind} ${rows}x${K}: offset ${o} of (${r},${k}) outside ${L.length}`);
        const prev = slotOf.get(o);
        assert.ok(prev === undefined || prev === block, `${kind}: blocks ${prev} and ${block} share slot ${o}`);
        slotOf.set(o, block);
      }
      const blocks = kind === "1x128" ? rows * Math.ceil(K / 128) : Math.ceil(rows / 128) * Math.ceil(K / 128);
      assert.equal(slotOf.size, blocks);
    }
  }
  // 1x128 keeps one K-block's scales contiguous over the rows; 128x128 keeps a row-block's K-blocks contiguous
  assert.equal(blockScaleLayout("1x128", 6, 512).offset(1, 130), 8 + 1);
  assert.equal(blockScaleLayout("128x128", 300, 512).offset(129, 300), 4 + 2);
});

test("heuristic result offsets match the C layout of cublasLtMatmulHeuristicResult_t", () => {
  const T = koffi.struct("cublasLtMatmulHeuristicResult_t_check", {
    algo: koffi.array("uint64_t", 8),
    workspaceSize: "size_t",
    state: "int",
    wavesCount: "float",
    reserved: koffi.array("int", 4),
  });
  assert.equal(koffi.sizeof(T), HEURISTIC_RESULT_BYTES);
  assert.equal(koffi.offsetof(T, "workspaceSize"), HEURISTIC_WORKSPACE_OFFSET);
  assert.equal(koffi.offsetof(T, "state"), HEURISTIC_STATE_OFFSET);
  assert.equal(koffi.offsetof(T, "workspaceSize"), HEURISTIC_ALGO_BYTES);
});

test("pointer alignment is the largest power of two dividing the address, capped at 256", () => {
  assert.equal(pointerAlignment(0x7f0000000000n), 256);
  assert.equal(pointerAlignment(0x7f0000000010n), 16);
  assert.equal(pointerAlignment(0x7f0000000002n), 2);
  assert.equal(pointerAlignment(0x7f0000000001n), 1);
  assert.equal(pointerAlignment(0x7f0000000180n), 128);
});
