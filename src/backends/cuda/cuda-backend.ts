/**
 * The CUDA backend: the backend contract on an NVIDIA GPU, through the driver API, NVRTC and
 * cuBLASLt (driver.ts, nvrtc.ts, cublaslt.ts). Kernels are the `.cu` files in kernels/, compiled
 * at first use for the GPU found and cached on disk. GEMM operands are quantize-dequantized by the
 * byte-exact twins of the CPU quantizers (kernels/quantize.cu) into BF16 (exact for every FP4
 * and FP8 format), then multiplied by cuBLASLt with FP32 accumulation, the per-tensor NVFP4 scales
 * folded into alpha: the CPU oracle's arithmetic up to summation order.
 * This first version keeps activations in FP32 and reads small results (amax, loss, error flags)
 * back synchronously: correctness first; BF16 activations, device-side alpha and CUDA graphs are
 * the next steps (see BENCHMARKS.md). Everything runs on one stream, in order.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkAddend, type Backend, type Operand, type SsdDims, type Tensor, type Tokens } from "../backend.ts";
import type { AdamWConfig } from "../../optim/adamw.ts";
import { pairable, transposeInvariant, type OperandSpec } from "../../recipes/operand.ts";
import { mixIds, rhtSigns, type OperandStream } from "../../recipes/quantize-operand.ts";
import { statsFromSums, type QuantStats } from "../../recipes/operand-stats.ts";

import { checkMultiple, nonFiniteError } from "../../quant/tensor-checks.ts";
import { ropeTable } from "../cpu/ops/rope.ts";
import { fromBf16Bits } from "../../formats/bf16.ts";
import { deviceAllocator, type CachingAllocator } from "./allocator.ts";
import { CublasLt, CUDA_R_16BF, CUDA_R_32F, gemmRowMajorTN } from "./cublaslt.ts";
import { getDriver, type CuEvent, type CuFunction, type CuModule, type Dim3, type Driver, type KernelArg } from "./driver.ts";
import { kernelsDir, loadModule } from "./nvrtc.ts";
import { CudaMamba2 } from "./mamba2.ts";
import { CudaFp8, isFp8Operand, type Fp8GemmMode } from "./fp8.ts";

export class CudaTensor implements Tensor {
  readonly size: number;
  constructor(readonly shape: readonly number[], readonly ptr: bigint) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }
}

export class CudaTokens implements Tokens {
  readonly size: number;
  /** the smallest and largest id: the vocabulary checks run on the host, with no synchronisation */
  readonly min: number;
  readonly max: number;
  /** ids: the host array the device buffer was written from (the first bad position is searched there; not copied) */
  constructor(readonly shape: readonly number[], readonly ptr: bigint, private readonly ids: Int32Array) {
    this.size = shape.reduce((a, b) => a * b, 1);
    let min = 0, max = -1;
    if (ids.length) min = max = ids[0];
    for (let i = 1; i < ids.length; i++) {
      const v = ids[i];
      if (v < min) min = v;
      else if (v > max) max = v;
    }
    this.min = min;
    this.max = max;
  }

  /** Throw, naming `what`, the first id outside [0, V) and its position, if there is one. */
  check(what: string, V: number): void {
    if (this.min >= 0 && this.max < V) return;
    const at = this.ids.findIndex((v) => v < 0 || v >= V);
    if (at < 0) throw new RangeError(`${what}: token ids span [${this.min}, ${this.max}], outside the vocabulary [0, ${V}) (the host array was changed after the upload, so the position is unknown)`);
    throw new RangeError(`${what}: token id ${this.ids[at]} at position ${at} is outside the vocabulary [0, ${V}); check the tokenizer's vocabulary size against the model's V`);
  }
}

/**
 * A quantize-dequantized operand on the device: (rows, cols), BF16 or FP32, K-contiguous, or, with
 * `transposed`, stored as its transpose ((cols, rows) row-major: a BF16/FP32 cast of xᵀ is x's cast,
 * and cuBLASLt reads it with a transpose op instead of a transposed copy being written).
 */
export interface CudaOperand extends Operand {
  ptr: bigint;
  /** e4m3 / e5m2: an FP8 operand kept for the tensor cores (fp8.ts): bytes (rows, cols) + block scales */
  dtype: "bf16" | "f32" | "e4m3" | "e5m2";
  transposed?: boolean;
  /** FP8: device pointer to the FP32 decode scales in cuBLASLt's layout (cublaslt.ts blockScaleLayout) */
  scalePtr?: bigint;
  scaleKind?: "1x128" | "128x128";
  /** NVFP4 tensor amax (folded into the GEMM alpha); read back only by quantizeBytes */
  amax?: number;
  /** NVFP4: device pointer to the amax bits, for the alpha applied on the device */
  amaxPtr?: bigint;
  /** handles to the same storage (shareOperand): it is freed when the last one is consumed */
  shared?: { refs: number };
  /** quantizePair: the two operands' amaxes live in one 8-byte block (base), freed with the second */
  pairAmax?: { refs: number; base: bigint };
  /** a bf16Operand no op has filled yet: its name (for the non-finite check the filling op runs) */
  pending?: string;
}

/** Everything one quantized operand produced, for byte-level parity tests. */
export interface QuantizedBytes {
  operand: CudaOperand;
  packed?: Uint8Array;
  scales?: Uint8Array;
  scaleInv?: Float32Array;
  amax?: number;
}

const INT_MAX = 0x7fffffff;
/** fl(1/(6·6·448·448)), the constant of nvfp4GemmAlpha */
const INV_ALPHA = Math.fround(1 / (6 * 6 * 448 * 448));
const ptr = (value: bigint): KernelArg => ({ kind: "ptr", value });
const i32 = (value: number): KernelArg => ({ kind: "i32", value });
const u32 = (value: number): KernelArg => ({ kind: "u32", value: value >>> 0 });
const i64 = (value: number): KernelArg => ({ kind: "u64", value: BigInt(value) });
const f32 = (value: number): KernelArg => ({ kind: "f32", value });
/** A quantize kernel's RHT arguments: the size (0: none), then rhtSigns' 128 signs as four int32 masks (bit set = −1). */
function rhtKernelArgs(spec: OperandSpec, stream: OperandStream): KernelArg[] {
  const mask = [0, 0, 0, 0];
  (spec.rht ? rhtSigns(spec.rht, stream) : []).forEach((s, i) => { if (s === -1) mask[i >>> 5] |= 1 << (i & 31); });
  return [i32(spec.rht?.size ?? 0), ...mask.map((m) => i32(m | 0))];
}
/** A quantize kernel's stochastic-rounding arguments: SR on/off, the seed's low and high words, the stream's tensor id. */
function seedKernelArgs(spec: OperandSpec, stream: OperandStream): KernelArg[] {
  return [i32(spec.rounding === "sr" ? 1 : 0), u32(stream.seed >>> 0), u32(Math.floor(stream.seed / 2 ** 32) >>> 0), u32(mixIds(stream.gemmId, stream.slot + 1))];
}
const grid1 = (n: number, per = 256, cap = 65535): Dim3 => [Math.max(1, Math.min(Math.ceil(n / per), cap)), 1, 1];
const B256: Dim3 = [256, 1, 1];

export interface CudaBackendOptions {
  device?: number;
  /**
   * The attention core for head size 64: "bf16" (default) runs FlashAttention-2 on the tensor
   * cores (BF16 operands, FP32 softmax and accumulation: attention-mma.cu); "fp32" the exact
   * CUDA-core twin (attention-flash.cu). Environment: FP4LM_ATTENTION=bf16|fp32.
   */
  attention?: "bf16" | "fp32";
  /**
   * The NVFP4 quantizer kernels: "fast" (default; quantize-fast.cu: 16-byte loads, whole blocks per
   * thread, RHT16 in registers, and the GEMM alpha read by cuBLASLt from device memory) or "plain"
   * (quantize.cu's shared-memory tiles and the separate alpha kernel: the twin the fast path is
   * compared with). The bytes are the same. Environment: FP4LM_QUANT_KERNELS=fast|plain.
   */
  quantKernels?: QuantKernels;
  /**
   * The non-GEMM op kernels: "fast" (default: multi-tensor AdamW and Σg², vectorised elementwise,
   * RMSNorm backward, cross-entropy, fused split+RoPE, the cp.async/ldmatrix attention) or "plain"
   * (the previous one-tensor-per-launch, one-element-per-thread kernels: the twins the fast ones are
   * compared with). Environment: FP4LM_OPS_KERNELS=fast|plain.
   */
  opsKernels?: OpsKernels;
  /**
   * The fp8 recipe's GEMMs: "tensor-cores" (default; block-scaled E4M3 on Hopper's FP8 tensor cores
   * through cuBLASLt, fp8.ts) or "emulated" (operands dequantized to BF16, BF16 GEMM: the CPU
   * oracle's path). Environment: FP4LM_FP8_GEMM=tensor-cores|emulated.
   */
  fp8Gemm?: Fp8GemmMode;
  /**
   * Whether the ops that write a BF16 GEMM operand's tensor write the operand too (bf16Operand;
   * default true with the fast kernels): false casts every operand in quantize, with the same bits
   * (for A/B timing and the GPU test that compares the two). Environment: FP4LM_BF16_OPERANDS=0.
   */
  bf16Operands?: boolean;
  /**
   * Whether an NVFP4 operand with 16x16 tiles (RTN, no RHT: the recipe's weights) serves the other
   * orientation too (shareOperand: Fprop's W read transposed as Dgrad's Wᵀ, the same values; default
   * true): false quantizes Wᵀ again. Environment: FP4LM_SHARE_TILES=0.
   */
  shareTiles?: boolean;
  /**
   * Whether quantizePair makes an NVFP4 1x16 pair (Dgrad dY, Wgrad dYᵀ) in one read of the tensor
   * (nvfp4_dual_* kernels, the same bytes; default true): false quantizes twice. Environment:
   * FP4LM_PAIR_QUANT=0.
   */
  pairQuant?: boolean;
  /**
   * Whether the shared-memory cross-entropy runs a persistent grid (as many blocks as fit on the GPU
   * at once, each taking every G-th row and queueing its next row's copy during this row's dlogits
   * pass; default true) or one block per row (false). The bits are the same. Environment:
   * FP4LM_CE_PERSISTENT=0.
   */
  cePersistent?: boolean;
}

export type OpsKernels = "fast" | "plain";

export type QuantKernels = "fast" | "plain";

export class CudaBackend implements Backend<CudaTensor, CudaTokens, CudaOperand> {
  readonly name: string;
  private readonly drv: Driver;
  private readonly mem: CachingAllocator;
  private readonly lt: CublasLt;
  private readonly modules = new Map<string, CuModule>();
  private readonly fns = new Map<string, CuFunction>();
  private readonly ropeTables = new Map<string, { cos: bigint; sin: bigint }>();
  private readonly workspace: bigint;
  private readonly workspaceBytes = 32 << 20;
  private readonly owned = new Set<bigint>();
  /**
   * deferred non-finite checks: one 64-bit device slot per checked tensor, (first bad index << 32 |
   * its fp32 bits) or all ones, filled by the kernel that reads the tensor anyway (nonfinite.cuh)
   */
  private readonly checks: { name: string; rows: number; cols: number }[] = [];
  private readonly checkCapacity = 8192;
  private readonly checkSlots: bigint;
  /** FP4LM_CUDA_SYNC=1: check every tensor at once (slower; for debugging) */
  private readonly eagerChecks = process.env.FP4LM_CUDA_SYNC === "1";

