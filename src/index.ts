/**
 * fp4lm's public surface: quantizers first (what the paper's recipe is made of), then training. Everything here runs on the CPU in plain TypeScript and is the oracle the
 * CUDA backend is tested against.
 *
 * @example
 * import { quantizeNVFP4, dequantizeNVFP4 } from "fp4lm";
 * const x = new Float32Array(32 * 64).map(() => Math.random() - 0.5);
 * const q = quantizeNVFP4(x, [32, 64]);                 // 1x16 blocks, round to nearest
 * const g = quantizeNVFP4(x, [32, 64], { rounding: "sr", seed: 7, rht: true }); // a Wgrad operand
 * const y = dequantizeNVFP4(q);                          // Float32Array, TE's decode formula
 */

/** NVFP4: E2M1 values, E4M3 scale per 1x16 block (16x16 tiles for weights), FP32 tensor amax. */
export {
  quantizeNVFP4, quantizeNVFP4Columnwise, dequantizeNVFP4, nvfp4Operand, nvfp4GemmAlpha, nvfp4Codes, nvfp4TensorScales,
  type NVFP4Options, type NVFP4Tensor, type DequantizeOptions, type Rounding,
} from "./quant/nvfp4.ts";
/** D = A·Bᵀ on two NVFP4 operands, as the block-scaled tensor cores define it. */
export { nvfp4Gemm } from "./quant/nvfp4-gemm.ts";
/** MXFP4: E2M1 values, UE8M0 scale per 32 values ("floor" = OCP, "rceil"). */
export {
  quantizeMXFP4, quantizeMXFP4Columnwise, dequantizeMXFP4, type MXFP4Options, type MXFP4Tensor, type MxScaleRounding,
} from "./quant/mxfp4.ts";
/** FP8 (E4M3/E5M2) with per-tensor, 1x128 or 128x128 FP32 scales: the paper's FP8 baseline. */
export { quantizeFP8, dequantizeFP8, type FP8Options, type FP8Tensor, type Fp8Format, type Fp8Scaling } from "./quant/fp8.ts";
/** Random Hadamard transform along the last dimension (16-point, TE's signs, BF16 output by default). */
export { rht, inverseRht, TE_SIGN_VECTOR, randomSigns, type RhtOptions } from "./quant/hadamard.ts";
/** Counter-based random bytes for stochastic rounding, reproducible on the GPU. */
export { philoxBytes, philox4x32 } from "./quant/philox.ts";
/** cuBLAS block-scale layout. */
export { swizzleScales, unswizzleScales } from "./quant/scale-layout.ts";
/** Error statistics of a tensor in each format (what `fp4lm quantize` prints). */
export { formatStats, quantizeAs, REPORT_FORMATS, type FormatStats, type ReportFormat } from "./quant/format-report.ts";
/** Element and scale codecs. */
export { e2m1EncodeRN, e2m1EncodeSR, e2m1Decode, packNibbles, unpackNibbles, E2M1_MAGNITUDES } from "./formats/e2m1.ts";
export { e4m3Encode, e4m3Decode, E4M3_MAX } from "./formats/e4m3.ts";
export { e5m2Encode, e5m2Decode, E5M2_MAX } from "./formats/e5m2.ts";
export { ue8m0Encode, ue8m0Decode } from "./formats/ue8m0.ts";
export { f32ToBf16Bits, bf16BitsToF32, roundBf16 } from "./formats/bf16.ts";
/** Files. */
export { readSafetensors, writeSafetensors, type TensorEntry, type SafetensorsFile } from "./io/safetensors.ts";
export { readNpy } from "./io/npy.ts";
/** Training: config, the loop, recipes, the model and the CPU backend. */
export { buildConfig, defaultConfig, type TrainConfig } from "./train/config.ts";
export { train, DivergedError, type TrainResult } from "./train/train.ts";
export { readMetrics } from "./train/metrics.ts";
export { RECIPES, recipeByName, validateRecipe, planLinear, type RecipeConfig, type RecipeName } from "./recipes/recipe.ts";
export { describeGemm, type OperandSpec, type LinearPlan } from "./recipes/operand.ts";
export { GPT } from "./nn/gpt.ts";
export { RunContext } from "./nn/context.ts";
export { MODEL_PRESETS, type ModelConfig } from "./nn/model-config.ts";
export { CpuBackend } from "./backends/cpu/cpu-backend.ts";
export type { Backend, Tensor } from "./backends/backend.ts";
export { loadCheckpoint, saveCheckpoint } from "./checkpoint/checkpoint.ts";
/** Measuring: quantization telemetry of an operand, downstream tasks from held-out text. */
export { operandStats, type QuantStats } from "./recipes/operand-stats.ts";
export { readTelemetry, type TelemetryLine } from "./nn/telemetry.ts";
export { buildTasks, preparedDocuments, type TaskSet, type TaskName } from "./eval/tasks.ts";
export { evaluateCheckpoint, type TaskScores } from "./eval/score.ts";
/** Data: tokenizers, BPE training, token shards and the loader. */
export { gpt2Tokenizer, byteTokenizer, bpeTokenizer, loadTokenizer, type Tokenizer } from "./data/tokenizer.ts";
export { trainBpe } from "./data/bpe-train.ts";
export { TokenLoader } from "./data/loader.ts";
export { writeShard, readShard } from "./data/shards.ts";
/** Error classes (tell them apart with instanceof). */
export { Fp4lmError, ShapeError, NonFiniteError, FileFormatError, UsageError } from "./errors.ts";
