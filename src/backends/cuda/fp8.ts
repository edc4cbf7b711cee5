/**
 * The fp8 recipe on the CUDA backend: its operands (quantizeBytes' fp8 case) and its GEMMs
 * (cuda-backend.ts delegates here).
 *
 * Quantizers. Block-scaled operands (1x128, 128x128) run kernels/quantize-fp8-fast.cu: one pass
 * over x (block amax, scale, FP8 bytes, scales, optionally the BF16 operand); per-tensor scaling,
 * widths that are not a multiple of 16 and FP4LM_QUANT_KERNELS=plain run quantize.cu's plain twins
 * (block amax, quantize to FP32, cast to BF16). Bytes are the CPU oracle's either way
 * (quant/fp8.ts, recipes/quantize-operand.ts).
 *
 * GEMMs. With FP4LM_FP8_GEMM=tensor-cores (the default) a block-scaled E4M3 operand stays FP8 (bytes
 * K-contiguous + FP32 decode scales in cuBLASLt's layout) and the GEMM runs on Hopper's FP8 tensor
 * cores through cuBLASLt's VEC128 / BLK128x128 scale modes: Fprop X 1x128 · W 128x128, Dgrad dY 1x128
 * · Wᵀ 128x128, Wgrad dYᵀ 1x128 · Xᵀ 1x128, FP32 accumulation and output. Its result equals the
 * emulated GEMM's up to summation order and the tensor cores' accumulation (bounds in
 * test/gpu/fp8.gpu.test.ts). FP4LM_FP8_GEMM=emulated keeps the oracle's path: operands dequantized
 * to BF16 (exact for power-of-two block scales), BF16 GEMM. A pair cuBLASLt does not run
 * (128x128 · 128x128, E5M2 · E5M2, a shape its heuristic refuses) is dequantized and run emulated,
 * with a one-time warning naming the GEMM; `gemmEngine` says ahead of the run which engine each
 * operand pair gets, `counts` what ran.
 */
import type { OperandSpec } from "../../recipes/operand.ts";
import { blockScaleLayout, blockScaleModesAvailable, CUDA_R_8F_E4M3, CUDA_R_8F_E5M2, CUDA_R_32F, gemmRowMajorTN, type BlockScaleKind, type CublasLt } from "./cublaslt.ts";
import type { CudaOperand, QuantizedBytes, QuantKernels } from "./cuda-backend.ts";
import { CudaError, type Dim3, type Driver, type KernelArg } from "./driver.ts";

export type Fp8GemmMode = "tensor-cores" | "emulated";

/** What the FP8 path needs from the CUDA backend. */
export interface Fp8Device {
  readonly drv: Driver;
  readonly lt: CublasLt;
  readonly workspace: bigint;
  readonly workspaceBytes: number;
  /** compute capability major of the current GPU */
  readonly ccMajor: number;
  quantKernels(): QuantKernels;
  launch(file: string, name: string, grid: Dim3, block: Dim3, shared: number, args: KernelArg[]): void;
  timed(name: string, run: () => void): void;
  scratch(bytes: number): bigint;
  release(...ptrs: bigint[]): void;
}

const FAST = "quantize-fp8-fast.cu";
const B256: Dim3 = [256, 1, 1];
const ptr = (value: bigint): KernelArg => ({ kind: "ptr", value });
const i32 = (value: number): KernelArg => ({ kind: "i32", value });
const grid1 = (n: number, per = 256, cap = 65535): Dim3 => [Math.max(1, Math.min(Math.ceil(n / per), cap)), 1, 1];

/** An operand kept in FP8 for the tensor cores. */
export function isFp8Operand(op: CudaOperand): boolean {
  return op.dtype === "e4m3" || op.dtype === "e5m2";
}

const scalingOf = (spec: OperandSpec): 0 | 1 | 2 => (spec.block === "128x128" ? 2 : spec.block === "tensor" ? 0 : 1);

