/**
 * Seeded, untrained weights for the interop logits checks (src/interop/*.test.ts and
 * scripts/interop-prepare.ts): every tensor of the model's Hugging Face name table drawn from its
 * own stream, O(1) and distinct — matrices N(0, 1/in), the embedding N(0, 1), vectors (norm gains,
 * and Mamba-2's dt_bias, A_log, D and conv bias) 1 + N(0, 0.3²) — so that a swapped, mis-split or
 * mis-scaled tensor changes the logits; the checkpoint that holds them (zero AdamW moments); and a
 * checkpoint's logits as our CPU model computes them, which the checks compare with transformers'.
 */
import { saveCheckpoint, type NamedTensor } from "../checkpoint/checkpoint.ts";
import type { TokenizerJSON } from "../data/tokenizer.ts";
import type { ModelConfig } from "../nn/model-config.ts";
import { initValues } from "../nn/param.ts";
import type { TrainConfig } from "../train/config.ts";
import { loadModel } from "../train/load-model.ts";
import { hfNames } from "./hf-config.ts";

export function checkWeights(model: ModelConfig, seed: number): NamedTensor[] {
  return hfNames(model).map((e) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const std = e.shape.length === 1 ? 0.3 : e.param === "embed.weight" ? 1 : 1 / Math.sqrt(e.shape[1]);
    const data = initValues(e.param, n, { kind: "normal", std }, seed);
    if (e.shape.length === 1) for (let i = 0; i < n; i++) data[i] += 1;
    return { name: e.param, shape: e.shape, data };
  });
}

/** `params` as an fp4lm checkpoint at `step` (AdamW moments zero). */
export function saveCheckWeights(path: string, config: TrainConfig, params: NamedTensor[], tokenizer: TokenizerJSON, step: number, info: Record<string, unknown> = {}): void {
  const zeros = () => params.map((p) => ({ ...p, data: new Float32Array(p.data.length) }));
  saveCheckpoint(path, {
    state: { version: 1, step, optimizerT: step, config, recipe: config.recipe, tokenizer, loader: null, info },
    params, m: zeros(), v: zeros(),
  });
}

/** The logits (B·T, V) of the checkpoint at `path` on tokens `ids` (B·T), from our CPU model with the fp32 recipe (nothing rounded). */
export function checkpointLogits(path: string, ids: Int32Array, B: number, T: number, threads?: number): Float32Array {
  const lm = loadModel(path, { B, T, recipe: "fp32", threads });
  try {
    const x = lm.be.tokens(ids, [B, T]);
    lm.model.step(x, x, false);
    return lm.model.lastLogits();
  } finally {
    lm.be.close();
  }
}
