/**
 * Export an NVFP4-trained checkpoint as a Hugging Face folder in NVIDIA ModelOpt's unified NVFP4
 * layout (what vLLM, TensorRT-LLM and SGLang load): Arcee/Llama tensor names; each quantized
 * linear X as X.weight (U8, two E2M1 codes a byte), X.weight_scale (F8_E4M3, one per 1x16
 * block), X.weight_scale_2 (F32 scalar) and X.input_scale (F32 scalar, from calibration); the
 * layers the recipe kept in BF16 stored BF16 and listed in exclude_modules; hf_quant_config.json
 * and config.json's quantization_config. Weights are quantized with our own quantizer
 * (quant/nvfp4.ts, Transformer Engine arithmetic, 16x16 tiles as trained), so the stored codes
 * are the ones the forward pass used. Not a post-training quantizer for other recipes, not a
 * sharded writer. Layout, decode order and the sources checked: docs/nvfp4-export.md.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { checkCheckpointMatches, loadCheckpoint } from "../checkpoint/checkpoint.ts";
import { TokenLoader } from "../data/loader.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { Fp4lmError, UsageError } from "../errors.ts";
import { toBf16Bits } from "../formats/bf16.ts";
import { writeSafetensors, type TensorEntry } from "../io/safetensors.ts";
import { isHybrid } from "../nn/hybrid-config.ts";
import { dequantizeNVFP4, nvfp4TensorScales, quantizeNVFP4, type NVFP4Tensor } from "../quant/nvfp4.ts";
import { bf16Reason, validateRecipe, type RecipeConfig } from "../recipes/recipe.ts";
import type { TrainConfig } from "../train/config.ts";
import { preparedDir } from "../train/data-setup.ts";
import { loadModel } from "../train/load-model.ts";
import { hfConfigJson, hfNames, splitParam, toHfConfig } from "./hf-config.ts";

/** The ModelOpt release whose export layout we follow (read at NVIDIA/Model-Optimizer a2fbac7, 2026-08-21). */
export const MODELOPT_LAYOUT = "nvidia-modelopt 0.46 unified HF checkpoint, quant_algo NVFP4";
/** fl(6·448): input_scale = fl(amax / 2688), ModelOpt's `amax / (maxbound · 448)` with maxbound 6. */
const E2M1_X_E4M3 = 2688;
export const REFERENCE_FILE = "fp4lm_dequant.safetensors";
/** the checkpoint's tokenizer description, as the BF16 export writes it (hf-export.ts) */
const TOKENIZER_FILE = "fp4lm_tokenizer.json";

export interface Nvfp4ExportOptions {
  /** activation calibration for input_scale: `batches` validation batches (of the run's batch size)
   * from `dataDir` (default: the run's prepared data); null writes input_scale = 1.0 and says so */
  calibration: { batches: number; dataDir?: string } | null;
  /** replace a non-empty outDir */
  overwrite?: boolean;
  /** also write fp4lm_dequant.safetensors: our fp32 dequantization of every quantized weight (checks only) */
  writeReference?: boolean;
  /** CPU threads for calibration (0 = all cores) */
  threads?: number;
  log?: (line: string) => void;
}

export interface Nvfp4ExportResult {
  /** files written in outDir */
  files: string[];
  /** HF module names stored in NVFP4 */
  quantized: string[];
  /** exclude_modules as written (HF module names and `prefix.*` patterns) */
  excluded: string[];
  /** calibrated max|x| of each quantized module's input, or null without calibration */
  inputAmax: Record<string, number> | null;
}

/** The linear layer a parameter belongs to ("blocks.3.mlp.fc1", "head"), with its block (-1 for the head), or null. */
function linearOf(param: string): { layer: string; block: number } | null {
  const m = /^(blocks\.(\d+)\.(?:attn\.(?:qkv|proj)|mlp\.(?:fc1|fc2))|head)\.weight$/.exec(param);
  return m ? { layer: m[1], block: m[2] === undefined ? -1 : Number(m[2]) } : null;
}

const u8 = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const f32Scalar = (name: string, v: number): TensorEntry => ({ name, dtype: "F32", shape: [], data: u8(Float32Array.of(v)) });

