/**
 * fp4lm model ↔ Hugging Face `ArceeForCausalLM` / `LlamaForCausalLM`: config.json in both
 * directions and the tensor name map. With the default squared-ReLU MLP our block is Arcee's
 * (transformers `models/arcee`: Llama with a NON-gated MLP `down_proj(relu2(up_proj(x)))`); with
 * `mlp: "swiglu"` it is Llama's (`down_proj(silu(gate_proj(x)) * up_proj(x))`, our fused fc1 split
 * into gate_proj = rows [0, F) and up_proj = rows [F, 2F)). Both: pre-norm RMSNorm with eps inside
 * the sqrt, half-split RoPE (`rotate_half`, inv_freq = theta^(−2i/HS)), GQA grouped as
 * `repeat_kv`, no biases, untied head. None of rope scaling (Llama 3's "llama3" included),
 * partial rotary, sliding windows, biases, tied embeddings or pre-quantized weights:
 * `fromHfConfig` rejects those, all at once. Config keys: transformers' ArceeConfig / LlamaConfig;
 * transformers 5 keeps RoPE in `rope_parameters` and reads `dtype`, older versions `rope_theta`
 * and `torch_dtype`: we write both and accept either. Hybrids (a block pattern) are
 * `NemotronHForCausalLM`: hf-nemotronh.ts, reached through the same three functions.
 */
import { FileFormatError } from "../errors.ts";
import { isHybrid } from "../nn/hybrid-config.ts";
import { mlpKind, modelConfigProblems, type MlpKind, type ModelConfig } from "../nn/model-config.ts";
import { fromNemotronHConfig, NEMOTRON_H, nemotronhNames, toNemotronHConfig } from "./hf-nemotronh.ts";

/** The transformers architecture of each MLP kind, and what its config.json says about the MLP. */
export const HF_ARCHITECTURES: Record<MlpKind, { architecture: string; modelType: string; hiddenAct: string }> = {
  sqrelu: { architecture: "ArceeForCausalLM", modelType: "arcee", hiddenAct: "relu2" },
  swiglu: { architecture: "LlamaForCausalLM", modelType: "llama", hiddenAct: "silu" },
};

/** The transformers architecture and model_type a config exports as. */
export function hfArchitecture(m: ModelConfig): { architecture: string; modelType: string } {
  return isHybrid(m) ? NEMOTRON_H : HF_ARCHITECTURES[mlpKind(m)];
}

/** One HF tensor: a consecutive block of rows of an fp4lm parameter (all of it, q/k/v of qkv, or gate/up of a SwiGLU fc1). */
export interface HfTensorPart {
  name: string;
  shape: number[];
  /** first row of this part within the fp4lm tensor */
  row: number;
}

/** An fp4lm parameter and the HF tensors it splits into (export) or joins from (import), in row order. */
export interface HfNameMapEntry {
  param: string;
  shape: number[];
  parts: HfTensorPart[];
}

