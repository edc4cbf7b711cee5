/**
 * Import a Hugging Face `ArceeForCausalLM`, `LlamaForCausalLM` or `NemotronHForCausalLM` folder (config.json +
 * model.safetensors, or model.safetensors.index.json + shards; F32, BF16, F16 or F64 tensors) as
 * a full fp4lm checkpoint: FP32 master weights (q/k/v joined into our fused qkv; for Llama,
 * gate_proj/up_proj into the fused fc1 of the SwiGLU MLP; for Nemotron-H, `backbone.` or `model.`
 * names, hf-nemotronh.ts), zero AdamW moments, step 0,
 * optimizerT 0, the TrainConfig of `buildConfig` with the HF model's shape (preset "imported"),
 * recipe nvfp4 unless told otherwise, and a tokenizer: fp4lm_tokenizer.json when the folder has
 * one (fp4lm exports do), else a guess from vocab_size (50257/50304 → gpt2, otherwise byte).
 * Unsupported options (biases, RoPE scaling such as Llama 3's, tied embeddings, ...) are refused
 * by hf-config.ts with the full list. Not a converter for PyTorch .bin files or quantized
 * checkpoints, and HF tokenizer files are not read (only fp4lm_tokenizer.json).
 *
 * Continuing training: the checkpoint is complete (loadCheckpoint, loadModel, `fp4lm eval` and
 * `sample` read it), but `fp4lm train --resume` as wired today would refuse it: its loader state
 * is null (no data position exists yet) and its config holds buildConfig's defaults for steps,
 * schedule and data, which a resumed run must match. The wiring for "train on from these
 * weights" should load the `model.*` tensors into a fresh run the way train/load-model.ts does
 * (checkCheckpointMatches, then copy), keep the zero moments and start at step 0 with the data
 * loader at its beginning. With gpt2 and vocab_size 50304 the model keeps its padded 50304 rows,
 * while train.ts sets model.vocabSize from the tokenizer (50257): that wiring must keep 50304.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { CHECKPOINT_VERSION, saveCheckpoint, type NamedTensor } from "../checkpoint/checkpoint.ts";
import { TIKTOKEN_VERSION, tokenizerFromJSON, type TokenizerJSON } from "../data/tokenizer.ts";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { readSafetensors, tensorToFloat32, type SafetensorsFile, type TensorEntry } from "../io/safetensors.ts";
import { isHybrid } from "../nn/hybrid-config.ts";
import { ConfigError } from "../nn/model-config.ts";
import { buildConfig, type TrainConfig } from "../train/config.ts";
import { fromHfConfig, hfArchitecture, hfNames, joinParam } from "./hf-config.ts";
import { canonicalNemotronHName } from "./hf-nemotronh.ts";
import { FP4LM_TOKENIZER_FILE, HF_WEIGHTS_FILE } from "./hf-export.ts";

export interface ImportHfOptions {
  /** training recipe stored in the checkpoint (default nvfp4) */
  recipe?: string;
  /** training sequence length (default: the config's max_position_embeddings) */
  seqLen?: number;
  /** replace an existing checkpoint file (default: refuse) */
  overwrite?: boolean;
}

const INDEX_FILE = "model.safetensors.index.json";
const FLOAT_DTYPES = new Set(["F32", "BF16", "F16", "F64"]);
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

interface Located {
  t: TensorEntry;
  file: string;
}

/**
 * Python's json writes inf and nan as bare Infinity / -Infinity / NaN (transformers' NemotronH
 * time_step_limit is [0.0, Infinity]); transformers 5.x writes them as {"__float__": "Infinity"}
 * to keep the JSON standard. Both spellings read back as numbers.
 */
const PY_NONFINITE = /"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g;
const NONFINITE_MARK = "\u0000fp4lm-nonfinite:";

/** {"__float__": "Infinity" | "-Infinity" | "NaN"} (nothing else in the object) → the number; otherwise undefined. */
function taggedFloat(v: unknown): number | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const keys = Object.keys(v);
  const f = (v as Record<string, unknown>).__float__;
  return keys.length === 1 && (f === "Infinity" || f === "-Infinity" || f === "NaN") ? Number(f) : undefined;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new FileFormatError(path, `cannot read (${(e as Error).message})`);
  }
  try {
    // bare Infinity/NaN tokens (never those inside strings) become marked strings, then numbers again
    const marked = text.replace(PY_NONFINITE, (m, bare?: string) => (bare ? JSON.stringify(NONFINITE_MARK + bare) : m));
    return JSON.parse(marked, (_k, v) => (typeof v === "string" && v.startsWith(NONFINITE_MARK) ? Number(v.slice(NONFINITE_MARK.length)) : taggedFloat(v) ?? v));
  } catch (e) {
    throw new FileFormatError(path, `not valid JSON (${(e as Error).message})`);
  }
}