function maxAbs(x: Float32Array, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) { const a = Math.abs(x[i]); if (a > m || a !== a) m = a; }
  return m;
}

/**
 * max|x| of every listed linear's fprop input over `batches` validation batches, running the
 * checkpoint's model in its own recipe on the CPU. Reads the inputs where the backend quantizes
 * them (operand `${layer}.fprop.input`), so nothing in nn/ changes.
 */
function calibrate(ckpt: string, cfg: TrainConfig, layers: Set<string>, calib: { batches: number; dataDir?: string }, threads: number, log: (s: string) => void): Map<string, number> {
  if (!Number.isInteger(calib.batches) || calib.batches < 1) throw new UsageError(`calibration batches must be a positive integer, got ${calib.batches}`);
  const dir = calib.dataDir ?? preparedDir(cfg, log);
  const valFile = join(dir, "val.bin");
  if (!existsSync(valFile)) throw new Fp4lmError(`calibration data ${dir} has no val.bin; make it with fp4lm prepare, or export with --no-calibration`);
  if (existsSync(join(dir, "tokenizer.json"))) {
    const tok = loadTokenizer(join(dir, "tokenizer.json"));
    const V = tok.vocabSize;
    tok.free();
    if (V !== cfg.model.vocabSize) throw new Fp4lmError(`calibration data ${dir} uses a tokenizer of ${V} tokens; the model has ${cfg.model.vocabSize} (other data?)`);
  }
  const B = cfg.batchSize, T = cfg.model.seqLen;
  const m = loadModel(ckpt, { B, threads });
  const amax = new Map<string, number>();
  try {
    const be = m.be;
    const quantize = be.quantize.bind(be);
    be.quantize = (x, rows, cols, spec, transpose, stream, name) => {
      const layer = name.endsWith(".fprop.input") ? name.slice(0, -".fprop.input".length) : "";
      if (layers.has(layer)) {
        const a = maxAbs(be.toArray(x), rows * cols);
        if (!(a <= (amax.get(layer) ?? 0))) amax.set(layer, a);
      }
      return quantize(x, rows, cols, spec, transpose, stream, name);
    };
    const val = TokenLoader.open(valFile, { B, T, shuffle: false });
    try {
      for (const b of val.evalBatches(calib.batches)) m.model.step(be.tokens(b.inputs, [B, T]), be.tokens(b.targets, [B, T]), false);
    } finally {
      val.close();
    }
  } finally {
    m.be.close();
  }
  for (const l of layers) {
    const a = amax.get(l);
    if (a === undefined || !(a > 0) || !Number.isFinite(a)) {
      throw new Fp4lmError(`calibration: the input of ${l} has max|x| = ${a} (needs a finite positive value; dead or diverged layer?)`);
    }
  }
  log(`calibrated ${layers.size} layer inputs on ${calib.batches} batch(es) of ${B}x${T} tokens from ${valFile}`);
  return amax;
}

function checkOutDir(target: string, overwrite: boolean): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new UsageError(`${target} exists and is not a folder; choose another output path`);
  if (readdirSync(target).length > 0 && !overwrite) throw new UsageError(`${target} already exists and is not empty; choose a new folder or pass overwrite (--overwrite)`);
}

/** Rows [r0, r1) of a quantized (rows, cols) tensor: codes and scales are row-major, so a slice is a subarray. */
function sliceRows(q: NVFP4Tensor, r0: number, r1: number): { packed: Uint8Array; scales: Uint8Array } {
  const cols = q.shape[1];
  return { packed: q.packed.subarray((r0 * cols) / 2, (r1 * cols) / 2), scales: q.scales.subarray((r0 * cols) / 16, (r1 * cols) / 16) };
}

/**
 * Write the ModelOpt NVFP4 HF folder for `checkpointPath` into `outDir` (through a temporary
 * sibling folder renamed into place: a failure leaves no partial output).
 */
