/**
 * Linear layer y = x·Wᵀ (no bias) with its three GEMMs side by side, each operand quantized as
 * the recipe's plan for this layer says (the paper's recipe, arXiv 2509.25149 §2):
 *   Fprop  y  (N, out) = X (N, in)        · W (out, in)ᵀ
 *   Dgrad  dX (N, in)  = dY (N, out)      · [Wᵀ (in, out)]ᵀ      (same 16x16-tiled W, transposed)
 *   Wgrad  dW (out,in) += [dYᵀ (out, N)]  · [Xᵀ (in, N)]ᵀ        (reduction over tokens, RHT there)
 * Every operand is quantized from the high-precision source (never re-quantized). The layer asks
 * for specs by role; it never names a format. Master weight and gradient are FP32. On telemetry
 * steps (RunContext.telemetry) it also measures each operand it quantized (nn/telemetry.ts).
 */
import type { Tensor } from "../backends/backend.ts";
import type { LayerSite } from "../recipes/recipe.ts";
import type { GemmPlan } from "../recipes/operand.ts";
import type { RunContext } from "./context.ts";
import { createParam, type Param } from "./param.ts";

const GEMMS = { fprop: 0, dgrad: 1, wgrad: 2 } as const;

export class Linear {
  readonly weight: Param;
  readonly site: LayerSite;
  private x: Tensor | null = null;
  private n = 0;

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

  private run(g: keyof typeof GEMMS, plan: GemmPlan, out: Tensor, a: [Tensor, number, number, boolean], b: [Tensor, number, number, boolean], acc: boolean) {
    const be = this.ctx.be;
    const sa = this.stream(g, 0), sb = this.stream(g, 1);
    const qa = be.quantize(a[0], a[1], a[2], plan.a, a[3], sa, `${this.name}.${g}.${plan.a.role}`);
    const qb = be.quantize(b[0], b[1], b[2], plan.b, b[3], sb, `${this.name}.${g}.${plan.b.role}`);
    const tel = this.ctx.telemetry;
    if (tel && this.ctx.micro === 0 && this.ctx.training) {
      tel.add(this.name, g, plan.a, be.quantStats(a[0], a[1], a[2], a[3], sa, qa));
      tel.add(this.name, g, plan.b, be.quantStats(b[0], b[1], b[2], b[3], sb, qb));
    }
    be.gemm(out, qa, qb, acc);
  }

  /** y (N, out) = x (N, in) · Wᵀ; keeps x for the backward pass. */
  forward(y: Tensor, x: Tensor, N: number): void {
    this.x = x;
    this.n = N;
    const plan = this.ctx.plan(this.site);
    this.run("fprop", plan.fprop, y, [x, N, this.inF, false], [this.weight.data, this.outF, this.inF, false], false);
  }

  /** dx (N, in) = dy · W (skipped when dx is null); W.grad += dyᵀ · x. */
  backward(dx: Tensor | null, dy: Tensor): void {
    if (!this.x) throw new Error(`${this.name}: backward before forward`);
    const N = this.n;
    const plan = this.ctx.plan(this.site);
    if (dx) this.run("dgrad", plan.dgrad, dx, [dy, N, this.outF, false], [this.weight.data, this.outF, this.inF, true], false);
    this.run("wgrad", plan.wgrad, this.weight.grad, [dy, N, this.outF, true], [this.x, N, this.inF, true], true);
  }
}
