/**
 * The feed-forward block. The paper's models (arXiv 2509.25149 App. A.3): fc1 (C → F), squared
 * ReLU, fc2 (F → C); non-gated, no biases. With `mlp: "swiglu"`, Llama's gated MLP (Shazeer 2020,
 * arXiv 2002.05202): fc1 is the gate and up projections fused (C → 2F, rows [0, F) gate, [F, 2F)
 * up, as the fused qkv of attention.ts), y = silu(gate)·up, fc2 (F → C); the HF export splits
 * fc1 into gate_proj and up_proj. Both linears follow the recipe.
 */
import type { Tensor } from "../backends/backend.ts";
import type { RunContext } from "./context.ts";
import { Linear } from "./linear.ts";
import { mlpKind, type ModelConfig } from "./model-config.ts";

export class MLP {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly gated: boolean;
  private readonly F: number;
  // (B·T, F) for squared ReLU, (B·T, 2F) gate|up for SwiGLU
  private readonly h: Tensor;
  private readonly dh: Tensor;
  // (B·T, F)
  private readonly a: Tensor;
  private readonly da: Tensor;

  constructor(private readonly ctx: RunContext, name: string, cfg: ModelConfig, block: number, firstLinear: number, private readonly BT: number) {
    const { dModel: C, dFF: F, nLayers } = cfg;
    this.gated = mlpKind(cfg) === "swiglu";
    this.F = F;
    const H = this.gated ? 2 * F : F;
    this.fc1 = new Linear(ctx, `${name}.fc1`, C, H, firstLinear, block, nLayers, 0.02);
    this.fc2 = new Linear(ctx, `${name}.fc2`, F, C, firstLinear + 1, block, nLayers, 0.02 / Math.sqrt(2 * nLayers));
    const be = ctx.be;
    this.h = be.alloc([BT, H]);
    this.dh = be.alloc([BT, H]);
    this.a = be.alloc([BT, F]);
    this.da = be.alloc([BT, F]);
  }

  /** out (BT, C) ← mlp(x) (+ residual, added by fc2's GEMM) */
  forward(out: Tensor, x: Tensor, residual: Tensor | null = null): void {
    const be = this.ctx.be;
    this.fc1.forward(this.h, x, this.BT);
    if (this.gated) be.swigluForward(this.a, this.h, this.BT, this.F);
    else be.sqreluForward(this.a, this.h, this.fc2.bf16Input(this.a, this.BT, true));
    this.fc2.forward(out, this.a, this.BT, residual);
  }

  backward(dx: Tensor, dout: Tensor): void {
    const be = this.ctx.be;
    this.fc2.backward(this.da, dout);
    if (this.gated) be.swigluBackward(this.dh, this.da, this.h, this.BT, this.F);
    else be.sqreluBackward(this.dh, this.da, this.h, this.fc1.bf16Grad(this.dh, true));
    this.fc1.backward(dx, this.dh);
  }
}
