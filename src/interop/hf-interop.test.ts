/**
 * Hugging Face interop: export → import round trips (F32 bit-exact, BF16 = RNE-rounded), the
 * exact HF names, shapes and config keys, sharded folders, every refusal, and logits: the
 * imported model's equal the original's, and a float64 transcription of transformers'
 * ArceeForCausalLM / LlamaForCausalLM forward on the exported tensors agrees with our CPU model
 * (names, q/k/v and gate/up splits, GQA grouping and the RoPE convention). Parity with
 * transformers itself: test/interop_check.py on a machine with PyTorch.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCheckpoint, saveCheckpoint, type NamedTensor } from "../checkpoint/checkpoint.ts";
import { lcgTokens as tokens } from "../../test/random.ts";
import { byteTokenizer } from "../data/tokenizer.ts";
import { FileFormatError, Fp4lmError, NonFiniteError } from "../errors.ts";
import { roundBf16InPlace } from "../formats/bf16.ts";
import { readSafetensors, tensorToFloat32, writeSafetensors, type TensorEntry } from "../io/safetensors.ts";
import type { ModelConfig } from "../nn/model-config.ts";
import { buildConfig, type TrainConfig } from "../train/config.ts";
import { checkpointLogits, checkWeights, saveCheckWeights } from "./check-weights.ts";
import { fromHfConfig, toHfConfig } from "./hf-config.ts";
import { exportHf } from "./hf-export.ts";
import { importHf } from "./hf-import.ts";
import { importBitIdentical } from "../../test/interop-import.ts";

function tinyConfig(extra: string[] = []): TrainConfig {
  return buildConfig([
    "device=cpu", "data.tokenizer=byte", "model.vocabSize=257", "model.dModel=32", "model.nLayers=2", "model.nHeads=4",
    "model.nKvHeads=2", "model.dFF=64", "model.seqLen=16", "batchSize=2", "seed=11", ...extra,
  ]);
}

/**
 * A tiny checkpoint without training: every tensor seeded and O(1) (matrices N(0, 1/in), norm
 * gains 1 + N(0, 0.3²), all distinct), so a swapped or mis-split tensor changes the logits.
 */
function makeCheckpoint(dir: string, seed = 5, extra: string[] = []): { path: string; config: TrainConfig; params: NamedTensor[] } {
  const config = tinyConfig(extra);
  const params = checkWeights(config.model, seed);
  const path = join(dir, "ckpt.safetensors");
  saveCheckWeights(path, config, params, byteTokenizer().toJSON(), 3);
  return { path, config, params };
}

/** Our CPU model's logits (B·T, V) for a checkpoint, fp32 recipe. */
const ourLogits = (path: string, ids: Int32Array, B: number, T: number) => checkpointLogits(path, ids, B, T, 1);

/**
 * transformers' ArceeForCausalLM forward, transcribed in float64 on HF-named tensors: RMSNorm
 * (x·rsqrt(mean(x²)+eps)·w), q/k/v/o projections, RoPE as `x·cos + rotate_half(x)·sin` with
 * emb = cat(freqs, freqs), `repeat_kv` grouping, causal softmax(QKᵀ·head_dim^−½)V,
 * down_proj(relu(up_proj(x))²), final norm, lm_head. With hidden_act "silu" it is
 * LlamaForCausalLM's: down_proj(silu(gate_proj(x)) · up_proj(x)). Returns logits (B·T, V).
 */
