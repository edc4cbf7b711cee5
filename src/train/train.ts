/**
 * The training loop, top to bottom: config → data → model → recipe → loop (forward, backward,
 * clip, step, log, eval, checkpoint). Deterministic: parameters, data order and stochastic
 * rounding come from counter-based streams keyed by the seed and the step, so a run resumed from
 * a checkpoint continues bit for bit. Stops on the first NaN/Inf with the step and the layer,
 * and never writes a checkpoint from a poisoned state. Data parallel: the `parallel` hook
 * (src/parallel/data-parallel.ts) picks each rank's batches, makes the optimizer (ZeRO-1's sharded
 * one with --parallel.zero1) and exchanges the gradients, bucket by bucket during the backward pass
 * (--parallel.overlap) or after it; rank 0 alone evaluates and writes.
 */
import { createBackend } from "../backends/create-backend.ts";
import { FileFormatError, NonFiniteError } from "../errors.ts";
import { RunContext } from "../nn/context.ts";
import { createModel } from "../nn/create-model.ts";
import { TelemetryLog } from "../nn/telemetry.ts";
import { parameterCount } from "../nn/model-config.ts";
import { learningRate } from "../optim/schedule.ts";
import { DataParallel } from "../parallel/data-parallel.ts";
import { switchActive } from "../recipes/recipe.ts";
import type { TrainConfig } from "./config.ts";
import { checkCheckpointMatches, loadCheckpoint, type CheckpointContents } from "../checkpoint/checkpoint.ts";
import { openTrainingData } from "./data-setup.ts";
import { Progress } from "./progress.ts";
import { RunDir, describePrecision } from "./run-dir.ts";

export interface TrainResult {
  runDir: string;
  /** mean training loss per step, from step 0 (resumed runs: from the resume point) */
  losses: number[];
  evals: { step: number; valLoss: number }[];
  tokensPerS: number;
}

export interface TrainHooks {
  /** stop (as if killed) after this many steps of this invocation; for tests */
  stopAfter?: number;
  /** this process is one rank of a data-parallel run (src/parallel/launch.ts starts them) */
  parallel?: DataParallel;
}

/** A run that produced NaN/Inf: names the step and where. */
export class DivergedError extends NonFiniteError {
  override name = "DivergedError";
}