  private readonly attentionMode: "bf16" | "fp32";
  private quantKernels: QuantKernels;
  private readonly opsKernels: OpsKernels;
  private readonly bf16Operands: boolean;
  private readonly shareTiles: boolean;
  private readonly pairQuant: boolean;
  private readonly cePersistent: boolean;
  private readonly smCount: number;
  /** blocks per SM of a kernel at a dynamic shared size (cuOccupancyMaxActiveBlocksPerMultiprocessor), by "name/bytes" */
  private readonly occupancy = new Map<string, number>();
  /** multi-tensor tables on the device (optim.cu's MtTensor rows), by the parameter list's pointers */
  private readonly mtTables = new Map<string, { ptr: bigint; count: number; blocks: number }>();
  /** device FP32 [alpha, 0, 1]: the NVFP4 GEMM's alpha (written per GEMM on the stream) and the two betas */
  private readonly gemmScalars: bigint;

  constructor(opts: CudaBackendOptions = {}) {
    const mode = opts.attention ?? process.env.FP4LM_ATTENTION ?? "bf16";
    if (mode !== "bf16" && mode !== "fp32") throw new RangeError(`FP4LM_ATTENTION must be bf16 or fp32, got ${JSON.stringify(mode)}`);
    this.attentionMode = mode;
    const qk = opts.quantKernels ?? process.env.FP4LM_QUANT_KERNELS ?? "fast";
    if (qk !== "fast" && qk !== "plain") throw new RangeError(`FP4LM_QUANT_KERNELS must be fast or plain, got ${JSON.stringify(qk)}`);
    this.quantKernels = qk;
    const ok = opts.opsKernels ?? process.env.FP4LM_OPS_KERNELS ?? "fast";
    if (ok !== "fast" && ok !== "plain") throw new RangeError(`FP4LM_OPS_KERNELS must be fast or plain, got ${JSON.stringify(ok)}`);
    this.opsKernels = ok;
    this.bf16Operands = opts.bf16Operands ?? process.env.FP4LM_BF16_OPERANDS !== "0";
    this.shareTiles = opts.shareTiles ?? process.env.FP4LM_SHARE_TILES !== "0";
    this.pairQuant = opts.pairQuant ?? process.env.FP4LM_PAIR_QUANT !== "0";
    this.cePersistent = opts.cePersistent ?? process.env.FP4LM_CE_PERSISTENT !== "0";
    this.drv = getDriver();
    const info = this.drv.useDevice(opts.device ?? 0);
    this.smCount = this.drv.multiprocessorCount(opts.device ?? 0);
    this.name = `cuda:${opts.device ?? 0} (${info.name})`;
    this.mem = deviceAllocator();
    this.lt = CublasLt.create();
    this.workspace = this.mem.alloc(this.workspaceBytes);
    this.checkSlots = this.mem.alloc(this.checkCapacity * 8);
    this.drv.memsetD32(this.checkSlots, 0xffffffff, this.checkCapacity * 2);
    this.gemmScalars = this.mem.alloc(16);
    this.drv.memcpyHtoD(this.gemmScalars, new Float32Array([1, 0, 1, 0]), 16);
    this.fp8 = new CudaFp8({
      drv: this.drv, lt: this.lt, workspace: this.workspace, workspaceBytes: this.workspaceBytes, ccMajor: info.major,
      quantKernels: () => this.quantKernels,
      launch: (...a) => this.launch(...a), timed: (name, run) => this.timed(name, run), scratch: (n) => this.scratch(n), release: (...p) => this.release(...p),
    }, opts.fp8Gemm);
  }

  /** the fp8 recipe's operands and GEMMs (fp8.ts): FP8 tensor cores or emulated */
  readonly fp8: CudaFp8;

  /** Which NVFP4 quantizer kernels run from now on (tests compare the two). */
  setQuantKernels(mode: QuantKernels): void {
    this.quantKernels = mode;
  }

  get quantKernelMode(): QuantKernels {
    return this.quantKernels;
  }

  /**
   * Whether an NVFP4 operand of x (rows, cols), or xᵀ, runs the fast kernels, and if not why: they
   * need an RHT of at most 16 (its butterflies stay in one thread); the caller's shape checks
   * (C % 16, tiles) come first.
   */
  nvfp4KernelPath(spec: OperandSpec, rows: number, cols: number, transpose: boolean): { fast: boolean; reason: string } {
    if (this.quantKernels === "plain") return { fast: false, reason: "FP4LM_QUANT_KERNELS=plain" };
    if (spec.rht && spec.rht.size > 16) return { fast: false, reason: `RHT size ${spec.rht.size} > 16 (cross-thread butterflies)` };
    return { fast: true, reason: transpose ? "column kernel" : "row kernel" };
  }

  // --- kernels ---------------------------------------------------------------------------

  private fn(file: string, name: string): CuFunction {
    const key = `${file}:${name}`;
    let f = this.fns.get(key);
    if (f) return f;
    let mod = this.modules.get(file);
    if (!mod) {
      const src = readFileSync(join(kernelsDir(), file), "utf8");
      // the quantizers must round exactly as the CPU twins: no FMA contraction there
      mod = loadModule(src, file, { fmad: file === "quantize.cu" || file === "quantize-fast.cu" || file === "quantize-fp8-fast.cu" ? false : undefined }).module;
      this.modules.set(file, mod);
    }
    f = this.drv.getFunction(mod, name);
    this.fns.set(key, f);
    return f;
  }

  /** A persistent grid for `items` work items: as many blocks as fit on the GPU at once (never more than the items). */
  private persistentGrid(file: string, name: string, block: number, shared: number, items: number): number {
    const key = `${name}/${block}/${shared}`;
    let perSM = this.occupancy.get(key);
    if (perSM === undefined) {
      perSM = this.drv.maxActiveBlocksPerSM(this.fnShared(file, name, shared), block, shared);
      if (perSM < 1) throw new Error(`${name}: no block of ${block} threads with ${shared} B of shared memory fits on an SM`);
      this.occupancy.set(key, perSM);
    }
    return Math.min(items, perSM * this.smCount);
  }

  /** The kernel, opted in to `shared` bytes of dynamic shared memory above 48 KB (set once per kernel and size, not per launch). */
  private fnShared(file: string, name: string, shared: number): CuFunction {
    const f = this.fn(file, name);
    if (shared > 48 * 1024) {
      const key = `${file}/${name}`;
      if ((this.sharedOptIn.get(key) ?? 0) < shared) {
        this.drv.setMaxDynamicSharedMemory(f, shared);
        this.sharedOptIn.set(key, shared);
      }
    }
    return f;
  }
  /** the largest dynamic shared size each kernel was opted in to, by "file/name" */
  private readonly sharedOptIn = new Map<string, number>();

  private launch(file: string, name: string, grid: Dim3, block: Dim3, shared: number, args: KernelArg[]): void {
    const f = this.fnShared(file, name, shared);
    this.timed(name, () => this.drv.launch(f, grid, block, shared, null, args));
  }

  // --- profiling (FP4LM_PROFILE=1 or profile(true)): CUDA events around every kernel and GEMM ---

  private profiling = process.env.FP4LM_PROFILE === "1";
  private readonly marks: { name: string; start: CuEvent; end: CuEvent }[] = [];
  /** kernels, GEMMs, memsets and copies queued so far: tells whether anything ran between two ops */
  private opSeq = 0;
  private readonly eventPool: CuEvent[] = [];

  private timed(name: string, run: () => void): void {
    this.opSeq++;
    if (!this.profiling) return run();
    const ev = () => this.eventPool.pop() ?? this.drv.eventCreate();
    const start = ev(), end = ev();
    this.drv.eventRecord(start, null);
    run();
    this.drv.eventRecord(end, null);
    this.marks.push({ name, start, end });
  }

  /** Turn per-kernel timing on or off. */
  profile(on: boolean): void {
    this.profiling = on;
  }

  /** Device time per kernel name since the last report (waits for the GPU), most expensive first. */
  profileReport(): { name: string; count: number; ms: number }[] {
    this.drv.ctxSynchronize();
    const by = new Map<string, { count: number; ms: number }>(), idle = new Map<string, { count: number; ms: number }>();
    const marks = this.marks.splice(0);
    marks.forEach((m, i) => {
      const e = by.get(m.name) ?? { count: 0, ms: 0 };
      e.count++;
      e.ms += this.drv.eventElapsedMs(m.start, m.end);
      by.set(m.name, e);
      if (i > 0) {
        // the GPU's time between the previous op's end and this one's start: waiting for the host
        const gap = this.drv.eventElapsedMs(marks[i - 1].end, m.start), g = idle.get(m.name) ?? { count: 0, ms: 0 };
        g.count++;
        g.ms += Math.max(0, gap);
        idle.set(m.name, g);
      }
    });
    for (const m of marks) this.eventPool.push(m.start, m.end);
    this.lastIdle = [...idle].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
    return [...by].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
  }

  /**
   * The idle time of the last profileReport's ops, by the op that ran after the gap, most first: where
   * the GPU waited for the host (a synchronisation, or launches slower than the kernels). The events
   * themselves add host work per op, so these are upper bounds.
   */
  profileIdle(): { name: string; count: number; ms: number }[] {
    return this.lastIdle;
  }
  private lastIdle: { name: string; count: number; ms: number }[] = [];

  // --- memory ----------------------------------------------------------------------------

  private scratch(bytes: number): bigint {
    return this.mem.alloc(Math.max(bytes, 4));
  }

  private release(...ptrs: bigint[]): void {
    for (const p of ptrs) this.mem.free(p);
  }

  private readU32AsF32(p: bigint): number {
    const a = new Float32Array(1);
    this.drv.memcpyDtoH(a, p, 4);
    return a[0];
  }

  private readDouble(p: bigint): number {
    const a = new Float64Array(1);
    this.drv.memcpyDtoH(a, p, 8);
    return a[0];
  }

