/**
 * The training pattern the operand tests compare backends on: a GPT or, for a config with a
 * `pattern`, a Nemotron-H hybrid on `be`, two training micro-steps (loss scale 0.5, gradients
 * accumulated) and one evaluation forward, on seeded tokens; the three losses, every parameter's
 * gradient as FP32 bits, the parameter names. `prepare` runs on the context and model first
 * (poisoning a weight, setting telemetry). Used by bf16-operands, shared-tiles and pair-quant tests.
 */
import type { CpuBackend, CpuTensor } from "../src/backends/cpu/cpu-backend.ts";
import { RunContext } from "../src/nn/context.ts";
import { GPT } from "../src/nn/gpt.ts";
import { HybridLM } from "../src/nn/hybrid-model.ts";
import type { ModelConfig } from "../src/nn/model-config.ts";
import { recipeByName } from "../src/recipes/recipe.ts";
import { lcgTokens as tokens } from "./random.ts";

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

export function twoStepsAndEval(be: CpuBackend, cfg: ModelConfig, recipe: string, prepare?: (ctx: RunContext, model: GPT | HybridLM) => void) {
  const ctx = new RunContext(be, recipeByName(recipe), 5);
  const B = 2, T = cfg.seqLen;
  const model = cfg.pattern ? new HybridLM(ctx, cfg, B, T) : new GPT(ctx, cfg, B, T);
  prepare?.(ctx, model);
  const losses: number[] = [];
  for (let s = 0; s < 2; s++) {
    ctx.micro = s;
    losses.push(model.step(be.tokens(tokens(B * T, cfg.vocabSize, 10 + s), [B, T]), be.tokens(tokens(B * T, cfg.vocabSize, 20 + s), [B, T]), true, 0.5));
  }
  ctx.training = false;
  losses.push(model.step(be.tokens(tokens(B * T, cfg.vocabSize, 30), [B, T]), be.tokens(tokens(B * T, cfg.vocabSize, 31), [B, T]), false));
  return { losses, grads: model.params.map((p) => bits((p.grad as CpuTensor).data)), names: model.params.map((p) => p.name) };
}
