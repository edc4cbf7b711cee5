/**
 * Nemotron-H interop: a hybrid checkpoint exported as `NemotronHForCausalLM` and imported back
 * (F32 bit-exact, BF16 = RNE-rounded), the exact HF names and shapes, config.json keys and values
 * (pattern, Mamba-2 sizes, time_step_min 0.0), the forms transformers saves (`model.` names, the
 * `layers_block_type` list, `[0.0, Infinity]`, shards), every refusal at once, and logits: the
 * imported model's equal the original's. Parity with transformers itself: test/interop_check.py.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCheckpoint, type NamedTensor } from "../checkpoint/checkpoint.ts";
import { byteTokenizer } from "../data/tokenizer.ts";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { roundBf16InPlace } from "../formats/bf16.ts";
import { readSafetensors, tensorToFloat32, writeSafetensors, type TensorEntry } from "../io/safetensors.ts";
import { mambaDims } from "../nn/hybrid-config.ts";
import type { ModelConfig } from "../nn/model-config.ts";
import { buildConfig, type TrainConfig } from "../train/config.ts";
import { checkpointLogits, checkWeights, saveCheckWeights } from "./check-weights.ts";
import { fromHfConfig, toHfConfig } from "./hf-config.ts";
import { exportHf } from "./hf-export.ts";
import { importHf } from "./hf-import.ts";
import { importBitIdentical } from "../../test/interop-import.ts";
import { exportNvfp4 } from "./nvfp4-export.ts";

/** nemotronh-small (13 blocks M-M-M*-M-M-M-, d 64, Mamba-2 2 groups × state 16, 16 heads of 8) at T 16 */
function smallConfig(): TrainConfig {
  return buildConfig(["device=cpu", "data.tokenizer=byte", "model.preset=nemotronh-small", "model.vocabSize=257", "model.seqLen=16", "batchSize=2", "seed=3"]);
}

/** A checkpoint without training: every tensor seeded, distinct and O(1) (matrices N(0, 1/in), vectors 1 + N(0, 0.3²)). */
function makeCheckpoint(dir: string, seed = 9): { path: string; config: TrainConfig; params: NamedTensor[] } {
  const config = smallConfig();
  const params = checkWeights(config.model, seed);
  const path = join(dir, "ckpt.safetensors");
  saveCheckWeights(path, config, params, byteTokenizer().toJSON(), 2);
  return { path, config, params };
}

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-nemotronh-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const f32 = (t: TensorEntry) => tensorToFloat32(t, "test");

/** Our CPU model's logits (B·T, V), fp32 recipe. */
function ourLogits(path: string, B: number, T: number): Float32Array {
  let s = 77;
  const ids = Int32Array.from({ length: B * T }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % 257);
  return checkpointLogits(path, ids, B, T, 1);
}

/** The HF tensors of a hybrid, as transformers' NemotronHForCausalLM names them (released-checkpoint `backbone.` spelling). */
function expectedHfShapes(m: ModelConfig): [string, number[]][] {
  const C = m.dModel, HS = C / m.nHeads, d = mambaDims(m), out: [string, number[]][] = [["backbone.embeddings.weight", [m.vocabSize, C]]];
  [...m.pattern!].forEach((k, i) => {
    const l = `backbone.layers.${i}`;
    out.push([`${l}.norm.weight`, [C]]);
    if (k === "M") {
      out.push([`${l}.mixer.in_proj.weight`, [2 * d.dInner + 2 * d.G * d.N + d.H, C]], [`${l}.mixer.conv1d.weight`, [d.dInner + 2 * d.G * d.N, 1, 4]],
        [`${l}.mixer.conv1d.bias`, [d.dInner + 2 * d.G * d.N]], [`${l}.mixer.dt_bias`, [d.H]], [`${l}.mixer.A_log`, [d.H]], [`${l}.mixer.D`, [d.H]],
        [`${l}.mixer.norm.weight`, [d.dInner]], [`${l}.mixer.out_proj.weight`, [C, d.dInner]]);
    } else if (k === "*") {
      out.push([`${l}.mixer.q_proj.weight`, [m.nHeads * HS, C]], [`${l}.mixer.k_proj.weight`, [m.nKvHeads * HS, C]],
        [`${l}.mixer.v_proj.weight`, [m.nKvHeads * HS, C]], [`${l}.mixer.o_proj.weight`, [C, m.nHeads * HS]]);
    } else out.push([`${l}.mixer.up_proj.weight`, [m.dFF, C]], [`${l}.mixer.down_proj.weight`, [C, m.dFF]]);
  });
  out.push(["backbone.norm_f.weight", [C]], ["lm_head.weight", [m.vocabSize, C]]);
  return out;
}

