/**
 * fp4lm hybrid ↔ Hugging Face `NemotronHForCausalLM` (transformers `models/nemotron_h`): config.json
 * in both directions and the tensor name map. The block pattern is `hybrid_override_pattern` (M
 * Mamba-2, * attention, - squared-ReLU FFN); newer transformers save it as the list
 * `layers_block_type` ("mamba"/"linear_attention", "attention"/"full_attention", "mlp"), both are
 * read. Names are those of the released checkpoints, `backbone.{embeddings, layers.i.norm,
 * layers.i.mixer.*, norm_f}` and `lm_head`; transformers versions whose model attribute is `model`
 * rename `backbone.` → `model.` on load, and the import takes either spelling. Attention q/k/v are
 * split out of our fused qkv; the conv weight is (convDim, W) here and (convDim, 1, W) in HF.
 *
 * dt: HF's plain-PyTorch Mamba path (`torch_forward`, the one without mamba_ssm) clamps
 * softplus(dt + dt_bias) from below at `time_step_min`; the mamba_ssm kernels (the training path)
 * clamp to `time_step_limit` (default (0, inf): no clamp), and so does fp4lm (no clamp). The export
 * writes time_step_min 0.0, so both HF paths compute what we compute, and leaves time_step_limit at
 * its default (JSON has no Infinity). Consequence: transformers' random init of dt_bias takes
 * log(time_step_min) and fails for such a config, so `from_config` needs time_step_min set first;
 * `from_pretrained` loads every dt_bias and does not init them. The import accepts any
 * time_step_min (an init setting of mamba_ssm; real models have 0.001) but refuses a
 * time_step_limit other than (0, inf). Unsupported options (MoE blocks, biases, tied embeddings,
 * other activations, multi-token-prediction layers, sliding windows, quantized weights) are
 * refused all at once.
 */
import { FileFormatError } from "../errors.ts";
import { mambaDims } from "../nn/hybrid-config.ts";
import { modelConfigProblems, type ModelConfig } from "../nn/model-config.ts";
import type { HfNameMapEntry } from "./hf-config.ts";

export const NEMOTRON_H = { architecture: "NemotronHForCausalLM", modelType: "nemotron_h" } as const;

/** transformers' layer-type names → our block kinds (older versions say "mamba"/"attention", newer "linear_attention"/"full_attention"). */
const LAYER_TYPES: Record<string, "M" | "*" | "-" | "E"> = {
  mamba: "M", linear_attention: "M", attention: "*", full_attention: "*", mlp: "-", moe: "E",
};

/** The full name map of a hybrid, in fp4lm's parameter order (HybridLM.params). */
export function nemotronhNames(m: ModelConfig): HfNameMapEntry[] {
  const C = m.dModel, V = m.vocabSize, F = m.dFF, NH = m.nHeads, NKV = m.nKvHeads, HS = C / NH;
  const whole = (param: string, shape: number[], name: string, hfShape = shape): HfNameMapEntry => ({ param, shape, parts: [{ name, shape: hfShape, row: 0 }] });
  const out = [whole("embed.weight", [V, C], "backbone.embeddings.weight")];
  [...(m.pattern ?? "")].forEach((kind, i) => {
    const b = `blocks.${i}`, l = `backbone.layers.${i}`;
    out.push(whole(`${b}.norm.weight`, [C], `${l}.norm.weight`));
    if (kind === "M") {
      const d = mambaDims(m);
      out.push(
        whole(`${b}.mamba.in_proj.weight`, [d.inProj, C], `${l}.mixer.in_proj.weight`),
        whole(`${b}.mamba.conv.weight`, [d.convDim, d.W], `${l}.mixer.conv1d.weight`, [d.convDim, 1, d.W]),
        whole(`${b}.mamba.conv.bias`, [d.convDim], `${l}.mixer.conv1d.bias`),
        whole(`${b}.mamba.dt_bias`, [d.H], `${l}.mixer.dt_bias`),
        whole(`${b}.mamba.A_log`, [d.H], `${l}.mixer.A_log`),
        whole(`${b}.mamba.D`, [d.H], `${l}.mixer.D`),
        whole(`${b}.mamba.norm.weight`, [d.dInner], `${l}.mixer.norm.weight`),
        whole(`${b}.mamba.out_proj.weight`, [C, d.dInner], `${l}.mixer.out_proj.weight`),
      );
    } else if (kind === "*") {
      out.push(
        {
          param: `${b}.attn.qkv.weight`,
          shape: [(NH + 2 * NKV) * HS, C],
          parts: [
            { name: `${l}.mixer.q_proj.weight`, shape: [NH * HS, C], row: 0 },
            { name: `${l}.mixer.k_proj.weight`, shape: [NKV * HS, C], row: NH * HS },
            { name: `${l}.mixer.v_proj.weight`, shape: [NKV * HS, C], row: (NH + NKV) * HS },
          ],
        },
        whole(`${b}.attn.proj.weight`, [C, NH * HS], `${l}.mixer.o_proj.weight`),
      );
    } else {
      out.push(whole(`${b}.mlp.fc1.weight`, [F, C], `${l}.mixer.up_proj.weight`), whole(`${b}.mlp.fc2.weight`, [C, F], `${l}.mixer.down_proj.weight`));
    }
  });
  out.push(whole("normF.weight", [C], "backbone.norm_f.weight"), whole("head.weight", [V, C], "lm_head.weight"));
  return out;
}

