/**
 * RMSNorm module (pre-norm): out = x / sqrt(mean(x²) + eps) · g, gain g initialised to 1, no
 * bias; never quantized. As HF LlamaRMSNorm (eps inside the sqrt). Keeps x and 1/rms for the
 * backward pass.
 */
import type { Operand, Tensor } from "../backends/backend.ts";
import type { RunContext } from "./context.ts";
import { createParam, type Param } from "./param.ts";

export class RMSNorm {
  readonly weight: Param;
  private readonly rstd: Tensor;
  private x: Tensor | null = null;

  constructor(private readonly ctx: RunContext, readonly name: string, readonly C: number, readonly N: number, readonly eps: number) {
    this.weight = createParam(ctx.be, `${name}.weight`, [C], { kind: "ones" }, ctx.seed, false);
    this.rstd = ctx.be.alloc([N]);
  }

  /** out, x (N, C); `bf16`: the next GEMM's operand of out, filled here (Linear.bf16Input) */
  forward(out: Tensor, x: Tensor, bf16: Operand | null = null): void {
    this.x = x;
    this.ctx.be.rmsnormForward(out, this.rstd, x, this.weight.data, this.N, this.C, this.eps, bf16);
  }

  /**
   * dx ← ∂L/∂x (+ residual: the gradient arriving through the residual connection around this
   * norm's branch, added in the same pass); `bf16`: the BF16 operand of dx, filled here
   */
  backward(dx: Tensor, dout: Tensor, residual: Tensor | null = null, bf16: Operand | null = null): void {
    if (!this.x) throw new Error(`${this.name}: backward before forward`);
    this.ctx.be.rmsnormBackward(dx, this.weight.grad, dout, this.x, this.weight.data, this.rstd, this.N, this.C, residual, bf16);
  }
}
