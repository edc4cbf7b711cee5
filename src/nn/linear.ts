/**
 * Linear layer y = x·Wᵀ (no bias) with its three GEMMs side by side, each operand quantized as
 * the recipe's plan for this layer says (the paper's recipe, arXiv 2509.25149 §2):
 *   Fprop  y  (N, out) = X (N, in)        · W (out, in)ᵀ
 *   Dgrad  dX (N, in)  = dY (N, out)      · [Wᵀ (in, out)]ᵀ      (same 16x16-tiled W, transposed)
 *   Wgrad  dW (out,in) += [dYᵀ (out, N)]  · [Xᵀ (in, N)]ᵀ        (reduction over tokens, RHT there)
 * Every operand is quantized from the high-precision source (never re-quantized). The layer asks
 * for specs by role; it never names a format. Master weight and gradient are FP32. On telemetry
 * steps (RunContext.telemetry) it also measures each operand it quantized (nn/telemetry.ts).
 * Where two GEMMs take the same tensor in formats whose values do not depend on the orientation
 * (operand.ts transposeInvariant: bf16/fp32 rounded element by element — X in Fprop and Wgrad, W in
 * Fprop and Dgrad, dY in Dgrad and Wgrad — and NVFP4 with 16x16 tiles, RTN: the recipe's W in Fprop
 * and Dgrad), the second reuses the first's operand read transposed (Backend.shareOperand): the
 * same values, one quantize pass instead of two.
 * Where X (Fprop) or dY (Dgrad) is such a BF16 operand, the op that writes the tensor can write the
 * operand too (Backend.bf16Operand): the module owning that op asks `bf16Input` / `bf16Grad` for it,
 * hands it to the op, and the GEMM takes it instead of casting x or dy again. A module whose
 * tensor has no reader but this layer says so (`sole`); where this layer's GEMMs then never read
 * the FP32 tensor either (Wgrad shares the operand, or no backward follows), the operand is marked
 * fp32Unused and the op may skip writing the FP32 tensor; a later need for it is an error.
 */
import type { Operand, Tensor } from "../backends/backend.ts";
import type { LayerSite } from "../recipes/recipe.ts";
import { describeOperand, sameValuesTransposed, type GemmPlan, type OperandSpec } from "../recipes/operand.ts";
import type { RunContext } from "./context.ts";
import { createParam, type Param } from "./param.ts";

const GEMMS = { fprop: 0, dgrad: 1, wgrad: 2 } as const;

/** values are the tensor rounded element by element: the same for x and xᵀ, in every stream */
const elementwise = (s: OperandSpec) => (s.format === "bf16" || s.format === "fp32") && s.rounding === "rtn" && !s.rht;
const shareable = sameValuesTransposed;

type Source = [Tensor, number, number, boolean];

export class Linear {
  readonly weight: Param;
  readonly site: LayerSite;
  private x: Tensor | null = null;
  private n = 0;
  /**
   * from the forward, for the backward: Xᵀ for Wgrad (shared from Fprop's operand, or made with it
   * by quantizePair: then for the Wgrad spec itself, with Wgrad's stream) and Wᵀ for Dgrad (shareable specs only)
   */
  private savedXt: Operand | null = null;
  private savedWt: Operand | null = null;
  /** operands a producing op filled for the next forward's X and backward's dY (bf16Input, bf16Grad), with their tensor */
  private givenX: { t: Tensor; op: Operand } | null = null;
  private givenDy: { t: Tensor; op: Operand } | null = null;
  /** the last forward's x, or the dy handed to bf16Grad, was left unwritten by its producer (fp32Unused) */
  private xUnwritten = false;

  constructor(
    private readonly ctx: RunContext,
    readonly name: string,
    readonly inF: number,
    readonly outF: number,
    /** global index of this linear layer (its stochastic-rounding streams) */
    readonly index: number,
    block: number,
    nBlocks: number,
    initStd: number,
  ) {
    this.site = { name, block, nBlocks };
    this.weight = createParam(ctx.be, `${name}.weight`, [outF, inF], { kind: "normal", std: initStd }, ctx.seed, true);
  }

  private stream(g: keyof typeof GEMMS, slot: 0 | 1) {
    return { seed: this.ctx.seed, gemmId: this.ctx.gemmId(this.index, GEMMS[g]), slot };
  }