function hfReferenceLogits(cfg: Record<string, unknown>, w: Map<string, Float32Array>, ids: Int32Array, B: number, T: number): Float64Array {
  const C = cfg.hidden_size as number, NH = cfg.num_attention_heads as number, NKV = cfg.num_key_value_heads as number;
  const HS = cfg.head_dim as number, F = cfg.intermediate_size as number, V = cfg.vocab_size as number, L = cfg.num_hidden_layers as number;
  const eps = cfg.rms_norm_eps as number, theta = (cfg.rope_parameters as { rope_theta: number }).rope_theta;
  const W = (n: string) => { const t = w.get(n); assert.ok(t, `missing ${n}`); return t; };
  const linear = (x: Float64Array, wt: Float32Array, out: number, inF: number) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) { let s = 0; for (let i = 0; i < inF; i++) s += x[i] * wt[o * inF + i]; y[o] = s; }
    return y;
  };
  const norm = (x: Float64Array, g: Float32Array) => {
    let ss = 0; for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => v * r * g[i]);
  };
  const rope = (x: Float64Array, t: number) => { // one head (HS)
    const half = HS / 2, out = new Float64Array(HS);
    for (let d = 0; d < HS; d++) {
      const ang = t * Math.pow(theta, -(2 * (d % half)) / HS);
      const rot = d < half ? -x[d + half] : x[d - half];
      out[d] = x[d] * Math.cos(ang) + rot * Math.sin(ang);
    }
    return out;
  };
  const logits = new Float64Array(B * T * V);
  for (let b = 0; b < B; b++) {
    let h = Array.from({ length: T }, (_, t) => Float64Array.from(W("model.embed_tokens.weight").subarray(ids[b * T + t] * C, (ids[b * T + t] + 1) * C)));
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}`;
      const x = h.map((r) => norm(r, W(`${p}.input_layernorm.weight`)));
      const q = x.map((r, t) => { const y = linear(r, W(`${p}.self_attn.q_proj.weight`), NH * HS, C); for (let hd = 0; hd < NH; hd++) y.set(rope(y.subarray(hd * HS, (hd + 1) * HS), t), hd * HS); return y; });
      const k = x.map((r, t) => { const y = linear(r, W(`${p}.self_attn.k_proj.weight`), NKV * HS, C); for (let hd = 0; hd < NKV; hd++) y.set(rope(y.subarray(hd * HS, (hd + 1) * HS), t), hd * HS); return y; });
      const v = x.map((r) => linear(r, W(`${p}.self_attn.v_proj.weight`), NKV * HS, C));
      const att = Array.from({ length: T }, () => new Float64Array(NH * HS));
      for (let hd = 0; hd < NH; hd++) {
        const g = Math.floor(hd / (NH / NKV)); // repeat_kv: query head hd reads kv head hd // n_rep
        for (let i = 0; i < T; i++) {
          const s = Array.from({ length: i + 1 }, (_, j) => { let d = 0; for (let e = 0; e < HS; e++) d += q[i][hd * HS + e] * k[j][g * HS + e]; return d / Math.sqrt(HS); });
          const m = Math.max(...s), ex = s.map((z) => Math.exp(z - m)), sum = ex.reduce((a, c) => a + c, 0);
          for (let j = 0; j <= i; j++) for (let e = 0; e < HS; e++) att[i][hd * HS + e] += (ex[j] / sum) * v[j][g * HS + e];
        }
      }
      h = h.map((r, t) => r.map((val, i) => val + linear(att[t], W(`${p}.self_attn.o_proj.weight`), C, NH * HS)[i]));
      h = h.map((r) => {
        const n2 = norm(r, W(`${p}.post_attention_layernorm.weight`));
        const up = linear(n2, W(`${p}.mlp.up_proj.weight`), F, C);
        const act = cfg.hidden_act === "silu"
          ? linear(n2, W(`${p}.mlp.gate_proj.weight`), F, C).map((g, j) => (g / (1 + Math.exp(-g))) * up[j])
          : up.map((z) => (z > 0 ? z * z : 0));
        const down = linear(act, W(`${p}.mlp.down_proj.weight`), C, F);
        return r.map((val, i) => val + down[i]);
      });
    }
    h.forEach((r, t) => logits.set(linear(norm(r, W("model.norm.weight")), W("lm_head.weight"), V, C), (b * T + t) * V));
  }
  return logits;
}

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-hf-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hfTensors = (dir: string) => new Map(readSafetensors(join(dir, "model.safetensors")).tensors.map((t) => [t.name, t]));
const f32 = (t: TensorEntry) => tensorToFloat32(t, "test");
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
/** What an export of a byte-tokenizer checkpoint holds (the byte tokenizer is a BPE without merges). */
const EXPORTED_FILES = ["config.json", "fp4lm_tokenizer.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"];
const noTemps = (dir: string) => readdirSync(dir).filter((n) => /\.(tmp|old)-\d+$/.test(n));

/** The exact HF tensor list of an Arcee (or, with mlp swiglu, Llama) model, as transformers names them. */
function expectedHfShapes(m: ModelConfig): [string, number[]][] {
  const C = m.dModel, HS = C / m.nHeads, out: [string, number[]][] = [["model.embed_tokens.weight", [m.vocabSize, C]]];
  for (let i = 0; i < m.nLayers; i++) {
    const l = `model.layers.${i}`;
    out.push(
      [`${l}.input_layernorm.weight`, [C]], [`${l}.self_attn.q_proj.weight`, [m.nHeads * HS, C]], [`${l}.self_attn.k_proj.weight`, [m.nKvHeads * HS, C]],
      [`${l}.self_attn.v_proj.weight`, [m.nKvHeads * HS, C]], [`${l}.self_attn.o_proj.weight`, [C, m.nHeads * HS]], [`${l}.post_attention_layernorm.weight`, [C]],
      ...(m.mlp === "swiglu" ? [[`${l}.mlp.gate_proj.weight`, [m.dFF, C]] as [string, number[]]] : []),
      [`${l}.mlp.up_proj.weight`, [m.dFF, C]], [`${l}.mlp.down_proj.weight`, [C, m.dFF]],
    );
  }
  out.push(["model.norm.weight", [C]], ["lm_head.weight", [m.vocabSize, C]]);
  return out;
}

test("export f32 → import: every parameter bit-identical; the checkpoint is a fresh, complete fp4lm checkpoint", () => withTmp((dir) => {
  const { path, config, params } = makeCheckpoint(dir);
  const hf = join(dir, "hf");
  const { files } = exportHf(path, hf, { dtype: "f32" });
  assert.deepEqual(files.map((f) => f.slice(hf.length + 1)).sort(), EXPORTED_FILES);
  assert.deepEqual(noTemps(dir), []);
  const out = join(dir, "imported.safetensors");
  const c = importBitIdentical(hf, out, params);
  for (const t of [...c.m, ...c.v]) assert.ok(t.data.every((x) => x === 0), `${t.name}: moments must be zero`);
  assert.equal(c.state.step, 0);
  assert.equal(c.state.optimizerT, 0);
  assert.deepEqual(c.state.tokenizer, byteTokenizer().toJSON());
  const ic = c.state.config as TrainConfig;
  assert.deepEqual({ ...ic.model, preset: "tiny" }, { ...config.model, preset: "tiny" });
  assert.equal(ic.model.preset, "imported");
  assert.equal(ic.recipe.name, "nvfp4");
  assert.equal(ic.data.tokenizer, "byte");
  assert.equal((c.state.recipe as { name: string }).name, "nvfp4");
  const withRecipe = join(dir, "bf16-recipe.safetensors");
  importHf(hf, withRecipe, { recipe: "bf16" });
  assert.equal((loadCheckpoint(withRecipe).state.config as TrainConfig).recipe.name, "bf16");
}));

test("export bf16: HF names and shapes exactly, values = RNE-rounded params, config.json keys, generation config, tokenizer", () => withTmp((dir) => {
  const { path, config, params } = makeCheckpoint(dir);
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "bf16" });
  const f = readSafetensors(join(hf, "model.safetensors"));
  assert.deepEqual(f.metadata, { format: "pt" });
  assert.deepEqual(f.tensors.map((t) => [t.name, t.shape]).sort(), expectedHfShapes(config.model).sort());
  assert.ok(f.tensors.every((t) => t.dtype === "BF16"));
  const byName = new Map(f.tensors.map((t) => [t.name, f32(t)]));
  const P = new Map(params.map((p) => [p.name, p.data]));
  const C = config.model.dModel, q = 4 * 8, k = 2 * 8; // NH·HS, NKV·HS
  const rounded = (name: string, from = 0, to?: number) => roundBf16InPlace(Float32Array.from(P.get(name)!.subarray(from * C, to === undefined ? undefined : to * C)));
  assert.deepEqual(bits(byName.get("model.layers.1.self_attn.q_proj.weight")!), bits(rounded("blocks.1.attn.qkv.weight", 0, q)));
  assert.deepEqual(bits(byName.get("model.layers.1.self_attn.k_proj.weight")!), bits(rounded("blocks.1.attn.qkv.weight", q, q + k)));
  assert.deepEqual(bits(byName.get("model.layers.1.self_attn.v_proj.weight")!), bits(rounded("blocks.1.attn.qkv.weight", q + k)));
  assert.deepEqual(bits(byName.get("model.layers.0.mlp.up_proj.weight")!), bits(rounded("blocks.0.mlp.fc1.weight")));
  assert.deepEqual(bits(byName.get("model.layers.0.mlp.down_proj.weight")!), bits(rounded("blocks.0.mlp.fc2.weight")));
  assert.deepEqual(bits(byName.get("model.layers.0.post_attention_layernorm.weight")!), bits(rounded("blocks.0.norm2.weight")));
  assert.deepEqual(bits(byName.get("lm_head.weight")!), bits(rounded("head.weight")));
  // round-to-nearest-even really happened (not truncation): some value differs from its truncation
  const raw = P.get("head.weight")!, trunc = Float32Array.from(bits(raw), (b) => new Float32Array(new Uint32Array([b & 0xffff0000]).buffer)[0]);
  assert.notDeepEqual(bits(byName.get("lm_head.weight")!), bits(trunc));

  const text = readFileSync(join(hf, "config.json"), "utf8");
  const cfg = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(cfg, {
    architectures: ["ArceeForCausalLM"], model_type: "arcee", vocab_size: 257, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, hidden_act: "relu2", max_position_embeddings: 16, rms_norm_eps: 1e-5,
    rope_theta: 10000, rope_parameters: { rope_type: "default", rope_theta: 10000 }, attention_bias: false, attention_dropout: 0, mlp_bias: false,
    tie_word_embeddings: false, initializer_range: 0.02, bos_token_id: 256, eos_token_id: 256, use_cache: true, torch_dtype: "bfloat16", dtype: "bfloat16",
  });
  // float-typed keys are JSON floats for Python (transformers' strict configs check types)
  assert.match(text, /"rope_theta": 10000\.0,/);
  assert.match(text, /"attention_dropout": 0\.0,/);
  assert.equal((text.match(/"rope_theta": 10000\.0/g) ?? []).length, 2);
  assert.deepEqual(JSON.parse(readFileSync(join(hf, "generation_config.json"), "utf8")), { bos_token_id: 256, eos_token_id: 256 });
  assert.deepEqual(JSON.parse(readFileSync(join(hf, "fp4lm_tokenizer.json"), "utf8")), byteTokenizer().toJSON());
  const { preset, ...model } = config.model;
  assert.equal(preset, "tiny");
  assert.deepEqual(fromHfConfig(cfg, "config.json"), model);
  // and the import of a BF16 folder holds exactly the rounded values
  importHf(hf, join(dir, "back.safetensors"));
  const back = loadCheckpoint(join(dir, "back.safetensors"));
  for (const p of back.params) assert.deepEqual(bits(p.data), bits(roundBf16InPlace(Float32Array.from(P.get(p.name)!))), p.name);
}));

test("toHfConfig ↔ fromHfConfig round trip (Arcee and Llama); transformers-5 style (rope_parameters only, dtype, nulls) is accepted", () => {
  for (const mlp of ["sqrelu", "swiglu"] as const) {
    const m: ModelConfig = { vocabSize: 50304, dModel: 768, nLayers: 12, nHeads: 12, nKvHeads: 4, dFF: 3072, seqLen: 1024, ropeTheta: 500000, normEps: 1e-6, mlp };
    const hf = toHfConfig(m, { dtype: "float32", eotToken: 50256 });
    assert.deepEqual([hf.architectures, hf.model_type, hf.hidden_act], mlp === "swiglu" ? [["LlamaForCausalLM"], "llama", "silu"] : [["ArceeForCausalLM"], "arcee", "relu2"]);
    assert.deepEqual(fromHfConfig(hf, "c.json"), m);
    const v5 = { ...toHfConfig(m, { dtype: "float32", eotToken: 1 }), rope_theta: undefined, torch_dtype: undefined, head_dim: null, num_key_value_heads: 4, pad_token_id: null, transformers_version: "5.17.0", rope_scaling: null };
    assert.deepEqual(fromHfConfig(JSON.parse(JSON.stringify(v5)), "c.json"), m);
    const legacy = { ...toHfConfig(m, { dtype: "bfloat16", eotToken: 1 }), rope_parameters: undefined, num_key_value_heads: undefined, hidden_act: undefined };
    assert.deepEqual(fromHfConfig(JSON.parse(JSON.stringify(legacy)), "c.json"), { ...m, nKvHeads: 12 });
  }
  // a model config from before the MLP option exports as Arcee
  const old: ModelConfig = { vocabSize: 257, dModel: 32, nLayers: 1, nHeads: 4, nKvHeads: 2, dFF: 64, seqLen: 16, ropeTheta: 10000, normEps: 1e-5 };
  assert.equal(toHfConfig(old, { dtype: "float32", eotToken: 256 }).model_type, "arcee");
  assert.equal(fromHfConfig(toHfConfig(old, { dtype: "float32", eotToken: 256 }), "c.json").mlp, "sqrelu");
});

test("a hand-built sharded HF folder (index + 2 shards, F32 and BF16, rotary inv_freq buffer) imports", () => withTmp((dir) => {
  const { path, params } = makeCheckpoint(dir);
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "f32" });
  const all = readSafetensors(join(hf, "model.safetensors")).tensors;
  rmSync(join(hf, "model.safetensors"));
  const first = all.filter((t) => t.name.startsWith("model.embed") || t.name.startsWith("model.layers.0."));
  const second = all.filter((t) => !first.includes(t)).map((t) => {
    const v = f32(t), b = new Uint16Array(v.length);
    for (let i = 0; i < v.length; i++) b[i] = new Uint32Array(roundBf16InPlace(Float32Array.of(v[i])).buffer)[0] >>> 16;
    return { name: t.name, dtype: "BF16" as const, shape: t.shape, data: new Uint8Array(b.buffer) };
  });
  const inv = { name: "model.layers.1.self_attn.rotary_emb.inv_freq", dtype: "F32" as const, shape: [4], data: new Uint8Array(16) };
  const s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  writeSafetensors(join(hf, s1), first, { format: "pt" });
  writeSafetensors(join(hf, s2), [...second, inv], { format: "pt" });
  const weightMap = Object.fromEntries([...first.map((t) => [t.name, s1]), ...[...second, inv].map((t) => [t.name, s2])]);
  writeFileSync(join(hf, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  const out = join(dir, "sharded.safetensors");
  importHf(hf, out);
  const P = new Map(params.map((p) => [p.name, p.data]));
  for (const p of loadCheckpoint(out).params) {
    const exact = p.name.startsWith("embed") || p.name.startsWith("blocks.0.");
    const want = exact ? P.get(p.name)! : roundBf16InPlace(Float32Array.from(P.get(p.name)!));
    assert.deepEqual(bits(p.data), bits(want), p.name);
  }
}));

test("config errors: every unsupported option listed at once, for Arcee and for Llama", () => {
  const base = toHfConfig(tinyConfig().model, { dtype: "float32", eotToken: 256 });
  const llama = toHfConfig(tinyConfig(["model.mlp=swiglu"]).model, { dtype: "float32", eotToken: 256 });
  assert.equal(fromHfConfig({ ...base, model_type: "llama", architectures: ["LlamaForCausalLM"], hidden_act: "silu" }, "c.json").mlp, "swiglu");
  assert.throws(() => fromHfConfig({ ...base, model_type: "mistral" }, "c.json"), /model_type "mistral" is not supported; fp4lm imports model_type "arcee" \(ArceeForCausalLM\), "llama" \(LlamaForCausalLM\) and "nemotron_h" \(NemotronHForCausalLM\) only/);
  // Llama 3 style: rope scaling "llama3", tied embeddings, biases, another activation, another architecture name
  const llama3 = {
    ...llama, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    tie_word_embeddings: true, attention_bias: true, mlp_bias: true, hidden_act: "gelu", architectures: ["LlamaModel"],
  };
  assert.throws(() => fromHfConfig(llama3, "llama/config.json"), (e: Error) => {
    assert.ok(e instanceof FileFormatError);
    assert.match(e.message, /^llama\/config\.json: cannot import this LlamaForCausalLM config \(6 problems\)/);
    for (const s of [`rope_scaling.rope_type "llama3" (RoPE scaling) is not supported`, "tie_word_embeddings true", "attention_bias true", "mlp_bias true",
      `hidden_act "gelu" is not supported for LlamaForCausalLM; fp4lm's gated MLP uses "silu"`, `architectures ["LlamaModel"] has no "LlamaForCausalLM"`]) {
      assert.ok(e.message.includes(s), `${s} not in: ${e.message}`);
    }
    return true;
  });
  assert.throws(() => fromHfConfig({ ...base, attention_bias: true, tie_word_embeddings: true, hidden_act: "silu" }, "c.json"), (e: Error) => {
    assert.ok(e instanceof FileFormatError);
    assert.match(e.message, /\(3 problems\)/);
    for (const s of ["attention_bias true", "tie_word_embeddings true", `hidden_act "silu"`]) assert.ok(e.message.includes(s), `${s} not in: ${e.message}`);
    return true;
  });
  const many = {
    ...base, mlp_bias: true, rope_scaling: { rope_type: "yarn", factor: 4 }, head_dim: 16, sliding_window: 4096,
    quantization_config: { quant_method: "gptq" }, vocab_size: undefined, rope_parameters: { rope_type: "default", rope_theta: 10000, partial_rotary_factor: 0.5 },
    layer_types: ["full_attention", "sliding_attention"],
  };
  assert.throws(() => fromHfConfig(JSON.parse(JSON.stringify(many)), "c.json"), (e: Error) => {
    for (const s of ["mlp_bias true", `rope_scaling.rope_type "yarn"`, "head_dim 16", "sliding_window 4096", `quantization_config ("gptq")`, "vocab_size is missing", "partial_rotary_factor 0.5", "layer_types"]) {
      assert.ok(e.message.includes(s), `${s} not in: ${e.message}`);
    }
    assert.match(e.message, /\(8 problems\)/);
    return true;
  });
  assert.throws(() => fromHfConfig({ ...base, rope_theta: 500000 }, "c.json"), /rope_theta 500000 and rope_parameters.rope_theta 10000 disagree/);
  assert.throws(() => fromHfConfig({ ...base, num_key_value_heads: 3 }, "c.json"), /nKvHeads \(3\) must divide model.nHeads \(4\)/);
});