test("nemotron_h: export f32 → import gives every parameter bit-identical and the same logits; names, shapes and config.json as transformers reads them", () => withTmp((dir) => {
  const { path, config, params } = makeCheckpoint(dir);
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "f32" });
  const f = readSafetensors(join(hf, "model.safetensors"));
  assert.deepEqual(f.tensors.map((t) => [t.name, t.shape]).sort(), expectedHfShapes(config.model).sort());
  assert.equal(f.tensors.length, 1 + 6 * 9 + 5 + 6 * 3 + 2, "13 blocks: 6 Mamba-2 (norm + 8), 1 attention (norm + q/k/v/o), 6 FFN (norm + up/down), embedding, norm_f, head");
  // q/k/v are row blocks of our fused qkv (4 query heads, 1 KV head, head size 16); the conv weight keeps its values
  const byName = new Map(f.tensors.map((t) => [t.name, f32(t)]));
  const P = new Map(params.map((p) => [p.name, p.data]));
  const qkv = P.get("blocks.5.attn.qkv.weight")!, C = 64;
  assert.deepEqual(bits(byName.get("backbone.layers.5.mixer.q_proj.weight")!), bits(qkv.subarray(0, 64 * C)));
  assert.deepEqual(bits(byName.get("backbone.layers.5.mixer.k_proj.weight")!), bits(qkv.subarray(64 * C, 80 * C)));
  assert.deepEqual(bits(byName.get("backbone.layers.5.mixer.v_proj.weight")!), bits(qkv.subarray(80 * C)));
  assert.deepEqual(bits(byName.get("backbone.layers.2.mixer.conv1d.weight")!), bits(P.get("blocks.2.mamba.conv.weight")!));
  assert.deepEqual(bits(byName.get("backbone.layers.12.mixer.down_proj.weight")!), bits(P.get("blocks.12.mlp.fc2.weight")!));

  const text = readFileSync(join(hf, "config.json"), "utf8");
  const cfg = JSON.parse(text) as Record<string, unknown>;
  const want: Record<string, unknown> = {
    architectures: ["NemotronHForCausalLM"], model_type: "nemotron_h", vocab_size: 257, hidden_size: 64, intermediate_size: 256, num_hidden_layers: 13,
    hybrid_override_pattern: "M-M-M*-M-M-M-", num_attention_heads: 4, num_key_value_heads: 1, head_dim: 16, max_position_embeddings: 16,
    mamba_num_heads: 16, mamba_head_dim: 8, ssm_state_size: 16, n_groups: 2, conv_kernel: 4, expand: 2, chunk_size: 16,
    mlp_hidden_act: "relu2", mamba_hidden_act: "silu", use_conv_bias: true, mamba_proj_bias: false, use_bias: false, attention_bias: false, mlp_bias: false,
    time_step_min: 0, layer_norm_epsilon: 1e-5, tie_word_embeddings: false, eos_token_id: 256, dtype: "float32",
  };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(cfg[k], v, k);
  assert.ok(!("time_step_limit" in cfg), "time_step_limit stays at transformers' default (0, inf): JSON has no Infinity");
  assert.match(text, /"time_step_min": 0\.0,/);
  assert.match(text, /"layer_norm_epsilon": 0\.00001,/);
  const { preset, ...model } = config.model;
  assert.equal(preset, "nemotronh-small");
  assert.deepEqual(fromHfConfig(cfg, "config.json"), model);

  const out = join(dir, "imported.safetensors");
  const c = importBitIdentical(hf, out, params);
  const ic = c.state.config as TrainConfig;
  assert.deepEqual({ ...ic.model, preset: "x" }, { ...config.model, preset: "x" });
  assert.equal(ic.model.preset, "imported");
  assert.equal(ic.recipe.name, "nvfp4");
  assert.equal((c.state.info as { hfModelType: string }).hfModelType, "nemotron_h");
  assert.deepEqual(bits(ourLogits(out, 2, 16)), bits(ourLogits(path, 2, 16)), "the imported model computes the original's logits");
}));

