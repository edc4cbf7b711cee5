/**
 * The CPU backend: plain TypeScript, FP32 storage in SharedArrayBuffer-backed Float32Arrays (so
 * the GEMM worker threads can read them), the oracle every other backend is tested against.
 * GEMMs run on the blocked multi-threaded kernel (gemm-pool.ts), deterministic for any thread
 * count; everything else is the plain ops in ops/. Not fast: it exists to be right and readable.
 */
import { checkAddend, type Backend, type SsdDims, type Tensor, type Tokens } from "../backend.ts";
import { pairable, transposeInvariant, type OperandSpec } from "../../recipes/operand.ts";
import { operandAlpha, quantizeOperand, type OperandStream, type QuantizedOperand } from "../../recipes/quantize-operand.ts";
import { operandStats, type QuantStats } from "../../recipes/operand-stats.ts";
import { adamwUpdate, sumOfSquares, type AdamWConfig } from "../../optim/adamw.ts";
import { GemmPool } from "./gemm-pool.ts";
import { attentionBackward, attentionForward } from "./ops/attention.ts";
import { convSiluBackward, convSiluForward } from "./ops/causal-conv1d.ts";
import { gatedRmsnormBackward, gatedRmsnormForward } from "./ops/gated-rmsnorm.ts";
import { ssdBackward, ssdForward, ssdStatesShape } from "./ops/ssd-scan.ts";
import { crossEntropyForwardBackward } from "./ops/cross-entropy.ts";
import { embeddingBackward, embeddingForward } from "./ops/embedding.ts";
import { accumulate, addInto } from "./ops/residual.ts";
import { rmsnormBackward, rmsnormForward } from "./ops/rmsnorm.ts";
import { ropeBackward, ropeForward, ropeTable, type RopeTable } from "./ops/rope.ts";
import { assertFinite, transpose as transposeMatrix } from "../../quant/tensor-checks.ts";
import { roundBf16InPlace } from "../../formats/bf16.ts";
import { sqreluBackward, sqreluForward } from "./ops/sqrelu.ts";
import { swigluBackward, swigluForward } from "./ops/swiglu.ts";

export class CpuTensor implements Tensor {
  readonly size: number;
  constructor(readonly shape: readonly number[], readonly data: Float32Array) {
    this.size = data.length;
  }
}

export class CpuTokens implements Tokens {
  readonly size: number;
  constructor(readonly shape: readonly number[], readonly data: Int32Array) {
    this.size = data.length;
  }
}

/** `pending`: the name of a bf16Operand no op has filled yet */
export type CpuOperand = QuantizedOperand & { pending?: string; fp32Unused?: boolean };

