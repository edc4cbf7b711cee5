/**
 * FP32 GEMM on the CPU: C (M,N) = alpha · op(A) (M,K) · op(B) (K,N) + beta · C, row-major
 * Float32Array operands, BLAS-style transpose flags. The workhorse of the CPU training path: every
 * emulated NVFP4/FP8/BF16 GEMM is quantize-dequantize of the operands followed by this.
 *
 * Numerics (both kernels, bit for bit): each C element's dot product is accumulated in a double
 * over k = 0, 1, ..., K-1 in that order, starting from +0, then `alpha·acc` (`+ beta·c` when
 * beta ≠ 0) is evaluated in double and rounded once to fp32 on the store. Products of two fp32
 * values are exact in double, so the result depends only on that order, which no blocking or
 * thread split changes: `gemmBlocked` over any row range, and the pool over any number of threads,
 * equal `gemmReference` exactly. beta = 0 overwrites C (NaN in the old C does not leak); unlike
 * BLAS, alpha = 0 still reads A and B, so NaN/Inf in them propagate (a training run must see them).
 *
 * `gemmReference` is the plain twin (triple loop). `gemmBlocked` is the single-thread fast kernel,
 * structured after Goto & van de Geijn, "Anatomy of high-performance matrix multiplication"
 * (ACM TOMS 2008) / BLIS: op(B) packed into NR-column strips and op(A) into MR-row strips, so the
 * MR×NR register-blocked micro-kernel reads both unit-stride; K blocked by KC with the partial
 * sums kept in a double accumulator tile so the summation order stays k = 0..K-1. Panels are
 * packed as fp32 (exact: the operands are fp32), half the memory of fp64 panels at the same speed.
 * Not a BLAS: no SIMD (plain TypeScript; V8 emits scalar SSE2/AVX), dense row-major only.
 * The multi-threaded driver is gemm-pool.ts; timings are in bench/gemm.bench.ts.
 */
import { ShapeError } from "../../errors.ts";

/** Shape and flags of one GEMM. op(A) is (M,K), op(B) is (K,N); alpha defaults to 1, beta to 0. */
export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  /** A is stored (K,M) row-major, op(A) = Aᵀ; otherwise A is stored (M,K). */
  transA: boolean;
  /** B is stored (N,K) row-major, op(B) = Bᵀ; otherwise B is stored (K,N). */
  transB: boolean;
  alpha?: number;
  beta?: number;
}

/** Micro-tile: MR rows of op(A) × NR columns of op(B), held in MR·NR double registers. */
export const MR = 4;
export const NR = 4;
/** Rows per block of op(A) packed at once; also the unit of work the pool hands out. */
export const MC = 64;
/** Columns per block of C whose accumulators (MC×NC doubles, 128 KiB) stay in L2 across KC steps. */
const NC = 256;
/** k-slice per pass: one MR×KC strip of A plus one KC×NR strip of B (4 KiB each) sit in L1. */
const KC = 256;

/**
 * Throw a ShapeError unless the arguments describe a GEMM these arrays can hold: dimensions are
 * non-negative integers, A/B/C are long enough (longer is allowed, only the leading elements are
 * used), and C does not overlap A or B (the kernels read A and B after writing C).
 */
export function checkGemmArgs(op: string, A: Float32Array, B: Float32Array, C: Float32Array, args: GemmArgs): void {
  const { M, N, K, transA, transB } = args;
  for (const [name, v] of [["M", M], ["N", N], ["K", K]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new ShapeError(`${op}: ${name} must be a non-negative integer, got ${v}`);
  }
  const need = (name: string, a: Float32Array, n: number, shape: string) => {
    if (!(a instanceof Float32Array)) throw new ShapeError(`${op}: ${name} must be a Float32Array`);
    if (a.length < n) {
      throw new ShapeError(`${op}: ${name} is too short for the shape: stored ${shape} needs ${n} elements but the array has ${a.length}`);
    }
  };
  need("A", A, M * K, transA ? `(K,M) = (${K},${M}) (transA)` : `(M,K) = (${M},${K})`);
  need("B", B, K * N, transB ? `(N,K) = (${N},${K}) (transB)` : `(K,N) = (${K},${N})`);
  need("C", C, M * N, `(M,N) = (${M},${N})`);
  for (const [name, X, n] of [["A", A, M * K], ["B", B, K * N]] as const) {
    if (X.buffer === C.buffer && n > 0 && M * N > 0) {
      const x0 = X.byteOffset, x1 = x0 + 4 * n, c0 = C.byteOffset, c1 = c0 + 4 * M * N;
      if (x0 < c1 && c0 < x1) throw new ShapeError(`${op}: C overlaps ${name} in memory; write the result to a separate array`);
    }
  }
  for (const [name, v] of [["alpha", args.alpha], ["beta", args.beta]] as const) {
    if (v !== undefined && typeof v !== "number") throw new ShapeError(`${op}: ${name} must be a number, got ${typeof v}`);
  }
}

/**
 * The plain twin: one double accumulator per C element, k in order, one rounding on the store.
 * Written for obviousness; the fast kernels are tested against it bit for bit.
 */
export function gemmReference(A: Float32Array, B: Float32Array, C: Float32Array, args: GemmArgs): void {
  checkGemmArgs("gemmReference", A, B, C, args);
  const { M, N, K, transA, transB } = args;
  const alpha = args.alpha ?? 1, beta = args.beta ?? 0;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * M + i] : A[i * K + k];
        const b = transB ? B[j * K + k] : B[k * N + j];
        acc += a * b;
      }
      C[i * N + j] = beta === 0 ? alpha * acc : alpha * acc + beta * C[i * N + j];
    }
  }
}