/** The full name map, in fp4lm's parameter order (GPT.params). */
export function hfNames(m: ModelConfig): HfNameMapEntry[] {
  if (isHybrid(m)) return nemotronhNames(m);
  const C = m.dModel, F = m.dFF, V = m.vocabSize, NH = m.nHeads, NKV = m.nKvHeads, HS = C / NH;
  const whole = (param: string, shape: number[], name: string): HfNameMapEntry => ({ param, shape, parts: [{ name, shape, row: 0 }] });
  const out = [whole("embed.weight", [V, C], "model.embed_tokens.weight")];
  for (let i = 0; i < m.nLayers; i++) {
    const b = `blocks.${i}`, l = `model.layers.${i}`;
    out.push(
      whole(`${b}.norm1.weight`, [C], `${l}.input_layernorm.weight`),
      {
        param: `${b}.attn.qkv.weight`,
        shape: [(NH + 2 * NKV) * HS, C],
        parts: [
          { name: `${l}.self_attn.q_proj.weight`, shape: [NH * HS, C], row: 0 },
          { name: `${l}.self_attn.k_proj.weight`, shape: [NKV * HS, C], row: NH * HS },
          { name: `${l}.self_attn.v_proj.weight`, shape: [NKV * HS, C], row: (NH + NKV) * HS },
        ],
      },
      whole(`${b}.attn.proj.weight`, [C, NH * HS], `${l}.self_attn.o_proj.weight`),
      whole(`${b}.norm2.weight`, [C], `${l}.post_attention_layernorm.weight`),
      mlpKind(m) === "swiglu"
        ? {
          param: `${b}.mlp.fc1.weight`,
          shape: [2 * F, C],
          parts: [
            { name: `${l}.mlp.gate_proj.weight`, shape: [F, C], row: 0 },
            { name: `${l}.mlp.up_proj.weight`, shape: [F, C], row: F },
          ],
        }
        : whole(`${b}.mlp.fc1.weight`, [F, C], `${l}.mlp.up_proj.weight`),
      whole(`${b}.mlp.fc2.weight`, [C, F], `${l}.mlp.down_proj.weight`),
    );
  }
  out.push(whole("normF.weight", [C], "model.norm.weight"), whole("head.weight", [V, C], "lm_head.weight"));
  return out;
}

const rowSize = (shape: number[]) => shape.slice(1).reduce((a, b) => a * b, 1);

/** The HF tensors of one fp4lm parameter: views into `data` (no copies). */
export function splitParam(e: HfNameMapEntry, data: Float32Array): { name: string; shape: number[]; data: Float32Array }[] {
  const r = rowSize(e.shape);
  return e.parts.map((p) => ({ name: p.name, shape: p.shape, data: data.subarray(p.row * r, (p.row + p.shape[0]) * r) }));
}

/** One fp4lm parameter from its HF tensors (`get` returns each part's values, already shape-checked). */
export function joinParam(e: HfNameMapEntry, get: (name: string) => Float32Array): Float32Array {
  const r = rowSize(e.shape);
  const out = new Float32Array(e.shape.reduce((a, b) => a * b, 1));
  for (const p of e.parts) out.set(get(p.name), p.row * r);
  return out;
}

/** config.json of an fp4lm model as transformers' ArceeConfig (squared ReLU) or LlamaConfig (SwiGLU). */
export function toHfConfig(model: ModelConfig, opts: { dtype: "bfloat16" | "float32"; eotToken: number }): Record<string, unknown> {
  if (isHybrid(model)) return toNemotronHConfig(model, opts);
  const arch = HF_ARCHITECTURES[mlpKind(model)];
  return {
    architectures: [arch.architecture],
    model_type: arch.modelType,
    vocab_size: model.vocabSize,
    hidden_size: model.dModel,
    intermediate_size: model.dFF,
    num_hidden_layers: model.nLayers,
    num_attention_heads: model.nHeads,
    num_key_value_heads: model.nKvHeads,
    head_dim: model.dModel / model.nHeads,
    hidden_act: arch.hiddenAct,
    max_position_embeddings: model.seqLen,
    rms_norm_eps: model.normEps,
    rope_theta: model.ropeTheta,
    rope_parameters: { rope_type: "default", rope_theta: model.ropeTheta },
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    tie_word_embeddings: false,
    initializer_range: 0.02,
    bos_token_id: opts.eotToken,
    eos_token_id: opts.eotToken,
    use_cache: true,
    torch_dtype: opts.dtype,
    dtype: opts.dtype,
  };
}

/** Keys that transformers types as float: written with a ".0" when integral (strict dataclass configs check types). */
const FLOAT_KEYS = ["rms_norm_eps", "rope_theta", "initializer_range", "attention_dropout", "layer_norm_epsilon", "hidden_dropout", "time_step_min", "time_step_max", "time_step_floor"];