export interface CpuBackendOptions {
  /** GEMM worker threads (default: FP4LM_THREADS or all cores) */
  threads?: number;
  /** hand out bf16Operand (default true): false casts every operand in quantize, as before */
  bf16Operands?: boolean;
  /**
   * share NVFP4 16x16-tiled operands between orientations (shareOperand; default true, environment
   * FP4LM_SHARE_TILES=0 turns it off): false quantizes Wᵀ again for Dgrad, with the same values.
   */
  shareTiles?: boolean;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export class CpuBackend implements Backend<CpuTensor, CpuTokens, CpuOperand> {
  readonly name = "cpu";
  private readonly pool: GemmPool;
  private readonly ropeTables = new Map<string, RopeTable>();
  private readonly bf16Operands: boolean;
  private readonly shareTiles: boolean;

  constructor(opts: CpuBackendOptions = {}) {
    this.pool = GemmPool.create(opts.threads);
    this.bf16Operands = opts.bf16Operands ?? true;
    this.shareTiles = opts.shareTiles ?? process.env.FP4LM_SHARE_TILES !== "0";
  }

  get threads(): number {
    return this.pool.threads;
  }

  alloc(shape: number[]): CpuTensor {
    return new CpuTensor([...shape], GemmPool.allocShared(numel(shape)));
  }

  fromArray(data: Float32Array, shape: number[]): CpuTensor {
    if (data.length !== numel(shape)) throw new RangeError(`fromArray: ${data.length} values for shape [${shape.join(", ")}]`);
    const t = this.alloc(shape);
    t.data.set(data);
    return t;
  }

  toArray(t: CpuTensor): Float32Array {
    return Float32Array.from(t.data);
  }

  tokens(ids: Int32Array, shape: number[]): CpuTokens {
    if (ids.length !== numel(shape)) throw new RangeError(`tokens: ${ids.length} ids for shape [${shape.join(", ")}]`);
    return new CpuTokens([...shape], ids);
  }

  zero(t: CpuTensor): void {
    t.data.fill(0);
  }

  zeroMany(ts: CpuTensor[]): void {
    for (const t of ts) t.data.fill(0);
  }

  copy(dst: CpuTensor, src: CpuTensor): void {
    dst.data.set(src.data);
  }

  quantize(x: CpuTensor, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream, name: string): CpuOperand {
    // (the GEMM pool copies non-shared operands into its shared scratch)
    return quantizeOperand(x.data, rows, cols, spec, transpose, stream, name);
  }

  /** the contract's pairs as two quantize calls (the oracle: the same operands the CUDA kernels make in one read) */
  quantizePair(x: CpuTensor, rows: number, cols: number, specA: OperandSpec, specB: OperandSpec, streamA: OperandStream, streamB: OperandStream, nameA: string, nameB: string): [CpuOperand, CpuOperand] | null {
    if (!pairable(specA, specB)) return null;
    return [this.quantize(x, rows, cols, specA, false, streamA, nameA), this.quantize(x, rows, cols, specB, true, streamB, nameB)];
  }

  shareOperand(op: CpuOperand, transpose: boolean): CpuOperand | null {
    const s = op.spec;
    if (!transposeInvariant(s) || (s.format === "nvfp4" ? !this.shareTiles : op.amax !== undefined)) return null;
    if (!transpose) return { ...op };
    return { ...op, rows: op.cols, cols: op.rows, values: transposeMatrix(op.values, [op.rows, op.cols]) };
  }

  releaseOperand(_op: CpuOperand): void {}

  bf16Operand(rows: number, cols: number, spec: OperandSpec, name: string): CpuOperand | null {
    if (!this.bf16Operands || spec.format !== "bf16" || spec.rounding !== "rtn" || spec.rht) return null;
    return { values: new Float32Array(rows * cols), rows, cols, spec, pending: name };
  }

  /** what quantize's bf16 branch does to x, into the operand an op was handed: check, copy, round */
  private fillBf16(op: CpuOperand | null | undefined, x: CpuTensor, what: string): void {
    if (!op) return;
    if (op.pending === undefined) throw new Error(`${what}: its BF16 operand was filled already`);
    if (op.rows * op.cols !== x.size) throw new RangeError(`${what}: a BF16 operand of ${op.rows}x${op.cols} for ${x.size} values`);
    assertFinite(x.data, [op.rows, op.cols], op.pending);
    op.values.set(x.data);
    // the caller declared the FP32 output unread (the CUDA kernels skip writing it): poison it, so a reader shows
    if (op.fp32Unused) x.data.fill(NaN);
    roundBf16InPlace(op.values);
    delete op.pending;
  }

  quantStats(x: CpuTensor, rows: number, cols: number, transpose: boolean, stream: OperandStream, op: CpuOperand): QuantStats {
    return operandStats(x.data, rows, cols, op.spec, transpose, stream);
  }

  gemm(c: CpuTensor, a: CpuOperand, b: CpuOperand, accumulate: boolean, addend?: CpuTensor | null): void {
    if (a.cols !== b.cols) throw new RangeError(`gemm: operands disagree on K: A is ${a.rows}x${a.cols}, B is ${b.rows}x${b.cols}`);
    if (c.size !== a.rows * b.rows) throw new RangeError(`gemm: C has ${c.size} elements, need ${a.rows}x${b.rows}`);
    checkAddend(c, accumulate, addend);
    for (const o of [a, b]) if (o.pending !== undefined) throw new Error(`gemm: the BF16 operand ${o.pending} was never filled (bf16Operand without its op)`);
    this.pool.gemm(a.values, b.values, c.data, {
      M: a.rows, N: b.rows, K: a.cols, transA: false, transB: true, alpha: operandAlpha(a, b), beta: accumulate ? 1 : 0,
    });
    if (addend) this.accumulate(c, addend);
  }

  rmsnormForward(out: CpuTensor, rstd: CpuTensor, x: CpuTensor, w: CpuTensor, N: number, C: number, eps: number, bf16?: CpuOperand | null): void {
    rmsnormForward(out.data, rstd.data, x.data, w.data, N, C, eps);
    this.fillBf16(bf16, out, "rmsnormForward");
  }
  rmsnormBackward(dx: CpuTensor, dw: CpuTensor, dout: CpuTensor, x: CpuTensor, w: CpuTensor, rstd: CpuTensor, N: number, C: number, residual?: CpuTensor | null, bf16?: CpuOperand | null): void {
    if (residual && residual !== dx && residual.size !== dx.size) throw new RangeError(`rmsnormBackward: the residual has ${residual.size} elements, dx ${dx.size}`);
    const g = residual === dx ? new Float32Array(dx.size) : dx.data;
    rmsnormBackward(g, dw.data, dout.data, x.data, w.data, rstd.data, N, C);
    if (residual) addInto(dx.data, residual.data, g, dx.size); // what add(dx, residual, g) computes
    this.fillBf16(bf16, dx, "rmsnormBackward");
  }

  private rope(T: number, HS: number, theta: number): RopeTable {
    const key = `${T}/${HS}/${theta}`;
    let t = this.ropeTables.get(key);
    if (!t) this.ropeTables.set(key, (t = ropeTable(T, HS, theta)));
    return t;
  }
  ropeForward(x: CpuTensor, B: number, T: number, NH: number, HS: number, theta: number): void {
    ropeForward(x.data, x.data, this.rope(T, HS, theta), B, T, NH, HS);
  }
  ropeBackward(dx: CpuTensor, B: number, T: number, NH: number, HS: number, theta: number): void {
    ropeBackward(dx.data, dx.data, this.rope(T, HS, theta), B, T, NH, HS);
  }
  qkvSplitRope(qkv: CpuTensor, q: CpuTensor, k: CpuTensor, v: CpuTensor, B: number, T: number, NH: number, NKV: number, HS: number, theta: number): void {
    this.splitColumns(qkv, [q, k, v], B * T, [NH * HS, NKV * HS, NKV * HS]);
    this.ropeForward(q, B, T, NH, HS, theta);
    this.ropeForward(k, B, T, NKV, HS, theta);
  }
  qkvRopeConcat(dqkv: CpuTensor, dq: CpuTensor, dk: CpuTensor, dv: CpuTensor, B: number, T: number, NH: number, NKV: number, HS: number, theta: number, bf16?: CpuOperand | null): void {
    this.ropeBackward(dq, B, T, NH, HS, theta);
    this.ropeBackward(dk, B, T, NKV, HS, theta);
    this.concatColumns(dqkv, [dq, dk, dv], B * T, [NH * HS, NKV * HS, NKV * HS]);
    this.fillBf16(bf16, dqkv, "qkvRopeConcat");
  }

  attentionPrecision(): string {
    return "fp32 (the CPU oracle, probabilities materialised)";
  }

  attentionSavedShape(B: number, T: number, NH: number): number[] {
    return [B, NH, T, T];
  }
  attentionForward(out: CpuTensor, probs: CpuTensor, q: CpuTensor, k: CpuTensor, v: CpuTensor, B: number, T: number, NH: number, NKV: number, HS: number, bf16?: CpuOperand | null): void {
    attentionForward(out.data, probs.data, q.data, k.data, v.data, B, T, NH, NKV, HS);
    this.fillBf16(bf16, out, "attentionForward");
  }
  attentionBackward(dq: CpuTensor, dk: CpuTensor, dv: CpuTensor, dout: CpuTensor, q: CpuTensor, k: CpuTensor, v: CpuTensor, _out: CpuTensor, probs: CpuTensor, B: number, T: number, NH: number, NKV: number, HS: number): void {
    attentionBackward(dq.data, dk.data, dv.data, dout.data, q.data, k.data, v.data, probs.data, B, T, NH, NKV, HS);
  }

  sqreluForward(out: CpuTensor, x: CpuTensor, bf16?: CpuOperand | null): void {
    sqreluForward(out.data, x.data, x.size);
    this.fillBf16(bf16, out, "sqreluForward");
  }
  sqreluBackward(dx: CpuTensor, dout: CpuTensor, x: CpuTensor, bf16?: CpuOperand | null): void {
    sqreluBackward(dx.data, dout.data, x.data, x.size);
    this.fillBf16(bf16, dx, "sqreluBackward");
  }
  swigluForward(out: CpuTensor, gateUp: CpuTensor, rows: number, F: number): void {
    swigluForward(out.data, gateUp.data, rows, F);
  }
  swigluBackward(dGateUp: CpuTensor, dout: CpuTensor, gateUp: CpuTensor, rows: number, F: number): void {
    swigluBackward(dGateUp.data, dout.data, gateUp.data, rows, F);
  }

  convSiluForward(out: CpuTensor, x: CpuTensor, w: CpuTensor, bias: CpuTensor, B: number, T: number, Cc: number, W: number): void {
    convSiluForward(out.data, x.data, w.data, bias.data, B, T, Cc, W);
  }
  convSiluBackward(dx: CpuTensor, dw: CpuTensor, dbias: CpuTensor, dout: CpuTensor, x: CpuTensor, w: CpuTensor, bias: CpuTensor, B: number, T: number, Cc: number, W: number): void {
    convSiluBackward(dx.data, dw.data, dbias.data, dout.data, x.data, w.data, bias.data, B, T, Cc, W);
  }
  ssdSavedShape(d: SsdDims): number[] {
    return ssdStatesShape(d);
  }
  ssdForward(y: CpuTensor, saved: CpuTensor, x: CpuTensor, dtRaw: CpuTensor, aLog: CpuTensor, dtBias: CpuTensor, D: CpuTensor, Bm: CpuTensor, Cm: CpuTensor, d: SsdDims): void {
    ssdForward(y.data, saved.data, x.data, dtRaw.data, aLog.data, dtBias.data, D.data, Bm.data, Cm.data, d);
  }
  ssdBackward(
    dx: CpuTensor, ddtRaw: CpuTensor, daLog: CpuTensor, ddtBias: CpuTensor, dD: CpuTensor, dB: CpuTensor, dC: CpuTensor,
    dy: CpuTensor, x: CpuTensor, dtRaw: CpuTensor, aLog: CpuTensor, dtBias: CpuTensor, D: CpuTensor, Bm: CpuTensor, Cm: CpuTensor, saved: CpuTensor, d: SsdDims,
  ): void {
    ssdBackward(dx.data, ddtRaw.data, daLog.data, ddtBias.data, dD.data, dB.data, dC.data, dy.data, x.data, dtRaw.data, aLog.data, dtBias.data, D.data, Bm.data, Cm.data, saved.data, d);
  }
  gatedRmsnormForward(out: CpuTensor, rstd: CpuTensor, y: CpuTensor, z: CpuTensor, w: CpuTensor, rows: number, D: number, groupSize: number, eps: number): void {
    gatedRmsnormForward(out.data, rstd.data, y.data, z.data, w.data, rows, D, groupSize, eps);
  }
  gatedRmsnormBackward(dy: CpuTensor, dz: CpuTensor, dw: CpuTensor, dout: CpuTensor, y: CpuTensor, z: CpuTensor, w: CpuTensor, rstd: CpuTensor, rows: number, D: number, groupSize: number): void {
    gatedRmsnormBackward(dy.data, dz.data, dw.data, dout.data, y.data, z.data, w.data, rstd.data, rows, D, groupSize);
  }

  embeddingForward(out: CpuTensor, tokens: CpuTokens, table: CpuTensor, V: number, C: number): void {
    embeddingForward(out.data, tokens.data, table.data, tokens.size, C, V);
  }
  embeddingBackward(dtable: CpuTensor, dout: CpuTensor, tokens: CpuTokens, V: number, C: number): void {
    embeddingBackward(dtable.data, dout.data, tokens.data, tokens.size, C, V);
  }

  crossEntropy(losses: CpuTensor, dlogits: CpuTensor | null, logits: CpuTensor, targets: CpuTokens, V: number, scale: number, bf16?: CpuOperand | null): number {
    if (bf16 && !dlogits) throw new RangeError("crossEntropy: a BF16 operand of dlogits needs dlogits");
    const loss = crossEntropyForwardBackward(losses.data, dlogits ? dlogits.data : null, logits.data, targets.data, targets.size, V, scale);
    if (dlogits) this.fillBf16(bf16, dlogits, "crossEntropy");
    return loss;
  }

  /** computed at once: the reader returns it */
  crossEntropyQueued(losses: CpuTensor, dlogits: CpuTensor | null, logits: CpuTensor, targets: CpuTokens, V: number, scale: number, bf16?: CpuOperand | null): () => number {
    const loss = this.crossEntropy(losses, dlogits, logits, targets, V, scale, bf16);
    return () => loss;
  }

  add(out: CpuTensor, a: CpuTensor, b: CpuTensor, bf16?: CpuOperand | null): void {
    addInto(out.data, a.data, b.data, out.size);
    this.fillBf16(bf16, out, "add");
  }
  accumulate(dst: CpuTensor, src: CpuTensor): void {
    accumulate(dst.data, src.data, dst.size);
  }

  splitColumns(x: CpuTensor, parts: CpuTensor[], rows: number, widths: number[]): void {
    const W = widths.reduce((a, b) => a + b, 0);
    for (let r = 0; r < rows; r++) {
      let off = 0;
      parts.forEach((p, i) => {
        p.data.set(x.data.subarray(r * W + off, r * W + off + widths[i]), r * widths[i]);
        off += widths[i];
      });
    }
  }
  concatColumns(out: CpuTensor, parts: CpuTensor[], rows: number, widths: number[]): void {
    const W = widths.reduce((a, b) => a + b, 0);
    for (let r = 0; r < rows; r++) {
      let off = 0;
      parts.forEach((p, i) => {
        out.data.set(p.data.subarray(r * widths[i], (r + 1) * widths[i]), r * W + off);
        off += widths[i];
      });
    }
  }

  sumSquares(g: CpuTensor): number {
    return sumOfSquares(g.data);
  }
  sumSquaresMany(gs: CpuTensor[]): Float64Array {
    return Float64Array.from(gs, (g) => sumOfSquares(g.data));
  }

  adamw(param: CpuTensor, grad: CpuTensor, m: CpuTensor, v: CpuTensor, lr: number, t: number, cfg: AdamWConfig, decay: boolean, gradScale: number): void {
    adamwUpdate(param.data, grad.data, { m: m.data, v: v.data }, lr, t, cfg, decay, gradScale);
  }
  adamwMany(params: CpuTensor[], grads: CpuTensor[], ms: CpuTensor[], vs: CpuTensor[], decay: boolean[], lr: number, t: number, cfg: AdamWConfig, gradScale: number): void {
    params.forEach((p, i) => this.adamw(p, grads[i], ms[i], vs[i], lr, t, cfg, decay[i], gradScale));
  }

  close(): void {
    this.pool.close();
  }
}
