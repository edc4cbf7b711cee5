/**
 * Prepare the fp4lm → transformers parity checks (test/interop_check.py, parts a and c): build
 * tiny models with fixed seeds (nothing is trained; weights O(1) so logits are O(1) and a wrong
 * name, split, RoPE pairing or Mamba-2 parameter shows far above the tolerance), save each as an fp4lm checkpoint,
 * export it as an F32 Hugging Face folder, and write into that folder our CPU logits (fp32
 * recipe) on a fixed token batch: check_tokens.json (tokens, shapes, tolerance, architecture) and
 * check_logits.f32 (raw little-endian float32, (B, T, V) row-major). Folders under OUT_DIR:
 *   arcee/          ArceeForCausalLM (squared ReLU), byte tokenizer
 *   llama/          LlamaForCausalLM (SwiGLU), our BPE trained on the bundled corpus
 *   nemotronh/      NemotronHForCausalLM: nemotronh-small's shape (13 blocks M-M-M*-M-M-M-, Mamba-2 with
 *                   2 groups, state 16, 16 heads of 8, chunk 16, so T = 64 is 4 chunks), byte tokenizer
 *   gpt2-tokenizer/ GPT-2's tokenizer files only (no model)
 * Each folder also gets check_tokenizer.json: fixed texts and the ids fp4lm's tokenizer gives
 * them, for `AutoTokenizer.from_pretrained(folder)` to reproduce.
 *
 * Usage: node --import tsx scripts/interop-prepare.ts OUT_DIR [--overwrite]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trainBpe } from "../src/data/bpe-train.ts";
import { loadBundledCorpus } from "../src/data/corpus.ts";
import { bpeTokenizer, byteTokenizer, gpt2Tokenizer, type Tokenizer } from "../src/data/tokenizer.ts";
import { exportHf } from "../src/interop/hf-export.ts";
import { checkpointLogits, checkWeights, saveCheckWeights } from "../src/interop/check-weights.ts";
import { hfArchitecture } from "../src/interop/hf-config.ts";
import { hfTokenizerFiles } from "../src/interop/hf-tokenizer.ts";
import { buildConfig } from "../src/train/config.ts";

/**
 * max |HF logits − ours| allowed, for all three models: fp32 GEMM order, RoPE angles (fp64 here,
 * fp32 in HF) and the Mamba-2 scan's summation order (HF's chunked torch_forward in fp32, float64
 * sums here) differ by ~1e-6 of O(1) logits; one fp32 rounding of the embedding moves the logits by
 * ~1e-6 (9.5e-7 Arcee, 1.2e-6 Llama, 1.8e-6 the 13-block hybrid: printed as "fp32 noise").
 */
const TOLERANCE = 1e-4;
const B = 2, T = 64, SEED = 20250101;

/** Texts for the tokenizer check: prose, whitespace runs, CRLF, contractions, digits, non-Latin scripts, emoji, combining marks. */
const TOKENIZER_TEXTS = [
  "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse,",
  "  two  spaces,\ttabs\t\tand\r\nCRLF lines\n\n\nand trailing spaces   ",
  "I'm sure they'll say it's 1,234.56 dollars (or 42%) in 2021; THEY'LL DON'T 'quote'",
  "日本語のテキスト, Ελληνικά, русский, العربية ٣٤ — emoji 😀👩‍👩‍👧 and e\u0301 café naïve",
];

function tokens(n: number, V: number, seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % V);
}

function writeTokenizerCheck(dir: string, tok: Tokenizer): void {
  writeFileSync(join(dir, "check_tokenizer.json"), JSON.stringify({
    tokenizer: tok.name, eot_token: tok.eotToken, texts: TOKENIZER_TEXTS, ids: TOKENIZER_TEXTS.map((s) => Array.from(tok.encode(s))),
    producer: "fp4lm tokenizer (scripts/interop-prepare.ts); encode without special tokens",
  }) + "\n");
}

/** Our CPU logits (B, T, V) for a checkpoint, fp32 recipe. */
const logitsOf = (ckpt: string, ids: Int32Array) => checkpointLogits(ckpt, ids, B, T);