/** Elements of the packed op(B): ceil(N/NR) strips of K×NR floats. */
export function packedBLength(K: number, N: number): number {
  return Math.ceil(N / NR) * NR * K;
}

/**
 * Pack op(B) (K,N) into `bp`: strip s holds columns s·NR..s·NR+NR-1 as K rows of NR floats,
 * bp[(s·K + k)·NR + c] = op(B)[k, s·NR + c], columns past N zero (their results are discarded;
 * K is never padded, so no spurious 0·x term enters a real sum).
 */
export function packB(B: Float32Array, args: GemmArgs, bp: Float32Array): void {
  const { N, K, transB } = args;
  const nStrips = Math.ceil(N / NR);
  if (bp.length < nStrips * NR * K) throw new ShapeError(`packB: scratch holds ${bp.length} floats, needs ${nStrips * NR * K}`);
  for (let s = 0; s < nStrips; s++) {
    const j0 = s * NR, nc = Math.min(NR, N - j0), base = s * K * NR;
    if (!transB) {
      // op(B) row k is B row k: read NR contiguous floats per k
      for (let k = 0; k < K; k++) {
        const src = k * N + j0, dst = base + k * NR;
        for (let c = 0; c < nc; c++) bp[dst + c] = B[src + c];
        for (let c = nc; c < NR; c++) bp[dst + c] = 0;
      }
    } else {
      // op(B) column j is B row j: read each column contiguously, write with stride NR
      for (let c = 0; c < NR; c++) {
        if (c < nc) {
          const src = (j0 + c) * K;
          for (let k = 0; k < K; k++) bp[base + k * NR + c] = B[src + k];
        } else {
          for (let k = 0; k < K; k++) bp[base + k * NR + c] = 0;
        }
      }
    }
  }
}

/** Pack rows i0..i1-1 of op(A) into MR-row strips: ap[(s·K + k)·MR + r] = op(A)[i0 + s·MR + r, k]. */
function packA(A: Float32Array, M: number, K: number, transA: boolean, i0: number, i1: number, ap: Float32Array): void {
  const mStrips = Math.ceil((i1 - i0) / MR);
  for (let s = 0; s < mStrips; s++) {
    const r0 = i0 + s * MR, nr = Math.min(MR, i1 - r0), base = s * K * MR;
    if (!transA) {
      for (let r = 0; r < MR; r++) {
        if (r < nr) {
          const src = (r0 + r) * K;
          for (let k = 0; k < K; k++) ap[base + k * MR + r] = A[src + k];
        } else {
          for (let k = 0; k < K; k++) ap[base + k * MR + r] = 0;
        }
      }
    } else {
      for (let k = 0; k < K; k++) {
        const src = k * M + r0, dst = base + k * MR;
        for (let r = 0; r < nr; r++) ap[dst + r] = A[src + r];
        for (let r = nr; r < MR; r++) ap[dst + r] = 0;
      }
    }
  }
}

/**
 * acc[co .. co+16) (4×4, row-major) += A strip (kc×4 at ap[ao]) · B strip (kc×4 at bp[bo]), k in
 * order. Sixteen scalar accumulators: V8 keeps most in xmm registers; 8 loads feed 16 multiply-adds.
 */
