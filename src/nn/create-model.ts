/**
 * The model a config describes: the Transformer (gpt.ts) or, with a block pattern, the Nemotron-H
 * hybrid (hybrid-model.ts). Both offer the same surface (language-model.ts).
 */
import type { RunContext } from "./context.ts";
import { GPT } from "./gpt.ts";
import { isHybrid } from "./hybrid-config.ts";
import { HybridLM } from "./hybrid-model.ts";
import type { ModelConfig } from "./model-config.ts";

/** Either kind of model. */
export type Model = GPT | HybridLM;

export function createModel(ctx: RunContext, cfg: ModelConfig, B: number, T: number): Model {
  return isHybrid(cfg) ? new HybridLM(ctx, cfg, B, T) : new GPT(ctx, cfg, B, T);
}