/** readSafetensors with what the file is for added to its FileFormatError. */
function readWeights(path: string, role: string): SafetensorsFile {
  try {
    return readSafetensors(path);
  } catch (e) {
    if (e instanceof FileFormatError) throw new FileFormatError(e.file, `${e.message.slice(e.file.length + 2)} (${role})`);
    throw e;
  }
}

function list(problems: string[], max = 20): string {
  return problems.slice(0, max).join("\n  - ") + (problems.length > max ? `\n  - and ${problems.length - max} more` : "");
}

/** Every tensor of the folder by name, with the file it came from; checks the index against its shards. */
function readHfTensors(dir: string): { tensors: Map<string, Located>; source: string } {
  const single = join(dir, HF_WEIGHTS_FILE), indexPath = join(dir, INDEX_FILE);
  const tensors = new Map<string, Located>();
  if (existsSync(single)) {
    for (const t of readWeights(single, "weights of a Hugging Face model").tensors) tensors.set(t.name, { t, file: single });
    return { tensors, source: single };
  }
  if (!existsSync(indexPath)) {
    throw new FileFormatError(dir, `has neither ${HF_WEIGHTS_FILE} nor ${INDEX_FILE}; fp4lm imports safetensors weights only (re-save PyTorch .bin weights with save_pretrained(dir, safe_serialization=True))`);
  }
  const index = readJson(indexPath) as { weight_map?: unknown };
  const wm = index?.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) throw new FileFormatError(indexPath, "has no weight_map object (tensor name → shard file)");
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== "string" || shard === "" || isAbsolute(shard) || shard.split(/[\\/]/).includes("..")) {
      throw new FileFormatError(indexPath, `weight_map[${JSON.stringify(name)}] must be a shard file name inside the folder, got ${JSON.stringify(shard)}`);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const missing = [...byShard].filter(([s]) => !existsSync(join(dir, s)));
  if (missing.length) {
    throw new FileFormatError(indexPath, `lists shard files that do not exist in ${dir}: ${missing.map(([s, names]) => `${s} (${names.length} tensors, e.g. ${names[0]})`).join(", ")}`);
  }
  const problems: string[] = [];
  let n = 0;
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    const f = readWeights(path, `shard ${++n} of ${byShard.size} listed in ${INDEX_FILE}`);
    const here = new Set(f.tensors.map((t) => t.name));
    for (const name of names) if (!here.has(name)) problems.push(`${name} is listed in ${shard} but that file does not hold it`);
    for (const t of f.tensors) {
      if ((wm as Record<string, string>)[t.name] !== shard) problems.push(`${t.name} is in ${shard} but the index ${t.name in wm ? `lists it in ${(wm as Record<string, string>)[t.name]}` : "does not list it"}`);
      else tensors.set(t.name, { t, file: path });
    }
  }
  if (problems.length) throw new FileFormatError(indexPath, `does not match its shards:\n  - ${list(problems)}`);
  return { tensors, source: indexPath };
}

/** The checkpoint tokenizer: the folder's fp4lm_tokenizer.json, or a guess from the vocabulary size. */
function importTokenizer(dir: string, vocabSize: number): { json: TokenizerJSON; guessed: boolean } {
  const path = join(dir, FP4LM_TOKENIZER_FILE);
  let json: TokenizerJSON;
  const guessed = !existsSync(path);
  if (!guessed) {
    const tok = tokenizerFromJSON(readJson(path), path, { engine: "ts" });
    json = tok.toJSON();
    tok.free();
  } else if (vocabSize === 50257 || vocabSize === 50304) {
    json = { kind: "gpt2", name: "gpt2", vocabSize: 50257, eotToken: 50256, encoder: `tiktoken@${TIKTOKEN_VERSION} gpt2` };
  } else {
    json = { kind: "byte", name: "byte", vocabSize: 257, eotToken: 256 };
  }
  if (json.vocabSize > vocabSize) {
    throw new FileFormatError(guessed ? join(dir, "config.json") : path,
      `the ${guessed ? "guessed " : ""}tokenizer ${json.name} has ${json.vocabSize} ids but the model's vocab_size is ${vocabSize}` +
        (guessed ? `; put the matching tokenizer description in ${FP4LM_TOKENIZER_FILE}` : ""));
  }
  return { json, guessed };
}