  /**
   * One GEMM. `given` operands replace quantizing a or b; `keep` asks for a transposed handle to
   * a's or b's operand for a later GEMM (null where the backend cannot share it).
   */
  private run(g: keyof typeof GEMMS, plan: GemmPlan, out: Tensor, a: Source, b: Source, acc: boolean, given: (Operand | null)[] = [], keep: boolean[] = [], addend: Tensor | null = null): (Operand | null)[] {
    const be = this.ctx.be;
    const sa = this.stream(g, 0), sb = this.stream(g, 1);
    const qa = given[0] ?? be.quantize(a[0], a[1], a[2], plan.a, a[3], sa, `${this.name}.${g}.${plan.a.role}`);
    const qb = given[1] ?? be.quantize(b[0], b[1], b[2], plan.b, b[3], sb, `${this.name}.${g}.${plan.b.role}`);
    const tel = this.ctx.telemetry;
    if (tel && this.ctx.micro === 0 && this.ctx.training) {
      tel.add(this.name, g, plan.a, be.quantStats(a[0], a[1], a[2], a[3], sa, qa));
      tel.add(this.name, g, plan.b, be.quantStats(b[0], b[1], b[2], b[3], sb, qb));
    }
    const kept = [keep[0] ? be.shareOperand(qa, true) : null, keep[1] ? be.shareOperand(qb, true) : null];
    be.gemm(out, qa, qb, acc, addend);
    return kept;
  }

  /** operands are shared only while training and off telemetry steps (telemetry measures each quantize) */
  private get sharing(): boolean {
    return this.ctx.training && !this.ctx.telemetry;
  }

  /**
   * The BF16 operand of x (N, in) for the next forward's Fprop, EMPTY, for the op that writes x to
   * fill (Backend.bf16Operand); null where Fprop's X is not BF16 rounded element by element, on
   * telemetry steps (which measure each quantize) and where the backend casts. forward(y, x) then
   * takes it instead of quantizing x.
   */
  bf16Input(x: Tensor, N: number, sole = false): Operand | null {
    this.givenX = this.give(this.givenX, x, N, this.inF, "fprop", sole);
    return this.givenX?.op ?? null;
  }

  /** The same for dy (N, out), the next backward's Dgrad (and, shared, Wgrad) gradient operand; N is the last forward's. */
  bf16Grad(dy: Tensor, sole = false): Operand | null {
    this.givenDy = this.give(this.givenDy, dy, this.n, this.outF, "dgrad", sole);
    return this.givenDy?.op ?? null;
  }

  /** `sole`: the caller reads t no more; then the op may skip t's FP32 values if this layer will not read them */
  private give(old: { t: Tensor; op: Operand } | null, t: Tensor, rows: number, cols: number, g: "fprop" | "dgrad", sole: boolean): { t: Tensor; op: Operand } | null {
    const be = this.ctx.be;
    if (old) be.releaseOperand(old.op);
    const plan = this.ctx.plan(this.site);
    const spec = plan[g].a;
    if (this.ctx.telemetry || !be.bf16Operand || !elementwise(spec) || spec.format !== "bf16" || rows * cols !== t.size) return null;
    const op = be.bf16Operand(rows, cols, spec, `${this.name}.${g}.${spec.role}`);
    if (!op) return null;
    // who else reads t in FP32: Wgrad (unless it takes this operand transposed); for X nothing without a backward
    const wgradShares = this.sharing && shareable(spec, g === "fprop" ? plan.wgrad.b : plan.wgrad.a);
    if (sole && (wgradShares || (g === "fprop" && !this.ctx.training))) op.fp32Unused = true;
    return { t, op };
  }

  /** the operand bf16Input/bf16Grad handed out for t, if it is the one the plan wants now (any other is freed) */
  private takeGiven(given: { t: Tensor; op: Operand } | null, t: Tensor, want: OperandSpec): Operand | null {
    if (!given) return null;
    if (given.t === t && shareable(given.op.spec, want)) return given.op;
    this.ctx.be.releaseOperand(given.op);
    if (given.op.fp32Unused) throw new Error(`${this.name}: the operand handed out for this tensor was not taken, and its producer skipped the FP32 values (fp32Unused); internal error`);
    return null;
  }

  /** the FP32 source of an operand no shared one replaced: refused where its producer skipped writing it */
  private fp32(t: Tensor, unwritten: boolean, what: string): Tensor {
    if (unwritten) throw new Error(`${this.name}: ${what} must be quantized from FP32, but its producer skipped the FP32 values (fp32Unused); internal error`);
    return t;
  }

