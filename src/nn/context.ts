/**
 * What every layer of a model shares during a step: the backend, the precision recipe, the
 * training progress (for the precision switch) and the identity of the current micro-batch (for
 * the stochastic-rounding streams). The training loop updates `step` and `micro`; layers read.
 */
import type { Backend } from "../backends/backend.ts";
import { planLinear, type LayerSite, type RecipeConfig } from "../recipes/recipe.ts";
import type { LinearPlan } from "../recipes/operand.ts";
import { mixIds } from "../recipes/quantize-operand.ts";
import type { TelemetryRecorder } from "./telemetry.ts";

export class RunContext {
  /** optimizer step (0-based) and micro-batch within it */
  step = 0;
  micro = 0;
  totalSteps = 1;
  /** when false (evaluation), stochastic rounding still draws from a fixed eval stream */
  training = true;
  /** set on telemetry steps only (nn/telemetry.ts): linear layers then measure their operands */
  telemetry: TelemetryRecorder | null = null;

  constructor(
    readonly be: Backend,
    readonly recipe: RecipeConfig,
    readonly seed: number,
  ) {}

  plan(site: LayerSite): LinearPlan {
    return planLinear(this.recipe, site, { step: this.step, totalSteps: this.totalSteps });
  }

  /** Philox stream id of one GEMM instance: (step, micro-batch, layer, gemm). */
  gemmId(layer: number, gemm: number): number {
    const when = this.training ? mixIds(this.step, this.micro) : 0xe7a1;
    return mixIds(when, layer * 4 + gemm);
  }
}
