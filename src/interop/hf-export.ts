/**
 * Export an fp4lm checkpoint's weights as a Hugging Face folder that
 * `AutoModelForCausalLM.from_pretrained(dir)` loads: `ArceeForCausalLM` (squared-ReLU MLP) or
 * `LlamaForCausalLM` (`mlp: "swiglu"`). Files: config.json, generation_config.json,
 * model.safetensors (BF16 rounded to nearest even, or F32; metadata {"format": "pt"}),
 * fp4lm_tokenizer.json (the checkpoint's own tokenizer description, so `importHf` restores it)
 * and the HF tokenizer files of hf-tokenizer.ts (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json; for gpt2 also vocab.json and merges.txt), so `AutoTokenizer` gives the
 * ids the model was trained on.
 * Only the weights leave; optimizer moments, step and data position stay in the checkpoint.
 * Everything is written into `${outDir}.tmp-<pid>` and renamed to outDir at the end, so a failed
 * export leaves no partial folder. Name and layout map: hf-config.ts.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadCheckpoint, checkCheckpointMatches } from "../checkpoint/checkpoint.ts";
import { FileFormatError, Fp4lmError, NonFiniteError, UsageError } from "../errors.ts";
import { toBf16Bits } from "../formats/bf16.ts";
import { writeSafetensors, type TensorEntry } from "../io/safetensors.ts";
import { modelConfigProblems, type ModelConfig } from "../nn/model-config.ts";
import { tokenizerFromJSON, type TokenizerJSON } from "../data/tokenizer.ts";
import { hfConfigJson, hfNames, splitParam, toHfConfig } from "./hf-config.ts";
import { hfTokenizerFiles } from "./hf-tokenizer.ts";

export interface ExportHfOptions {
  dtype: "bf16" | "f32";
  /** replace an existing non-empty outDir (default: refuse) */
  overwrite?: boolean;
}

export const HF_WEIGHTS_FILE = "model.safetensors";
export const FP4LM_TOKENIZER_FILE = "fp4lm_tokenizer.json";

const bytesOf = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function checkOutDir(outDir: string, overwrite: boolean): void {
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) throw new Fp4lmError(`${outDir} exists and is not a folder; choose another output folder`);
  if (readdirSync(outDir).length > 0 && !overwrite) {
    throw new Fp4lmError(`${outDir} exists and is not empty; pass overwrite (--overwrite) to replace it, or choose another output folder`);
  }
}

/**
 * Write `outDir` as a Hugging Face model folder from the checkpoint at `checkpointPath`.
 * Returns the files written, and why no HF tokenizer files were written if so.
 * Example: `exportHf("runs/t/checkpoint.safetensors", "hf/t", { dtype: "bf16" })`.
 */
export function exportHf(checkpointPath: string, outDirArg: string, opts: ExportHfOptions): { files: string[]; tokenizerSkipped?: string } {
  const outDir = resolve(outDirArg); // no trailing slash: the temp folder must be a sibling, not a child
  if (opts.dtype !== "bf16" && opts.dtype !== "f32") throw new UsageError(`export dtype must be bf16 or f32, got ${JSON.stringify(opts.dtype)}`);
  checkOutDir(outDir, opts.overwrite ?? false);
  const c = loadCheckpoint(checkpointPath);
  const model = (c.state.config as { model?: ModelConfig } | null)?.model;
  if (!model || typeof model !== "object") throw new FileFormatError(checkpointPath, "checkpoint state has no config.model; cannot tell the model's shape");
  const bad = modelConfigProblems(model);
  if (bad.length) throw new FileFormatError(checkpointPath, `checkpoint config.model is invalid: ${bad.join("; ")}`);
  const map = hfNames(model);
  checkCheckpointMatches(checkpointPath, c, map.map((e) => ({ name: e.param, shape: e.shape })), false);
  const eot = (c.state.tokenizer as { eotToken?: unknown } | null)?.eotToken;
  if (typeof eot !== "number" || !Number.isInteger(eot) || eot < 0 || eot >= model.vocabSize) {
    throw new FileFormatError(checkpointPath, `checkpoint tokenizer has no end-of-text id within the vocabulary [0, ${model.vocabSize}) (got ${JSON.stringify(eot)})`);
  }
  const params = new Map(c.params.map((t) => [t.name, t.data]));
  const tok = tokenizerFromJSON(c.state.tokenizer, `${checkpointPath} (tokenizer)`, { engine: "ts" });
  let tokJson: TokenizerJSON;
  try { tokJson = tok.toJSON(); } finally { tok.free(); }
  const hfTok = hfTokenizerFiles(tokJson, model.seqLen);
  const tokFiles = "files" in hfTok ? hfTok.files : [];

  const tmp = `${outDir}.tmp-${process.pid}`;
  const old = `${outDir}.old-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const names = ["config.json", "generation_config.json", FP4LM_TOKENIZER_FILE, ...tokFiles.map((f) => f.name), HF_WEIGHTS_FILE];
  try {
    mkdirSync(tmp, { recursive: true });
    const hfDtype = opts.dtype === "bf16" ? "bfloat16" : "float32";
    writeFileSync(join(tmp, "config.json"), hfConfigJson(toHfConfig(model, { dtype: hfDtype, eotToken: eot })));
    writeFileSync(join(tmp, "generation_config.json"), JSON.stringify({ bos_token_id: eot, eos_token_id: eot }, null, 2) + "\n");
    writeFileSync(join(tmp, FP4LM_TOKENIZER_FILE), JSON.stringify(c.state.tokenizer) + "\n");
    for (const f of tokFiles) writeFileSync(join(tmp, f.name), f.text);
    const entries: TensorEntry[] = [];
    for (const e of map) {
      const data = params.get(e.param)!;
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) {
          throw new NonFiniteError(`${checkpointPath}: model.${e.param} holds ${data[i]} at flat index ${i}; not exporting a poisoned model`, i);
        }
      }
      for (const p of splitParam(e, data)) {
        entries.push(opts.dtype === "bf16"
          ? { name: p.name, dtype: "BF16", shape: p.shape, data: bytesOf(toBf16Bits(p.data)) }
          : { name: p.name, dtype: "F32", shape: p.shape, data: bytesOf(p.data) });
      }
    }
    writeSafetensors(join(tmp, HF_WEIGHTS_FILE), entries, { format: "pt" });
    if (existsSync(outDir)) renameSync(outDir, old);
    renameSync(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(outDir)) renameSync(old, outDir);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
  return { files: names.map((n) => join(outDir, n)), ...("skipped" in hfTok ? { tokenizerSkipped: hfTok.skipped } : {}) };
}