/** One model folder: checkpoint → F32 HF export → our logits on a fixed batch. */
function prepareModel(outDir: string, modelArgs: string[], tok: Tokenizer, overwrite: boolean): string {
  const config = buildConfig(["device=cpu", "recipe=fp32", `data.tokenizer=${tok.toJSON().kind}`, `model.vocabSize=${tok.vocabSize}`, `model.seqLen=${T}`, `seed=${SEED}`, ...modelArgs]);
  const params = checkWeights(config.model, SEED);
  const tmp = mkdtempSync(join(tmpdir(), "fp4lm-interop-"));
  try {
    const ckpt = join(tmp, "checkpoint.safetensors");
    const save = (path: string, ps: typeof params) => saveCheckWeights(path, config, ps, tok.toJSON(), 0, { purpose: "interop check" });
    save(ckpt, params);
    const r = exportHf(ckpt, outDir, { dtype: "f32", overwrite });
    if (r.tokenizerSkipped) throw new Error(`${outDir}: no HF tokenizer files: ${r.tokenizerSkipped}`);
    const ids = tokens(B * T, config.model.vocabSize, 7);
    const logits = logitsOf(ckpt, ids);
    // how far fp32 rounding noise carries: the logits again with the embedding off by ±2⁻²⁴ relative
    // (one fp32 rounding), for judging the tolerance
    const noisy = join(tmp, "noisy.safetensors");
    save(noisy, params.map((p) => (p.name === "embed.weight" ? { ...p, data: p.data.map((v, i) => v * (1 + (i % 2 ? 1 : -1) * 2 ** -24)) } : p)));
    const other = logitsOf(noisy, ids);
    let sensitivity = 0;
    for (let i = 0; i < logits.length; i++) sensitivity = Math.max(sensitivity, Math.abs(other[i] - logits[i]));
    const V = config.model.vocabSize, architecture = hfArchitecture(config.model).architecture;
    const rows = Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
    writeFileSync(join(outDir, "check_tokens.json"), JSON.stringify({
      tokens: rows, B, T, vocab_size: V, logits_file: "check_logits.f32", logits_shape: [B, T, V], logits_dtype: "float32 little-endian, row-major",
      tolerance_max_abs: TOLERANCE, architecture, producer: "fp4lm CPU backend, fp32 recipe (scripts/interop-prepare.ts)",
      fp32_noise_max_abs: sensitivity, fp32_noise: "max |logit change| when the embedding is perturbed by one fp32 rounding (2^-24 relative)",
    }) + "\n");
    writeFileSync(join(outDir, "check_logits.f32"), new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
    writeTokenizerCheck(outDir, tok);
    let maxAbs = 0;
    for (const v of logits) maxAbs = Math.max(maxAbs, Math.abs(v));
    return `${outDir}: HF ${architecture} (F32), tokenizer ${tok.name} + check_tokens.json + check_logits.f32 (${B}x${T}x${V}, max |logit| ${maxAbs.toFixed(3)}, fp32 noise ${sensitivity.toExponential(1)}) + check_tokenizer.json`;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function main(argv: string[]): void {
  const outDir = argv.find((a) => !a.startsWith("--"));
  if (!outDir) {
    console.error("usage: node --import tsx scripts/interop-prepare.ts OUT_DIR [--overwrite]");
    process.exit(2);
  }
  const overwrite = argv.includes("--overwrite");
  mkdirSync(outDir, { recursive: true });
  const transformer = ["model.dModel=64", "model.nLayers=2", "model.nHeads=4", "model.nKvHeads=2", "model.dFF=192", "model.ropeTheta=10000", "model.normEps=1e-5"];
  console.log(`wrote ${prepareModel(join(outDir, "arcee"), [...transformer, "model.mlp=sqrelu"], byteTokenizer(), overwrite)}`);
  const bpe = bpeTokenizer(trainBpe(loadBundledCorpus().slice(0, 300_000), 512));
  try {
    console.log(`wrote ${prepareModel(join(outDir, "llama"), [...transformer, "model.mlp=swiglu"], bpe, overwrite)}`);
  } finally {
    bpe.free();
  }
  console.log(`wrote ${prepareModel(join(outDir, "nemotronh"), ["model.preset=nemotronh-small"], byteTokenizer(), overwrite)}`);
  const gpt2Dir = join(outDir, "gpt2-tokenizer");
  rmSync(gpt2Dir, { recursive: true, force: true });
  mkdirSync(gpt2Dir);
  const g = gpt2Tokenizer();
  try {
    const files = hfTokenizerFiles(g.toJSON(), 1024);
    if (!("files" in files)) throw new Error(`gpt2: no HF tokenizer files: ${files.skipped}`);
    for (const f of files.files) writeFileSync(join(gpt2Dir, f.name), f.text);
    writeTokenizerCheck(gpt2Dir, g);
    console.log(`wrote ${gpt2Dir}: GPT-2 tokenizer files (${files.files.map((f) => f.name).join(", ")}) + check_tokenizer.json`);
  } finally {
    g.free();
  }
}

main(process.argv.slice(2));
