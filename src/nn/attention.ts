/**
 * Causal grouped-query self-attention: one fused QKV projection (C → (NH + 2·NKV)·HS), RoPE on q
 * and k (half-split pairs, as HF Llama; off in Nemotron-H hybrids, which have no position
 * embeddings), the attention core (softmax and both batched GEMMs in high precision, never
 * quantized: paper §2a), and the output projection (NH·HS → C). The two projections are ordinary
 * recipe-driven linear layers.
 */
import type { Tensor } from "../backends/backend.ts";
import type { RunContext } from "./context.ts";
import { Linear } from "./linear.ts";
import type { ModelConfig } from "./model-config.ts";

export class Attention {
  readonly qkv: Linear;
  readonly proj: Linear;
  private readonly widths: number[];
  // activations, (B,T,·)
  private readonly qkvOut: Tensor;
  private readonly q: Tensor;
  private readonly k: Tensor;
  private readonly v: Tensor;
  /** what the attention core saves for the backward (probabilities, or logsumexp on GPUs) */
  private readonly probs: Tensor;
  private readonly att: Tensor;
  // gradients
  private readonly dq: Tensor;
  private readonly dk: Tensor;
  private readonly dv: Tensor;
  private readonly datt: Tensor;
  private readonly dqkv: Tensor;

  constructor(
    private readonly ctx: RunContext, name: string, private readonly cfg: ModelConfig, block: number, firstLinear: number, private readonly B: number, private readonly T: number,
    /** rotary position embedding on q and k (the Transformer); false in hybrids */
    private readonly rope = true,
  ) {
    const { dModel: C, nHeads: NH, nKvHeads: NKV, nLayers } = cfg;
    const HS = C / NH;
    const std = 0.02;
    this.widths = [NH * HS, NKV * HS, NKV * HS];
    const qkvW = this.widths.reduce((a, b) => a + b);
    this.qkv = new Linear(ctx, `${name}.qkv`, C, qkvW, firstLinear, block, nLayers, std);
    this.proj = new Linear(ctx, `${name}.proj`, NH * HS, C, firstLinear + 1, block, nLayers, std / Math.sqrt(2 * nLayers));
    const be = ctx.be, BT = B * T;
    this.qkvOut = be.alloc([BT, qkvW]);
    this.q = be.alloc([B, T, NH, HS]);
    this.k = be.alloc([B, T, NKV, HS]);
    this.v = be.alloc([B, T, NKV, HS]);
    this.probs = be.alloc(be.attentionSavedShape(B, T, NH, HS));
    this.att = be.alloc([B, T, NH, HS]);
    this.dq = be.alloc([B, T, NH, HS]);
    this.dk = be.alloc([B, T, NKV, HS]);
    this.dv = be.alloc([B, T, NKV, HS]);
    this.datt = be.alloc([B, T, NH, HS]);
    this.dqkv = be.alloc([BT, qkvW]);
  }

  /** out (B·T, C) ← x (B·T, C) */
  /** out (B·T, C) ← attention(x) (+ residual, added by the output projection's GEMM) */
  forward(out: Tensor, x: Tensor, residual: Tensor | null = null): void {
    const be = this.ctx.be, { B, T } = this, { nHeads: NH, nKvHeads: NKV, ropeTheta } = this.cfg;
    const HS = this.cfg.dModel / NH;
    this.qkv.forward(this.qkvOut, x, B * T);
    if (this.rope) be.qkvSplitRope(this.qkvOut, this.q, this.k, this.v, B, T, NH, NKV, HS, ropeTheta);
    else be.splitColumns(this.qkvOut, [this.q, this.k, this.v], B * T, this.widths);
    be.attentionForward(this.att, this.probs, this.q, this.k, this.v, B, T, NH, NKV, HS, this.proj.bf16Input(this.att, B * T));
    this.proj.forward(out, this.att, B * T, residual);
  }

  /** dx (B·T, C) ← dout (B·T, C) */
  backward(dx: Tensor, dout: Tensor): void {
    const be = this.ctx.be, { B, T } = this, { nHeads: NH, nKvHeads: NKV, ropeTheta } = this.cfg;
    const HS = this.cfg.dModel / NH;
    this.proj.backward(this.datt, dout);
    be.attentionBackward(this.dq, this.dk, this.dv, this.datt, this.q, this.k, this.v, this.att, this.probs, B, T, NH, NKV, HS);
    if (this.rope) be.qkvRopeConcat(this.dqkv, this.dq, this.dk, this.dv, B, T, NH, NKV, HS, ropeTheta, this.qkv.bf16Grad(this.dqkv, true));
    else be.concatColumns(this.dqkv, [this.dq, this.dk, this.dv], B * T, this.widths);
    this.qkv.backward(dx, this.dqkv);
  }
}
