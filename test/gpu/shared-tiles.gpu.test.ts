/**
 * GPU: Dgrad reading Fprop's NVFP4 16x16 W operand transposed (CudaBackend.shareOperand, the
 * default) trains like quantizing Wᵀ again (FP4LM_SHARE_TILES=0), bit for bit: the same losses and
 * validation losses, the Transformer and the hybrid (test/shared-tiles.test.ts: the same on the CPU,
 * and why the values agree). Skipped without a GPU.
 */
import { test } from "node:test";
import { gpuBackend, sameTrainingWithSwitch, smallRun } from "./gpu.ts";

test("nvfp4 on the GPU: W quantized once for Fprop and Dgrad (16x16 tiles) gives the losses of quantizing Wᵀ again, bit for bit (FP4LM_SHARE_TILES=0)", (t) => {
  if (!gpuBackend(t)) return;
  const hybrid = ["model.pattern=M-*-", "model.nLayers=4", "model.mamba.nGroups=1", "model.mamba.dState=32", "model.mamba.headDim=16", "model.mamba.chunkSize=32"];
  for (const [what, extra] of [["GPT", ["gradAccum=2"]], ["hybrid", ["gradAccum=2", ...hybrid]]] as const) {
    const r = sameTrainingWithSwitch("FP4LM_SHARE_TILES", "0", (dir) => smallRun(dir, "nvfp4", [...extra]), what);
    console.log(`# ${what} nvfp4: shared 16x16 W = quantizing Wᵀ again bit for bit; tok/s ${Math.round(r.on)} vs ${Math.round(r.off)}`);
  }
});