  /**
   * a saved operand if it is still what the plan wants now — the same values (shareable) or made for
   * that very spec (a quantizePair's Xᵀ) — else null (and it is freed)
   */
  private take(op: Operand | null, want: OperandSpec): Operand | null {
    if (op && (shareable(op.spec, want) || describeOperand(op.spec) === describeOperand(want))) return op;
    if (op) this.ctx.be.releaseOperand(op);
    return null;
  }

  /**
   * y (N, out) = x (N, in) · Wᵀ (+ residual (N, out), not y: a residual connection, added in the
   * GEMM's epilogue where the backend can); keeps x (and, where shareable, its operand and W's) for
   * the backward pass.
   */
  forward(y: Tensor, x: Tensor, N: number, residual: Tensor | null = null): void {
    // what a forward without a backward (evaluation) kept is dropped here
    for (const op of [this.savedXt, this.savedWt]) if (op) this.ctx.be.releaseOperand(op);
    this.x = x;
    this.n = N;
    const plan = this.ctx.plan(this.site);
    const keep = [this.sharing && shareable(plan.fprop.a, plan.wgrad.b), this.sharing && shareable(plan.fprop.b, plan.dgrad.b)];
    let gx = this.takeGiven(this.givenX, x, plan.fprop.a);
    this.givenX = null;
    this.xUnwritten = gx?.fp32Unused ?? false;
    // Fprop's X and Wgrad's Xᵀ from one read of x where the backend can (Xᵀ then waits for the backward)
    const be = this.ctx.be;
    const pair = !gx && !keep[0] && this.sharing && be.quantizePair
      ? be.quantizePair(x, N, this.inF, plan.fprop.a, plan.wgrad.b, this.stream("fprop", 0), this.stream("wgrad", 1), `${this.name}.fprop.${plan.fprop.a.role}`, `${this.name}.wgrad.${plan.wgrad.b.role}`)
      : null;
    if (pair) gx = pair[0];
    [this.savedXt, this.savedWt] = this.run("fprop", plan.fprop, y, [x, N, this.inF, false], [this.weight.data, this.outF, this.inF, false], false, [gx], keep, residual);
    if (pair) this.savedXt = pair[1];
  }

  /** dx (N, in) = dy · W (skipped when dx is null); W.grad += dyᵀ · x. */
  backward(dx: Tensor | null, dy: Tensor): void {
    if (!this.x) throw new Error(`${this.name}: backward before forward`);
    const N = this.n;
    const plan = this.ctx.plan(this.site);
    const wt = this.take(this.savedWt, plan.dgrad.b), xt = this.take(this.savedXt, plan.wgrad.b);
    this.savedWt = this.savedXt = null;
    let gdy = this.takeGiven(this.givenDy, dy, plan.dgrad.a);
    this.givenDy = null;
    const dyUnwritten = gdy?.fp32Unused ?? false;
    let dyt: Operand | null = null;
    const shareDy = this.sharing && shareable(plan.dgrad.a, plan.wgrad.a);
    const be = this.ctx.be;
    if (dx && !gdy && !shareDy && this.sharing && be.quantizePair) {
      // dY for Dgrad and dYᵀ for Wgrad from one read of dy where the backend can (the same operands as two quantize calls)
      const pair = be.quantizePair(dy, N, this.outF, plan.dgrad.a, plan.wgrad.a, this.stream("dgrad", 0), this.stream("wgrad", 0),
        `${this.name}.dgrad.${plan.dgrad.a.role}`, `${this.name}.wgrad.${plan.wgrad.a.role}`);
      if (pair) [gdy, dyt] = pair;
    }
    if (dx) {
      const [kept] = this.run("dgrad", plan.dgrad, dx, [dy, N, this.outF, false], [this.weight.data, this.outF, this.inF, true], false, [gdy, wt], [shareDy]);
      dyt ??= kept;
    } else {
      // no Dgrad: the filled dY serves Wgrad as dYᵀ where the formats agree
      if (gdy && shareable(gdy.spec, plan.wgrad.a)) dyt = this.ctx.be.shareOperand(gdy, true);
      for (const op of [gdy, wt]) if (op) this.ctx.be.releaseOperand(op);
    }
    const dySrc = dyt ? dy : this.fp32(dy, dyUnwritten, "Wgrad's dYᵀ"), xSrc = xt ? this.x : this.fp32(this.x, this.xUnwritten, "Wgrad's Xᵀ");
    this.run("wgrad", plan.wgrad, this.weight.grad, [dySrc, N, this.outF, true], [xSrc, N, this.inF, true], true, [dyt, xt]);
  }
}
