/**
 * transformers → fp4lm parity check (test/interop_check.py, part b): import the folder that
 * interop_check.py wrote with `save_pretrained` (a random ArceeForCausalLM, LlamaForCausalLM or NemotronHForCausalLM,
 * plus hf_logits.f32 and check_tokens.json) through importHf, run our CPU model with the fp32 recipe on the same tokens
 * and compare with transformers' logits: max abs diff < 1e-4 (logits are O(1) by construction).
 * Prints PASS or FAIL and exits 0 or 1.
 *
 * Usage: node --import tsx scripts/interop-import-check.ts DIR2
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importHf } from "../src/interop/hf-import.ts";
import { checkpointLogits } from "../src/interop/check-weights.ts";

const TOLERANCE = 1e-4;

function main(argv: string[]): number {
  const dir = argv[0];
  if (!dir) {
    console.error("usage: node --import tsx scripts/interop-import-check.ts DIR2");
    return 2;
  }
  const meta = JSON.parse(readFileSync(join(dir, "check_tokens.json"), "utf8")) as { tokens: number[][]; B: number; T: number; vocab_size: number; architecture?: string };
  const arch = meta.architecture ?? "ArceeForCausalLM";
  const { B, T, vocab_size: V } = meta;
  const ids = Int32Array.from(meta.tokens.flat());
  const raw = readFileSync(join(dir, "hf_logits.f32"));
  if (raw.length !== B * T * V * 4) throw new Error(`${join(dir, "hf_logits.f32")}: ${raw.length} bytes, expected ${B}x${T}x${V} float32 = ${B * T * V * 4}`);
  const hf = new Float32Array(new Uint8Array(raw).buffer);
  const tmp = mkdtempSync(join(tmpdir(), "fp4lm-import-check-"));
  try {
    const ckpt = join(tmp, "imported.safetensors");
    const { params } = importHf(dir, ckpt, { recipe: "fp32" });
    const ours = checkpointLogits(ckpt, ids, B, T);
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < hf.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(hf[i] - ours[i]));
      maxAbs = Math.max(maxAbs, Math.abs(hf[i]));
    }
    if (!(maxDiff < TOLERANCE)) {
      console.log(`FAIL (b) transformers ${arch} → fp4lm import: max abs logit diff ${maxDiff.toExponential(3)} >= ${TOLERANCE} (max |logit| ${maxAbs.toFixed(3)}, ${params} params)`);
      return 1;
    }
    console.log(`PASS (b) transformers ${arch} → fp4lm import: max abs logit diff ${maxDiff.toExponential(3)} < ${TOLERANCE} (max |logit| ${maxAbs.toFixed(3)}, ${params} params)`);
    return 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = main(process.argv.slice(2));
