/**
 * The feed-forward block of the paper's models: fc1 (C → F), squared ReLU, fc2 (F → C); non-gated,
 * no biases (arXiv 2509.25149 App. A.3). Both linears follow the recipe.
 */
import type { Tensor } from "../backends/backend.ts";
import type { RunContext } from "./context.ts";
import { Linear } from "./linear.ts";
import type { ModelConfig } from "./model-config.ts";

export class MLP {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly h: Tensor;
  private readonly a: Tensor;
  private readonly dh: Tensor;
  private readonly da: Tensor;

  constructor(private readonly ctx: RunContext, name: string, cfg: ModelConfig, block: number, firstLinear: number, private readonly BT: number) {
    const { dModel: C, dFF: F, nLayers } = cfg;
    this.fc1 = new Linear(ctx, `${name}.fc1`, C, F, firstLinear, block, nLayers, 0.02);
    this.fc2 = new Linear(ctx, `${name}.fc2`, F, C, firstLinear + 1, block, nLayers, 0.02 / Math.sqrt(2 * nLayers));
    const be = ctx.be;
    this.h = be.alloc([BT, F]);
    this.a = be.alloc([BT, F]);
    this.dh = be.alloc([BT, F]);
    this.da = be.alloc([BT, F]);
  }

  forward(out: Tensor, x: Tensor): void {
    this.fc1.forward(this.h, x, this.BT);
    this.ctx.be.sqreluForward(this.a, this.h);
    this.fc2.forward(out, this.a, this.BT);
  }

  backward(dx: Tensor, dout: Tensor): void {
    this.fc2.backward(this.da, dout);
    this.ctx.be.sqreluBackward(this.dh, this.da, this.h);
    this.fc1.backward(dx, this.dh);
  }
}
