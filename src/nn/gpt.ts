/**
 * The Transformer: token embedding → pre-norm blocks (attention + MLP, block.ts) → final RMSNorm →
 * output head → cross-entropy (the shared machinery is language-model.ts). Block i's four linear
 * layers have indices 4i..4i+3, the head 4L.
 */
import { Block } from "./block.ts";
import type { RunContext } from "./context.ts";
import { LanguageModel } from "./language-model.ts";
import type { ModelConfig } from "./model-config.ts";

export type { PrecisionRow } from "./language-model.ts";

export class GPT extends LanguageModel<Block> {
  constructor(ctx: RunContext, cfg: ModelConfig, B: number, T: number) {
    super(ctx, cfg, B, T, () => Array.from({ length: cfg.nLayers }, (_, i) => new Block(ctx, i, cfg, B, T)), cfg.nLayers * 4);
  }
}