/**
 * Read the HF model folder `dir` and write an fp4lm checkpoint to `outCheckpoint`. Returns the
 * parameter count. Example: `importHf("hf/afm-tiny", "runs/afm/checkpoint.safetensors", { recipe: "bf16" })`.
 */
export function importHf(dir: string, outCheckpoint: string, opts: ImportHfOptions = {}): { params: number } {
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new FileFormatError(dir, "has no config.json; not a Hugging Face model folder");
  if (existsSync(outCheckpoint) && !opts.overwrite) {
    throw new Fp4lmError(`${outCheckpoint} already exists; pass overwrite (--overwrite) to replace it, or choose another path`);
  }
  const hfCfg = readJson(configPath);
  const model = fromHfConfig(hfCfg, configPath);
  if (opts.seqLen !== undefined) model.seqLen = opts.seqLen;
  const tokenizer = importTokenizer(dir, model.vocabSize);

  let config: TrainConfig;
  try {
    config = buildConfig([
      `recipe=${opts.recipe ?? "nvfp4"}`,
      ...Object.entries(model).flatMap(([k, v]) => (typeof v === "object" ? Object.entries(v).map(([k2, v2]) => `model.${k}.${k2}=${v2}`) : [`model.${k}=${v}`])),
      `data.tokenizer=${tokenizer.json.kind}`,
      ...(tokenizer.json.kind === "bpe" ? [`data.vocabSize=${tokenizer.json.vocabSize}`] : []),
    ]);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`importing ${dir}: the model does not fit an fp4lm training config: ${e.message}`);
    throw e;
  }
  config.model.preset = "imported";

  const { tensors: read, source } = readHfTensors(dir);
  const arch = hfArchitecture(model);
  const problems: string[] = [];
  // Nemotron-H: `model.` and `backbone.` name the same tensors (transformers versions differ)
  const canonical = isHybrid(model) ? canonicalNemotronHName : (n: string) => n;
  const tensors = new Map<string, Located>();
  for (const [name, l] of read) {
    const c = canonical(name);
    if (tensors.has(c)) problems.push(`${name} and another spelling of it (${[...read.keys()].find((n) => n !== name && canonical(n) === c)}) are both present`);
    tensors.set(c, l);
  }
  const map = hfNames(model);
  const expected = new Map(map.flatMap((e) => e.parts.map((p) => [p.name, p.shape] as const)));
  for (const [name, shape] of expected) {
    const got = tensors.get(name);
    if (!got) { problems.push(`${name} is missing (shape [${shape}] expected)`); continue; }
    const where = `${name} in ${got.file}`;
    if (!FLOAT_DTYPES.has(got.t.dtype)) problems.push(`${where} has dtype ${got.t.dtype}; expected F32, BF16, F16 or F64`);
    if (got.t.shape.join("x") !== shape.join("x")) problems.push(`${where} has shape [${got.t.shape}] but config.json implies [${shape}]`);
  }
  const extra = [...tensors.keys()].filter((n) => !expected.has(n) && !IGNORED.test(n));
  if (extra.length) problems.push(`unexpected tensor${extra.length > 1 ? "s" : ""} not in an ${arch.architecture} of this config: ${extra.slice(0, 12).join(", ")}${extra.length > 12 ? ` and ${extra.length - 12} more` : ""}`);
  if (problems.length) throw new FileFormatError(source, `weights do not match ${configPath}:\n  - ${list(problems)}`);

  const params: NamedTensor[] = map.map((e) => ({
    name: e.param,
    shape: e.shape,
    data: joinParam(e, (n) => { const l = tensors.get(n)!; return tensorToFloat32(l.t, l.file); }),
  }));
  const zeros = () => params.map((p) => ({ name: p.name, shape: p.shape, data: new Float32Array(p.data.length) }));
  const hfDtype = (hfCfg as Record<string, unknown>).dtype ?? (hfCfg as Record<string, unknown>).torch_dtype ?? null;
  mkdirSync(dirname(resolve(outCheckpoint)), { recursive: true });
  saveCheckpoint(outCheckpoint, {
    state: {
      version: CHECKPOINT_VERSION, step: 0, optimizerT: 0, config, recipe: config.recipe, tokenizer: tokenizer.json, loader: null,
      info: { importedFrom: resolve(dir), hfModelType: arch.modelType, hfDtype, tokenizerGuessed: tokenizer.guessed },
    },
    params,
    m: zeros(),
    v: zeros(),
  });
  return { params: params.reduce((s, p) => s + p.data.length, 0) };
}