export class CudaFp8 {
  /** which engine runs the fp8 GEMMs of operands quantized from now on (tests switch it) */
  mode: Fp8GemmMode;
  private modes?: { available: boolean; reason: string };
  private readonly refused = new Map<string, string>();
  /**
   * FP4LM_FP8_CVT=hw: the one-pass kernels encode with the hardware cvt.rn.satfinite.e4m3x2/e5m2x2
   * instead of common.cuh's bit-exact software encode (fewer instructions per element; not yet
   * shown to give the oracle's bytes on a GPU: test/gpu/fp8.gpu.test.ts compares it with the plain kernels)
   */
  hwCvt = process.env.FP4LM_FP8_CVT === "hw";
  /** FP8 GEMMs run on the tensor cores, and those cuBLASLt refused (run emulated), since the backend was made */
  readonly counts = { tensorCores: 0, fellBack: 0 };

  constructor(private readonly dev: Fp8Device, mode?: string) {
    const m = mode ?? process.env.FP4LM_FP8_GEMM ?? "tensor-cores";
    if (m !== "tensor-cores" && m !== "emulated") throw new RangeError(`FP4LM_FP8_GEMM must be tensor-cores or emulated, got ${JSON.stringify(m)}`);
    this.mode = m;
  }

  /** Whether this GPU and cuBLASLt run block-scaled FP8 GEMMs (Hopper, cuBLASLt ≥ 12.9), and why not. */
  blockScaledGemms(): { available: boolean; reason: string } {
    if (!this.modes) {
      if (this.dev.ccMajor !== 9) this.modes = { available: false, reason: `compute capability ${this.dev.ccMajor}.x: cuBLASLt's 1x128/128x128 FP8 scale modes are Hopper's (9.x)` };
      else {
        const b = blockScaleModesAvailable();
        this.modes = { available: b.available, reason: b.reason };
      }
    }
    return this.modes;
  }

  /**
   * Whether an FP8 operand of x (rows, cols), or xᵀ, runs the fast kernels, and if not why: block
   * scaling (per-tensor scales stay plain), C % 16 == 0 in the quantized orientation.
   */
  kernelPath(spec: OperandSpec, rows: number, cols: number, transpose: boolean): { fast: boolean; reason: string } {
    if (this.dev.quantKernels() === "plain") return { fast: false, reason: "FP4LM_QUANT_KERNELS=plain" };
    if (scalingOf(spec) === 0) return { fast: false, reason: "per-tensor FP8 scaling (plain kernels only)" };
    const C = transpose ? rows : cols;
    if (C % 16 !== 0) return { fast: false, reason: `${C} values per quantized row, not a multiple of 16` };
    return { fast: true, reason: transpose ? "column kernel" : "row kernel" };
  }

  /** Whether an operand of this spec and shape is kept in FP8 for the tensor cores (else it is a BF16/FP32 operand). */
  private keepsFp8(spec: OperandSpec, rows: number, cols: number, transpose: boolean): boolean {
    return this.mode === "tensor-cores" && this.kernelPath(spec, rows, cols, transpose).fast && this.blockScaledGemms().available;
  }

  /**
   * What a GEMM with these operand specs runs on, in words (the run's precision table): the FP8
   * tensor cores, or why it is emulated. Shape conditions are checked when the GEMM runs.
   */
  engine(a: OperandSpec, b: OperandSpec): string {
    if (a.format !== "fp8" || b.format !== "fp8") throw new RangeError("CudaFp8.engine: not an FP8 GEMM");
    const why = this.emulatedBecause(a, b);
    return why ? `emulated (BF16 tensor cores: ${why})` : "FP8 tensor cores";
  }

  private emulatedBecause(a: OperandSpec, b: OperandSpec): string | undefined {
    if (this.mode === "emulated") return "FP4LM_FP8_GEMM=emulated";
    if (this.dev.quantKernels() === "plain") return "FP4LM_QUANT_KERNELS=plain";
    if (scalingOf(a) === 0 || scalingOf(b) === 0) return "per-tensor FP8 scaling";
    const modes = this.blockScaledGemms();
    if (!modes.available) return modes.reason;
    if (scalingOf(a) === 2 && scalingOf(b) === 2) return "cuBLASLt has no 128x128 · 128x128 mode";
    if (a.fp8 === "e5m2" && b.fp8 === "e5m2") return "cuBLASLt has no E5M2 · E5M2 GEMM";
    return undefined;
  }