export function train(cfg: TrainConfig, hooks: TrainHooks = {}): TrainResult {
  const dp = hooks.parallel ?? DataParallel.single();
  const run = RunDir.open(cfg, dp.leader);
  // --init fixes the model shape (sequence length included) before the data is opened
  const init = cfg.init ? initialWeights(cfg, run.log) : undefined;
  const data = openTrainingData(cfg, run.log);
  if (!init) cfg.model.vocabSize = data.tokenizer.vocabSize;
  else if (cfg.model.vocabSize < data.tokenizer.vocabSize) {
    throw new FileFormatError(cfg.init, `the model has ${cfg.model.vocabSize} vocabulary rows but the run's tokenizer has ${data.tokenizer.vocabSize} ids; use the tokenizer it was trained with`);
  }
  const be = createBackend({ ...cfg, deviceIndex: dp.deviceIndex }, run.log);
  let failed = true;
  try {
    dp.attach(be, run.log);
    const ctx = new RunContext(be, cfg.recipe, cfg.seed);
    ctx.totalSteps = cfg.steps;
    const model = createModel(ctx, cfg.model, cfg.batchSize, cfg.model.seqLen);
    const opt = dp.optimizer(be, model.params, cfg.optim, run.log);
    if (init) {
      checkCheckpointMatches(cfg.init, init, model.params, false);
      const byName = new Map(init.params.map((t) => [t.name, t.data]));
      for (const p of model.params) be.copy(p.data, be.fromArray(byName.get(p.name)!, p.shape));
    }
    const start = cfg.resume ? run.restore(model, opt, data.train, be) : 0;
    dp.syncParams(model.params);
    run.begin(model, start, parameterCount(cfg.model), be.name, be.attentionPrecision(cfg.model.dModel / cfg.model.nHeads), data.tokenizer);

    const progress = new Progress(cfg.log, cfg.logEvery);
    const telemetry = TelemetryLog.open(run.dir, cfg.telemetryEvery);
    const B = cfg.batchSize, T = cfg.model.seqLen, A = cfg.gradAccum, tokensPerStep = B * T * A * dp.size;
    const result: TrainResult = { runDir: run.dir, losses: [], evals: [], tokensPerS: 0 };
    let elapsed = 0, done = 0;
    for (let step = start; step < cfg.steps; step++) {
      if (hooks.stopAfter !== undefined && done === hooks.stopAfter) break;
      ctx.step = step;
      ctx.training = true;
      telemetry?.begin(ctx, step);
      if (step > start && switchActive(cfg.recipe, { step, totalSteps: cfg.steps }) !== switchActive(cfg.recipe, { step: step - 1, totalSteps: cfg.steps })) {
        run.precisionChanged(step, model, progress);
      }
      const t0 = performance.now();
      let loss = 0, gn: { norm: number; nonFinite?: string };
      try {
        const losses: (() => number)[] = [];
        for (let micro = 0; micro < A; micro++) {
          ctx.micro = dp.micro(micro, A);
          const b = dp.batch(data.train, micro, A);
          losses.push(model.stepQueued(be.tokens(b.inputs, [B, T]), be.tokens(b.targets, [B, T]), true, dp.lossScale(A), dp.gradsReady(micro, A)));
        }
        dp.reduceGradients(model.params);
        // the norm before the losses: on a GPU the step's one wait for the device is here, and it
        // raises the non-finite checks queued by the forward and backward passes, first tensor first
        gn = opt.gradNorm();
        loss = dp.reduceLoss(losses.map((read) => read()));
      } catch (e) {
        if (e instanceof NonFiniteError) throw new DivergedError(`step ${step}: ${e.message}`, e.index);
        throw e;
      }
      telemetry?.end(ctx);
      const { norm, nonFinite } = gn;
      if (!Number.isFinite(loss) || nonFinite) {
        throw new DivergedError(`step ${step}: ${nonFinite ? `the gradient of ${nonFinite} is not finite` : `the loss is ${loss}`}; stopping without writing a checkpoint`, -1);
      }
      const lr = learningRate(cfg.schedule, step, cfg.steps);
      opt.step(lr, norm);
      opt.zeroGrad();
      const ms = performance.now() - t0;
      elapsed += ms;
      done++;
      result.losses.push(loss);
      const status = { step, steps: cfg.steps, loss, lr, gradNorm: norm, ms, tokensPerS: (tokensPerStep * 1000) / ms };
      progress.step(status);
      run.metrics.write({ type: "step", step, loss, lr, grad_norm: norm, ms, tokens_per_s: status.tokensPerS });

      const last = step + 1 === cfg.steps;
      if (dp.leader && ((step + 1) % cfg.evalEvery === 0 || last)) {
        ctx.training = false;
        const valLoss = data.evaluate((x, y) => model.step(be.tokens(x, [B, T]), be.tokens(y, [B, T]), false));
        result.evals.push({ step: step + 1, valLoss });
        run.metrics.write({ type: "eval", step: step + 1, val_loss: valLoss });
        progress.note(`eval  step ${step + 1}: val_loss ${valLoss.toFixed(4)}`);
      }
      if ((cfg.checkpointEvery > 0 && (step + 1) % cfg.checkpointEvery === 0) || last) {
        run.checkpoint(be, step + 1, model, opt, data.train, data.tokenizer, { loss });
      }
    }
    result.tokensPerS = elapsed > 0 ? (tokensPerStep * done * 1000) / elapsed : 0;
    run.end(result);
    failed = false;
    return result;
  } finally {
    dp.close(failed);
    be.close();
  }
}

/**
 * The checkpoint `--init` names; this run's model shape is taken from it (a vocabulary padded
 * beyond the tokenizer's is kept).
 */
function initialWeights(cfg: TrainConfig, log: (s: string) => void): CheckpointContents {
  const c = loadCheckpoint(cfg.init);
  const m = (c.state.config as TrainConfig | undefined)?.model;
  if (!m) throw new FileFormatError(cfg.init, "checkpoint has no model config");
  const { preset: _p, ...shape } = m;
  Object.assign(cfg.model, shape);
  log(`init: weights from ${cfg.init} (step ${c.state.step}); model d=${m.dModel} L=${m.nLayers} vocab ${m.vocabSize}; optimizer and data start fresh`);
  return c;
}

export { describePrecision };
