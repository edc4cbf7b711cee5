/**
 * One pre-norm Transformer block: x + Attention(RMSNorm(x)), then + MLP(RMSNorm(·)).
 */
import type { Operand, Tensor } from "../backends/backend.ts";
import { Attention } from "./attention.ts";
import type { RunContext } from "./context.ts";
import type { Linear } from "./linear.ts";
import { MLP } from "./mlp.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Param } from "./param.ts";
import { RMSNorm } from "./rmsnorm.ts";

export class Block {
  readonly norm1: RMSNorm;
  readonly attn: Attention;
  readonly norm2: RMSNorm;
  readonly mlp: MLP;
  // (B·T, C) activations and gradients
  private readonly n1: Tensor;
  private readonly r1: Tensor;
  private readonly n2: Tensor;
  private readonly dn: Tensor;
  private readonly dr1: Tensor;
  private readonly BT: number;

  constructor(ctx: RunContext, readonly index: number, cfg: ModelConfig, B: number, T: number) {
    const name = `blocks.${index}`, BT = B * T, C = cfg.dModel;
    this.norm1 = new RMSNorm(ctx, `${name}.norm1`, C, BT, cfg.normEps);
    this.attn = new Attention(ctx, `${name}.attn`, cfg, index, index * 4, B, T);
    this.norm2 = new RMSNorm(ctx, `${name}.norm2`, C, BT, cfg.normEps);
    this.mlp = new MLP(ctx, `${name}.mlp`, cfg, index, index * 4 + 2, BT);
    const be = ctx.be;
    this.BT = BT;
    [this.n1, this.r1, this.n2, this.dn, this.dr1] = Array.from({ length: 5 }, () => be.alloc([BT, C]));
  }

  get linears(): Linear[] {
    return [this.attn.qkv, this.attn.proj, this.mlp.fc1, this.mlp.fc2];
  }

  /** the linear layer whose dY is this block's dout (its BF16 operand can come from the op writing dout: ModelBlock.backward's bf16) */
  get outputLinear(): Linear {
    return this.mlp.fc2;
  }

  /** parameters in checkpoint order */
  get params(): Param[] {
    return [this.norm1.weight, this.attn.qkv.weight, this.attn.proj.weight, this.norm2.weight, this.mlp.fc1.weight, this.mlp.fc2.weight];
  }

  /** out (B·T, C) ← x */
  forward(out: Tensor, x: Tensor): void {
    this.norm1.forward(this.n1, x, this.attn.qkv.bf16Input(this.n1, this.BT, true));
    this.attn.forward(this.r1, this.n1, x); // r1 = x + attn(n1): the residual added in proj's GEMM
    this.norm2.forward(this.n2, this.r1, this.mlp.fc1.bf16Input(this.n2, this.BT, true));
    this.mlp.forward(out, this.n2, this.r1); // out = r1 + mlp(n2), in fc2's GEMM
  }

  /** dx ← dout (both (B·T, C)); dx may not alias dout; `bf16`: the BF16 operand of dx for the block below (its outputLinear.bf16Grad) */
  backward(dx: Tensor, dout: Tensor, bf16: Operand | null = null): void {
    // residual 2: dr1 = dout + d(norm2 → mlp), the add in norm2's backward pass
    this.mlp.backward(this.dn, dout);
    this.norm2.backward(this.dr1, this.dn, dout, this.attn.proj.bf16Grad(this.dr1));
    // residual 1: dx = dr1 + d(norm1 → attn)
    this.attn.backward(this.dn, this.dr1);
    this.norm1.backward(dx, this.dn, this.dr1, bf16);
  }
}