  /**
   * quantizeBytes' fp8 case: x (rows, cols) or xᵀ, checked for NaN/Inf through `slot` (then
   * `checked()`); `keep` returns the bytes and the oracle-layout scales for parity tests.
   */
  quantize(x: bigint, rows: number, cols: number, spec: OperandSpec, transpose: boolean, slot: bigint, keep: boolean, checked: () => void): QuantizedBytes {
    const { drv } = this.dev;
    const [R, C] = transpose ? [cols, rows] : [rows, cols];
    const n = R * C;
    const scaling = scalingOf(spec);
    const e5m2 = spec.fp8 === "e5m2" ? 1 : 0;
    const nBlocks = scaling === 0 ? 1 : scaling === 1 ? R * Math.ceil(C / 128) : Math.ceil(R / 128) * Math.ceil(C / 128);
    const readScales = (p: bigint) => {
      const s = new Float32Array(nBlocks);
      drv.memcpyDtoH(s, p, nBlocks * 4);
      return s;
    };
    const readBytes = (p: bigint) => {
      const a = new Uint8Array(n);
      if (n) drv.memcpyDtoH(a, p, n);
      return a;
    };
    if (this.kernelPath(spec, rows, cols, transpose).fast && (transpose || (x & 15n) === 0n)) {
      const tc = this.keepsFp8(spec, rows, cols, transpose);
      const kind: BlockScaleKind = scaling === 2 ? "128x128" : "1x128";
      const data = tc || keep ? this.dev.scratch(n) : 0n;
      const sinv = keep ? this.dev.scratch(nBlocks * 4) : 0n;
      const sgemm = tc ? this.dev.scratch(blockScaleLayout(kind, R, C).length * 4) : 0n;
      const o = tc ? 0n : this.dev.scratch(n * 2);
      const name = `fp8_quantize_${transpose ? "cols" : "rows"}_${kind}_f32`;
      const grid: Dim3 = transpose
        ? [Math.ceil(rows / 128) * Math.ceil(cols / (scaling === 2 ? 128 : 64)), 1, 1]
        : [scaling === 2 ? Math.ceil(R / 128) * Math.ceil(C / 128) : Math.ceil((R * Math.ceil(C / 128)) / 32), 1, 1];
      this.dev.launch(FAST, name, grid, B256, 0, [ptr(x), i32(rows), i32(cols), i32(e5m2), i32(1), i32(this.hwCvt ? 1 : 0), ptr(data), ptr(sinv), ptr(sgemm), ptr(o), ptr(slot)]);
      checked();
      const out: QuantizedBytes = tc
        ? { operand: { rows: R, cols: C, spec, ptr: data, dtype: e5m2 ? "e5m2" : "e4m3", scalePtr: sgemm, scaleKind: kind } }
        : { operand: { rows: R, cols: C, spec, ptr: o, dtype: "bf16" } };
      if (keep) {
        out.packed = readBytes(data);
        out.scaleInv = readScales(sinv);
        this.dev.release(sinv);
        if (!tc) this.dev.release(data);
      }
      return out;
    }
    // the plain twins (quantize.cu): block amax, then quantize to FP32, then (block scales) the BF16 cast
    const tiled: Dim3 = [Math.ceil(C / 128), Math.min(Math.ceil(R / 32), 65535), 1];
    const bam = this.dev.scratch(nBlocks * 4);
    drv.memsetD32(bam, 0, nBlocks);
    this.dev.launch("quantize.cu", "fp8_block_amax_f32", tiled, B256, 0, [ptr(x), i32(rows), i32(cols), i32(transpose ? 1 : 0), i32(scaling), ptr(bam), ptr(slot)]);
    checked();
    const data = this.dev.scratch(n), sinv = this.dev.scratch(nBlocks * 4), deq = this.dev.scratch(n * 4);
    this.dev.launch("quantize.cu", "fp8_quantize_f32", tiled, B256, 0, [
      ptr(x), i32(rows), i32(cols), i32(transpose ? 1 : 0), i32(scaling), i32(e5m2), i32(scaling === 0 ? 0 : 1), ptr(bam), ptr(data), ptr(sinv), ptr(deq),
    ]);
    let out: QuantizedBytes;
    if (scaling === 0) {
      // a per-tensor scale is not a power of two: fp8·scale_inv is exact in FP32 only
      out = { operand: { rows: R, cols: C, spec, ptr: deq, dtype: "f32" } };
    } else {
      // block scales are powers of two: fp8·scale_inv is exact in BF16
      const o = this.dev.scratch(n * 2);
      this.dev.launch("cast.cu", "cast_bf16_f32", grid1(n), B256, 0, [ptr(deq), i32(R), i32(C), i32(0), ptr(o), ptr(0n)]);
      out = { operand: { rows: R, cols: C, spec, ptr: o, dtype: "bf16" } };
    }
    if (keep) {
      out.packed = readBytes(data);
      out.scaleInv = readScales(sinv);
    }
    this.dev.release(bam, data, sinv);
    if (scaling !== 0) this.dev.release(deq);
    return out;
  }

