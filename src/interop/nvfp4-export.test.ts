/**
 * The ModelOpt NVFP4 export of a tiny untrained nvfp4 checkpoint (3 blocks, the last one and
 * blocks.0.mlp.fc2 in BF16): every quantized tensor decoded from the file's bytes as
 * docs/nvfp4-export.md says (decoder written here, independent of quant/) equals our quantizer's
 * dequantization bit for bit, q/k/v are row slices of the fused weight with one shared
 * weight_scale_2 (also when a 16x16 tile spans k and v); excluded layers are BF16 and listed;
 * config files; atomic output (no temp folder after a failure); calibration against a direct
 * computation of one layer's input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuBackend, type CpuTensor } from "../backends/cpu/cpu-backend.ts";
import { saveCheckpoint } from "../checkpoint/checkpoint.ts";
import { TokenLoader } from "../data/loader.ts";
import { prepareTokens, writePrepared } from "../data/prepare.ts";
import { byteTokenizer } from "../data/tokenizer.ts";
import { roundBf16 } from "../formats/bf16.ts";
import { readSafetensors, tensorToFloat32, type SafetensorsFile, type TensorEntry } from "../io/safetensors.ts";
import { RunContext } from "../nn/context.ts";
import { GPT } from "../nn/gpt.ts";
import { dequantizeNVFP4, nvfp4TensorScales, quantizeNVFP4 } from "../quant/nvfp4.ts";
import { buildConfig, type TrainConfig } from "../train/config.ts";
import { exportNvfp4, REFERENCE_FILE } from "./nvfp4-export.ts";

const C = 32, DFF = 64, L = 3, V = 257, T = 16, B = 2;

/** A prepared byte-level data folder with enough validation text for a few batches. */
function makeData(dir: string): void {
  let s = 12345;
  const words = ["the", "whale", "sea", "ship", "captain", "white", "deep", "storm", "harpoon", "sail", "night", "wind"];
  const paras = Array.from({ length: 40 }, () => Array.from({ length: 30 }, () => words[(s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % words.length]).join(" ") + ".");
  const text = paras.join("\n\n") + "\n";
  writePrepared(dir, prepareTokens([{ name: "t", documents: [text], bytes: text.length, sha256: "x" }], { tokenizer: "byte", valFraction: 0.3 }));
}

interface Fixture {
  root: string;
  ckpt: string;
  data: string;
  cfg: TrainConfig;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
}

function makeFixture(extra: string[] = []): Fixture {
  const root = mkdtempSync(join(tmpdir(), "fp4lm-nvfp4-export-"));
  const data = join(root, "data");
  makeData(data);
  const cfg = buildConfig([
    `outDir=${root}`, "name=t", "log=quiet", "data.tokenizer=byte", `data.dir=${data}`, `model.vocabSize=${V}`, `model.dModel=${C}`,
    `model.nLayers=${L}`, "model.nHeads=2", "model.nKvHeads=1", `model.dFF=${DFF}`, `model.seqLen=${T}`, `batchSize=${B}`, "steps=4",
    "recipe=nvfp4", "recipe.bf16Last=1", "recipe.bf16Layers=blocks.0.mlp.fc2", "device=cpu", "threads=1", ...extra,
  ]);
  const be = new CpuBackend({ threads: 1 });
  try {
    const model = new GPT(new RunContext(be, cfg.recipe, cfg.seed), cfg.model, B, T);
    const params = model.params.map((p) => ({ name: p.name, shape: [...p.shape], data: be.toArray(p.data as CpuTensor) }));
    const ckpt = join(root, "checkpoint.safetensors");
    saveCheckpoint(ckpt, {
      state: { version: 1, step: 0, optimizerT: 0, config: cfg, recipe: cfg.recipe, tokenizer: byteTokenizer().toJSON(), loader: null, info: {} },
      params, m: [], v: [],
    });
    return { root, ckpt, data, cfg, weights: new Map(params.map((p) => [p.name, p])) };
  } finally {
    be.close();
  }
}

// --- an independent decoder, written from docs/nvfp4-export.md ---------------------------
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
function e2m1(code: number): number {
  return code & 8 ? -E2M1[code & 7] : E2M1[code & 7];
}
function e4m3(b: number): number {
  const e = (b >> 3) & 15, m = b & 7, s = b & 0x80 ? -1 : 1;
  if ((b & 0x7f) === 0x7f) return NaN;
  return s * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
}
function decode(f: SafetensorsFile, module: string): Float32Array {
  const get = (n: string) => f.tensors.find((t) => t.name === `${module}.${n}`)!;
  const w = get("weight"), sc = get("weight_scale"), s2 = get("weight_scale_2");
  const [rows, half] = w.shape, cols = half * 2;
  const scale2 = new DataView(s2.data.buffer, s2.data.byteOffset, 4).getFloat32(0, true);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const byte = w.data[i >> 1];
    const code = i % 2 === 0 ? byte & 15 : byte >> 4;
    const sf = e4m3(sc.data[Math.floor(i / cols) * (cols / 16) + Math.floor((i % cols) / 16)]);
    out[i] = Math.fround(Math.fround(e2m1(code) * sf) * scale2);
  }
  return out;
}
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const scalar = (t: TensorEntry) => new DataView(t.data.buffer, t.data.byteOffset, 4).getFloat32(0, true);