test("weight errors: missing shard, tensor missing from its shard or anywhere, extra tensor, wrong shape, truncated file", () => withTmp((dir) => {
  const { path } = makeCheckpoint(dir);
  const src = join(dir, "src");
  exportHf(path, src, { dtype: "f32" });
  const all = readSafetensors(join(src, "model.safetensors")).tensors;
  const out = join(dir, "out.safetensors");
  let n = 0;
  const folder = (tensors: TensorEntry[], index?: Record<string, string>, shards?: Record<string, TensorEntry[]>) => {
    const d = join(dir, `case${n++}`);
    mkdirSync(d);
    writeFileSync(join(d, "config.json"), readFileSync(join(src, "config.json")));
    if (index) {
      writeFileSync(join(d, "model.safetensors.index.json"), JSON.stringify({ weight_map: index }));
      for (const [s, ts] of Object.entries(shards ?? {})) writeSafetensors(join(d, s), ts);
    } else writeSafetensors(join(d, "model.safetensors"), tensors);
    return d;
  };
  const half = Math.floor(all.length / 2), A = all.slice(0, half), B = all.slice(half);
  const map = Object.fromEntries([...A.map((t) => [t.name, "a.safetensors"]), ...B.map((t) => [t.name, "b.safetensors"])]);

  // a listed shard file does not exist
  assert.throws(() => importHf(folder([], map, { "a.safetensors": A }), out), (e: Error) => e instanceof FileFormatError && /model\.safetensors\.index\.json: lists shard files that do not exist .*b\.safetensors \(\d+ tensors/.test(e.message));
  // listed in the index but absent from its shard
  const gone = B[0].name;
  assert.throws(() => importHf(folder([], map, { "a.safetensors": A, "b.safetensors": B.slice(1) }), out), (e: Error) => e instanceof FileFormatError && e.message.includes(`${gone} is listed in b.safetensors but that file does not hold it`));
  // a required tensor missing anywhere; an unexpected extra (a gated MLP's gate_proj) listed too
  const gate = { name: "model.layers.0.mlp.gate_proj.weight", dtype: "F32" as const, shape: [64, 32], data: new Uint8Array(64 * 32 * 4) };
  assert.throws(() => importHf(folder([...all.filter((t) => t.name !== "model.layers.1.self_attn.k_proj.weight"), gate]), out), (e: Error) => {
    assert.ok(e instanceof FileFormatError);
    assert.match(e.message, /model\.layers\.1\.self_attn\.k_proj\.weight is missing \(shape \[16,32\] expected\)/);
    assert.match(e.message, /unexpected tensor not in an ArceeForCausalLM of this config: model\.layers\.0\.mlp\.gate_proj\.weight/);
    return true;
  });
  // wrong shape (transposed up_proj), and a non-float dtype
  const wrong = all.map((t) => (t.name === "model.layers.0.mlp.up_proj.weight" ? { ...t, shape: [32, 64] } : t.name === "model.norm.weight" ? { ...t, dtype: "I32" as const } : t));
  assert.throws(() => importHf(folder(wrong), out), (e: Error) =>
    /model\.layers\.0\.mlp\.up_proj\.weight in .*model\.safetensors has shape \[32,64\] but config\.json implies \[64,32\]/.test(e.message) && /model\.norm\.weight in .* has dtype I32/.test(e.message));
  // a truncated shard: the safetensors reader's error, naming the file and the shard's role
  const trunc = folder([], map, { "a.safetensors": A, "b.safetensors": B });
  truncateSync(join(trunc, "b.safetensors"), 200);
  assert.throws(() => importHf(trunc, out), (e: Error) => e instanceof FileFormatError && e.file === join(trunc, "b.safetensors") && /truncated\?.*shard \d of 2 listed in model\.safetensors\.index\.json/.test(e.message));
  // no weights at all; a folder without config.json
  const empty = join(dir, "empty");
  mkdirSync(empty);
  assert.throws(() => importHf(empty, out), /has no config\.json; not a Hugging Face model folder/);
  writeFileSync(join(empty, "config.json"), readFileSync(join(src, "config.json")));
  assert.throws(() => importHf(empty, out), /has neither model\.safetensors nor model\.safetensors\.index\.json/);
  assert.equal(existsSync(out), false, "no checkpoint is written by a failed import");
  // an existing checkpoint is not replaced unless asked
  writeFileSync(out, "keep");
  assert.throws(() => importHf(src, out), /already exists; pass overwrite/);
  assert.equal(readFileSync(out, "utf8"), "keep");
  importHf(src, out, { overwrite: true });
  assert.equal(loadCheckpoint(out).state.step, 0);
}));

test("export refuses a non-empty outDir, replaces it with overwrite, and never leaves a partial or temp folder", () => withTmp((dir) => {
  const { path, config, params } = makeCheckpoint(dir);
  const hf = join(dir, "hf");
  mkdirSync(hf);
  exportHf(path, hf, { dtype: "f32" }); // an empty folder is fine
  writeFileSync(join(hf, "mine.txt"), "keep");
  assert.throws(() => exportHf(path, hf, { dtype: "bf16" }), (e: Error) => e instanceof Fp4lmError && /exists and is not empty; pass overwrite/.test(e.message));
  assert.equal(readFileSync(join(hf, "mine.txt"), "utf8"), "keep");
  assert.equal(JSON.parse(readFileSync(join(hf, "config.json"), "utf8")).dtype, "float32");

  // params that do not match the config: refused before anything is written
  const badPath = join(dir, "bad.safetensors");
  const zeros = () => params.map((p) => ({ ...p, data: new Float32Array(p.data.length) }));
  const wrongCfg = { ...config, model: { ...config.model, dFF: 128 } };
  saveCheckpoint(badPath, { state: { version: 1, step: 1, optimizerT: 1, config: wrongCfg, recipe: config.recipe, tokenizer: byteTokenizer().toJSON(), loader: null, info: {} }, params, m: zeros(), v: zeros() });
  assert.throws(() => exportHf(badPath, join(dir, "never"), { dtype: "f32" }), /checkpoint does not match the model .*blocks\.0\.mlp\.fc1\.weight has shape \[64,32\], the model needs \[128,32\]/);
  assert.equal(existsSync(join(dir, "never")), false);

  // a failure after writing began (a NaN found while converting tensors): temp folder removed,
  // the previous export kept intact even with overwrite
  const nanParams = params.map((p) => (p.name === "head.weight" ? { ...p, data: Float32Array.from(p.data, (x, i) => (i === 7 ? NaN : x)) } : p));
  const nanPath = join(dir, "nan.safetensors");
  // saveCheckpoint refuses NaN, so write the tensors directly in checkpoint layout
  writeSafetensors(nanPath, nanParams.map((p) => ({ name: `model.${p.name}`, dtype: "F32" as const, shape: p.shape, data: new Uint8Array(p.data.buffer) })),
    { "fp4lm.checkpoint": JSON.stringify({ version: 1, step: 1, optimizerT: 1, config, recipe: config.recipe, tokenizer: byteTokenizer().toJSON(), loader: null, info: {} }) });
  assert.throws(() => exportHf(nanPath, join(dir, "nan-out"), { dtype: "bf16" }), (e: Error) => e instanceof NonFiniteError && /model\.head\.weight holds NaN at flat index 7/.test(e.message));
  assert.equal(existsSync(join(dir, "nan-out")), false);
  assert.throws(() => exportHf(nanPath, hf, { dtype: "bf16", overwrite: true }), NonFiniteError);
  assert.equal(readFileSync(join(hf, "mine.txt"), "utf8"), "keep");
  assert.deepEqual(noTemps(dir), []);

  // overwrite replaces the whole folder
  exportHf(path, hf, { dtype: "bf16", overwrite: true });
  assert.equal(existsSync(join(hf, "mine.txt")), false);
  assert.equal(JSON.parse(readFileSync(join(hf, "config.json"), "utf8")).dtype, "bfloat16");
  assert.deepEqual(noTemps(dir), []);
  exportHf(path, `${hf}/`, { dtype: "f32", overwrite: true }); // a trailing slash still gives a sibling temp folder
  assert.deepEqual(readdirSync(hf).sort(), EXPORTED_FILES);
  assert.deepEqual(noTemps(dir), []);

  // an unwritable parent: the error surfaces, nothing is left behind
  if (process.getuid?.() !== 0) {
    const ro = join(dir, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    try {
      assert.throws(() => exportHf(path, join(ro, "x"), { dtype: "f32" }));
      assert.deepEqual(readdirSync(ro), []);
    } finally {
      chmodSync(ro, 0o700);
    }
  }
}));

test("logits: the imported model equals the original; a float64 transcription of HF Arcee's forward on the exported tensors agrees", () => withTmp((dir) => {
  const { path, config } = makeCheckpoint(dir);
  const B = 2, T = config.model.seqLen, ids = tokens(B * T, config.model.vocabSize, 99);
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "f32" });
  const back = join(dir, "back.safetensors");
  importHf(hf, back);
  const ours = ourLogits(path, ids, B, T);
  assert.deepEqual(bits(ourLogits(back, ids, B, T)), bits(ours), "round-tripped model's logits differ");

  const cfg = JSON.parse(readFileSync(join(hf, "config.json"), "utf8")) as Record<string, unknown>;
  const w = new Map([...hfTensors(hf)].map(([n, t]) => [n, f32(t)]));
  const ref = hfReferenceLogits(cfg, w, ids, B, T);
  let maxAbs = 0, maxErr = 0;
  for (let i = 0; i < ref.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ref[i])); maxErr = Math.max(maxErr, Math.abs(ref[i] - ours[i])); }
  assert.ok(maxAbs > 1, `logits too small for a meaningful check: max |logit| ${maxAbs}`);
  assert.ok(maxErr < 1e-4, `HF-layout reference vs our CPU model: max abs diff ${maxErr} (max |logit| ${maxAbs})`);

  // the same reference catches a q/k mix-up or an interleaved-RoPE pairing: swap two k_proj rows
  const k = w.get("model.layers.0.self_attn.k_proj.weight")!, C = config.model.dModel, row = Float32Array.from(k.subarray(0, C));
  k.copyWithin(0, 1 * C, 2 * C);
  k.set(row, C);
  const bad = hfReferenceLogits(cfg, w, ids, B, T);
  let d = 0;
  for (let i = 0; i < bad.length; i++) d = Math.max(d, Math.abs(bad[i] - ours[i]));
  assert.ok(d > 1e-3, `swapping two k rows should change the logits (diff ${d})`);
}));