/**
 * A tensor name as the released checkpoints spell it: `model.` → `backbone.` (transformers versions
 * whose NemotronHForCausalLM holds `model`), `embedding.weight` → `embeddings.weight` (as
 * transformers' own load-time renaming does).
 */
export function canonicalNemotronHName(name: string): string {
  const n = name.startsWith("model.") ? `backbone.${name.slice(6)}` : name;
  return n === "backbone.embedding.weight" ? "backbone.embeddings.weight" : n;
}

/** config.json of a hybrid as transformers' NemotronHConfig. */
export function toNemotronHConfig(model: ModelConfig, opts: { dtype: "bfloat16" | "float32"; eotToken: number }): Record<string, unknown> {
  const d = mambaDims(model), m = model.mamba!;
  return {
    architectures: [NEMOTRON_H.architecture],
    model_type: NEMOTRON_H.modelType,
    vocab_size: model.vocabSize,
    hidden_size: model.dModel,
    intermediate_size: model.dFF,
    num_hidden_layers: model.nLayers,
    hybrid_override_pattern: model.pattern,
    num_attention_heads: model.nHeads,
    num_key_value_heads: model.nKvHeads,
    head_dim: model.dModel / model.nHeads,
    max_position_embeddings: model.seqLen,
    attention_bias: false,
    attention_dropout: 0,
    sliding_window: null,
    mlp_hidden_act: "relu2",
    mlp_bias: false,
    mamba_num_heads: d.H,
    mamba_head_dim: d.P,
    ssm_state_size: d.N,
    n_groups: d.G,
    conv_kernel: d.W,
    expand: m.expand,
    chunk_size: m.chunkSize,
    mamba_hidden_act: "silu",
    use_conv_bias: true,
    mamba_proj_bias: false,
    use_bias: false,
    time_step_min: 0,
    time_step_max: 0.1,
    time_step_floor: 1e-4,
    use_mamba_kernels: true,
    layer_norm_epsilon: model.normEps,
    residual_in_fp32: false,
    hidden_dropout: 0,
    rescale_prenorm_residual: true,
    num_nextn_predict_layers: 0,
    tie_word_embeddings: false,
    initializer_range: 0.02,
    num_logits_to_keep: 1,
    bos_token_id: opts.eotToken,
    eos_token_id: opts.eotToken,
    pad_token_id: opts.eotToken,
    use_cache: true,
    torch_dtype: opts.dtype,
    dtype: opts.dtype,
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** a config value as the error message shows it (Infinity and NaN as such, not JSON's null) */
const show = (v: unknown) =>
  (JSON.stringify(v, (_k, x) => (typeof x === "number" && !Number.isFinite(x) ? `\u0000${x}\u0000` : x)) ?? String(v)).replace(/"\\u0000([^"]*)\\u0000"/g, "$1");
const given = (v: unknown) => v !== undefined && v !== null;

/**
 * ModelConfig of a hybrid from a parsed NemotronH config.json. Throws FileFormatError naming
 * `file` and listing every unsupported option or missing/invalid key at once. seqLen is
 * max_position_embeddings; ropeTheta (unused by hybrids) is 10000.
 */
export function fromNemotronHConfig(cfg: Record<string, unknown>, file: string): ModelConfig {
  const problems: string[] = [];
  /** the value under `key` or one of its legacy names (transformers still reads mamba_n_groups etc.) */
  const pick = (key: string, ...legacy: string[]): unknown => {
    const found = [key, ...legacy].filter((k) => given(cfg[k]));
    if (found.length > 1 && found.some((k) => show(cfg[k]) !== show(cfg[found[0]]))) {
      problems.push(`${found.map((k) => `${k} ${show(cfg[k])}`).join(" and ")} disagree`);
    }
    return found.length ? cfg[found[0]] : undefined;
  };
  const int = (key: string, ...legacy: string[]): number => {
    const v = pick(key, ...legacy);
    if (!given(v)) { problems.push(`${key} is missing (required)`); return NaN; }
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) problems.push(`${key} must be a positive integer, got ${show(v)}`);
    return v as number;
  };
  const flag = (key: string, dflt: boolean, ...legacy: string[]): boolean => {
    const v = pick(key, ...legacy);
    return given(v) ? v === true : dflt;
  };

  // the pattern: hybrid_override_pattern (a string) and/or layers_block_type / layer_types (lists)
  const patterns: [string, string][] = [];
  const hp = cfg.hybrid_override_pattern;
  if (given(hp)) {
    if (typeof hp !== "string" || !/^[M*\-E]+$/.test(hp)) problems.push(`hybrid_override_pattern must be a string of M, *, - (and E), got ${show(hp)}`);
    else patterns.push(["hybrid_override_pattern", hp]);
  }
  for (const key of ["layers_block_type", "layer_types"]) {
    const v = cfg[key];
    if (!given(v)) continue;
    if (!Array.isArray(v) || !v.length || v.some((t) => typeof t !== "string" || !(t in LAYER_TYPES))) {
      problems.push(`${key} must be a list of ${Object.keys(LAYER_TYPES).map((t) => `"${t}"`).join(", ")}, got ${show(v)?.slice(0, 120)}`);
    } else patterns.push([key, v.map((t: string) => LAYER_TYPES[t]).join("")]);
  }
  if (!patterns.length) problems.push("hybrid_override_pattern (or layers_block_type) is missing (required: the block pattern)");
  else if (new Set(patterns.map(([, p]) => p)).size > 1) problems.push(`the block patterns disagree: ${patterns.map(([k, p]) => `${k} gives "${p}"`).join(", ")}`);
  const pattern = patterns[0]?.[1] ?? "";
  if (pattern.includes("E")) problems.push(`MoE blocks (E in "${pattern}", layer type "moe") are not supported; fp4lm's hybrids have Mamba-2 (M), attention (*) and FFN (-) blocks`);

  const vocabSize = int("vocab_size"), dModel = int("hidden_size"), seqLen = int("max_position_embeddings");
  const nHeads = int("num_attention_heads"), nKvHeads = int("num_key_value_heads"), headDim = int("head_dim");
  const dFF = int("intermediate_size");
  const H = int("mamba_num_heads"), P = int("mamba_head_dim"), N = int("ssm_state_size");
  const G = int("n_groups", "mamba_n_groups"), W = int("conv_kernel", "mamba_d_conv"), chunk = int("chunk_size", "mamba_chunk_size");
  const nl = cfg.num_hidden_layers;
  if (given(nl) && pattern && nl !== pattern.length) problems.push(`num_hidden_layers ${show(nl)} ≠ the pattern's ${pattern.length} blocks ("${pattern}")`);
  const eps = pick("layer_norm_epsilon", "rms_norm_eps");
  if (!given(eps)) problems.push("layer_norm_epsilon is missing (required)");
  else if (typeof eps !== "number" || !(eps > 0)) problems.push(`layer_norm_epsilon must be a positive number, got ${show(eps)}`);

  // transformers sizes the mixer by heads (intermediate = mamba_num_heads · mamba_head_dim) and ignores `expand`; ours is expand · hidden_size
  const dInner = H * P;
  if (Number.isInteger(dInner) && Number.isInteger(dModel) && dInner % dModel !== 0) {
    problems.push(`mamba_num_heads · mamba_head_dim = ${dInner} is not a multiple of hidden_size ${dModel} (fp4lm's Mamba-2 width is expand · hidden_size)`);
  }
  if (pattern.includes("*") && Number.isInteger(headDim) && Number.isInteger(dModel / nHeads) && headDim !== dModel / nHeads) {
    problems.push(`head_dim ${headDim} ≠ hidden_size / num_attention_heads = ${dModel / nHeads} is not supported (fp4lm's head size is dModel / nHeads)`);
  }
  const mlpAct = cfg.mlp_hidden_act ?? "relu2", mambaAct = cfg.mamba_hidden_act ?? "silu";
  if (mlpAct !== "relu2") problems.push(`mlp_hidden_act ${show(mlpAct)} is not supported; fp4lm's FFN uses "relu2" (squared ReLU)`);
  if (mambaAct !== "silu" && mambaAct !== "swish") problems.push(`mamba_hidden_act ${show(mambaAct)} is not supported; fp4lm's Mamba-2 conv uses "silu"`);
  if (!flag("use_conv_bias", true, "mamba_conv_bias")) problems.push("use_conv_bias false is not supported (fp4lm's Mamba-2 conv has a bias)");
  if (flag("mamba_proj_bias", false)) problems.push("mamba_proj_bias true is not supported (fp4lm's in_proj/out_proj have no biases)");
  if (flag("use_bias", false)) problems.push("use_bias true is not supported (fp4lm's Mamba-2 projections have no biases)");
  if (flag("attention_bias", false)) problems.push("attention_bias true is not supported (fp4lm's attention has no biases)");
  if (flag("mlp_bias", false)) problems.push("mlp_bias true is not supported (fp4lm's FFN has no biases)");
  if (flag("tie_word_embeddings", false)) problems.push("tie_word_embeddings true is not supported (fp4lm's embedding and head are separate matrices)");
  if (typeof cfg.attention_dropout === "number" && cfg.attention_dropout !== 0) problems.push(`attention_dropout ${cfg.attention_dropout} is not supported (fp4lm has no dropout)`);
  if (given(cfg.sliding_window)) problems.push(`sliding_window ${show(cfg.sliding_window)} is not supported (full causal attention only)`);
  if (typeof cfg.num_nextn_predict_layers === "number" && cfg.num_nextn_predict_layers > 0) {
    problems.push(`num_nextn_predict_layers ${cfg.num_nextn_predict_layers} (multi-token prediction layers) is not supported`);
  }
  const lim = pick("time_step_limit", "mamba_dt_limit");
  if (given(lim) && !(Array.isArray(lim) && lim.length === 2 && lim[0] === 0 && lim[1] === Infinity)) {
    problems.push(`time_step_limit ${show(lim)} is not supported: it clamps dt in the mamba_ssm kernels and fp4lm does not clamp dt (only [0.0, Infinity])`);
  }
  if (given(cfg.quantization_config)) {
    const method = isObj(cfg.quantization_config) ? cfg.quantization_config.quant_method : undefined;
    problems.push(`quantization_config${method ? ` (${show(method)})` : ""} is present: pre-quantized weights are not supported; import the unquantized model`);
  }
  if (Array.isArray(cfg.architectures) && !cfg.architectures.includes(NEMOTRON_H.architecture)) {
    problems.push(`architectures ${show(cfg.architectures)} has no "${NEMOTRON_H.architecture}" (fp4lm imports causal language models with an lm_head)`);
  }
  const model: ModelConfig = {
    vocabSize, dModel, nLayers: pattern.length, nHeads, nKvHeads, dFF, seqLen, ropeTheta: 10000, normEps: eps as number, mlp: "sqrelu", pattern,
    mamba: { nGroups: G, dState: N, headDim: P, expand: dInner / dModel, convWindow: W, chunkSize: chunk },
  };
  if (!problems.length) problems.push(...modelConfigProblems(model).map((p) => `${p} (fp4lm's rule for this config)`));
  if (problems.length) {
    throw new FileFormatError(file, `cannot import this ${NEMOTRON_H.architecture} config (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  - ${problems.join("\n  - ")}`);
  }
  return model;
}