  /** The values of an FP8 operand as BF16 (`bf16`) and/or FP32 (`f32`) device buffers (either 0n). */
  dequantize(op: CudaOperand, bf16: bigint, f32: bigint): void {
    const n = op.rows * op.cols;
    this.dev.launch(FAST, "fp8_dequantize", grid1(n, 256, 8192), B256, 0, [
      ptr(op.ptr), i32(op.rows), i32(op.cols), i32(op.scaleKind === "128x128" ? 2 : 1), i32(op.dtype === "e5m2" ? 1 : 0), ptr(op.scalePtr!), ptr(bf16), ptr(f32),
    ]);
  }

  /** A BF16 operand with the values of an FP8 one (which is released). */
  private toBf16(op: CudaOperand): CudaOperand {
    const o = this.dev.scratch(op.rows * op.cols * 2);
    this.dequantize(op, o, 0n);
    this.dev.release(op.ptr, op.scalePtr!);
    return { rows: op.rows, cols: op.cols, spec: op.spec, ptr: o, dtype: "bf16" };
  }

  /**
   * c (M, N) = A·Bᵀ (+ c) with at least one FP8 operand: on the FP8 tensor cores when cuBLASLt runs
   * the pair, else both dequantized to BF16 and handed to `emulated` (the backend's BF16 GEMM,
   * which consumes them). Consumes the operands.
   */
  gemm(c: bigint, a: CudaOperand, b: CudaOperand, accumulate: boolean, emulated: (a: CudaOperand, b: CudaOperand) => void): void {
    if (isFp8Operand(a) && isFp8Operand(b)) {
      const why = this.emulatedBecause(a.spec, b.spec);
      const key = `${a.rows}x${b.rows}x${a.cols} ${a.dtype} ${a.scaleKind} · ${b.dtype} ${b.scaleKind}`;
      if (!why && !this.refused.has(key)) {
        try {
          this.dev.timed(`gemm fp8 ${a.rows}x${b.rows}x${a.cols}`, () => gemmRowMajorTN(this.dev.lt, {
            M: a.rows, N: b.rows, K: a.cols, A: a.ptr, B: b.ptr, D: c,
            typeA: a.dtype === "e5m2" ? CUDA_R_8F_E5M2 : CUDA_R_8F_E4M3, typeB: b.dtype === "e5m2" ? CUDA_R_8F_E5M2 : CUDA_R_8F_E4M3, typeD: CUDA_R_32F,
            alpha: 1, beta: accumulate ? 1 : 0, aScale: a.scalePtr, bScale: b.scalePtr, blockScaling: { a: a.scaleKind!, b: b.scaleKind! },
            workspace: this.dev.workspace, workspaceBytes: this.dev.workspaceBytes, stream: null,
          }));
          this.counts.tensorCores++;
          this.dev.release(a.ptr, a.scalePtr!, b.ptr, b.scalePtr!);
          return;
        } catch (e) {
          if (!(e instanceof CudaError) || !/no algorithm/.test(e.message)) throw e;
          this.refused.set(key, e.message);
          process.stderr.write(`fp4lm: cuBLASLt refuses the FP8 GEMM ${key}; it runs emulated (dequantized to BF16) from now on: ${e.message.split(". ")[0]}\n`);
        }
      }
      this.counts.fellBack++;
    }
    emulated(isFp8Operand(a) ? this.toBf16(a) : a, isFp8Operand(b) ? this.toBf16(b) : b);
  }
}