test("Llama (SwiGLU): fc1 splits into gate_proj (rows [0, F)) and up_proj ([F, 2F)); f32 round trip bit-exact; logits agree with HF Llama's forward", () => withTmp((dir) => {
  const { path, config, params } = makeCheckpoint(dir, 8, ["model.mlp=swiglu"]);
  const F = config.model.dFF, C = config.model.dModel;
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "f32" });
  const cfg = JSON.parse(readFileSync(join(hf, "config.json"), "utf8")) as Record<string, unknown>;
  assert.deepEqual([cfg.architectures, cfg.model_type, cfg.hidden_act, cfg.intermediate_size, cfg.mlp_bias, cfg.tie_word_embeddings], [["LlamaForCausalLM"], "llama", "silu", F, false, false]);
  const t = hfTensors(hf);
  assert.deepEqual([...t.values()].map((x) => [x.name, x.shape]).sort(), expectedHfShapes(config.model).sort());
  const fc1 = params.find((p) => p.name === "blocks.1.mlp.fc1.weight")!.data;
  assert.deepEqual(bits(f32(t.get("model.layers.1.mlp.gate_proj.weight")!)), bits(fc1.subarray(0, F * C)));
  assert.deepEqual(bits(f32(t.get("model.layers.1.mlp.up_proj.weight")!)), bits(fc1.subarray(F * C)));

  const back = join(dir, "back.safetensors");
  importHf(hf, back);
  const c = loadCheckpoint(back);
  assert.equal((c.state.config as TrainConfig).model.mlp, "swiglu");
  assert.equal((c.state.info as { hfModelType: string }).hfModelType, "llama");
  const P = new Map(params.map((p) => [p.name, p.data]));
  for (const p of c.params) assert.deepEqual(bits(p.data), bits(P.get(p.name)!), p.name);

  const B = 2, T = config.model.seqLen, ids = tokens(B * T, config.model.vocabSize, 17);
  const ours = ourLogits(path, ids, B, T);
  const w = new Map([...t].map(([n, x]) => [n, f32(x)]));
  const ref = hfReferenceLogits(cfg, w, ids, B, T);
  let maxAbs = 0, maxErr = 0;
  for (let i = 0; i < ref.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ref[i])); maxErr = Math.max(maxErr, Math.abs(ref[i] - ours[i])); }
  assert.ok(maxAbs > 1, `logits too small for a meaningful check: max |logit| ${maxAbs}`);
  assert.ok(maxErr < 1e-4, `HF Llama reference vs our CPU model: max abs diff ${maxErr} (max |logit| ${maxAbs})`);
  // gate and up swapped: the reference must notice (so the test can tell the order)
  const swapped = new Map(w);
  swapped.set("model.layers.0.mlp.gate_proj.weight", w.get("model.layers.0.mlp.up_proj.weight")!);
  swapped.set("model.layers.0.mlp.up_proj.weight", w.get("model.layers.0.mlp.gate_proj.weight")!);
  const bad = hfReferenceLogits(cfg, swapped, ids, B, T);
  let d = 0;
  for (let i = 0; i < bad.length; i++) d = Math.max(d, Math.abs(bad[i] - ours[i]));
  assert.ok(d > 1e-3, `swapping gate and up should change the logits (diff ${d})`);

  // a Llama folder without a gate_proj, or an Arcee config over Llama weights: named
  const noGate = join(dir, "no-gate");
  mkdirSync(noGate);
  writeFileSync(join(noGate, "config.json"), readFileSync(join(hf, "config.json")));
  writeSafetensors(join(noGate, "model.safetensors"), [...t.values()].filter((x) => x.name !== "model.layers.0.mlp.gate_proj.weight"));
  assert.throws(() => importHf(noGate, join(dir, "x.safetensors")), /model\.layers\.0\.mlp\.gate_proj\.weight is missing \(shape \[64,32\] expected\)/);
  writeFileSync(join(noGate, "config.json"), JSON.stringify({ ...cfg, model_type: "arcee", architectures: ["ArceeForCausalLM"], hidden_act: "relu2" }));
  writeSafetensors(join(noGate, "model.safetensors"), [...t.values()]);
  assert.throws(() => importHf(noGate, join(dir, "x.safetensors")), /unexpected tensors not in an ArceeForCausalLM of this config: model\.layers\.0\.mlp\.gate_proj\.weight, model\.layers\.1\.mlp\.gate_proj\.weight/);
}));
