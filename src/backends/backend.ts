/**
 * The backend contract: the handful of operations the model needs, on opaque tensors. The CPU
 * backend (cpu/, plain TypeScript, the oracle) and the CUDA backend (cuda/) implement it; nn/
 * modules call nothing else. Conventions, as llm.c: outputs are written into tensors the caller
 * allocated; backward ops overwrite input gradients and accumulate (+=) parameter gradients.
 * Shapes in comments use B, T, C, NH, NKV, HS, V (and for the Mamba-2 mixer: Cc conv channels,
 * W conv window, H heads of size P, G groups, N state size); all storage is FP32 (BF16 rounding
 * happens where the recipe asks, inside `quantize`, or in the op writing a tensor whose BF16
 * operand it was handed: the trailing `bf16` arguments, see bf16Operand).
 */
import type { OperandSpec } from "../recipes/operand.ts";
import type { OperandStream } from "../recipes/quantize-operand.ts";
import type { QuantStats } from "../recipes/operand-stats.ts";
import type { AdamWConfig } from "../optim/adamw.ts";

/** Sizes of one Mamba-2 selective scan: batch, time, heads H of size P, groups G, state size N, chunk length. */
export interface SsdDims {
  B: number;
  T: number;
  H: number;
  P: number;
  G: number;
  N: number;
  chunk: number;
}

/** An FP32 tensor owned by a backend. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly size: number;
}

/** Token ids (B, T) on a backend. */
export interface Tokens {
  readonly shape: readonly number[];
  readonly size: number;
}

/** A GEMM operand after quantize-dequantize (opaque; see recipes/quantize-operand.ts). */
export interface Operand {
  readonly rows: number;
  readonly cols: number;
  readonly spec: OperandSpec;
  /**
   * Set on a bf16Operand by its caller before handing it to the op that fills it: the GEMMs taking
   * this operand are the only readers of the op's FP32 output, so the op may leave that output
   * unwritten (the CUDA kernels skip the store) — the CPU oracle fills it with NaN instead, so that
   * a reader nobody declared shows up as a NonFiniteError in the CPU tests, not as stale values.
   */
  fp32Unused?: boolean;
}

export interface Backend<T extends Tensor = Tensor, K extends Tokens = Tokens, O extends Operand = Operand> {
  readonly name: string;
  /** a zero-filled FP32 tensor */
  alloc(shape: number[]): T;
  fromArray(data: Float32Array, shape: number[]): T;
  /** a host copy */
  toArray(t: T): Float32Array;
  tokens(ids: Int32Array, shape: number[]): K;
  zero(t: T): void;
  /** zero every tensor (a device backend: one launch) */
  zeroMany(ts: T[]): void;
  copy(dst: T, src: T): void;

  /** x (rows, cols) — or its transpose — quantized per spec, K-contiguous; NaN/Inf → NonFiniteError naming `name` */
  quantize(x: T, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream, name: string): O;
  /**
   * [quantize(x, rows, cols, specA, false, streamA, nameA), quantize(x, rows, cols, specB, true,
   * streamB, nameB)]: the same two operands (a tensor's Dgrad dY and Wgrad dYᵀ, or Fprop X and Wgrad
   * Xᵀ), made in one read of x where the backend can; null unless operand.ts pairable(specA, specB)
   * (the caller then quantizes each where it needs it). Optional: without it the caller always does.
   */
  quantizePair?(x: T, rows: number, cols: number, specA: OperandSpec, specB: OperandSpec, streamA: OperandStream, streamB: OperandStream, nameA: string, nameB: string): [O, O] | null;
  /**
   * Another handle to op's values, as an operand of xᵀ when `transpose` (op being an operand of x),
   * without reading x again; null unless the values are x rounded element by element (bf16, fp32 with
   * RTN: the same for x and xᵀ and every stream). Each handle is consumed on its own (a gemm or
   * releaseOperand). What a linear layer uses to round X, W and dY once per step instead of twice.
   */
  shareOperand(op: O, transpose: boolean): O | null;
  /** free an operand that will not reach a gemm */
  releaseOperand(op: O): void;
  /**
   * An operand of x (rows, cols) as `quantize(x, rows, cols, spec, false, …, name)` returns it for a
   * BF16 spec rounded element by element (bf16, RTN, no RHT), left EMPTY for the op that writes x to
   * fill as it writes x: the ops below with a trailing `bf16` argument round every value they write
   * to x (out, dx, dqkv, dlogits) to BF16 (RNE, NaN → quiet NaN, as quantize) into it and run quantize's non-finite check under
   * `name` (NaN/Inf → NonFiniteError naming `name`, at once or where the backend reads its checks).
   * What saves the cast's read of x. Null where the backend casts instead (and for other specs);
   * gemm refuses an operand no op filled. Optional: a backend without it casts every operand.
   * With `fp32Unused` set (Operand) the op may skip writing x itself.
   */
  bf16Operand?(rows: number, cols: number, spec: OperandSpec, name: string): O | null;
  /**
   * c (M, N) = alpha·A·Bᵀ (+ c if accumulate), A (M, K), B (N, K); FP32 accumulation, alpha from the
   * operands' tensor scales. `addend` (M, N), not c, with accumulate false: c = alpha·A·Bᵀ + addend,
   * the same values as the GEMM into c followed by accumulate(c, addend) (one FP32 rounding of the
   * sum, after alpha's): a residual connection fused into the GEMM's epilogue where the backend can.
   */
  gemm(c: T, a: O, b: O, accumulate: boolean, addend?: T | null): void;
  /** quantization telemetry of `op`, made by quantize(x, rows, cols, op.spec, transpose, stream):
   * relative error, shares flushed to zero and saturated, amax (recipes/operand-stats.ts); before the GEMM consumes op */
  quantStats(x: T, rows: number, cols: number, transpose: boolean, stream: OperandStream, op: O): QuantStats;