/** config.json text: 2-space JSON, float-typed keys always written as floats. */
export function hfConfigJson(cfg: Record<string, unknown>): string {
  const re = new RegExp(`("(?:${FLOAT_KEYS.join("|")})": )(-?\\d+)(?=,?\\n)`, "g");
  return JSON.stringify(cfg, null, 2).replace(re, "$1$2.0") + "\n";
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v);

/**
 * ModelConfig from a parsed config.json (model_type "arcee" → squared ReLU, "llama" → SwiGLU,
 * "nemotron_h" → a hybrid).
 * Throws FileFormatError naming `file` and listing every unsupported option or missing/invalid
 * key at once. seqLen is max_position_embeddings.
 */
export function fromHfConfig(cfg: unknown, file: string): ModelConfig {
  if (!isObj(cfg)) throw new FileFormatError(file, `config.json must be a JSON object, got ${show(cfg)?.slice(0, 40)}`);
  if (cfg.model_type === NEMOTRON_H.modelType) return fromNemotronHConfig(cfg, file);
  const mlp = (Object.keys(HF_ARCHITECTURES) as MlpKind[]).find((k) => HF_ARCHITECTURES[k].modelType === cfg.model_type);
  if (!mlp) {
    throw new FileFormatError(file, `model_type ${show(cfg.model_type) ?? "(missing)"} is not supported; fp4lm imports model_type "arcee" (ArceeForCausalLM), "llama" (LlamaForCausalLM) and "nemotron_h" (NemotronHForCausalLM) only`);
  }
  const arch = HF_ARCHITECTURES[mlp];
  const problems: string[] = [];
  const int = (key: string, optional = false): number => {
    const v = cfg[key];
    if (v === undefined || v === null) {
      if (!optional) problems.push(`${key} is missing (required)`);
      return NaN;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) problems.push(`${key} must be a positive integer, got ${show(v)}`);
    return v as number;
  };
  const num = (v: unknown, key: string): number => {
    if (v === undefined || v === null) { problems.push(`${key} is missing (required)`); return NaN; }
    if (typeof v !== "number" || !(v > 0)) problems.push(`${key} must be a positive number, got ${show(v)}`);
    return v as number;
  };
  const vocabSize = int("vocab_size"), dModel = int("hidden_size"), dFF = int("intermediate_size");
  const nLayers = int("num_hidden_layers"), nHeads = int("num_attention_heads"), seqLen = int("max_position_embeddings");
  const kv = int("num_key_value_heads", true), headDim = int("head_dim", true);
  const nKvHeads = Number.isNaN(kv) ? nHeads : kv;
  const normEps = num(cfg.rms_norm_eps, "rms_norm_eps");

  // RoPE: rope_parameters (transformers 5) or rope_theta / rope_scaling (older)
  const rp = cfg.rope_parameters;
  let ropeTheta = NaN;
  if (rp !== undefined && rp !== null && !isObj(rp)) problems.push(`rope_parameters must be an object, got ${show(rp)}`);
  const rpObj = isObj(rp) ? rp : undefined;
  if (rpObj && "full_attention" in rpObj) problems.push(`rope_parameters per layer type (${Object.keys(rpObj).join(", ")}) is not supported (one RoPE for all layers only)`);
  const theta = rpObj?.rope_theta ?? cfg.rope_theta;
  if (rpObj?.rope_theta !== undefined && cfg.rope_theta !== undefined && cfg.rope_theta !== null && rpObj.rope_theta !== cfg.rope_theta) {
    problems.push(`rope_theta ${show(cfg.rope_theta)} and rope_parameters.rope_theta ${show(rpObj.rope_theta)} disagree`);
  }
  if (theta === undefined || theta === null) problems.push("rope_theta is missing (required: top-level rope_theta or rope_parameters.rope_theta)");
  else ropeTheta = num(theta, "rope_theta");
  for (const [key, v] of [["rope_parameters", rpObj], ["rope_scaling", cfg.rope_scaling]] as const) {
    if (v === undefined || v === null) continue;
    if (!isObj(v)) { problems.push(`${key} must be an object or null, got ${show(v)}`); continue; }
    const type = v.rope_type ?? v.type ?? "default";
    if (type !== "default") problems.push(`${key}.rope_type ${show(type)} (RoPE scaling) is not supported; only "default" RoPE`);
    if (v.partial_rotary_factor !== undefined && v.partial_rotary_factor !== 1) problems.push(`${key}.partial_rotary_factor ${show(v.partial_rotary_factor)} (partial rotary) is not supported`);
  }
  if (cfg.partial_rotary_factor !== undefined && cfg.partial_rotary_factor !== null && cfg.partial_rotary_factor !== 1) {
    problems.push(`partial_rotary_factor ${show(cfg.partial_rotary_factor)} (partial rotary) is not supported`);
  }

  const act = cfg.hidden_act ?? arch.hiddenAct;
  if (act !== arch.hiddenAct) {
    problems.push(`hidden_act ${show(act)} is not supported for ${arch.architecture}; fp4lm's ${mlp === "swiglu" ? "gated MLP uses \"silu\" (SwiGLU)" : "MLP uses \"relu2\" (squared ReLU)"}`);
  }
  if (cfg.attention_bias === true) problems.push("attention_bias true is not supported (fp4lm's attention has no biases)");
  if (cfg.mlp_bias === true) problems.push("mlp_bias true is not supported (fp4lm's MLP has no biases)");
  if (cfg.tie_word_embeddings === true) problems.push("tie_word_embeddings true is not supported (fp4lm's embedding and head are separate matrices)");
  if (typeof cfg.attention_dropout === "number" && cfg.attention_dropout !== 0) problems.push(`attention_dropout ${cfg.attention_dropout} is not supported (fp4lm has no dropout)`);
  if (cfg.sliding_window !== undefined && cfg.sliding_window !== null) problems.push(`sliding_window ${show(cfg.sliding_window)} is not supported (full causal attention only)`);
  if (cfg.use_sliding_window === true) problems.push("use_sliding_window true is not supported (full causal attention only)");
  if (Array.isArray(cfg.layer_types) && cfg.layer_types.some((t) => t !== "full_attention")) {
    problems.push(`layer_types ${show([...new Set(cfg.layer_types)])} is not supported (every layer full attention)`);
  }
  if (cfg.quantization_config !== undefined && cfg.quantization_config !== null) {
    const method = isObj(cfg.quantization_config) ? cfg.quantization_config.quant_method : undefined;
    problems.push(`quantization_config${method ? ` (${show(method)})` : ""} is present: pre-quantized weights are not supported; import the unquantized model`);
  }
  if (Array.isArray(cfg.architectures) && !cfg.architectures.includes(arch.architecture)) {
    problems.push(`architectures ${show(cfg.architectures)} has no "${arch.architecture}" (fp4lm imports causal language models with an lm_head)`);
  }
  if (!Number.isNaN(headDim) && Number.isInteger(dModel / nHeads) && headDim !== dModel / nHeads) {
    problems.push(`head_dim ${headDim} ≠ hidden_size / num_attention_heads = ${dModel / nHeads} is not supported (fp4lm's head size is dModel / nHeads)`);
  }
  const model: ModelConfig = { vocabSize, dModel, nLayers, nHeads, nKvHeads, dFF, seqLen, ropeTheta, normEps, mlp };
  if (!problems.length) {
    problems.push(...modelConfigProblems(model).map((p) => `${p} (fp4lm's rule for this config)`));
    if (ropeTheta <= 1) problems.push(`rope_theta ${ropeTheta} must be > 1`);
  }
  if (problems.length) {
    throw new FileFormatError(file, `cannot import this ${arch.architecture} config (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  - ${problems.join("\n  - ")}`);
  }
  return model;
}
