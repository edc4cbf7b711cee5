/**
 * Prepare the fp4lm → transformers parity check (test/interop_check.py, part a): build a tiny
 * model with fixed seeds (nothing is trained; weights O(1) so logits are O(1) and a wrong name,
 * split or RoPE pairing shows far above the tolerance), save it as an fp4lm checkpoint, export it
 * as an F32 Hugging Face folder, and write into that folder our CPU logits (fp32 recipe) on a
 * fixed token batch: check_tokens.json (tokens, shapes, tolerance) and check_logits.f32 (raw
 * little-endian float32, (B, T, V) row-major).
 *
 * Usage: node --import tsx scripts/interop-prepare.ts OUT_DIR [--overwrite]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { byteTokenizer } from "../src/data/tokenizer.ts";
import { exportHf } from "../src/interop/hf-export.ts";
import { hfNames } from "../src/interop/hf-config.ts";
import { initValues } from "../src/nn/param.ts";
import { buildConfig } from "../src/train/config.ts";
import { loadModel } from "../src/train/load-model.ts";

/** max |HF logits − ours| allowed; fp32 GEMM order and RoPE angles (fp64 here, fp32 in HF) differ by ~1e-6 of O(1) logits */
const TOLERANCE = 1e-4;
const B = 2, T = 64, SEED = 20250101;

function tokens(n: number, V: number, seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % V);
}

function main(argv: string[]): void {
  const outDir = argv.find((a) => !a.startsWith("--"));
  if (!outDir) {
    console.error("usage: node --import tsx scripts/interop-prepare.ts OUT_DIR [--overwrite]");
    process.exit(2);
  }
  const config = buildConfig([
    "device=cpu", "recipe=fp32", "data.tokenizer=byte", "model.vocabSize=257", "model.dModel=64", "model.nLayers=2", "model.nHeads=4",
    "model.nKvHeads=2", "model.dFF=192", `model.seqLen=${T}`, "model.ropeTheta=10000", "model.normEps=1e-5", `seed=${SEED}`,
  ]);
  const params = hfNames(config.model).map((e) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const std = e.shape.length === 1 ? 0.3 : e.param === "embed.weight" ? 1 : 1 / Math.sqrt(e.shape[1]);
    const data = initValues(e.param, n, { kind: "normal", std }, SEED);
    if (e.shape.length === 1) for (let i = 0; i < n; i++) data[i] += 1; // norm gains around 1
    return { name: e.param, shape: e.shape, data };
  });
  const tmp = mkdtempSync(join(tmpdir(), "fp4lm-interop-"));
  try {
    const ckpt = join(tmp, "checkpoint.safetensors");
    const zeros = () => params.map((p) => ({ ...p, data: new Float32Array(p.data.length) }));
    saveCheckpoint(ckpt, {
      state: { version: 1, step: 0, optimizerT: 0, config, recipe: config.recipe, tokenizer: byteTokenizer().toJSON(), loader: null, info: { purpose: "interop check" } },
      params, m: zeros(), v: zeros(),
    });
    exportHf(ckpt, outDir, { dtype: "f32", overwrite: argv.includes("--overwrite") });
    const ids = tokens(B * T, config.model.vocabSize, 7);
    const lm = loadModel(ckpt, { B, T, recipe: "fp32" });
    let logits: Float32Array;
    try {
      const x = lm.be.tokens(ids, [B, T]);
      lm.model.step(x, x, false);
      logits = lm.model.lastLogits();
    } finally {
      lm.be.close();
    }
    const V = config.model.vocabSize;
    const rows = Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
    writeFileSync(join(outDir, "check_tokens.json"), JSON.stringify({
      tokens: rows, B, T, vocab_size: V, logits_file: "check_logits.f32", logits_shape: [B, T, V], logits_dtype: "float32 little-endian, row-major",
      tolerance_max_abs: TOLERANCE, producer: "fp4lm CPU backend, fp32 recipe (scripts/interop-prepare.ts)",
    }) + "\n");
    writeFileSync(join(outDir, "check_logits.f32"), new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
    let maxAbs = 0;
    for (const v of logits) maxAbs = Math.max(maxAbs, Math.abs(v));
    console.log(`wrote ${outDir}: HF ArceeForCausalLM (F32) + check_tokens.json + check_logits.f32 (${B}x${T}x${V}, max |logit| ${maxAbs.toFixed(3)})`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main(process.argv.slice(2));
