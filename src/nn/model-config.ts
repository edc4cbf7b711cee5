/**
 * Shape of the paper's ablation Transformer (arXiv 2509.25149 App. A.3), scaled by config:
 * pre-norm RMSNorm, RoPE, grouped-query causal attention, squared-ReLU MLP, no biases, untied
 * embedding and head. Presets from a CPU smoke-test size up to GPT-2 124M's shape. The MLP may
 * instead be Llama's gated SwiGLU (`mlp: "swiglu"`, exported as LlamaForCausalLM); a config
 * without `mlp` (checkpoints from before the option) means squared ReLU.
 * A non-empty `pattern` makes the model a Nemotron-H hybrid instead (hybrid-config.ts).
 */
import { Fp4lmError } from "../errors.ts";
import { HYBRID_PRESETS, hybridParameterCount, hybridProblems, isHybrid, type MambaConfig } from "./hybrid-config.ts";

/** The MLP kind: the paper's non-gated squared ReLU, or Llama's gated SwiGLU (Shazeer 2020, arXiv 2002.05202). */
export type MlpKind = "sqrelu" | "swiglu";
export const MLP_KINDS: readonly MlpKind[] = ["sqrelu", "swiglu"];

export interface ModelConfig {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  dFF: number;
  seqLen: number;
  ropeTheta: number;
  normEps: number;
  /** "sqrelu" when absent; for swiglu, dFF is the width of each of the gate and up projections */
  mlp?: MlpKind;
  /** "" or absent: the Transformer; otherwise a hybrid's blocks, one character each: M Mamba-2, * attention, - FFN */
  pattern?: string;
  /** the Mamba-2 mixer of hybrids (ignored by Transformers) */
  mamba?: MambaConfig;
}

/** The config's MLP kind ("sqrelu" when the field is absent). */
export function mlpKind(c: ModelConfig): MlpKind {
  return c.mlp ?? "sqrelu";
}

export const MODEL_PRESETS: Record<string, Omit<ModelConfig, "vocabSize">> = {
  /** npm start: trains in about a minute per recipe on 2 CPU cores */
  tiny: { dModel: 64, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 256, seqLen: 64, ropeTheta: 10000, normEps: 1e-5 },
  small: { dModel: 128, nLayers: 6, nHeads: 4, nKvHeads: 2, dFF: 512, seqLen: 128, ropeTheta: 10000, normEps: 1e-5 },
  /** GPT-2 124M's width and depth, with the paper's block (GQA 12/4, squared ReLU) */
  gpt124m: { dModel: 768, nLayers: 12, nHeads: 12, nKvHeads: 4, dFF: 3072, seqLen: 1024, ropeTheta: 10000, normEps: 1e-5 },
  // The GPU experiment suites' two horizons (issue 5): the paper's ablation Transformer (App. A.3:
  // FFN 3·d, GQA 2:1, squared ReLU, RoPE) scaled down to head size 64, T 1024. Sized by what one
  // H200 did (BENCHMARKS.md, "experiment sizes"): ~1.4M tokens/s for d 128 in NVFP4 with four runs
  // sharing the GPU under MPS, so that a suite (~20 runs × 2 seeds) fits one ten-minute call at the
  // short horizon and ~3 at the long one (scripts/gpu-experiments.ts). The regcorpus GPU subset
  // has 40M train tokens (BPE 8192): the long horizon is ~3 epochs.
  /** 20 tokens per parameter: 0.885M non-embedding parameters × 20 = 17.7M tokens (6 blocks, so
   * that first and last blocks differ) */
  "exp-short": { dModel: 128, nLayers: 6, nHeads: 2, nKvHeads: 1, dFF: 384, seqLen: 1024, ropeTheta: 10000, normEps: 1e-5 },
  /** ≥ 200 tokens per parameter, a smaller model: 0.59M non-embedding parameters × 200 = 118M tokens */
  "exp-long": { dModel: 128, nLayers: 4, nHeads: 2, nKvHeads: 1, dFF: 384, seqLen: 1024, ropeTheta: 10000, normEps: 1e-5 },
  ...HYBRID_PRESETS,
};

export class ConfigError extends Fp4lmError {
  override name = "ConfigError";
}

/** Problems with a model config (empty when fine). */
export function modelConfigProblems(c: ModelConfig): string[] {
  const errs: string[] = [];
  for (const k of ["vocabSize", "dModel", "nLayers", "nHeads", "nKvHeads", "dFF", "seqLen"] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) errs.push(`model.${k} must be a positive integer, got ${c[k]}`);
  }
  if (!(c.ropeTheta > 0)) errs.push(`model.ropeTheta must be positive, got ${c.ropeTheta}`);
  if (!(c.normEps > 0)) errs.push(`model.normEps must be positive, got ${c.normEps}`);
  if (c.dModel % c.nHeads !== 0) errs.push(`model.nHeads (${c.nHeads}) must divide model.dModel (${c.dModel})`);
  else if (!isHybrid(c) && (c.dModel / c.nHeads) % 2 !== 0) errs.push(`head size dModel/nHeads = ${c.dModel / c.nHeads} must be even for RoPE`);
  if (c.nHeads % c.nKvHeads !== 0) errs.push(`model.nKvHeads (${c.nKvHeads}) must divide model.nHeads (${c.nHeads})`);
  if (c.mlp !== undefined && !MLP_KINDS.includes(c.mlp)) errs.push(`model.mlp must be ${MLP_KINDS.join(" or ")}, got ${JSON.stringify(c.mlp)}`);
  if (c.pattern !== undefined && typeof c.pattern !== "string") errs.push(`model.pattern must be a string of M, * and -, got ${JSON.stringify(c.pattern)}`);
  else if (isHybrid(c)) errs.push(...hybridProblems(c));
  return errs;
}

/** Parameter count (embedding + blocks + final norm + head). */
export function parameterCount(c: ModelConfig): number {
  if (isHybrid(c)) return hybridParameterCount(c);
  const HS = c.dModel / c.nHeads;
  const attn = c.dModel * (c.nHeads + 2 * c.nKvHeads) * HS + c.nHeads * HS * c.dModel;
  const mlp = (mlpKind(c) === "swiglu" ? 3 : 2) * c.dModel * c.dFF;
  return 2 * c.vocabSize * c.dModel + c.nLayers * (attn + mlp + 2 * c.dModel) + c.dModel;
}
