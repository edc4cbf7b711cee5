/**
 * What every model shares: token embedding → blocks → final RMSNorm → output head →
 * cross-entropy, the backward pass through them, and the precision table. Embedding, head and
 * norms are never quantized (the head is a linear layer that the recipe always keeps in BF16).
 * Activations are allocated once for a fixed micro-batch (B, T). The blocks are the subclass's:
 * the Transformer's (gpt.ts) or the Nemotron-H hybrid's (hybrid-model.ts).
 */
import type { Operand, Tensor, Tokens } from "../backends/backend.ts";
import { describeGemm } from "../recipes/operand.ts";
import { bf16Reason, checkLayerPatterns } from "../recipes/recipe.ts";
import type { RunContext } from "./context.ts";
import { Linear } from "./linear.ts";
import type { ModelConfig } from "./model-config.ts";
import { createParam, type Param } from "./param.ts";
import { RMSNorm } from "./rmsnorm.ts";

export interface PrecisionRow {
  layer: string;
  fprop: string;
  dgrad: string;
  wgrad: string;
  why: string;
  /** what the three GEMMs run on, when the backend says (Backend.gemmEngine): one label, or one per GEMM */
  engine?: string;
}

/** A residual block: (B·T, C) in and out; parameters and linear layers in checkpoint order. */
export interface ModelBlock {
  forward(out: Tensor, x: Tensor): void;
  /** dx ← dout; dx may not alias dout; `bf16`: the BF16 operand of dx that the block below's outputLinear asked for (Linear.bf16Grad), filled by the op writing dx */
  backward(dx: Tensor, dout: Tensor, bf16?: Operand | null): void;
  /** the linear layer whose backward takes this block's dout as dY, if any */
  readonly outputLinear?: Linear;
  readonly linears: Linear[];
  readonly params: Param[];
}

export abstract class LanguageModel<Blk extends ModelBlock> {
  readonly embed: Param;
  readonly blocks: Blk[];
  readonly normF: RMSNorm;
  readonly head: Linear;
  readonly params: Param[];
  readonly linears: Linear[];
  private readonly acts: Tensor[];
  private readonly xF: Tensor;
  private readonly logits: Tensor;
  private readonly losses: Tensor;
  private readonly dlogits: Tensor;
  private readonly dxF: Tensor;
  private readonly dgrads: [Tensor, Tensor];
  private tokens: Tokens | null = null;

  /** `blocks` builds the blocks; `headIndex` is the head's linear-layer index (its SR streams) */
  protected constructor(protected readonly ctx: RunContext, readonly cfg: ModelConfig, readonly B: number, readonly T: number, blocks: () => Blk[], headIndex: number) {
    const be = ctx.be, BT = B * T, C = cfg.dModel, V = cfg.vocabSize;
    this.embed = createParam(be, "embed.weight", [V, C], { kind: "normal", std: 0.02 }, ctx.seed, true);
    this.blocks = blocks();
    this.normF = new RMSNorm(ctx, "normF", C, BT, cfg.normEps);
    this.head = new Linear(ctx, "head", C, V, headIndex, -1, cfg.nLayers, 0.02);
    this.linears = [...this.blocks.flatMap((b) => b.linears), this.head];
    this.params = [this.embed, ...this.blocks.flatMap((b) => b.params), this.normF.weight, this.head.weight];
    this.acts = Array.from({ length: this.blocks.length + 1 }, () => be.alloc([BT, C]));
    this.xF = be.alloc([BT, C]);
    this.logits = be.alloc([BT, V]);
    this.losses = be.alloc([BT]);
    this.dlogits = be.alloc([BT, V]);
    this.dxF = be.alloc([BT, C]);
    this.dgrads = [be.alloc([BT, C]), be.alloc([BT, C])];
    checkLayerPatterns(ctx.recipe, this.linears.map((l) => l.name));
  }

  /**
   * Forward pass and, when `backward`, the backward pass (parameter gradients accumulate).
   * inputs, targets (B, T). Returns the mean loss. `lossScale` scales the gradient (1/accum).
   * `gradsReady` is told, as the backward pass goes (head, final norm, blocks from the last,
   * embedding), which parameters' gradients it has finished: data parallelism starts their
   * all-reduce while the rest of the backward runs.
   */
  step(inputs: Tokens, targets: Tokens, backward: boolean, lossScale = 1, gradsReady?: (params: readonly Param[]) => void): number {
    return this.stepQueued(inputs, targets, backward, lossScale, gradsReady)();
  }

  /**
   * step, returning a reader of the mean loss instead of the loss: on a device backend the work is
   * queued and the reader waits for it, so a training loop that reads the loss after the gradient
   * norm (which waits anyway) has one synchronisation per step, not one per micro-batch and another.
   */
  stepQueued(inputs: Tokens, targets: Tokens, backward: boolean, lossScale = 1, gradsReady?: (params: readonly Param[]) => void): () => number {
    const be = this.ctx.be, V = this.cfg.vocabSize, C = this.cfg.dModel, BT = this.B * this.T, L = this.blocks.length;
    this.tokens = inputs;
    be.embeddingForward(this.acts[0], inputs, this.embed.data, V, C);
    this.blocks.forEach((b, i) => b.forward(this.acts[i + 1], this.acts[i]));
    this.normF.forward(this.xF, this.acts[L], this.head.bf16Input(this.xF, BT, true));
    this.head.forward(this.logits, this.xF, BT);
    // a device backend reads the loss after the backward pass is queued: no wait in the middle of the step
    const loss = be.crossEntropyQueued(this.losses, backward ? this.dlogits : null, this.logits, targets, V, lossScale / BT, backward ? this.head.bf16Grad(this.dlogits, true) : null);
    if (!backward) return loss;
    this.head.backward(this.dxF, this.dlogits);
    gradsReady?.([this.head.weight]);
    let [d, dNext] = this.dgrads;
    this.normF.backward(d, this.dxF);
    gradsReady?.([this.normF.weight]);
    for (let i = L - 1; i >= 0; i--) {
      this.blocks[i].backward(dNext, d, i > 0 ? this.blocks[i - 1].outputLinear?.bf16Grad(dNext) : null);
      gradsReady?.(this.blocks[i].params);
      [d, dNext] = [dNext, d];
    }
    be.embeddingBackward(this.embed.grad, d, this.tokens, V, C);
    gradsReady?.([this.embed]);
    return loss;
  }

  /** The logits of the last forward pass, (B·T, V), as a host array. */
  lastLogits(): Float32Array {
    return this.ctx.be.toArray(this.logits);
  }

  /** What precision each GEMM of each linear layer runs in at the context's current step. */
  precisionTable(): PrecisionRow[] {
    return this.linears.map((l) => {
      const p = this.ctx.plan(l.site), be = this.ctx.be;
      const row: PrecisionRow = {
        layer: l.name, fprop: describeGemm(p.fprop), dgrad: describeGemm(p.dgrad), wgrad: describeGemm(p.wgrad),
        why: bf16Reason(this.ctx.recipe, l.site) ?? "quantized",
      };
      if (be.gemmEngine) {
        const [f, d, w] = [p.fprop, p.dgrad, p.wgrad].map((g) => be.gemmEngine!(g.a, g.b));
        row.engine = f === d && d === w ? f : `Fprop ${f}; Dgrad ${d}; Wgrad ${w}`;
      }
      return row;
    });
  }
}