export function exportNvfp4(checkpointPath: string, outDir: string, opts: Nvfp4ExportOptions): Nvfp4ExportResult {
  const log = opts.log ?? (() => {});
  const target = resolve(outDir);
  checkOutDir(target, opts.overwrite ?? false);
  const c = loadCheckpoint(checkpointPath);
  const cfg = c.state.config as TrainConfig;
  const recipe: RecipeConfig = validateRecipe(c.state.recipe as RecipeConfig);
  if (recipe.format !== "nvfp4") {
    throw new Fp4lmError(`${checkpointPath} was trained with recipe ${recipe.name} (format ${recipe.format}); the NVFP4 export stores the weights an NVFP4 run trained with, so it needs an nvfp4 checkpoint`);
  }
  const mc = cfg.model;
  if (isHybrid(mc)) {
    throw new Fp4lmError(`${checkpointPath} is a hybrid (pattern "${mc.pattern}"); the NVFP4 export covers the Transformer's ModelOpt layout only. Export the hybrid as NemotronHForCausalLM with --format hf`);
  }
  const map = hfNames(mc);
  checkCheckpointMatches(checkpointPath, c, map.map((e) => ({ name: e.param, shape: e.shape })), false);
  const params = new Map(c.params.map((t) => [t.name, t.data]));
  const eot = (c.state.tokenizer as { eotToken?: unknown } | null)?.eotToken;
  if (typeof eot !== "number" || !Number.isInteger(eot) || eot < 0 || eot >= mc.vocabSize) {
    throw new Fp4lmError(`${checkpointPath}: the checkpoint's tokenizer has no end-of-text id within the vocabulary [0, ${mc.vocabSize}) (got ${JSON.stringify(eot)})`);
  }
  // which linear layers the recipe quantized (the head and the BF16 blocks/layers did not)
  const quantizedLayers = new Set<string>();
  const bf16Modules = new Map<number, string[]>();
  for (const e of map) {
    const lin = linearOf(e.param);
    if (!lin) continue;
    if (bf16Reason(recipe, { name: lin.layer, block: lin.block, nBlocks: mc.nLayers }) === undefined) quantizedLayers.add(lin.layer);
    else bf16Modules.set(lin.block, [...(bf16Modules.get(lin.block) ?? []), ...e.parts.map((p) => p.name.replace(/\.weight$/, ""))]);
  }
  // ModelOpt lists unquantized modules by name, a whole unquantized decoder layer as `prefix.*`
  const excluded = new Set(["lm_head", "model.embed_tokens"]);
  for (let i = 0; i < mc.nLayers; i++) {
    const mine = bf16Modules.get(i) ?? [];
    if (mine.length === 6) excluded.add(`model.layers.${i}.*`);
    else for (const m of mine) excluded.add(m);
  }
  const exclude_modules = [...excluded].sort();

  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(join(parent, `.${basename(target)}.tmp-`));
  let old: string | undefined;
  let result: Nvfp4ExportResult;
  try {
    const amax = opts.calibration ? calibrate(checkpointPath, cfg, quantizedLayers, opts.calibration, opts.threads ?? 0, log) : null;
    const tensors: TensorEntry[] = [];
    const reference: TensorEntry[] = [];
    const quantized: string[] = [];
    const inputAmax: Record<string, number> = {};
    for (const e of map) {
      const w = params.get(e.param)!;
      const lin = linearOf(e.param);
      if (!lin || !quantizedLayers.has(lin.layer)) {
        for (const p of splitParam(e, w)) tensors.push({ name: p.name, dtype: "BF16", shape: p.shape, data: u8(toBf16Bits(p.data)) });
        continue;
      }
      const [rows, cols] = e.shape;
      // RTN, no RHT: the weight the fprop GEMM used (the paper's recipe never rounds weights stochastically)
      const q = quantizeNVFP4(w, [rows, cols], { tile2d: recipe.tile2d, name: e.param });
      const sDec = nvfp4TensorScales(q.amax).sDec;
      const deq = opts.writeReference ? dequantizeNVFP4(q, { formula: "sdec" }) : null;
      for (const p of e.parts) {
        const mod = p.name.replace(/\.weight$/, "");
        const [r0, r1] = [p.row, p.row + p.shape[0]];
        const s = sliceRows(q, r0, r1);
        tensors.push(
          { name: `${mod}.weight`, dtype: "U8", shape: [r1 - r0, cols / 2], data: s.packed },
          { name: `${mod}.weight_scale`, dtype: "F8_E4M3", shape: [r1 - r0, cols / 16], data: s.scales },
          f32Scalar(`${mod}.weight_scale_2`, sDec),
          f32Scalar(`${mod}.input_scale`, amax ? Math.fround(amax.get(lin.layer)! / E2M1_X_E4M3) : 1),
        );
        if (deq) reference.push({ name: `${mod}.weight`, dtype: "F32", shape: [r1 - r0, cols], data: u8(deq.subarray(r0 * cols, r1 * cols)) });
        quantized.push(mod);
        if (amax) inputAmax[mod] = amax.get(lin.layer)!;
      }
    }

    const calibNote = amax
      ? `input_scale = fl(max|x| / 2688) of each layer's input over ${opts.calibration!.batches} validation batch(es) of ${cfg.batchSize}x${mc.seqLen} tokens, run in the training recipe`
      : "input_scale NOT calibrated: every input_scale is 1.0 (assumes activation amax 2688); re-export with calibration before serving with NVFP4 activations";
    const hfQuantConfig = {
      producer: {
        name: "fp4lm",
        version: packageVersion(),
        layout: MODELOPT_LAYOUT,
        notes: [
          `weights quantized by fp4lm's NVFP4 quantizer as trained (recipe ${recipe.name}, ${recipe.tile2d ? "16x16 weight tiles, each tile's scale repeated on its 16 rows" : "1x16 blocks"}), step ${c.state.step}`,
          "weight_scale_2 = fp4lm's s_dec = fl(1/fl(2688/amax_W)); decode fl(fl(e2m1 * weight_scale) * weight_scale_2) (docs/nvfp4-export.md)",
          calibNote,
        ],
      },
      quantization: { quant_algo: "NVFP4", kv_cache_quant_algo: null, group_size: 16, exclude_modules },
    };
    const config = {
      ...toHfConfig(mc, { dtype: "bfloat16", eotToken: eot }),
      // convert_hf_quant_config_format (modelopt/torch/export/convert_hf_config.py) of the above
      quantization_config: {
        config_groups: {
          group_0: {
            input_activations: { dynamic: false, num_bits: 4, type: "float", group_size: 16 },
            weights: { dynamic: false, num_bits: 4, type: "float", group_size: 16 },
            targets: ["Linear"],
          },
        },
        ignore: exclude_modules,
        quant_algo: "NVFP4",
        producer: hfQuantConfig.producer,
        quant_method: "modelopt",
      },
    };

    const files = ["model.safetensors", "model.safetensors.index.json", "config.json", "hf_quant_config.json", "generation_config.json", TOKENIZER_FILE];
    writeSafetensors(join(tmp, "model.safetensors"), tensors, { format: "pt" });
    writeFileSync(join(tmp, "config.json"), hfConfigJson(config));
    writeFileSync(join(tmp, "generation_config.json"), JSON.stringify({ bos_token_id: eot, eos_token_id: eot }, null, 2) + "\n");
    writeFileSync(join(tmp, TOKENIZER_FILE), JSON.stringify(c.state.tokenizer) + "\n");
    writeFileSync(join(tmp, "hf_quant_config.json"), JSON.stringify(hfQuantConfig, null, 4) + "\n");
    // the index names the weights file, so loaders that read every *.safetensors skip the reference file
    const totalSize = tensors.reduce((n, t) => n + t.data.length, 0);
    const weightMap = Object.fromEntries(tensors.map((t) => [t.name, "model.safetensors"]));
    writeFileSync(join(tmp, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + "\n");
    if (opts.writeReference) {
      writeSafetensors(join(tmp, REFERENCE_FILE), reference, { "fp4lm.note": "fp32 dequantization of every NVFP4 weight, for checks only; not part of the model" });
      files.push(REFERENCE_FILE);
    }

    chmodSync(tmp, 0o755 & ~process.umask()); // mkdtemp makes it private; the result is an ordinary folder
    if (existsSync(target)) {
      old = `${tmp}.old`;
      renameSync(target, old);
    }
    renameSync(tmp, target);
    result = { files, quantized, excluded: exclude_modules, inputAmax: amax ? inputAmax : null };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (old !== undefined && !existsSync(target)) renameSync(old, target);
    throw e;
  }
  if (old !== undefined) rmSync(old, { recursive: true, force: true });
  log(`wrote ${target}: ${result.quantized.length} NVFP4 modules, ${result.excluded.length} exclude_modules entries`);
  return result;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}
