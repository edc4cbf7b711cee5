/**
 * One Nemotron-H block: x + mixer(RMSNorm(x)), the mixer being one of Mamba-2 (`M`), attention
 * without RoPE (`*`) or the squared-ReLU FFN (`-`), as HF `NemotronHBlock` (pre-norm, residual,
 * no position embeddings anywhere). Each has two linear layers, with indices 2i and 2i+1. Names:
 * blocks.i.norm, blocks.i.mamba.{in_proj,out_proj,conv,dt_bias,A_log,D,norm}, blocks.i.attn.{qkv,proj},
 * blocks.i.mlp.{fc1,fc2}, so the recipe's layer patterns read as for the Transformer.
 */
import type { Operand, Tensor } from "../backends/backend.ts";
import { Attention } from "./attention.ts";
import type { RunContext } from "./context.ts";
import { BLOCK_KINDS, type BlockKind } from "./hybrid-config.ts";
import type { Linear } from "./linear.ts";
import { Mamba2 } from "./mamba2.ts";
import { MLP } from "./mlp.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Param } from "./param.ts";
import { RMSNorm } from "./rmsnorm.ts";

export class HybridBlock {
  readonly norm: RMSNorm;
  readonly mixer: Mamba2 | Attention | MLP;
  // (B·T, C)
  private readonly n: Tensor;
  private readonly dn: Tensor;
  private readonly BT: number;

  constructor(ctx: RunContext, readonly index: number, readonly kind: BlockKind, cfg: ModelConfig, B: number, T: number) {
    const name = `blocks.${index}`, BT = B * T, C = cfg.dModel;
    this.norm = new RMSNorm(ctx, `${name}.norm`, C, BT, cfg.normEps);
    this.BT = BT;
    const first = 2 * index;
    if (kind === "M") this.mixer = new Mamba2(ctx, `${name}.mamba`, cfg, index, first, B, T);
    else if (kind === "*") this.mixer = new Attention(ctx, `${name}.attn`, cfg, index, first, B, T, false);
    else this.mixer = new MLP(ctx, `${name}.mlp`, cfg, index, first, BT);
    [this.n, this.dn] = Array.from({ length: 2 }, () => ctx.be.alloc([BT, C]));
  }

  private wrong(want: BlockKind): Error {
    return new TypeError(`blocks.${this.index} is a ${BLOCK_KINDS[this.kind]} block, not ${BLOCK_KINDS[want]}`);
  }
  /** the mixer of an `M` block (throws for other kinds) */
  get mamba(): Mamba2 {
    if (!(this.mixer instanceof Mamba2)) throw this.wrong("M");
    return this.mixer;
  }
  /** the mixer of a `*` block */
  get attn(): Attention {
    if (!(this.mixer instanceof Attention)) throw this.wrong("*");
    return this.mixer;
  }
  /** the mixer of a `-` block */
  get mlp(): MLP {
    if (!(this.mixer instanceof MLP)) throw this.wrong("-");
    return this.mixer;
  }

  get linears(): Linear[] {
    const m = this.mixer;
    return m instanceof Mamba2 ? [m.inProj, m.outProj] : m instanceof Attention ? [m.qkv, m.proj] : [m.fc1, m.fc2];
  }

  /** the linear layer whose dY is this block's dout (the mixer's last) */
  get outputLinear(): Linear {
    return this.linears[1];
  }

  /** parameters in checkpoint order: the norm, then the mixer's */
  get params(): Param[] {
    const m = this.mixer;
    return [this.norm.weight, ...(m instanceof Mamba2 ? m.params : this.linears.map((l) => l.weight))];
  }

  /** out (B·T, C) ← x */
  forward(out: Tensor, x: Tensor): void {
    this.norm.forward(this.n, x, this.linears[0].bf16Input(this.n, this.BT, true));
    this.mixer.forward(out, this.n, x); // out = x + mixer(n): the residual added in the mixer's last GEMM
  }

  /** dx ← dout (both (B·T, C)); dx may not alias dout; `bf16`: the BF16 operand of dx (Block.backward) */
  backward(dx: Tensor, dout: Tensor, bf16: Operand | null = null): void {
    this.mixer.backward(this.dn, dout);
    this.norm.backward(dx, this.dn, dout, bf16); // dx = dout + d(norm → mixer)
  }
}