function kernel4x4(ap: Float32Array, ao: number, bp: Float32Array, bo: number, kc: number, acc: Float64Array, co: number): void {
  let c00 = acc[co], c01 = acc[co + 1], c02 = acc[co + 2], c03 = acc[co + 3];
  let c10 = acc[co + 4], c11 = acc[co + 5], c12 = acc[co + 6], c13 = acc[co + 7];
  let c20 = acc[co + 8], c21 = acc[co + 9], c22 = acc[co + 10], c23 = acc[co + 11];
  let c30 = acc[co + 12], c31 = acc[co + 13], c32 = acc[co + 14], c33 = acc[co + 15];
  const aEnd = ao + kc * 4;
  for (; ao < aEnd; ao += 4, bo += 4) {
    const a0 = ap[ao], a1 = ap[ao + 1], a2 = ap[ao + 2], a3 = ap[ao + 3];
    const b0 = bp[bo], b1 = bp[bo + 1], b2 = bp[bo + 2], b3 = bp[bo + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  acc[co] = c00; acc[co + 1] = c01; acc[co + 2] = c02; acc[co + 3] = c03;
  acc[co + 4] = c10; acc[co + 5] = c11; acc[co + 6] = c12; acc[co + 7] = c13;
  acc[co + 8] = c20; acc[co + 9] = c21; acc[co + 10] = c22; acc[co + 11] = c23;
  acc[co + 12] = c30; acc[co + 13] = c31; acc[co + 14] = c32; acc[co + 15] = c33;
}

/** Per-thread scratch of the blocked kernel, grown on demand and reused across calls. */
export interface GemmScratch {
  /** packed op(A) rows of one MC block: MC×K floats */
  ap: Float32Array;
  /** accumulator tiles of one MC×NC block of C */
  acc: Float64Array;
}

/** Fresh scratch for the blocked kernel (the pool keeps one per thread). */
export function newGemmScratch(): GemmScratch {
  return { ap: new Float32Array(0), acc: new Float64Array((MC / MR) * (NC / NR) * MR * NR) };
}

/**
 * Rows rowStart..rowEnd-1 of C from a packed op(B) (see packB). The building block that
 * gemmBlocked and every pool thread run; arguments must already be checked (checkGemmArgs).
 * Each C element is written by the one call whose row range holds it, with the same k order.
 */
export function gemmPackedRows(A: Float32Array, bp: Float32Array, C: Float32Array, args: GemmArgs, rowStart: number, rowEnd: number, scratch: GemmScratch): void {
  const { M, N, K, transA } = args;
  const alpha = args.alpha ?? 1, beta = args.beta ?? 0;
  if (scratch.ap.length < MC * K) scratch.ap = new Float32Array(MC * K);
  const ap = scratch.ap, acc = scratch.acc;
  const tile = MR * NR;
  for (let i0 = rowStart; i0 < rowEnd; i0 += MC) {
    const i1 = Math.min(rowEnd, i0 + MC);
    const mStrips = Math.ceil((i1 - i0) / MR);
    packA(A, M, K, transA, i0, i1, ap);
    for (let j0 = 0; j0 < N; j0 += NC) {
      const j1 = Math.min(N, j0 + NC);
      const s0 = j0 / NR, nStrips = Math.ceil((j1 - j0) / NR);
      // acc tile (si, sj) at ((sj·mStrips + si)·MR·NR); +0 start as in the reference
      acc.fill(0, 0, mStrips * nStrips * tile);
      for (let k0 = 0; k0 < K; k0 += KC) {
        const kc = Math.min(KC, K - k0);
        for (let sj = 0; sj < nStrips; sj++) {
          const bo = ((s0 + sj) * K + k0) * NR;
          for (let si = 0; si < mStrips; si++) {
            kernel4x4(ap, (si * K + k0) * MR, bp, bo, kc, acc, (sj * mStrips + si) * tile);
          }
        }
      }
      // one rounding to fp32 per element, same expression as gemmReference
      for (let sj = 0; sj < nStrips; sj++) {
        const jb = j0 + sj * NR, nc = Math.min(NR, N - jb);
        for (let si = 0; si < mStrips; si++) {
          const ib = i0 + si * MR, nr = Math.min(MR, i1 - ib), co = (sj * mStrips + si) * tile;
          for (let r = 0; r < nr; r++) {
            const crow = (ib + r) * N + jb, arow = co + r * NR;
            for (let c = 0; c < nc; c++) {
              const v = acc[arow + c];
              C[crow + c] = beta === 0 ? alpha * v : alpha * v + beta * C[crow + c];
            }
          }
        }
      }
    }
  }
}

const defaultScratch = newGemmScratch();

/**
 * Single-thread cache-blocked GEMM over rows rowStart..rowEnd-1 of C (default: all M). Packs
 * op(B) on every call (a K×N copy); the pool packs it once and shares it across threads.
 * Bit-identical to gemmReference for every row split.
 */
export function gemmBlocked(A: Float32Array, B: Float32Array, C: Float32Array, args: GemmArgs, rowStart = 0, rowEnd = args.M): void {
  checkGemmArgs("gemmBlocked", A, B, C, args);
  if (!Number.isInteger(rowStart) || !Number.isInteger(rowEnd) || rowStart < 0 || rowEnd > args.M || rowStart > rowEnd) {
    throw new ShapeError(`gemmBlocked: row range [${rowStart}, ${rowEnd}) is not inside [0, M=${args.M})`);
  }
  if (rowStart === rowEnd || args.N === 0) return;
  const bp = new Float32Array(packedBLength(args.K, args.N));
  packB(B, args, bp);
  gemmPackedRows(A, bp, C, args, rowStart, rowEnd, defaultScratch);
}