test("nemotron_h: what transformers saves imports too — model.* names, layers_block_type, [0.0, Infinity], time_step_min 0.001, shards, BF16", () => withTmp((dir) => {
  const { path, params } = makeCheckpoint(dir, 4);
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "f32" });
  // the config as a newer transformers writes it: the list form, Python's Infinity, no pattern string or layer count
  const cfg = JSON.parse(readFileSync(join(hf, "config.json"), "utf8")) as Record<string, unknown>;
  const types = { M: "linear_attention", "*": "full_attention", "-": "mlp" } as const;
  const { hybrid_override_pattern: pattern, num_hidden_layers: _n, ...rest } = cfg;
  const saved = { ...rest, layers_block_type: [...(pattern as string)].map((k) => types[k as keyof typeof types]), time_step_min: 0.001, time_step_limit: "@LIMIT@" };
  writeFileSync(join(hf, "config.json"), JSON.stringify(saved, null, 2).replace('"@LIMIT@"', "[\n    0.0,\n    Infinity\n  ]"));
  // weights under model.* (and the embedding as `embedding`), in two shards, the second BF16
  const all = readSafetensors(join(hf, "model.safetensors")).tensors;
  rmSync(join(hf, "model.safetensors"));
  const rename = (n: string) => (n === "backbone.embeddings.weight" ? "model.embedding.weight" : n.replace(/^backbone\./, "model."));
  const first = all.filter((t) => /^backbone\.(embeddings|layers\.[0-3]\.)/.test(t.name)).map((t) => ({ ...t, name: rename(t.name) }));
  const second = all.filter((t) => !/^backbone\.(embeddings|layers\.[0-3]\.)/.test(t.name)).map((t) => {
    const v = f32(t), b = new Uint16Array(v.length);
    for (let i = 0; i < v.length; i++) b[i] = new Uint32Array(roundBf16InPlace(Float32Array.of(v[i])).buffer)[0] >>> 16;
    return { name: rename(t.name), dtype: "BF16" as const, shape: t.shape, data: new Uint8Array(b.buffer) };
  });
  const s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  writeSafetensors(join(hf, s1), first, { format: "pt" });
  writeSafetensors(join(hf, s2), second, { format: "pt" });
  const weightMap = Object.fromEntries([...first.map((t) => [t.name, s1]), ...second.map((t) => [t.name, s2])]);
  writeFileSync(join(hf, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  const out = join(dir, "sharded.safetensors");
  importHf(hf, out);
  const P = new Map(params.map((p) => [p.name, p.data]));
  for (const p of loadCheckpoint(out).params) {
    const exact = p.name.startsWith("embed") || /^blocks\.[0-3]\./.test(p.name);
    const want = exact ? P.get(p.name)! : roundBf16InPlace(Float32Array.from(P.get(p.name)!));
    assert.deepEqual(bits(p.data), bits(want), p.name);
  }
  // transformers 5.x spells the infinite limit {"__float__": "Infinity"}: it reads the same
  writeFileSync(join(hf, "config.json"), JSON.stringify({ ...saved, time_step_limit: [0.0, { __float__: "Infinity" }] }, null, 2));
  importHf(hf, join(dir, "tagged.safetensors"));
  writeFileSync(join(hf, "config.json"), JSON.stringify({ ...saved, time_step_limit: [0.0, { __float__: "NaN" }] }, null, 2));
  assert.throws(() => importHf(hf, join(dir, "nan.safetensors")), /time_step_limit \[0,NaN\] is not supported/);
  writeFileSync(join(hf, "config.json"), JSON.stringify({ ...saved, time_step_limit: [0.0, { __float__: "Infinity" }] }, null, 2));
  // the old list spelling ("mamba", "attention") reads the same
  const old = { ...saved, layers_block_type: [...(pattern as string)].map((k) => ({ M: "mamba", "*": "attention", "-": "mlp" })[k]), time_step_limit: [0, Infinity] };
  assert.equal(fromHfConfig(old, "c.json").pattern, pattern);
  // both spellings of one tensor is an error, not a silent pick
  writeSafetensors(join(hf, s1), [...first, { ...first[0], name: "backbone.embeddings.weight" }], { format: "pt" });
  writeFileSync(join(hf, "model.safetensors.index.json"), JSON.stringify({ weight_map: { ...weightMap, "backbone.embeddings.weight": s1 } }));
  assert.throws(() => importHf(hf, join(dir, "dup.safetensors")), /model\.embedding\.weight and another spelling of it \(backbone\.embeddings\.weight\) are both present|backbone\.embeddings\.weight and another spelling of it \(model\.embedding\.weight\) are both present/);
}));