  /** `bf16`: bf16Operand of out (N, C), filled here */
  rmsnormForward(out: T, rstd: T, x: T, weight: T, N: number, C: number, eps: number, bf16?: O | null): void;
  /**
   * dx (N, C) = ∂L/∂x (+ residual: a residual connection's gradient added, the bits of add(dx,
   * residual, ∂L/∂x); residual may be dx's own storage only if it is not also dout), dweight += ∂L/∂w;
   * `bf16`: bf16Operand of dx, filled here
   */
  rmsnormBackward(dx: T, dweight: T, dout: T, x: T, weight: T, rstd: T, N: number, C: number, residual?: T | null, bf16?: O | null): void;
  /** RoPE in place on x (B, T, NH, HS), half-split pairs, base theta */
  ropeForward(x: T, B: number, Tlen: number, NH: number, HS: number, theta: number): void;
  ropeBackward(dx: T, B: number, Tlen: number, NH: number, HS: number, theta: number): void;
  /** q (B,T,NH,HS), k, v (B,T,NKV,HS) ← the fused projection qkv (B·T, (NH + 2·NKV)·HS): splitColumns, then ropeForward of q and k (one pass on a GPU) */
  qkvSplitRope(qkv: T, q: T, k: T, v: T, B: number, Tlen: number, NH: number, NKV: number, HS: number, theta: number): void;
  /** the inverse for the gradients: dqkv OVERWRITTEN = [ropeBackward(dq) | ropeBackward(dk) | dv] per row; dq and dk are clobbered (the CPU rotates them in place) */
  qkvRopeConcat(dqkv: T, dq: T, dk: T, dv: T, B: number, Tlen: number, NH: number, NKV: number, HS: number, theta: number, bf16?: O | null): void;
  /** shape of what attentionForward saves for the backward: probabilities (B,NH,T,T), or a
   * flash-style backend's per-row logsumexp (B,NH,T) */
  attentionSavedShape(B: number, Tlen: number, NH: number, HS: number): number[];
  /** what the attention core runs in for this head size, in words (logged with the run) */
  attentionPrecision(HS: number): string;
  /**
   * What a GEMM with these operand specs actually runs on, in words (the precision table's engine
   * column, logged with the run): e.g. "FP8 tensor cores", or "emulated (…)" with the reason.
   * Optional: a backend without it runs every GEMM as the specs say (the CPU's exact emulation).
   */
  gemmEngine?(a: OperandSpec, b: OperandSpec): string;
  /** causal GQA core: out (B,T,NH,HS), `saved` as attentionSavedShape; q (B,T,NH,HS), k, v (B,T,NKV,HS) */
  attentionForward(out: T, saved: T, q: T, k: T, v: T, B: number, Tlen: number, NH: number, NKV: number, HS: number, bf16?: O | null): void;
  /** dq, dk, dv overwritten; `out` and `saved` are the forward's */
  attentionBackward(dq: T, dk: T, dv: T, dout: T, q: T, k: T, v: T, out: T, saved: T, B: number, Tlen: number, NH: number, NKV: number, HS: number): void;
  sqreluForward(out: T, x: T, bf16?: O | null): void;
  sqreluBackward(dx: T, dout: T, x: T, bf16?: O | null): void;
  /** gated MLP: out (rows, F) = silu(gate)·up, gateUp (rows, 2F) = [gate | up] per row */
  swigluForward(out: T, gateUp: T, rows: number, F: number): void;
  /** dGateUp (rows, 2F) OVERWRITTEN = [dout·up·silu'(gate) | dout·silu(gate)] */
  swigluBackward(dGateUp: T, dout: T, gateUp: T, rows: number, F: number): void;
  /** Mamba-2 short conv: out (B,T,Cc) = silu(bias + causal depthwise conv over time of x (B,T,Cc)), weight (Cc,W), bias (Cc) */
  convSiluForward(out: T, x: T, weight: T, bias: T, B: number, Tlen: number, Cc: number, W: number): void;
  /** dx overwritten; dweight, dbias accumulated */
  convSiluBackward(dx: T, dweight: T, dbias: T, dout: T, x: T, weight: T, bias: T, B: number, Tlen: number, Cc: number, W: number): void;
  /** shape of what ssdForward saves for the backward (the state entering each chunk: (B, ceil(T/chunk), H, P, N)) */
  ssdSavedShape(d: SsdDims): number[];
  /** Mamba-2 selective scan (chunked SSD): y, x (B,T,H,P); dtRaw (B,T,H) before softplus(· + dtBias); aLog, dtBias, D (H);
   * Bm, Cm (B,T,G,N); `saved` as ssdSavedShape */
  ssdForward(y: T, saved: T, x: T, dtRaw: T, aLog: T, dtBias: T, D: T, Bm: T, Cm: T, d: SsdDims): void;
  /** dx, ddtRaw, dB, dC overwritten; daLog, ddtBias, dD accumulated; `saved` is the forward's */
  ssdBackward(dx: T, ddtRaw: T, daLog: T, ddtBias: T, dD: T, dB: T, dC: T, dy: T, x: T, dtRaw: T, aLog: T, dtBias: T, D: T, Bm: T, Cm: T, saved: T, d: SsdDims): void;
  /** gated group RMSNorm (HF NemotronH): out (rows,D) = w · rmsnorm over groups of `groupSize` of y·silu(z); rstd (rows, D/groupSize) */
  gatedRmsnormForward(out: T, rstd: T, y: T, z: T, weight: T, rows: number, D: number, groupSize: number, eps: number): void;
  /** dy, dz overwritten; dweight accumulated */
  gatedRmsnormBackward(dy: T, dz: T, dweight: T, dout: T, y: T, z: T, weight: T, rstd: T, rows: number, D: number, groupSize: number): void;
  embeddingForward(out: T, tokens: K, table: T, V: number, C: number): void;
  embeddingBackward(dtable: T, dout: T, tokens: K, V: number, C: number): void;
  /** mean loss; per-row losses written; dlogits = (softmax − onehot)·scale unless null (`bf16`, of dlogits, needs dlogits) */
  crossEntropy(losses: T, dlogits: T | null, logits: T, targets: K, V: number, scale: number, bf16?: O | null): number;
  /**
   * crossEntropy queued: the returned function reads the mean loss (a device backend waits for the
   * device there and raises the queued non-finite checks), so the caller can queue the backward pass
   * first and the step has no synchronisation in its middle. Bad targets throw at once.
   */
  crossEntropyQueued(losses: T, dlogits: T | null, logits: T, targets: K, V: number, scale: number, bf16?: O | null): () => number;
  /** out = a + b (may alias) */
  add(out: T, a: T, b: T, bf16?: O | null): void;
  /** dst += src */
  accumulate(dst: T, src: T): void;
  /** split the columns of x (rows, Σwidths) into parts (rows, width_i) */
  splitColumns(x: T, parts: T[], rows: number, widths: number[]): void;
  /** the inverse of splitColumns */
  concatColumns(out: T, parts: T[], rows: number, widths: number[]): void;

