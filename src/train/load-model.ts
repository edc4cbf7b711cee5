/**
 * Rebuild a trained model from a checkpoint for evaluation or generation: the checkpoint's model
 * config and tokenizer, its weights, and a recipe (the one it trained with unless overridden),
 * on a backend (the CPU unless asked), for a chosen micro-batch shape.
 */
import { checkCheckpointMatches, loadCheckpoint } from "../checkpoint/checkpoint.ts";
import type { Backend } from "../backends/backend.ts";
import { createBackend } from "../backends/create-backend.ts";
import { tokenizerFromJSON, type Tokenizer } from "../data/tokenizer.ts";
import { RunContext } from "../nn/context.ts";
import { createModel, type Model } from "../nn/create-model.ts";
import { recipeByName, validateRecipe, type RecipeConfig } from "../recipes/recipe.ts";
import type { TrainConfig } from "./config.ts";

export interface LoadedModel {
  be: Backend;
  ctx: RunContext;
  model: Model;
  tokenizer: Tokenizer;
  config: TrainConfig;
  step: number;
}

export function loadModel(path: string, opts: { B: number; T?: number; recipe?: string; threads?: number; device?: "cpu" | "cuda" | "auto" }): LoadedModel {
  const c = loadCheckpoint(path);
  const config = c.state.config as TrainConfig;
  const recipe: RecipeConfig = opts.recipe ? recipeByName(opts.recipe) : validateRecipe(c.state.recipe as RecipeConfig);
  const tokenizer = tokenizerFromJSON(c.state.tokenizer, `${path} (tokenizer)`);
  const be = createBackend({ device: opts.device ?? "cpu", threads: opts.threads ?? 0 });
  try {
    const ctx = new RunContext(be, recipe, config.seed);
    ctx.training = false;
    ctx.step = c.state.step;
    ctx.totalSteps = config.steps;
    const model = createModel(ctx, config.model, opts.B, opts.T ?? config.model.seqLen);
    checkCheckpointMatches(path, c, model.params, false);
    const byName = new Map(c.params.map((t) => [t.name, t.data]));
    for (const p of model.params) be.copy(p.data, be.fromArray(byName.get(p.name)!, p.shape));
    return { be, ctx, model, tokenizer, config, step: c.state.step };
  } catch (e) {
    be.close();
    throw e;
  }
}