test("nemotron_h config errors: every unsupported option listed at once", () => {
  const base = toHfConfig(smallConfig().model, { dtype: "float32", eotToken: 256 });
  const bad = {
    ...base, hybrid_override_pattern: "M-ME*-M-M-M-", mlp_hidden_act: "gelu", mamba_hidden_act: "relu", use_conv_bias: false, mamba_proj_bias: true,
    attention_bias: true, tie_word_embeddings: true, time_step_limit: [0.001, 0.1], num_nextn_predict_layers: 1, sliding_window: 512,
    quantization_config: { quant_method: "modelopt" }, head_dim: 32, mamba_num_heads: 15, vocab_size: undefined, architectures: ["NemotronHModel"],
  };
  assert.throws(() => fromHfConfig(JSON.parse(JSON.stringify(bad)), "nh/config.json"), (e: Error) => {
    assert.ok(e instanceof FileFormatError);
    assert.match(e.message, /^nh\/config\.json: cannot import this NemotronHForCausalLM config \(16 problems\)/);
    for (const s of [
      `MoE blocks (E in "M-ME*-M-M-M-"`, "num_hidden_layers 13 ≠ the pattern's 12 blocks", "vocab_size is missing", `mlp_hidden_act "gelu"`, `mamba_hidden_act "relu"`,
      "use_conv_bias false", "mamba_proj_bias true", "attention_bias true", "tie_word_embeddings true", "time_step_limit [0.001,0.1] is not supported",
      "num_nextn_predict_layers 1", "sliding_window 512", `quantization_config ("modelopt")`, `architectures ["NemotronHModel"]`,
      "head_dim 32 ≠ hidden_size / num_attention_heads = 16", "mamba_num_heads · mamba_head_dim = 120 is not a multiple of hidden_size 64",
    ]) assert.ok(e.message.includes(s), `${s} not in: ${e.message}`);
    return true;
  });
  const { hybrid_override_pattern: _p, ...noPattern } = base;
  assert.throws(() => fromHfConfig(noPattern, "c.json"), /hybrid_override_pattern \(or layers_block_type\) is missing/);
  assert.throws(() => fromHfConfig({ ...base, layers_block_type: ["mamba", "mlp"] }, "c.json"), /the block patterns disagree: hybrid_override_pattern gives "M-M-M\*-M-M-M-", layers_block_type gives "M-"/);
  assert.throws(() => fromHfConfig({ ...base, n_groups: 2, mamba_n_groups: 4 }, "c.json"), /n_groups 2 and mamba_n_groups 4 disagree/);
  assert.throws(() => fromHfConfig({ ...base, n_groups: 3 }, "c.json"), /nGroups \(3\) must divide the Mamba heads.*fp4lm's rule/);
  // legacy names alone are read
  const { n_groups: _g, conv_kernel: _w, chunk_size: _c, ...modern } = base;
  assert.deepEqual(fromHfConfig({ ...modern, mamba_n_groups: 2, mamba_d_conv: 4, mamba_chunk_size: 16 }, "c.json"), fromHfConfig(base, "c.json"));
});

test("nemotron_h weight errors and the NVFP4 export's refusal", () => withTmp((dir) => {
  const { path } = makeCheckpoint(dir);
  const hf = join(dir, "hf");
  exportHf(path, hf, { dtype: "f32" });
  const all = readSafetensors(join(hf, "model.safetensors")).tensors;
  const conv = all.find((t) => t.name === "backbone.layers.0.mixer.conv1d.weight")!;
  writeSafetensors(join(hf, "model.safetensors"), [
    ...all.filter((t) => t.name !== "backbone.layers.2.mixer.A_log" && t !== conv),
    { ...conv, shape: [conv.shape[0], conv.shape[2]] },
    { name: "backbone.layers.0.mixer.in_proj.bias", dtype: "F32", shape: [1], data: new Uint8Array(4) },
  ], { format: "pt" });
  assert.throws(() => importHf(hf, join(dir, "x.safetensors")), (e: Error) => {
    for (const s of ["backbone.layers.2.mixer.A_log is missing (shape [16] expected)", "backbone.layers.0.mixer.conv1d.weight in", "has shape [192,4] but config.json implies [192,1,4]",
      "unexpected tensor not in an NemotronHForCausalLM of this config: backbone.layers.0.mixer.in_proj.bias"]) assert.ok(e.message.includes(s), `${s} not in: ${e.message}`);
    return true;
  });
  assert.throws(() => exportNvfp4(path, join(dir, "nv"), { calibration: null }), (e: Error) => e instanceof Fp4lmError && /is a hybrid \(pattern "M-M-M\*-M-M-M-"\).*--format hf/.test(e.message));
}));