  /** Σ g² (double precision on CPU) */
  sumSquares(g: T): number;
  /** Σ g² of each tensor, in one round trip */
  sumSquaresMany(gs: T[]): Float64Array;
  /** AdamW step in place; gradScale applies the clip factor */
  adamw(param: T, grad: T, m: T, v: T, lr: number, t: number, cfg: AdamWConfig, decay: boolean, gradScale: number): void;
  /** adamw on every parameter i in order (decay[i] per parameter): what a GPU runs as one launch */
  adamwMany(params: T[], grads: T[], ms: T[], vs: T[], decay: boolean[], lr: number, t: number, cfg: AdamWConfig, gradScale: number): void;
  /** free what the backend holds (worker threads, device memory) */
  close(): void;
}

/** gemm's addend: (M, N) like c, not c itself, and not with accumulate (Backend.gemm) */
export function checkAddend(c: Tensor, accumulate: boolean, addend: Tensor | null | undefined): void {
  if (!addend) return;
  if (accumulate) throw new RangeError("gemm: an addend with accumulate (c += A·Bᵀ + addend) is not supported");
  if (addend === c) throw new RangeError("gemm: the addend must not be c (use accumulate)");
  if (addend.size !== c.size) throw new RangeError(`gemm: the addend has ${addend.size} elements, C ${c.size}`);
}