test("NVFP4 export: bytes decode to our quantizer's sdec dequantization bit for bit; BF16 exclusions; config files", () => {
  const fx = makeFixture();
  try {
    const out = join(fx.root, "export");
    const res = exportNvfp4(fx.ckpt, out, { calibration: null, writeReference: true });
    assert.deepEqual(readdirSync(out).sort(), [...res.files].sort());
    const f = readSafetensors(join(out, "model.safetensors"));
    const byName = new Map(f.tensors.map((t) => [t.name, t]));
    assert.equal(f.metadata.format, "pt");

    // quantized: blocks 0 and 1, except blocks.0.mlp.fc2
    const hf = (i: number) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.k_proj`, `model.layers.${i}.self_attn.v_proj`, `model.layers.${i}.self_attn.o_proj`, `model.layers.${i}.mlp.up_proj`, `model.layers.${i}.mlp.down_proj`];
    assert.deepEqual([...res.quantized].sort(), [...hf(0).slice(0, 5), ...hf(1)].sort());
    assert.deepEqual(res.excluded, ["lm_head", "model.embed_tokens", "model.layers.0.mlp.down_proj", "model.layers.2.*"]);

    const ref = readSafetensors(join(out, REFERENCE_FILE));
    const fused: Record<string, [string, [string, number, number][]]> = {
      attn: ["attn.qkv", [["self_attn.q_proj", 0, 32], ["self_attn.k_proj", 32, 48], ["self_attn.v_proj", 48, 64]]],
      proj: ["attn.proj", [["self_attn.o_proj", 0, C]]],
      fc1: ["mlp.fc1", [["mlp.up_proj", 0, DFF]]],
      fc2: ["mlp.fc2", [["mlp.down_proj", 0, C]]],
    };
    let checked = 0;
    for (const i of [0, 1]) {
      for (const [layer, parts] of Object.values(fused)) {
        const name = `blocks.${i}.${layer}`;
        if (name === "blocks.0.mlp.fc2") continue;
        const w = fx.weights.get(`${name}.weight`)!;
        const [rows, cols] = w.shape;
        const q = quantizeNVFP4(w.data, [rows, cols], { tile2d: true });
        const expected = dequantizeNVFP4(q, { formula: "sdec" });
        const s2 = new Set<number>();
        for (const [suffix, r0, r1] of parts) {
          const mod = `model.layers.${i}.${suffix}`;
          const t = (n: string) => byName.get(`${mod}.${n}`)!;
          assert.deepEqual([t("weight").dtype, t("weight").shape], ["U8", [r1 - r0, cols / 2]], mod);
          assert.deepEqual([t("weight_scale").dtype, t("weight_scale").shape], ["F8_E4M3", [r1 - r0, cols / 16]], mod);
          assert.deepEqual([t("weight_scale_2").dtype, t("weight_scale_2").shape], ["F32", []], mod);
          assert.deepEqual([t("input_scale").dtype, t("input_scale").shape, scalar(t("input_scale"))], ["F32", [], 1], mod);
          s2.add(scalar(t("weight_scale_2")));
          const got = decode(f, mod);
          assert.deepEqual(bits(got), bits(expected.subarray(r0 * cols, r1 * cols)), `${mod}: decoded bytes differ from quantizeNVFP4 + dequantizeNVFP4(sdec)`);
          const r = ref.tensors.find((x) => x.name === `${mod}.weight`)!;
          assert.deepEqual(bits(tensorToFloat32(r, REFERENCE_FILE)), bits(got), `${mod}: ${REFERENCE_FILE}`);
          assert.ok(got.some((v) => v !== 0), `${mod} decodes to zeros`);
          checked++;
        }
        // q, k and v keep the fused weight's one tensor scale
        assert.deepEqual([...s2], [nvfp4TensorScales(q.amax).sDec], `${name}: weight_scale_2`);
      }
    }
    assert.equal(checked, 11);
    assert.equal(ref.tensors.length, 11);

    // BF16: embeddings, norms, head, the whole last block and blocks.0.mlp.fc2; no scales for them
    const bf16Of = (name: string, data: Float32Array) => {
      const t = byName.get(name)!;
      assert.equal(t.dtype, "BF16", name);
      assert.deepEqual(tensorToFloat32(t, "model"), Float32Array.from(data, roundBf16), name);
    };
    bf16Of("model.embed_tokens.weight", fx.weights.get("embed.weight")!.data);
    bf16Of("lm_head.weight", fx.weights.get("head.weight")!.data);
    bf16Of("model.norm.weight", fx.weights.get("normF.weight")!.data);
    bf16Of("model.layers.0.mlp.down_proj.weight", fx.weights.get("blocks.0.mlp.fc2.weight")!.data);
    const qkv2 = fx.weights.get("blocks.2.attn.qkv.weight")!.data;
    bf16Of("model.layers.2.self_attn.k_proj.weight", qkv2.subarray(32 * C, 48 * C));
    for (const m of [...hf(2), "lm_head", "model.layers.0.mlp.down_proj"]) {
      assert.equal(byName.get(`${m}.weight`)!.dtype, "BF16", m);
      assert.ok(!byName.has(`${m}.weight_scale`) && !byName.has(`${m}.input_scale`), `${m} has scales`);
    }
    for (let i = 0; i < L; i++) {
      bf16Of(`model.layers.${i}.input_layernorm.weight`, fx.weights.get(`blocks.${i}.norm1.weight`)!.data);
      bf16Of(`model.layers.${i}.post_attention_layernorm.weight`, fx.weights.get(`blocks.${i}.norm2.weight`)!.data);
    }
    // 1 embed + 3·2 norms + 1 final norm + 1 head + 7 BF16 linears + 11·4 NVFP4 tensors
    assert.equal(f.tensors.length, 1 + 6 + 1 + 1 + 7 + 44);

    const hq = JSON.parse(readFileSync(join(out, "hf_quant_config.json"), "utf8"));
    assert.deepEqual(hq.quantization, { quant_algo: "NVFP4", kv_cache_quant_algo: null, group_size: 16, exclude_modules: res.excluded });
    assert.equal(hq.producer.name, "fp4lm");
    assert.match(hq.producer.notes.join("\n"), /NOT calibrated: every input_scale is 1\.0/);
    const cj = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.deepEqual([cj.architectures, cj.hidden_act, cj.num_hidden_layers, cj.num_key_value_heads, cj.head_dim, cj.vocab_size], [["ArceeForCausalLM"], "relu2", L, 1, 16, V]);
    assert.deepEqual(cj.quantization_config.ignore, res.excluded);
    assert.equal(cj.quantization_config.quant_method, "modelopt");
    assert.equal(cj.quantization_config.quant_algo, "NVFP4");
    assert.deepEqual(cj.quantization_config.config_groups.group_0.weights, { dynamic: false, num_bits: 4, type: "float", group_size: 16 });
    const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
    assert.deepEqual(Object.keys(index.weight_map).sort(), f.tensors.map((t) => t.name).sort());
  } finally {
    rmSync(fx.root, { recursive: true, force: true });
  }
});

test("NVFP4 export: calibration sets input_scale = max|x| / 2688; outputs are atomic and never overwrite by accident", () => {
  const fx = makeFixture();
  try {
    const out = join(fx.root, "export");
    const res = exportNvfp4(fx.ckpt, out, { calibration: { batches: 1, dataDir: fx.data }, threads: 1 });
    assert.ok(res.inputAmax);

    // direct computation for blocks.0.attn.qkv: the input is RMSNorm(embed[tokens]) of the first validation batch
    const batch = TokenLoader.open(join(fx.data, "val.bin"), { B, T, shuffle: false }).evalBatches(1).next().value!;
    const E = fx.weights.get("embed.weight")!.data, g = fx.weights.get("blocks.0.norm1.weight")!.data;
    let amax = 0;
    for (const tok of batch.inputs) {
      const x = E.subarray(tok * C, tok * C + C);
      const rstd = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / C + fx.cfg.model.normEps);
      for (let i = 0; i < C; i++) amax = Math.max(amax, Math.abs(x[i] * rstd * g[i]));
    }
    const f = readSafetensors(join(out, "model.safetensors"));
    for (const m of ["q_proj", "k_proj", "v_proj"]) {
      const mod = `model.layers.0.self_attn.${m}`;
      const got: number = res.inputAmax![mod];
      assert.ok(Math.abs(got - amax) <= 1e-6 * amax, `${mod}: calibrated max|x| ${got}, direct ${amax}`);
      const t = f.tensors.find((x) => x.name === `${mod}.input_scale`)!;
      assert.equal(scalar(t), Math.fround(got / 2688), mod);
    }
    // every quantized module has its own calibrated scale (a later layer's input differs)
    const down = f.tensors.find((x) => x.name === "model.layers.1.mlp.down_proj.input_scale")!;
    assert.equal(scalar(down), Math.fround(res.inputAmax!["model.layers.1.mlp.down_proj"] / 2688));
    assert.notEqual(scalar(down), scalar(f.tensors.find((x) => x.name === "model.layers.0.self_attn.q_proj.input_scale")!));
    const hq = JSON.parse(readFileSync(join(out, "hf_quant_config.json"), "utf8"));
    assert.match(hq.producer.notes.join("\n"), /input_scale = fl\(max\|x\| \/ 2688\).*1 validation batch/);

    // an existing non-empty folder is refused, and replaced only with overwrite
    assert.throws(() => exportNvfp4(fx.ckpt, out, { calibration: null }), /already exists and is not empty/);
    const other = join(fx.root, "other");
    mkdirSync(other);
    writeFileSync(join(other, "keep.txt"), "x");
    exportNvfp4(fx.ckpt, other, { calibration: null, overwrite: true });
    assert.ok(!existsSync(join(other, "keep.txt")) && existsSync(join(other, "model.safetensors")));

    // a failure midway (more calibration batches than the data holds) leaves neither output nor temp folder
    const failed = join(fx.root, "failed");
    assert.throws(() => exportNvfp4(fx.ckpt, failed, { calibration: { batches: 10_000, dataDir: fx.data }, threads: 1 }), /asked for 10000/);
    assert.ok(!existsSync(failed));
    assert.deepEqual(readdirSync(fx.root).filter((n) => n.includes(".tmp-")), []);
    // and a failed overwrite keeps the old folder as it was
    const before = readFileSync(join(out, "model.safetensors"));
    assert.throws(() => exportNvfp4(fx.ckpt, out, { calibration: { batches: 10_000, dataDir: fx.data }, overwrite: true, threads: 1 }), /asked for 10000/);
    assert.deepEqual(readFileSync(join(out, "model.safetensors")), before);
    assert.deepEqual(readdirSync(fx.root).filter((n) => n.includes(".tmp-")), []);
  } finally {
    rmSync(fx.root, { recursive: true, force: true });
  }
});

test("NVFP4 export: k and v of 8 rows each (one 16x16 tile spans both) still decode to the fused weight's rows", () => {
  const fx = makeFixture(["model.nHeads=4", "model.nKvHeads=1"]); // HS = 8: q 32 rows, k 8, v 8
  try {
    const out = join(fx.root, "export");
    exportNvfp4(fx.ckpt, out, { calibration: null });
    const f = readSafetensors(join(out, "model.safetensors"));
    const w = fx.weights.get("blocks.1.attn.qkv.weight")!;
    assert.deepEqual(w.shape, [48, C]);
    const expected = dequantizeNVFP4(quantizeNVFP4(w.data, [48, C], { tile2d: true }), { formula: "sdec" });
    for (const [m, r0, r1] of [["q_proj", 0, 32], ["k_proj", 32, 40], ["v_proj", 40, 48]] as const) {
      assert.deepEqual(bits(decode(f, `model.layers.1.self_attn.${m}`)), bits(expected.subarray(r0 * C, r1 * C)), m);
    }
  } finally {
    rmSync(fx.root, { recursive: true, force: true });
  }
});
