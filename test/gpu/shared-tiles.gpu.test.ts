/**
 * GPU: Dgrad reading Fprop's NVFP4 16x16 W operand transposed (CudaBackend.shareOperand, the
 * default) trains like quantizing Wᵀ again (FP4LM_SHARE_TILES=0), bit for bit: the same losses and
 * validation losses, the Transformer and the hybrid (test/shared-tiles.test.ts: the same on the CPU,
 * and why the values agree). Skipped without a GPU.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gpuBackend } from "./gpu.ts";
import { buildConfig } from "../../src/train/config.ts";
import { train } from "../../src/train/train.ts";

test("nvfp4 on the GPU: W quantized once for Fprop and Dgrad (16x16 tiles) gives the losses of quantizing Wᵀ again, bit for bit (FP4LM_SHARE_TILES=0)", (t) => {
  if (!gpuBackend(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-tiles-"));
  const saved = process.env.FP4LM_SHARE_TILES;
  try {
    const base = [`outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model.dModel=128", "model.nLayers=3", "model.nHeads=2", "model.nKvHeads=1",
      "model.dFF=256", "model.seqLen=64", "batchSize=4", "steps=8", "evalEvery=4", "evalBatches=2", "recipe=nvfp4", "gradAccum=2", "device=cuda"];
    const hybrid = ["model.pattern=M-*-", "model.nLayers=4", "model.mamba.nGroups=1", "model.mamba.dState=32", "model.mamba.headDim=16", "model.mamba.chunkSize=32"];
    for (const [what, extra] of [["GPT", []], ["hybrid", hybrid]] as const) {
      delete process.env.FP4LM_SHARE_TILES;
      const shared = train(buildConfig([...base, ...extra, `name=${what}-shared`]));
      process.env.FP4LM_SHARE_TILES = "0";
      const again = train(buildConfig([...base, ...extra, `name=${what}-again`]));
      assert.deepEqual(shared.losses, again.losses, `${what}: losses bit for bit`);
      assert.deepEqual(shared.evals, again.evals, `${what}: validation losses bit for bit`);
      console.log(`# ${what} nvfp4: shared 16x16 W = quantizing Wᵀ again bit for bit (${shared.losses.length} losses); tok/s ${Math.round(shared.tokensPerS)} vs ${Math.round(again.tokensPerS)}`);
    }
  } finally {
    if (saved === undefined) delete process.env.FP4LM_SHARE_TILES;
    else process.env.FP4LM_SHARE_TILES = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
