/**
 * The Nemotron-H hybrid language model of the paper's main experiments (arXiv 2509.25149 §3.1–3.2):
 * token embedding → one block per character of the pattern (hybrid-block.ts: Mamba-2, attention
 * or FFN, each pre-norm + residual) → final RMSNorm → untied output head, no position embeddings
 * (HF `NemotronHForCausalLM`). Block i's two linear layers have indices 2i, 2i+1, the head 2L; the
 * recipe's bf16First/bf16Last count these blocks, as the paper does (12B: first 2 and last 8 of 62).
 */
import type { RunContext } from "./context.ts";
import type { BlockKind } from "./hybrid-config.ts";
import { HybridBlock } from "./hybrid-block.ts";
import { LanguageModel } from "./language-model.ts";
import type { ModelConfig } from "./model-config.ts";

export class HybridLM extends LanguageModel<HybridBlock> {
  constructor(ctx: RunContext, cfg: ModelConfig, B: number, T: number) {
    const pattern = cfg.pattern ?? "";
    if (!pattern) throw new TypeError("HybridLM: the config has no block pattern (a Transformer config: use GPT)");
    super(ctx, cfg, B, T, () => [...pattern].map((k, i) => new HybridBlock(ctx, i, k as BlockKind, cfg, B, T)), 2 * pattern.length);
  }
}