  alloc(shape: number[]): CudaTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const p = this.mem.alloc(Math.max(n * 4, 4));
    this.owned.add(p);
    if (n > 0) this.drv.memsetD32(p, 0, n);
    return new CudaTensor([...shape], p);
  }

  fromArray(data: Float32Array, shape: number[]): CudaTensor {
    const t = this.alloc(shape);
    if (data.length !== t.size) throw new RangeError(`fromArray: ${data.length} values for shape [${shape.join(", ")}]`);
    if (data.length) this.drv.memcpyHtoD(t.ptr, data, data.byteLength);
    return t;
  }

  toArray(t: CudaTensor): Float32Array {
    const out = new Float32Array(t.size);
    if (t.size) this.drv.memcpyDtoH(out, t.ptr, out.byteLength);
    return out;
  }

  tokens(ids: Int32Array, shape: number[]): CudaTokens {
    const n = shape.reduce((a, b) => a * b, 1);
    if (ids.length !== n) throw new RangeError(`tokens: ${ids.length} ids for shape [${shape.join(", ")}]`);
    // token tensors are per batch: reuse one buffer per shape would race nothing (one stream), but
    // callers create two per step; they are freed when the next batch of the same size arrives
    const p = this.mem.alloc(Math.max(n * 4, 4));
    // queued on the stream (pageable memory is staged before the call returns): no wait for the work
    // already queued, so the host stays ahead of the GPU across steps
    this.drv.memcpyHtoDAsync(p, ids, ids.byteLength, null);
    this.pendingTokens.push(p);
    if (this.pendingTokens.length > 8) this.release(this.pendingTokens.shift()!);
    return new CudaTokens([...shape], p, ids);
  }
  private readonly pendingTokens: bigint[] = [];

  zero(t: CudaTensor): void {
    this.opSeq++;
    if (t.size) this.drv.memsetD32(t.ptr, 0, t.size);
  }

  copy(dst: CudaTensor, src: CudaTensor): void {
    if (dst.size !== src.size) throw new RangeError(`copy: ${src.size} elements into ${dst.size}`);
    this.opSeq++;
    if (src.size) this.drv.memcpyDtoD(dst.ptr, src.ptr, src.size * 4);
  }

  // --- quantized GEMM operands -------------------------------------------------------------

  /**
   * A slot for the non-finite check of a (rows, cols) tensor named `name`: the caller passes it to
   * the kernel that reads the tensor (amax, cast, or checks.cu's scan where nothing else reads it), then
   * calls `checked()`. `flushChecks` (once per step, where the loss or the gradient norm is read
   * anyway) raises the CPU's NonFiniteError for the first tensor that had NaN/Inf.
   */
  private checkSlot(rows: number, cols: number, name: string): bigint {
    const n = rows * cols;
    if (n >= INT_MAX) throw new RangeError(`${name}: ${n} elements; the non-finite check indexes with int32`);
    if (this.checks.length === this.checkCapacity) this.flushChecks();
    const slot = this.checkSlots + BigInt(this.checks.length) * 8n;
    this.checks.push({ name, rows, cols });
    return slot;
  }

  /** After the kernel holding a check slot was queued: FP4LM_CUDA_SYNC=1 reads it at once. */
  private checked(): void {
    if (this.eagerChecks) this.flushChecks();
  }

  /** Read the queued non-finite checks (one synchronisation) and throw for the first bad tensor. */
  flushChecks(): void {
    const k = this.checks.length;
    if (k === 0) return;
    const slots = new BigUint64Array(k);
    this.drv.memcpyDtoH(slots, this.checkSlots, k * 8);
    this.drv.memsetD32(this.checkSlots, 0xffffffff, k * 2);
    const pending = this.checks.splice(0, k);
    const bad = slots.findIndex((v) => v !== 0xffffffffffffffffn);
    if (bad >= 0) {
      const c = pending[bad], v = slots[bad];
      const value = new Float32Array(new Uint32Array([Number(v & 0xffffffffn)]).buffer)[0];
      throw nonFiniteError(c.name, [c.rows, c.cols], Number(v >> 32n), value);
    }
  }

  /** Cast x (or xᵀ, through coalesced 32x32 tiles) into an operand buffer. */
  private castOperand(kernel: "cast_f32_f32" | "cast_bf16_f32", x: CudaTensor, rows: number, cols: number, transpose: boolean, out: bigint, slot: bigint): void {
    const n = rows * cols;
    if (transpose && Math.ceil(rows / 32) <= 65535) this.launch("cast.cu", `${kernel}_t`, [Math.ceil(cols / 32), Math.ceil(rows / 32), 1], [32, 8, 1], 0, [ptr(x.ptr), i32(rows), i32(cols), ptr(out), ptr(slot)]);
    else if (!transpose && kernel === "cast_bf16_f32" && n % 4 === 0) this.launch("cast.cu", "cast_bf16_f32_v4", grid1(n / 4, 256, 8192), B256, 0, [ptr(x.ptr), i64(n / 4), ptr(out), ptr(slot)]);
    else this.launch("cast.cu", kernel, grid1(n), B256, 0, [ptr(x.ptr), i32(rows), i32(cols), i32(transpose ? 1 : 0), ptr(out), ptr(slot)]);
  }

  /** FP4LM_CUDA_TRANSPOSED_COPIES=1: write transposed BF16/FP32 operand copies (the old path; for comparisons) */
  private readonly transposedCopies = process.env.FP4LM_CUDA_TRANSPOSED_COPIES === "1";

  /**
   * Quantize x (rows, cols), or xᵀ, per spec, keeping every byte the kernels wrote (for parity
   * tests); `quantize` is this without the bytes.
   */
  quantizeBytes(x: CudaTensor, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream, name: string, keep = true): QuantizedBytes {
    const slot = this.checkSlot(rows, cols, name);
    // the check rides on the first kernel that reads x; parity callers (keep) see the error first
    const checked = () => { this.checked(); if (keep) this.flushChecks(); };
    const [R, C] = transpose ? [cols, rows] : [rows, cols];
    const n = R * C;
    const shape: [number, number] = [R, C];
    const tiled: Dim3 = [Math.ceil(C / 128), Math.min(Math.ceil(R / 32), 65535), 1];
    const rhtArgs = rhtKernelArgs(spec, stream), seedArgs = seedKernelArgs(spec, stream);
    const out: QuantizedBytes = { operand: { rows: R, cols: C, spec, ptr: 0n, dtype: "bf16" } };
    const bytes = (p: bigint, len: number) => {
      const a = new Uint8Array(len);
      if (len) this.drv.memcpyDtoH(a, p, len);
      return a;
    };
    switch (spec.format) {
      case "fp32": {
        const o = this.scratch(n * 4);
        const lazy = transpose && !this.transposedCopies;
        this.castOperand("cast_f32_f32", x, rows, cols, transpose && !lazy, o, slot);
        checked();
        out.operand = { rows: R, cols: C, spec, ptr: o, dtype: "f32", transposed: lazy };
        return out;
      }
      case "bf16": {
        const o = this.scratch(n * 2);
        const lazy = transpose && !this.transposedCopies;
        this.castOperand("cast_bf16_f32", x, rows, cols, transpose && !lazy, o, slot);
        checked();
        out.operand.ptr = o;
        out.operand.transposed = lazy;
        return out;
      }
      case "nvfp4": {
        checkMultiple(name, "NVFP4", shape, 1, 16, "one E4M3 scale per 16 consecutive values");
        if (spec.block === "16x16") checkMultiple(name, "NVFP4 with 16x16 tiles", shape, 0, 16, "one scale per 16x16 tile");
        if (spec.rht) checkMultiple(name, `an RHT of size ${spec.rht.size}`, shape, 1, spec.rht.size, "the transform mixes groups along the last dimension");
        const amax = this.scratch(4);
        this.drv.memsetD32(amax, 0, 1);
        const tile2d = i32(spec.block === "16x16" ? 1 : 0);
        const fast = this.nvfp4KernelPath(spec, rows, cols, transpose).fast && (x.ptr & 15n) === 0n;
        // the fast kernels skip the codes and scales where no caller reads them (quantize: only the GEMM operand is kept)
        const packed = fast && !keep ? 0n : this.scratch(n / 2), scales = fast && !keep ? 0n : this.scratch(n / 16), o = this.scratch(n * 2);
        if (fast) {
          // quantize-fast.cu: one amax pass (16-byte loads; post-RHT amax in the quantize kernel's layout), one quantize pass
          const [kind, grid, block]: ["rows" | "cols", Dim3, Dim3] = transpose
            ? ["cols", [Math.ceil(rows / 64) * Math.ceil(cols / 64), 1, 1], B256]
            : ["rows", [Math.ceil(R / 16) * Math.ceil(C / 256), 1, 1], B256];
          if (spec.rht) {
            this.launch("quantize-fast.cu", `nvfp4_rht_amax_${kind}_f32`, grid, block, 0, [ptr(x.ptr), i32(rows), i32(cols), ...rhtArgs, ptr(amax), ptr(slot)]);
          } else {
            this.launch("quantize-fast.cu", "amax_v4_f32", grid1(n / 4, 1024, 2048), B256, 0, [ptr(x.ptr), i64(n / 4), ptr(amax), ptr(slot)]);
          }
          checked();
          this.launch("quantize-fast.cu", `nvfp4_quantize_${kind}_f32`, grid, block, 0, [
            ptr(x.ptr), i32(rows), i32(cols), tile2d, ...rhtArgs, ...seedArgs, ptr(amax), ptr(packed), ptr(scales), ptr(0n), ptr(o),
          ]);
        } else {
          if (spec.rht) {
            this.launch("quantize.cu", "rht_amax_f32", tiled, B256, 0, [ptr(x.ptr), i32(rows), i32(cols), i32(transpose ? 1 : 0), ...rhtArgs, ptr(amax), ptr(slot)]);
          } else {
            this.launch("quantize.cu", "amax_f32", grid1(n, 256, 4096), B256, 0, [ptr(x.ptr), i64(n), ptr(amax), ptr(slot)]);
          }
          checked();
          this.launch("quantize.cu", "nvfp4_quantize_f32", tiled, B256, 0, [
            ptr(x.ptr), i32(rows), i32(cols), i32(transpose ? 1 : 0), tile2d, ...rhtArgs, ...seedArgs,
            ptr(amax), ptr(packed), ptr(scales), ptr(0n), ptr(o),
          ]);
        }
        out.operand = { rows: R, cols: C, spec, ptr: o, dtype: "bf16", amaxPtr: amax };
        if (keep) {
          out.amax = out.operand.amax = this.readU32AsF32(amax);
          out.packed = bytes(packed, n / 2);
          out.scales = bytes(scales, n / 16);
        }
        if (packed) this.release(packed, scales);
        return out;
      }
      case "mxfp4": {
        checkMultiple(name, "MXFP4", shape, 1, 32, "one UE8M0 scale per 32 consecutive values");
        if (spec.rht) checkMultiple(name, `an RHT of size ${spec.rht.size}`, shape, 1, spec.rht.size, "the transform mixes groups along the last dimension");
        this.launch("checks.cu", "nonfinite_slot_f32", grid1(n, 256, 4096), B256, 0, [ptr(x.ptr), i64(n), ptr(slot)]);
        checked();
        const packed = this.scratch(n / 2), scales = this.scratch(n / 32), o = this.scratch(n * 2);
        this.launch("quantize.cu", "mxfp4_quantize_f32", tiled, B256, 0, [
          ptr(x.ptr), i32(rows), i32(cols), i32(transpose ? 1 : 0), i32(spec.mxScale === "rceil" ? 1 : 0), ...rhtArgs, ...seedArgs,
          ptr(packed), ptr(scales), ptr(0n), ptr(o),
        ]);
        out.operand.ptr = o;
        if (keep) { out.packed = bytes(packed, n / 2); out.scales = bytes(scales, n / 32); }
        this.release(packed, scales);
        return out;
      }
      case "fp8":
        // fp8.ts: the one-pass kernels (quantize-fp8-fast.cu) or the plain twins; FP8 bytes kept for the tensor cores or a BF16 operand
        return this.fp8.quantize(x.ptr, rows, cols, spec, transpose, slot, keep, checked);
    }
  }

  quantize(x: CudaTensor, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream, name: string): CudaOperand {
    return this.quantizeBytes(x, rows, cols, spec, transpose, stream, name, false).operand;
  }

  /**
   * Both operands of x from one read (see the contract): NVFP4 1x16 for x without RHT and for xᵀ with
   * RHT ≤ 16 (operand.ts pairable) through nvfp4_dual_amax_f32 + nvfp4_dual_quantize_f32, the single
   * kernels' bytes; shapes or pointers outside their domain (and FP4LM_PAIR_QUANT=0,
   * FP4LM_QUANT_KERNELS=plain) as two quantize calls.
   */
  quantizePair(x: CudaTensor, rows: number, cols: number, specA: OperandSpec, specB: OperandSpec, streamA: OperandStream, streamB: OperandStream, nameA: string, nameB: string): [CudaOperand, CudaOperand] | null {
    if (!pairable(specA, specB)) return null;
    const dual = this.pairQuant && this.quantKernels === "fast" && rows % 16 === 0 && cols % 16 === 0 && (x.ptr & 15n) === 0n && rows > 0 && cols > 0;
    if (!dual) return [this.quantize(x, rows, cols, specA, false, streamA, nameA), this.quantize(x, rows, cols, specB, true, streamB, nameB)];
    const n = rows * cols;
    const slot = this.checkSlot(rows, cols, nameA);
    const amax = this.scratch(8);
    this.drv.memsetD32(amax, 0, 2);
    const rhtArgs = rhtKernelArgs(specB, streamB);
    const grid: Dim3 = [Math.ceil(rows / 64) * Math.ceil(cols / 64), 1, 1];
    this.launch("quantize-fast.cu", "nvfp4_dual_amax_f32", grid, B256, 0, [ptr(x.ptr), i32(rows), i32(cols), ...rhtArgs, ptr(amax), ptr(amax + 4n), ptr(slot)]);
    this.checked();
    const oa = this.scratch(n * 2), ob = this.scratch(n * 2);
    this.launch("quantize-fast.cu", "nvfp4_dual_quantize_f32", grid, B256, 0, [
      ptr(x.ptr), i32(rows), i32(cols), ...rhtArgs, ...seedKernelArgs(specA, streamA), ...seedKernelArgs(specB, streamB), ptr(amax), ptr(amax + 4n),
      ptr(0n), ptr(0n), ptr(oa), ptr(0n), ptr(0n), ptr(ob),
    ]);
    // the two operands share the amax block (8 bytes): the first consumed leaves it to the other
    const shared = { refs: 2, base: amax };
    return [
      { rows, cols, spec: specA, ptr: oa, dtype: "bf16", amaxPtr: amax, pairAmax: shared },
      { rows: cols, cols: rows, spec: specB, ptr: ob, dtype: "bf16", amaxPtr: amax + 4n, pairAmax: shared },
    ];
  }

  /** An operand's values as fp32 on the host (tests). */
  operandValues(op: CudaOperand): Float32Array {
    const n = op.rows * op.cols;
    let stored: Float32Array;
    if (isFp8Operand(op)) {
      const t = this.scratch(n * 4);
      this.fp8.dequantize(op, 0n, t);
      stored = new Float32Array(n);
      this.drv.memcpyDtoH(stored, t, n * 4);
      this.release(t);
    } else if (op.dtype === "f32") {
      stored = new Float32Array(n);
      this.drv.memcpyDtoH(stored, op.ptr, n * 4);
    } else {
      const bits = new Uint16Array(n);
      this.drv.memcpyDtoH(bits, op.ptr, n * 2);
      stored = fromBf16Bits(bits);
    }
    if (!op.transposed) return stored;
    const out = new Float32Array(n); // stored (cols, rows) → (rows, cols)
    for (let r = 0; r < op.rows; r++) for (let c = 0; c < op.cols; c++) out[r * op.cols + c] = stored[c * op.rows + r];
    return out;
  }

  /**
   * Another handle to a BF16/FP32 operand's storage, or an NVFP4 16x16-tiled one's (its BF16 values
   * and its amax, which the GEMM's alpha reads), read transposed when asked (see the contract).
   */
  shareOperand(op: CudaOperand, transpose: boolean): CudaOperand | null {
    const s = op.spec;
    if (this.opsKernels === "plain" || (op.dtype !== "bf16" && op.dtype !== "f32") || !transposeInvariant(s) || op.scalePtr !== undefined) return null;
    if (s.format === "nvfp4" ? !this.shareTiles || op.amaxPtr === undefined : op.amaxPtr !== undefined) return null;
    op.shared ??= { refs: 1 };
    op.shared.refs++;
    return transpose ? { ...op, rows: op.cols, cols: op.rows, transposed: !op.transposed } : { ...op };
  }

  /**
   * An empty BF16 operand of x (rows, cols) for the op writing x (see the contract); null with
   * FP4LM_OPS_KERNELS=plain or FP4LM_BF16_OPERANDS=0 (every operand cast, as before) and for specs
   * other than bf16 RTN.
   */
  bf16Operand(rows: number, cols: number, spec: OperandSpec, name: string): CudaOperand | null {
    if (this.opsKernels === "plain" || !this.bf16Operands || spec.format !== "bf16" || spec.rounding !== "rtn" || spec.rht) return null;
    return { rows, cols, spec, ptr: this.scratch(rows * cols * 2), dtype: "bf16", pending: name };
  }

  /** the non-finite check slot for filling `op` from a tensor of n elements (its name's); the operand counts as filled from here */
  private fillSlot(op: CudaOperand, n: number, what: string): bigint {
    if (op.pending === undefined) throw new Error(`${what}: its BF16 operand was filled already`);
    if (op.rows * op.cols !== n) throw new RangeError(`${what}: a BF16 operand of ${op.rows}x${op.cols} for ${n} values`);
    const slot = this.checkSlot(op.rows, op.cols, op.pending);
    delete op.pending;
    return slot;
  }

  /** fill `op` from x with the cast kernel: where the op's own kernel cannot write it (shapes, alignment) */
  private castInto(op: CudaOperand | null | undefined, x: CudaTensor, what: string): void {
    if (!op) return;
    const slot = this.fillSlot(op, x.size, what);
    this.castOperand("cast_bf16_f32", x, op.rows, op.cols, false, op.ptr, slot);
    this.checked();
  }

  /** a `_bf16` kernel's FP32 output argument: null where the caller declared it unread (Operand.fp32Unused) */
  private fp32Out(t: CudaTensor, bf16: CudaOperand): KernelArg {
    return ptr(bf16.fp32Unused ? 0n : t.ptr);
  }

  /** the operand's storage as a kernel's BF16 output (8-byte aligned: allocator blocks are) and its check slot */
  private bf16Out(op: CudaOperand, n: number, what: string): KernelArg[] {
    return [ptr(op.ptr), ptr(this.fillSlot(op, n, what))];
  }

  releaseOperand(op: CudaOperand): void {
    if (op.shared && --op.shared.refs > 0) return;
    this.release(op.ptr);
    if (op.pairAmax) {
      if (--op.pairAmax.refs === 0) this.release(op.pairAmax.base);
    } else if (op.amaxPtr !== undefined) this.release(op.amaxPtr);
    if (op.scalePtr !== undefined) this.release(op.scalePtr);
  }

  /**
   * c (M, N) = alpha·A·Bᵀ (+ c); consumes (frees) both operands. NVFP4 operands carry their amax
   * on the device: TE's alpha is computed there (gemm-epilogue.cu) and cuBLASLt reads it from device
   * memory (FP4LM_QUANT_KERNELS=plain: the GEMM runs with alpha 1 and a kernel scales C after it).
   */
  gemm(c: CudaTensor, a: CudaOperand, b: CudaOperand, accumulate: boolean, addend?: CudaTensor | null): void {
    if (a.cols !== b.cols) throw new RangeError(`gemm: operands disagree on K: A is ${a.rows}x${a.cols}, B is ${b.rows}x${b.cols}`);
    if (c.size !== a.rows * b.rows) throw new RangeError(`gemm: C has ${c.size} elements, need ${a.rows}x${b.rows}`);
    checkAddend(c, accumulate, addend);
    for (const o of [a, b]) if (o.pending !== undefined) throw new Error(`gemm: the BF16 operand ${o.pending} was never filled (bf16Operand without its op)`);
    // an addend: BF16/FP32 operands (alpha 1) take it as cuBLASLt's C (D = 1·acc + 1·C rounds the sum once, as
    // accumulate(c, addend) does); NVFP4 (alpha·acc rounds first) and FP8 operands: the GEMM, then the add
    if (addend && (this.opsKernels !== "fast" || a.amaxPtr !== undefined || b.amaxPtr !== undefined || isFp8Operand(a) || isFp8Operand(b))) {
      this.gemm(c, a, b, false);
      this.accumulate(c, addend);
      return;
    }
    // FP8 operands kept for the tensor cores: fp8.ts runs the GEMM there, or dequantizes them and comes back here
    if (isFp8Operand(a) || isFp8Operand(b)) return this.fp8.gemm(c.ptr, a, b, accumulate, (a2, b2) => this.gemm(c, a2, b2, accumulate));
    if (a.dtype !== b.dtype) throw new RangeError(`gemm: operand types differ (${a.dtype} × ${b.dtype})`);
    if ((a.amaxPtr === undefined) !== (b.amaxPtr === undefined)) throw new RangeError("gemm: one NVFP4 operand and one of another format");
    const run = (D: bigint, beta: number, C?: bigint) => this.timed(`gemm ${a.dtype} ${a.rows}x${b.rows}x${a.cols}${C === undefined ? "" : " +C"}`, () => gemmRowMajorTN(this.lt, {
      M: a.rows, N: b.rows, K: a.cols, A: a.ptr, B: b.ptr, C, D, typeA: a.dtype === "bf16" ? CUDA_R_16BF : CUDA_R_32F, typeD: CUDA_R_32F,
      alpha: 1, beta, workspace: this.workspace, workspaceBytes: this.workspaceBytes, stream: null,
      aTransposed: a.transposed ?? false, bTransposed: b.transposed ?? false,
    }));
    if (a.amaxPtr === undefined || b.amaxPtr === undefined) {
      run(c.ptr, accumulate || addend ? 1 : 0, addend?.ptr);
    } else if (this.quantKernels === "fast") {
      // alpha computed on the device into gemmScalars[0]; cuBLASLt reads it (and beta 0 or 1 beside it) when the GEMM runs
      this.launch("gemm-epilogue.cu", "nvfp4_alpha_store", [1, 1, 1], [32, 1, 1], 0, [ptr(this.gemmScalars), ptr(a.amaxPtr), ptr(b.amaxPtr), f32(INV_ALPHA)]);
      this.timed(`gemm ${a.dtype} ${a.rows}x${b.rows}x${a.cols}`, () => gemmRowMajorTN(this.lt, {
        M: a.rows, N: b.rows, K: a.cols, A: a.ptr, B: b.ptr, D: c.ptr, typeA: a.dtype === "bf16" ? CUDA_R_16BF : CUDA_R_32F, typeD: CUDA_R_32F,
        alphaPtr: this.gemmScalars, betaPtr: this.gemmScalars + (accumulate ? 8n : 4n), workspace: this.workspace, workspaceBytes: this.workspaceBytes, stream: null,
        aTransposed: a.transposed ?? false, bTransposed: b.transposed ?? false,
      }));
    } else if (!accumulate) {
      run(c.ptr, 0);
      this.launch("gemm-epilogue.cu", "nvfp4_alpha_scale", grid1(c.size, 256, 8192), B256, 0, [ptr(c.ptr), ptr(a.amaxPtr), ptr(b.amaxPtr), f32(INV_ALPHA), i64(c.size)]);
    } else {
      const t = this.scratch(c.size * 4);
      run(t, 0);
      this.launch("gemm-epilogue.cu", "nvfp4_alpha_axpy", grid1(c.size, 256, 8192), B256, 0, [ptr(c.ptr), ptr(t), ptr(a.amaxPtr), ptr(b.amaxPtr), f32(INV_ALPHA), i64(c.size)]);
      this.release(t);
    }
    this.releaseOperand(a);
    this.releaseOperand(b);
  }

  // --- ops -------------------------------------------------------------------------------

  rmsnormForward(out: CudaTensor, rstd: CudaTensor, x: CudaTensor, w: CudaTensor, N: number, C: number, eps: number, bf16?: CudaOperand | null): void {
    const args = [ptr(out.ptr), ptr(rstd.ptr), ptr(x.ptr), ptr(w.ptr), i32(N), i32(C), f32(eps)];
    // the fast FP32 kernel holds the row in registers (K values per lane, C ≤ 32·K): the same bits; the
    // BF16 one stays the loop kernel (a register twin was slower on the H200: rmsnorm.cu)
    const K = [8, 16, 24, 32].find((k) => C <= 32 * k);
    const suffix = this.opsKernels === "fast" && K !== undefined ? `_k${K}` : "";
    if (!bf16) return this.launch("rmsnorm.cu", `rmsnorm_forward${suffix}`, [Math.ceil(N / 8), 1, 1], B256, 0, args);
    args[0] = this.fp32Out(out, bf16);
    this.launch("rmsnorm.cu", "rmsnorm_forward_bf16", [Math.ceil(N / 8), 1, 1], B256, 0, [...args, ...this.bf16Out(bf16, out.size, "rmsnormForward")]);
    this.checked();
  }

  rmsnormBackward(dx: CudaTensor, dw: CudaTensor, dout: CudaTensor, x: CudaTensor, w: CudaTensor, rstd: CudaTensor, N: number, C: number, residual?: CudaTensor | null, bf16?: CudaOperand | null): void {
    if (residual && residual.size !== dx.size) throw new RangeError(`rmsnormBackward: the residual has ${residual.size} elements, dx ${dx.size}`);
    // P depends on the shape only, so results are the same on every GPU
    const P = Math.min(N, 256);
    const partial = this.scratch(P * C * 8);
    // the warp-per-row kernel: C % 4, at most 8 float4 per lane, aligned rows
    const vpl = Math.ceil(C / 128);
    const warp = this.opsKernels === "fast" && C % 4 === 0 && vpl <= 8 && [dx, dout, x, w, ...(residual ? [residual] : [])].every((t) => (t.ptr & 15n) === 0n);
    const args = [ptr(dx.ptr), ptr(partial), ptr(dout.ptr), ptr(x.ptr), ptr(w.ptr), ptr(rstd.ptr), i32(N), i32(C)];
    if (warp && (residual || bf16)) {
      // the residual's gradient and the BF16 operand written by the kernel that makes dx (no add pass, no cast)
      const out16 = bf16 ? this.bf16Out(bf16, dx.size, "rmsnormBackward") : [ptr(0n), ptr(0n)];
      this.launch("rmsnorm.cu", `rmsnorm_backward_res_w${vpl}`, [P, 1, 1], B256, C * 8, [...args, ptr(residual ? residual.ptr : 0n), ...out16]);
      if (bf16) this.checked();
    } else {
      const g = residual && residual.ptr === dx.ptr ? this.scratch(dx.size * 4) : dx.ptr;
      args[0] = ptr(g);
      this.launch("rmsnorm.cu", warp ? `rmsnorm_backward_w${vpl}` : "rmsnorm_backward", [P, 1, 1], B256, C * 8, args);
      if (residual) this.add(dx, residual, g === dx.ptr ? dx : new CudaTensor(dx.shape, g), bf16);
      else this.castInto(bf16, dx, "rmsnormBackward");
      if (g !== dx.ptr) this.release(g);
    }
    this.launch("rmsnorm.cu", "rmsnorm_dweight_reduce", grid1(C), B256, 0, [ptr(dw.ptr), ptr(partial), i32(P), i32(C)]);
    this.release(partial);
  }

  private rope(T: number, HS: number, theta: number): { cos: bigint; sin: bigint } {
    const key = `${T}/${HS}/${theta}`;
    let t = this.ropeTables.get(key);
    if (!t) {
      const tab = ropeTable(T, HS, theta);
      const cos = Float32Array.from(tab.cos), sin = Float32Array.from(tab.sin);
      t = { cos: this.mem.alloc(cos.byteLength), sin: this.mem.alloc(sin.byteLength) };
      this.drv.memcpyHtoD(t.cos, cos, cos.byteLength);
      this.drv.memcpyHtoD(t.sin, sin, sin.byteLength);
      this.ropeTables.set(key, t);
    }
    return t;
  }

  ropeForward(x: CudaTensor, B: number, T: number, NH: number, HS: number, theta: number): void {
    const t = this.rope(T, HS, theta);
    this.launch("rope.cu", "rope_forward", grid1((B * T * NH * HS) / 2), B256, 0, [ptr(x.ptr), ptr(t.cos), ptr(t.sin), i32(B), i32(T), i32(NH), i32(HS)]);
  }

  ropeBackward(dx: CudaTensor, B: number, T: number, NH: number, HS: number, theta: number): void {
    const t = this.rope(T, HS, theta);
    this.launch("rope.cu", "rope_backward", grid1((B * T * NH * HS) / 2), B256, 0, [ptr(dx.ptr), ptr(t.cos), ptr(t.sin), i32(B), i32(T), i32(NH), i32(HS)]);
  }

  /** the fused split+RoPE kernels' domain: HS % 8 (two float4 per pair set), 16-byte aligned tensors */
  private fusedQkv(HS: number, ...ts: CudaTensor[]): boolean {
    return this.opsKernels === "fast" && HS % 8 === 0 && ts.every((t) => (t.ptr & 15n) === 0n);
  }

  qkvSplitRope(qkv: CudaTensor, q: CudaTensor, k: CudaTensor, v: CudaTensor, B: number, T: number, NH: number, NKV: number, HS: number, theta: number): void {
    if (!this.fusedQkv(HS, qkv, q, k, v)) {
      this.splitColumns(qkv, [q, k, v], B * T, [NH * HS, NKV * HS, NKV * HS]);
      this.ropeForward(q, B, T, NH, HS, theta);
      this.ropeForward(k, B, T, NKV, HS, theta);
      return;
    }
    const t = this.rope(T, HS, theta);
    const args = [ptr(qkv.ptr), ptr(q.ptr), ptr(k.ptr), ptr(v.ptr), ptr(t.cos), ptr(t.sin), i32(B), i32(T), i32(NH), i32(NKV), i32(HS)];
    const grid = grid1((B * T * (NH + 2 * NKV) * HS) / 8);
    if (!(this.bf16Operands && this.mma(HS))) return this.launch("rope.cu", "qkv_split_rope", grid, B256, 0, args);
    // the BF16 copies attention-mma-async.cu reads, written here instead of by its own casts
    let c = this.qkvCopies.get(q);
    if (c && (c.n !== q.size + k.size + v.size || c.k !== k || c.v !== v)) {
      this.release(c.ptr);
      c = undefined;
    }
    if (!c) {
      c = { ptr: this.mem.alloc((q.size + k.size + v.size) * 2), n: q.size + k.size + v.size, k, v, seq: -1, saved: null };
      this.qkvCopies.set(q, c);
    }
    const [q16, k16, v16] = [c.ptr, c.ptr + BigInt(q.size * 2), c.ptr + BigInt((q.size + k.size) * 2)];
    this.launch("rope.cu", "qkv_split_rope_bf16", grid, B256, 0, [...args, ptr(q16), ptr(k16), ptr(v16)]);
    c.seq = this.opSeq;
    c.saved = null;
  }

  /**
   * BF16 copies of q, k, v written by qkvSplitRope (one allocation per q tensor, kept for the model's
   * life: the attention backward reads them again). Valid for attentionForward only if nothing ran
   * since qkvSplitRope (seq), and for attentionBackward only with the `saved` of the forward that
   * read them (q, k, v and saved are the forward's there, as the contract requires).
   */
  private readonly qkvCopies = new Map<CudaTensor, { ptr: bigint; n: number; k: CudaTensor; v: CudaTensor; seq: number; saved: CudaTensor | null }>();

  private copiesOf(q: CudaTensor, k: CudaTensor, v: CudaTensor, saved: CudaTensor | null): bigint[] | null {
    const c = this.qkvCopies.get(q);
    if (!c || c.k !== k || c.v !== v || c.n !== q.size + k.size + v.size) return null;
    if (saved === null ? c.seq !== this.opSeq : c.saved !== saved) return null;
    return [c.ptr, c.ptr + BigInt(q.size * 2), c.ptr + BigInt((q.size + k.size) * 2)];
  }

  qkvRopeConcat(dqkv: CudaTensor, dq: CudaTensor, dk: CudaTensor, dv: CudaTensor, B: number, T: number, NH: number, NKV: number, HS: number, theta: number, bf16?: CudaOperand | null): void {
    if (!this.fusedQkv(HS, dqkv, dq, dk, dv)) {
      this.ropeBackward(dq, B, T, NH, HS, theta);
      this.ropeBackward(dk, B, T, NKV, HS, theta);
      this.concatColumns(dqkv, [dq, dk, dv], B * T, [NH * HS, NKV * HS, NKV * HS]);
      this.castInto(bf16, dqkv, "qkvRopeConcat");
      return;
    }
    const t = this.rope(T, HS, theta);
    const args = [ptr(dqkv.ptr), ptr(dq.ptr), ptr(dk.ptr), ptr(dv.ptr), ptr(t.cos), ptr(t.sin), i32(B), i32(T), i32(NH), i32(NKV), i32(HS)];
    const grid = grid1((B * T * (NH + 2 * NKV) * HS) / 8);
    if (!bf16) return this.launch("rope.cu", "qkv_rope_concat", grid, B256, 0, args);
    args[0] = this.fp32Out(dqkv, bf16);
    this.launch("rope.cu", "qkv_rope_concat_bf16", grid, B256, 0, [...args, ...this.bf16Out(bf16, dqkv.size, "qkvRopeConcat")]);
    this.checked();
  }

  /** Flash kernels (online softmax, no T×T matrix) exist for head sizes 64 and 128. */
  private flash(HS: number): boolean {
    return HS === 64 || HS === 128;
  }

  /** BF16 tensor-core kernels exist for head size 64 (unless FP32 attention was asked for). */
  private mma(HS: number): boolean {
    return HS === 64 && this.attentionMode === "bf16";
  }

  attentionPrecision(HS: number): string {
    if (this.mma(HS)) return "bf16 tensor cores (FlashAttention-2: BF16 Q·Kᵀ and P·V, FP32 softmax and accumulation)";
    if (this.flash(HS)) return "fp32 CUDA cores (flash, exact order up to summation)";
    return "fp32 CUDA cores (materialised probabilities)";
  }

  /** What a GEMM of these operands runs on (the precision table's "runs on" column). */
  gemmEngine(a: OperandSpec, b: OperandSpec): string {
    if (a.format === "fp8" && b.format === "fp8") return this.fp8.engine(a, b);
    if (a.format === "bf16" && b.format === "bf16") return "BF16 tensor cores";
    if (a.format === "fp32" && b.format === "fp32") return "FP32 (cuBLASLt, CUDA cores)";
    return `emulated (BF16 tensor cores: ${a.format === b.format ? a.format : `${a.format} × ${b.format}`} dequantized exactly to BF16)`;
  }

  attentionSavedShape(B: number, T: number, NH: number, HS: number): number[] {
    return this.flash(HS) ? [B, NH, T] : [B, NH, T, T];
  }

  /** attention-mma-async.cu (BF16 copies, cp.async, ldmatrix) runs where the fast kernels do and the tensors are 16-byte aligned */
  private asyncAttention(...ts: CudaTensor[]): boolean {
    return this.opsKernels === "fast" && ts.every((t) => (t.ptr & 15n) === 0n && t.size % 4 === 0);
  }

  /** x rounded to BF16 (RNE) into scratch the caller releases: the operand of attention-mma-async.cu */
  private attentionBf16(x: CudaTensor): bigint {
    const p = this.scratch(x.size * 2);
    this.launch("attention-mma-async.cu", "attention_bf16_cast", grid1(x.size / 4, 256, 8192), B256, 0, [ptr(x.ptr), i64(x.size / 4), ptr(p)]);
    return p;
  }

  attentionForward(out: CudaTensor, probs: CudaTensor, q: CudaTensor, k: CudaTensor, v: CudaTensor, B: number, T: number, NH: number, NKV: number, HS: number, bf16?: CudaOperand | null): void {
    if (this.mma(HS) && this.asyncAttention(q, k, v, ...(bf16 ? [out] : []))) {
      const copies = this.copiesOf(q, k, v, null);
      const c = this.qkvCopies.get(q);
      if (c) c.saved = copies ? probs : null;
      const [q16, k16, v16] = copies ?? [q, k, v].map((t) => this.attentionBf16(t));
      const args = [ptr(out.ptr), ptr(probs.ptr), ptr(q16), ptr(k16), ptr(v16), i32(B), i32(T), i32(NH), i32(NKV)];
      // with an operand to fill, the kernel's epilogue writes the output projection's BF16 operand beside out
      if (bf16) this.launch("attention-mma-async.cu", `attention_mma_async_forward_out16_hs${HS}`, [Math.ceil(T / 64), NH, B], [128, 1, 1], 0, [...args, ...this.bf16Out(bf16, out.size, "attentionForward")]);
      else this.launch("attention-mma-async.cu", `attention_mma_async_forward_hs${HS}`, [Math.ceil(T / 64), NH, B], [128, 1, 1], 0, args);
      this.checked();
      if (!copies) this.release(q16, k16, v16);
      return;
    }
    this.attentionForwardUnfused(out, probs, q, k, v, B, T, NH, NKV, HS);
    this.castInto(bf16, out, "attentionForward");
  }

  private attentionForwardUnfused(out: CudaTensor, probs: CudaTensor, q: CudaTensor, k: CudaTensor, v: CudaTensor, B: number, T: number, NH: number, NKV: number, HS: number): void {
    if (this.mma(HS)) {
      this.launch("attention-mma.cu", `attention_mma_forward_hs${HS}`, [Math.ceil(T / 64), NH, B], [128, 1, 1], 0, [
        ptr(out.ptr), ptr(probs.ptr), ptr(q.ptr), ptr(k.ptr), ptr(v.ptr), i32(B), i32(T), i32(NH), i32(NKV),
      ]);
      return;
    }
    if (this.flash(HS)) {
      // probs carries the per-row logsumexp (B,NH,T)
      const shared = (2 * 64 * (HS + 4) + 64 * 68) * 4;
      this.launch("attention-flash.cu", `attention_flash_forward_hs${HS}`, [Math.ceil(T / 64), NH, B], B256, shared, [
        ptr(out.ptr), ptr(probs.ptr), ptr(q.ptr), ptr(k.ptr), ptr(v.ptr), i32(B), i32(T), i32(NH), i32(NKV),
      ]);
      return;
    }
    const block = 128;
    this.launch("attention.cu", "attention_forward", [T, NH, B], [block, 1, 1], (HS + T + block) * 4, [
      ptr(out.ptr), ptr(probs.ptr), ptr(q.ptr), ptr(k.ptr), ptr(v.ptr), i32(B), i32(T), i32(NH), i32(NKV), i32(HS),
    ]);
  }

  attentionBackward(dq: CudaTensor, dk: CudaTensor, dv: CudaTensor, dout: CudaTensor, q: CudaTensor, k: CudaTensor, v: CudaTensor, out: CudaTensor, probs: CudaTensor, B: number, T: number, NH: number, NKV: number, HS: number): void {
    if (this.flash(HS)) {
      const D = this.scratch(B * NH * T * 4);
      const async = this.mma(HS) && this.asyncAttention(dout, q, k, v);
      const copies = async ? this.copiesOf(q, k, v, probs) : null;
      const prepGrid: Dim3 = [Math.ceil((B * T * NH) / 8), 1, 1];
      if (async && this.bf16Operands) {
        // with the forward's BF16 q, k, v (qkvSplitRope) and dout rounded by the prep kernel, the backward casts nothing
        const d16 = this.scratch(dout.size * 2);
        // HS 64: a grid that fits on the GPU, four rows per warp in flight (the same bits)
        const prep = HS === 64 ? "attention_flash_backward_prep_bf16_hs64" : "attention_flash_backward_prep_bf16";
        const grid: Dim3 = HS === 64 ? [this.persistentGrid("attention-flash.cu", prep, 256, 0, prepGrid[0]), 1, 1] : prepGrid;
        this.launch("attention-flash.cu", prep, grid, B256, 0, [ptr(D), ptr(dout.ptr), ptr(out.ptr), i32(B), i32(T), i32(NH), i32(HS), ptr(d16)]);
        const [q16, k16, v16] = copies ?? [q, k, v].map((t) => this.attentionBf16(t));
        const args16 = [ptr(d16), ptr(q16), ptr(k16), ptr(v16), ptr(probs.ptr), ptr(D), i32(B), i32(T), i32(NH), i32(NKV)];
        this.launch("attention-mma-async.cu", `attention_mma_async_backward_dq_hs${HS}`, [Math.ceil(T / 64), NH, B], [128, 1, 1], 0, [ptr(dq.ptr), ...args16]);
        this.launch("attention-mma-async.cu", `attention_mma_async_backward_dkv_hs${HS}`, [Math.ceil(T / 64), NKV, B], [128, 1, 1], 0, [ptr(dk.ptr), ptr(dv.ptr), ...args16]);
        this.release(D, d16);
        if (!copies) this.release(q16, k16, v16);
        return;
      }
      // the BF16 kernels round dout for dP: D must see the same dout
      this.launch("attention-flash.cu", "attention_flash_backward_prep", prepGrid, B256, 0, [
        ptr(D), ptr(dout.ptr), ptr(out.ptr), i32(B), i32(T), i32(NH), i32(HS), i32(this.mma(HS) ? 1 : 0),
      ]);
      if (async) {
        const [d16, q16, k16, v16] = [dout, q, k, v].map((t) => this.attentionBf16(t));
        const args16 = [ptr(d16), ptr(q16), ptr(k16), ptr(v16), ptr(probs.ptr), ptr(D), i32(B), i32(T), i32(NH), i32(NKV)];
        this.launch("attention-mma-async.cu", `attention_mma_async_backward_dq_hs${HS}`, [Math.ceil(T / 64), NH, B], [128, 1, 1], 0, [ptr(dq.ptr), ...args16]);
        this.launch("attention-mma-async.cu", `attention_mma_async_backward_dkv_hs${HS}`, [Math.ceil(T / 64), NKV, B], [128, 1, 1], 0, [ptr(dk.ptr), ptr(dv.ptr), ...args16]);
        this.release(D, d16, q16, k16, v16);
        return;
      }
      const args = [ptr(dout.ptr), ptr(q.ptr), ptr(k.ptr), ptr(v.ptr), ptr(probs.ptr), ptr(D), i32(B), i32(T), i32(NH), i32(NKV)];
      if (this.mma(HS)) {
        this.launch("attention-mma.cu", `attention_mma_backward_dq_hs${HS}`, [Math.ceil(T / 64), NH, B], [128, 1, 1], 0, [ptr(dq.ptr), ...args]);
        this.launch("attention-mma.cu", `attention_mma_backward_dkv_hs${HS}`, [Math.ceil(T / 64), NKV, B], [128, 1, 1], 0, [ptr(dk.ptr), ptr(dv.ptr), ...args]);
        this.release(D);
        return;
      }
      const shared = (4 * 64 * (HS + 4) + 64 * 68) * 4;
      this.launch("attention-flash.cu", `attention_flash_backward_dq_hs${HS}`, [Math.ceil(T / 64), NH, B], B256, shared, [ptr(dq.ptr), ...args]);
      this.launch("attention-flash.cu", `attention_flash_backward_dkv_hs${HS}`, [Math.ceil(T / 64), NKV, B], B256, shared, [ptr(dk.ptr), ptr(dv.ptr), ...args]);
      this.release(D);
      return;
    }
    const block = 128;
    const dS = this.scratch(B * NH * T * T * 4);
    const dims = [i32(B), i32(T), i32(NH), i32(NKV), i32(HS)];
    this.launch("attention.cu", "attention_backward_query", [T, NH, B], [block, 1, 1], (HS + T + block) * 4, [
      ptr(dq.ptr), ptr(dS), ptr(dout.ptr), ptr(k.ptr), ptr(v.ptr), ptr(probs.ptr), ...dims,
    ]);
    this.launch("attention.cu", "attention_backward_kv", [T, NKV, B], [block, 1, 1], 2 * block * 4, [
      ptr(dk.ptr), ptr(dv.ptr), ptr(dout.ptr), ptr(q.ptr), ptr(probs.ptr), ptr(dS), ...dims,
    ]);
    this.release(dS);
  }

  /** elementwise.cu's `_v4` twin when the fast kernels run and every tensor is 16-byte aligned */
  private v4(name: string, ...ts: CudaTensor[]): [string, Dim3] {
    const n = ts[0].size;
    return this.opsKernels === "fast" && ts.every((t) => (t.ptr & 15n) === 0n) ? [`${name}_v4`, grid1(n, 1024)] : [name, grid1(n)];
  }

  /**
   * An elementwise kernel of elementwise.cu: its `_bf16` twin when there is an operand to fill and
   * the `_v4` kernel runs (it writes the operand beside the FP32 output), else the kernel chosen as
   * before and, for an operand, the cast into it.
   */
  /** `skippable`: the kernel's `_bf16` form takes a null out (args[0]) when bf16.fp32Unused */
  private elementwise(name: string, out: CudaTensor, ins: CudaTensor[], args: KernelArg[], bf16: CudaOperand | null | undefined, what: string, skippable = false): void {
    const [k, grid] = this.v4(name, out, ...ins);
    if (bf16 && k.endsWith("_v4")) {
      if (skippable) args[0] = this.fp32Out(out, bf16);
      this.launch("elementwise.cu", `${name}_bf16`, grid, B256, 0, [...args, ...this.bf16Out(bf16, out.size, what)]);
      this.checked();
      return;
    }
    this.launch("elementwise.cu", k, grid, B256, 0, args);
    this.castInto(bf16, out, what);
  }

  sqreluForward(out: CudaTensor, x: CudaTensor, bf16?: CudaOperand | null): void {
    this.elementwise("sqrelu_forward", out, [x], [ptr(out.ptr), ptr(x.ptr), i64(x.size)], bf16, "sqreluForward", true);
  }

  sqreluBackward(dx: CudaTensor, dout: CudaTensor, x: CudaTensor, bf16?: CudaOperand | null): void {
    this.elementwise("sqrelu_backward", dx, [x, dout], [ptr(dx.ptr), ptr(dout.ptr), ptr(x.ptr), i64(x.size)], bf16, "sqreluBackward", true);
  }

  swigluForward(out: CudaTensor, gateUp: CudaTensor, rows: number, F: number): void {
    this.launch("swiglu.cu", "swiglu_forward", grid1(rows * F), B256, 0, [ptr(out.ptr), ptr(gateUp.ptr), i32(rows), i32(F)]);
  }

  swigluBackward(dGateUp: CudaTensor, dout: CudaTensor, gateUp: CudaTensor, rows: number, F: number): void {
    this.launch("swiglu.cu", "swiglu_backward", grid1(rows * F), B256, 0, [ptr(dGateUp.ptr), ptr(dout.ptr), ptr(gateUp.ptr), i32(rows), i32(F)]);
  }

  // --- the Mamba-2 mixer's conv, scan and gated norm: mamba2.ts ---
  private mamba2Ops?: CudaMamba2;
  private get mamba2(): CudaMamba2 {
    return (this.mamba2Ops ??= new CudaMamba2({ launch: (...a) => this.launch(...a), scratch: (n) => this.scratch(n), release: (...p) => this.release(...p), fast: this.opsKernels === "fast" }));
  }
  convSiluForward(out: CudaTensor, x: CudaTensor, w: CudaTensor, bias: CudaTensor, B: number, T: number, Cc: number, W: number): void {
    this.mamba2.convSiluForward(out, x, w, bias, B, T, Cc, W);
  }
  convSiluBackward(dx: CudaTensor, dw: CudaTensor, dbias: CudaTensor, dout: CudaTensor, x: CudaTensor, w: CudaTensor, bias: CudaTensor, B: number, T: number, Cc: number, W: number): void {
    this.mamba2.convSiluBackward(dx, dw, dbias, dout, x, w, bias, B, T, Cc, W);
  }
  ssdSavedShape(d: SsdDims): number[] {
    return this.mamba2.ssdSavedShape(d);
  }
  ssdForward(y: CudaTensor, saved: CudaTensor, x: CudaTensor, dtRaw: CudaTensor, aLog: CudaTensor, dtBias: CudaTensor, D: CudaTensor, Bm: CudaTensor, Cm: CudaTensor, d: SsdDims): void {
    this.mamba2.ssdForward(y, saved, x, dtRaw, aLog, dtBias, D, Bm, Cm, d);
  }
  ssdBackward(
    dx: CudaTensor, ddtRaw: CudaTensor, daLog: CudaTensor, ddtBias: CudaTensor, dD: CudaTensor, dB: CudaTensor, dC: CudaTensor,
    dy: CudaTensor, x: CudaTensor, dtRaw: CudaTensor, aLog: CudaTensor, dtBias: CudaTensor, D: CudaTensor, Bm: CudaTensor, Cm: CudaTensor, saved: CudaTensor, d: SsdDims,
  ): void {
    this.mamba2.ssdBackward(dx, ddtRaw, daLog, ddtBias, dD, dB, dC, dy, x, dtRaw, aLog, dtBias, D, Bm, Cm, saved, d);
  }
  gatedRmsnormForward(out: CudaTensor, rstd: CudaTensor, y: CudaTensor, z: CudaTensor, w: CudaTensor, rows: number, D: number, groupSize: number, eps: number): void {
    this.mamba2.gatedRmsnormForward(out, rstd, y, z, w, rows, D, groupSize, eps);
  }
  gatedRmsnormBackward(dy: CudaTensor, dz: CudaTensor, dw: CudaTensor, dout: CudaTensor, y: CudaTensor, z: CudaTensor, w: CudaTensor, rstd: CudaTensor, rows: number, D: number, groupSize: number): void {
    this.mamba2.gatedRmsnormBackward(dy, dz, dw, dout, y, z, w, rstd, rows, D, groupSize);
  }

  /**
   * The token kernels' error flag (they skip an id outside [0, V) and atomicMin its position here):
   * never read, since every CudaTokens is checked on the host (CudaTokens.check) before it is used;
   * the kernels' guard only keeps a bad id from reading outside the table.
   */
  private tokenFlagSink(): bigint {
    return (this.tokenSink ??= this.mem.alloc(4));
  }
  private tokenSink: bigint | undefined;

  embeddingForward(out: CudaTensor, tokens: CudaTokens, table: CudaTensor, V: number, C: number): void {
    tokens.check("embeddingForward", V);
    this.launch("embedding.cu", "embedding_forward", [tokens.size, 1, 1], B256, 0, [ptr(out.ptr), ptr(tokens.ptr), ptr(table.ptr), i32(tokens.size), i32(C), i32(V), ptr(this.tokenFlagSink())]);
  }

  embeddingBackward(dtable: CudaTensor, dout: CudaTensor, tokens: CudaTokens, V: number, C: number): void {
    tokens.check("embeddingBackward", V);
    const BT = tokens.size;
    const counts = this.scratch(V * 4), offsets = this.scratch((V + 1) * 4), sorted = this.scratch(BT * 4), err = this.tokenFlagSink();
    this.drv.memsetD32(counts, 0, V);
    this.launch("embedding.cu", "embedding_histogram", grid1(BT), B256, 0, [ptr(counts), ptr(tokens.ptr), i32(BT), i32(V), ptr(err)]);
    this.launch("embedding.cu", "embedding_scan", [1, 1, 1], [1024, 1, 1], 0, [ptr(offsets), ptr(counts), i32(V)]);
    this.launch("embedding.cu", "embedding_scatter", grid1(BT), B256, 0, [ptr(sorted), ptr(counts), ptr(offsets), ptr(tokens.ptr), i32(BT), i32(V)]);
    this.launch("embedding.cu", "embedding_backward_rows", [V, 1, 1], B256, 0, [ptr(dtable.ptr), ptr(dout.ptr), ptr(sorted), ptr(offsets), ptr(tokens.ptr), i32(BT), i32(C), i32(V)]);
    this.release(counts, offsets, sorted);
  }

  crossEntropy(losses: CudaTensor, dlogits: CudaTensor | null, logits: CudaTensor, targets: CudaTokens, V: number, scale: number, bf16?: CudaOperand | null): number {
    return this.crossEntropyQueued(losses, dlogits, logits, targets, V, scale, bf16)();
  }

  /** crossEntropy queued: the returned function reads the mean loss (one synchronisation), then runs the non-finite and target checks. */
  crossEntropyQueued(losses: CudaTensor, dlogits: CudaTensor | null, logits: CudaTensor, targets: CudaTokens, V: number, scale: number, bf16?: CudaOperand | null): () => number {
    if (bf16 && !dlogits) throw new RangeError("crossEntropy: a BF16 operand of dlogits needs dlogits");
    const N = targets.size;
    targets.check("crossEntropy (targets)", V);
    const err = this.tokenFlagSink();
    // one read of each row through shared memory where the row fits (V·4 B + the 128 B static ≤ 227 KB)
    const smem = this.opsKernels === "fast" && V % 4 === 0 && V * 4 + 128 <= 232448 && (logits.ptr & 15n) === 0n && ((dlogits?.ptr ?? 0n) & 15n) === 0n;
    const args = [ptr(losses.ptr), ptr(dlogits ? dlogits.ptr : 0n), ptr(logits.ptr), ptr(targets.ptr), i32(N), i32(V), f32(scale), ptr(err)];
    // the shared-memory kernels take any grid ≤ N (a persistent one: the next row's copy overlaps this row's dlogits)
    const rowsGrid = (name: string) => (this.cePersistent && N > 0 ? this.persistentGrid("cross-entropy.cu", name, 1024, V * 4, N) : N);
    if (smem && bf16 && dlogits) {
      // the head's gradient operand written by the kernel that makes dlogits (B·T·V: the largest cast of a step)
      args[1] = this.fp32Out(dlogits, bf16);
      const k = "cross_entropy_forward_backward_smem_bf16";
      this.launch("cross-entropy.cu", k, [rowsGrid(k), 1, 1], [1024, 1, 1], V * 4, [...args, ...this.bf16Out(bf16, dlogits.size, "crossEntropy")]);
      this.checked();
    } else {
      const k = smem ? "cross_entropy_forward_backward_smem" : "cross_entropy_forward_backward";
      this.launch("cross-entropy.cu", k, [smem ? rowsGrid(k) : N, 1, 1], [1024, 1, 1], smem ? V * 4 : 0, args);
      if (dlogits) this.castInto(bf16, dlogits, "crossEntropy");
    }
    const P = Math.min(Math.ceil(N / 1024), 256);
    const partials = this.scratch(P * 8), mean = this.scratch(8);
    this.launch("cross-entropy.cu", "cross_entropy_mean_partials", [P, 1, 1], B256, 0, [ptr(partials), ptr(losses.ptr), i32(N)]);
    this.launch("cross-entropy.cu", "cross_entropy_mean_final", [1, 1, 1], B256, 0, [ptr(mean), ptr(partials), i32(P), i32(N)]);
    this.release(partials);  // reused only by work queued after (one stream); `mean` stays until it is read
    let read: number | undefined;
    return () => {
      if (read !== undefined) return read;
      const m = this.readDouble(mean);
      this.release(mean);
      this.flushChecks();
      return (read = m);
    };
  }

  add(out: CudaTensor, a: CudaTensor, b: CudaTensor, bf16?: CudaOperand | null): void {
    this.elementwise("add", out, [a, b], [ptr(out.ptr), ptr(a.ptr), ptr(b.ptr), i64(out.size)], bf16, "add");
  }

  accumulate(dst: CudaTensor, src: CudaTensor): void {
    const [k, grid] = this.v4("accumulate", dst, src);
    this.launch("elementwise.cu", k, grid, B256, 0, [ptr(dst.ptr), ptr(src.ptr), i64(dst.size)]);
  }

  private columns(kernel: "split_columns" | "concat_columns", x: CudaTensor, parts: CudaTensor[], rows: number, widths: number[]): void {
    if (parts.length > 3) throw new RangeError(`${kernel}: at most 3 parts on CUDA, got ${parts.length}`);
    const w = [0, 1, 2].map((i) => widths[i] ?? 0);
    const p = [0, 1, 2].map((i) => ptr(parts[i]?.ptr ?? 0n));
    this.launch("elementwise.cu", kernel, grid1(rows * (w[0] + w[1] + w[2])), B256, 0, [ptr(x.ptr), ...p, i32(rows), ...w.map(i32)]);
  }

  splitColumns(x: CudaTensor, parts: CudaTensor[], rows: number, widths: number[]): void {
    this.columns("split_columns", x, parts, rows, widths);
  }

  concatColumns(out: CudaTensor, parts: CudaTensor[], rows: number, widths: number[]): void {
    this.columns("concat_columns", out, parts, rows, widths);
  }

  sumSquares(g: CudaTensor): number {
    const P = Math.max(1, Math.min(Math.ceil(g.size / 256), 1024));
    const partials = this.scratch(P * 4), total = this.scratch(8);
    this.launch("optim.cu", "sum_squares_partials", [P, 1, 1], B256, 0, [ptr(partials), ptr(g.ptr), i64(g.size)]);
    this.launch("optim.cu", "sum_squares_final", [1, 1, 1], B256, 0, [ptr(total), ptr(partials), i32(P), i32(0)]);
    const s = this.readDouble(total);
    this.release(partials, total);
    this.flushChecks();
    return s;
  }

  /**
   * optim.cu's table for these tensors (built once per list: a model's parameters keep their
   * buffers), or null where a pointer is not 16-byte aligned (then the per-tensor kernels run).
   */
  private mtTable(p: (CudaTensor | null)[], g: CudaTensor[], m: (CudaTensor | null)[], v: (CudaTensor | null)[], wd: number[]): { ptr: bigint; count: number; blocks: number } | null {
    const ptrs = g.flatMap((t, i) => [p[i]?.ptr ?? 0n, t.ptr, m[i]?.ptr ?? 0n, v[i]?.ptr ?? 0n]);
    const sizes = g.map((t) => t.size);
    // the same lists come every step: compare with the recent ones before building a string key
    const same = <X>(a: readonly X[], b: readonly X[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    const hit = this.mtRecent.find((r) => same(r.ptrs, ptrs) && same(r.wd, wd) && same(r.sizes, sizes));
    if (hit) return hit.entry;
    if (ptrs.some((x) => (x & 15n) !== 0n)) return null;
    const key = `${ptrs.join(",")}/${wd.join(",")}/${sizes.join(",")}`;
    let e = this.mtTables.get(key);
    const remember = (entry: { ptr: bigint; count: number; blocks: number }) => {
      this.mtRecent.unshift({ ptrs, wd: [...wd], sizes, entry });
      if (this.mtRecent.length > 8) this.mtRecent.pop();
      return entry;
    };
    if (e) return remember(e);
    const MT_CHUNK = 8192, rowBytes = 48;
    const buf = new DataView(new ArrayBuffer(Math.max(1, g.length) * rowBytes));
    let blocks = 0;
    g.forEach((t, i) => {
      const o = i * rowBytes;
      for (let j = 0; j < 4; j++) buf.setBigUint64(o + 8 * j, ptrs[4 * i + j], true);
      buf.setBigInt64(o + 32, BigInt(t.size), true);
      buf.setFloat32(o + 40, wd[i], true);
      buf.setInt32(o + 44, blocks, true);
      blocks += Math.ceil(t.size / MT_CHUNK);
    });
    const dev = this.mem.alloc(buf.byteLength);
    this.drv.memcpyHtoD(dev, new Uint8Array(buf.buffer), buf.byteLength);
    e = { ptr: dev, count: g.length, blocks };
    this.mtTables.set(key, e);
    return remember(e);
  }
  /** the last few tables mtTable returned, by their lists (a step's lookups without string keys) */
  private readonly mtRecent: { ptrs: bigint[]; wd: number[]; sizes: number[]; entry: { ptr: bigint; count: number; blocks: number } }[] = [];

  /** zero every tensor: one launch (zero_chunks) where the multi-tensor table applies, else a memset each */
  zeroMany(ts: CudaTensor[]): void {
    const tab = this.opsKernels === "fast" && ts.length > 0 ? this.mtTable(ts, ts, ts.map(() => null), ts.map(() => null), ts.map(() => 0)) : null;
    if (tab && tab.blocks > 0) return this.launch("optim.cu", "zero_chunks", [tab.blocks, 1, 1], B256, 0, [ptr(tab.ptr), i32(tab.count)]);
    for (const t of ts) this.zero(t);
  }

  sumSquaresMany(gs: CudaTensor[]): Float64Array {
    const tab = this.opsKernels === "fast" && gs.length > 0 ? this.mtTable(gs.map(() => null), gs, gs.map(() => null), gs.map(() => null), gs.map(() => 0)) : null;
    if (tab && tab.blocks > 0) {
      const partials = this.scratch(tab.blocks * 4), totals = this.scratch(gs.length * 8);
      this.launch("optim.cu", "sum_squares_chunks", [tab.blocks, 1, 1], B256, 0, [ptr(partials), ptr(tab.ptr), i32(tab.count)]);
      this.launch("optim.cu", "sum_squares_segments", [tab.count, 1, 1], B256, 0, [ptr(totals), ptr(partials), ptr(tab.ptr), i32(tab.count), i32(tab.blocks)]);
      const out = new Float64Array(gs.length);
      this.drv.memcpyDtoH(out, totals, out.byteLength);
      this.release(partials, totals);
      this.flushChecks();
      return out;
    }
    const totals = this.scratch(gs.length * 8);
    gs.forEach((g, i) => {
      const P = Math.max(1, Math.min(Math.ceil(g.size / 256), 1024));
      const partials = this.scratch(P * 4);
      this.launch("optim.cu", "sum_squares_partials", [P, 1, 1], B256, 0, [ptr(partials), ptr(g.ptr), i64(g.size)]);
      this.launch("optim.cu", "sum_squares_final", [1, 1, 1], B256, 0, [ptr(totals + BigInt(i) * 8n), ptr(partials), i32(P), i32(0)]);
      this.release(partials);
    });
    const out = new Float64Array(gs.length);
    this.drv.memcpyDtoH(out, totals, out.byteLength);
    this.release(totals);
    this.flushChecks();
    return out;
  }

  adamw(param: CudaTensor, grad: CudaTensor, m: CudaTensor, v: CudaTensor, lr: number, t: number, cfg: AdamWConfig, decay: boolean, gradScale: number): void {
    this.launch("optim.cu", "adamw_update", grid1(param.size), B256, 0, [
      ptr(param.ptr), ptr(grad.ptr), ptr(m.ptr), ptr(v.ptr), i64(param.size), f32(lr), f32(cfg.beta1), f32(cfg.beta2), f32(cfg.eps),
      f32(decay ? cfg.weightDecay : 0), f32(1 - cfg.beta1 ** t), f32(1 - cfg.beta2 ** t), f32(gradScale),
    ]);
  }

  adamwMany(params: CudaTensor[], grads: CudaTensor[], ms: CudaTensor[], vs: CudaTensor[], decay: boolean[], lr: number, t: number, cfg: AdamWConfig, gradScale: number): void {
    params.forEach((p, i) => {
      if (grads[i].size !== p.size || ms[i].size !== p.size || vs[i].size !== p.size) throw new RangeError(`adamwMany: parameter ${i} has ${p.size} elements, its gradient/moments ${grads[i].size}/${ms[i].size}/${vs[i].size}`);
    });
    const tab = this.opsKernels === "fast" && params.length > 0 ? this.mtTable(params, grads, ms, vs, decay.map((d) => (d ? cfg.weightDecay : 0))) : null;
    if (!tab) {
      params.forEach((p, i) => this.adamw(p, grads[i], ms[i], vs[i], lr, t, cfg, decay[i], gradScale));
      return;
    }
    if (tab.blocks === 0) return;
    this.launch("optim.cu", "adamw_update_multi", [tab.blocks, 1, 1], B256, 0, [
      ptr(tab.ptr), i32(tab.count), f32(lr), f32(cfg.beta1), f32(cfg.beta2), f32(cfg.eps), f32(1 - cfg.beta1 ** t), f32(1 - cfg.beta2 ** t), f32(gradScale),
    ]);
  }

  /** Device memory use (the caching allocator's counters). */
  memoryStats(): ReturnType<CachingAllocator["stats"]> {
    return this.mem.stats();
  }

  /** Wait for every queued kernel (and raise any non-finite check). */
  synchronize(): void {
    this.drv.ctxSynchronize();
    this.flushChecks();
  }

  close(): void {
    this.drv.ctxSynchronize();
    for (const p of this.owned) this.mem.free(p);
    this.owned.clear();
    for (const p of this.pendingTokens) this.mem.free(p);
    this.pendingTokens.length = 0;
    for (const t of this.ropeTables.values()) this.release(t.cos, t.sin);
    this.ropeTables.clear();
    for (const e of this.mtTables.values()) this.mem.free(e.ptr);
    this.mtTables.clear();
    for (const c of this.qkvCopies.values()) this.mem.free(c.ptr);
    this.qkvCopies.clear();
    this.mem.free(this.workspace);
    this.mem.free(this.checkSlots);
    this.mem.free(this.gemmScalars);
    this.checks.length = 0;
    for (const e of [...this.eventPool, ...this.marks.flatMap((m) => [m.start, m.end])]) this.drv.eventDestroy(e);
    this.mem.trim();
    this.lt.destroy();
  }

  // --- quantization telemetry (issue 5): recipes/operand-stats.ts's sums in one pass, one read back ---

  /**
   * Telemetry of `op` (see the contract). The operand keeps only its values, so the codes that
   * tell a clipped value come from the same quantize kernel run again: same stream, same bytes.
   */
  quantStats(x: CudaTensor, rows: number, cols: number, transpose: boolean, stream: OperandStream, op: CudaOperand): QuantStats {
    const spec = op.spec, R = op.rows, C = op.cols, n = R * C, T = transpose ? 1 : 0;
    const tiled: Dim3 = [Math.ceil(C / 128), Math.min(Math.ceil(R / 32), 65535), 1];
    const rhtArgs = rhtKernelArgs(spec, stream), seedArgs = seedKernelArgs(spec, stream);
    const temp: bigint[] = [];
    let codes = 0n, kind = 0;
    if (spec.format === "nvfp4" || spec.format === "mxfp4") {
      codes = this.scratch(n / 2);
      const scales = this.scratch(n / 16);
      temp.push(codes, scales);
      if (spec.format === "nvfp4") {
        this.launch("quantize.cu", "nvfp4_quantize_f32", tiled, B256, 0, [
          ptr(x.ptr), i32(rows), i32(cols), i32(T), i32(spec.block === "16x16" ? 1 : 0), ...rhtArgs, ...seedArgs, ptr(op.amaxPtr!), ptr(codes), ptr(scales), ptr(0n), ptr(0n),
        ]);
      } else {
        this.launch("quantize.cu", "mxfp4_quantize_f32", tiled, B256, 0, [
          ptr(x.ptr), i32(rows), i32(cols), i32(T), i32(spec.mxScale === "rceil" ? 1 : 0), ...rhtArgs, ...seedArgs, ptr(codes), ptr(scales), ptr(0n), ptr(0n),
        ]);
      }
      kind = 1;
    } else if (spec.format === "fp8") {
      const scaling = spec.block === "128x128" ? 2 : spec.block === "tensor" ? 0 : 1;
      const nBlocks = scaling === 0 ? 1 : scaling === 1 ? R * Math.ceil(C / 128) : Math.ceil(R / 128) * Math.ceil(C / 128);
      const bam = this.scratch(nBlocks * 4), sinv = this.scratch(nBlocks * 4);
      codes = this.scratch(n);
      temp.push(bam, sinv, codes);
      this.drv.memsetD32(bam, 0, nBlocks);
      this.launch("quantize.cu", "fp8_block_amax_f32", tiled, B256, 0, [ptr(x.ptr), i32(rows), i32(cols), i32(T), i32(scaling), ptr(bam), ptr(0n)]);
      this.launch("quantize.cu", "fp8_quantize_f32", tiled, B256, 0, [
        ptr(x.ptr), i32(rows), i32(cols), i32(T), i32(scaling), i32(spec.fp8 === "e5m2" ? 1 : 0), i32(scaling === 0 ? 0 : 1), ptr(bam), ptr(codes), ptr(sinv), ptr(0n),
      ]);
      kind = spec.fp8 === "e5m2" ? 3 : 2;
    }
    // a lazily transposed BF16/FP32 operand is x's cast: measure its K-contiguous copy
    let opPtr = op.ptr;
    if (op.transposed) {
      opPtr = this.scratch(n * (op.dtype === "f32" ? 4 : 2));
      temp.push(opPtr);
      this.castOperand(op.dtype === "f32" ? "cast_f32_f32" : "cast_bf16_f32", x, rows, cols, true, opPtr, 0n);
    }
    // an FP8 operand kept for the tensor cores: measure its values (the BF16 operand the emulated GEMM would get)
    if (isFp8Operand(op)) {
      opPtr = this.scratch(n * 2);
      temp.push(opPtr);
      this.fp8.dequantize(op, opPtr, 0n);
    }
    // 2 doubles, 3 u64 counters, the amax bits
    const res = this.scratch(48);
    temp.push(res);
    this.drv.memsetD32(res, 0, 12);
    this.launch("telemetry.cu", "quant_stats_f32", grid1(n, 256, 1024), B256, 0, [
      ptr(x.ptr), i32(rows), i32(cols), i32(T), ...rhtArgs, ptr(opPtr), i32(op.dtype === "f32" ? 1 : 0), ptr(op.amaxPtr ?? 0n),
      ptr(codes), i32(kind), ptr(res), ptr(res + 16n), ptr(res + 40n),
    ]);
    const host = new ArrayBuffer(48);
    this.drv.memcpyDtoH(new Uint8Array(host), res, 48);
    this.release(...temp);
    const [err2, ref2] = new Float64Array(host, 0, 2), counts = new BigUint64Array(host, 16, 3);
    return statsFromSums({
      err2, ref2, n, nonzero: Number(counts[0]), flushed: Number(counts[1]), saturated: Number(counts[2]), amax: new Float32Array(host, 40, 1)[0],
    });
  }
}
