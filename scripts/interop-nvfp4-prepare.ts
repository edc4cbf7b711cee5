/**
 * Prepare the NVFP4-export check (test/interop_check_nvfp4.py, issue 6 check c): train a tiny
 * model a few steps with the nvfp4 recipe (last block BF16, so the export has an excluded layer),
 * then export it with `exportNvfp4(..., { writeReference: true })`, which adds fp4lm's own fp32
 * dequantization of every NVFP4 weight (fp4lm_dequant.safetensors) for the bit-for-bit comparison.
 *
 * Usage: node --import tsx scripts/interop-nvfp4-prepare.ts OUT_DIR [--device cpu|cuda]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportNvfp4 } from "../src/interop/nvfp4-export.ts";
import { buildConfig } from "../src/train/config.ts";
import { train } from "../src/train/train.ts";

function main(argv: string[]): void {
  const outDir = argv.find((a, i) => !a.startsWith("--") && argv[i - 1] !== "--device");
  if (!outDir) {
    console.error("usage: node --import tsx scripts/interop-nvfp4-prepare.ts OUT_DIR [--device cpu|cuda]");
    process.exit(2);
  }
  const device = argv[argv.indexOf("--device") + 1] ?? "cpu";
  const tmp = mkdtempSync(join(tmpdir(), "fp4lm-nvfp4-export-"));
  try {
    const cfg = buildConfig([
      `outDir=${tmp}`, "name=run", "log=quiet", `device=${argv.includes("--device") ? device : "cpu"}`, "recipe=nvfp4", "recipe.bf16Last=1",
      "data.tokenizer=byte", "model.dModel=64", "model.nLayers=3", "model.nHeads=4", "model.nKvHeads=2", "model.dFF=128", "model.seqLen=32",
      "batchSize=4", "steps=5", "evalEvery=5", "evalBatches=1",
    ]);
    train(cfg);
    const r = exportNvfp4(join(tmp, "run", "checkpoint.safetensors"), outDir, { calibration: null, writeReference: true, overwrite: true, log: (l) => console.log(l) });
    console.log(`NVFP4 export in ${outDir}: ${JSON.stringify(r).slice(0, 300)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main(process.argv.slice(2));
