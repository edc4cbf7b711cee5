/**
 * The fp8 recipe on the GPU (backends/cuda/fp8.ts): the one-pass FP8 quantizers
 * (kernels/quantize-fp8-fast.cu) against their plain twins (quantize.cu) and the CPU oracle, byte
 * for byte; the block-scaled FP8 tensor-core GEMMs against the emulated ones (stated tolerance);
 * a 20-step fp8 training run on the FP8 tensor cores against the CPU run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gpuBackend, randn, relMaxErr } from "./gpu.ts";
import { quantizeOperand, type OperandStream } from "../../src/recipes/quantize-operand.ts";
import type { OperandSpec } from "../../src/recipes/operand.ts";
import type { CudaBackend, QuantizedBytes } from "../../src/backends/cuda/cuda-backend.ts";
import { buildConfig } from "../../src/train/config.ts";
import { train } from "../../src/train/train.ts";

const E4M3_1D: OperandSpec = { format: "fp8", block: "1x128", rounding: "rtn", fp8: "e4m3" };
const E4M3_2D: OperandSpec = { format: "fp8", block: "128x128", rounding: "rtn", fp8: "e4m3" };
const SPECS: OperandSpec[] = [E4M3_1D, E4M3_2D, { ...E4M3_1D, fp8: "e5m2" }, { ...E4M3_2D, fp8: "e5m2" }];

/** max |a−b| / max |b| and ‖a−b‖ / ‖b‖ */
function errors(a: Float32Array, b: Float32Array): { max: number; fro: number } {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return { max: relMaxErr(a, b), fro: Math.sqrt(num / den) };
}

function withModes(be: CudaBackend, body: () => void): void {
  const qk = be.quantKernelMode, gm = be.fp8.mode;
  try {
    body();
  } finally {
    be.setQuantKernels(qk);
    be.fp8.mode = gm;
  }
}

test("fp8 quantizers: one-pass kernels (quantize-fp8-fast.cu) = plain kernels (quantize.cu) = CPU, byte for byte, GPT-sized and partial-block shapes", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  // (rows, cols): GPT-124M widths at 1024 tokens (768, the q/k/v width 2304, 3072); partial 1x128 and
  // 128x128 blocks in both directions (784 = 6·128 + 16, 1040 = 8·128 + 16 rows); narrow ones
  const shapes: [number, number][] = [[1024, 768], [1024, 2304], [512, 3072], [1040, 784], [48, 144], [144, 48], [16, 16]];
  let fastRuns = 0, cpuChecked = 0;
  withModes(be, () => {
    shapes.forEach(([rows, cols], si) => {
      const x = randn(rows * cols, 900 + si, si % 2 ? 0.003 : 5);
      const dx = be.fromArray(x, [rows, cols]);
      SPECS.forEach((spec, k) => {
        for (const tr of [false, true]) {
          if ((tr ? rows : cols) % 16) continue;
          const st: OperandStream = { seed: 3, gemmId: 17 * k + si, slot: tr ? 1 : 0 };
          const label = `${JSON.stringify(spec)} [${rows},${cols}]${tr ? "ᵀ" : ""}`;
          be.setQuantKernels("plain");
          const p = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
          const pv = be.operandValues(p.operand);
          be.setQuantKernels("fast");
          assert.ok(be.fp8.kernelPath(spec, rows, cols, tr).fast, `${label}: the fast kernels take it`);
          for (const mode of ["tensor-cores", "emulated"] as const) {
            be.fp8.mode = mode;
            const f: QuantizedBytes = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
            fastRuns++;
            assert.ok(Buffer.from(f.packed!).equals(Buffer.from(p.packed!)), `${label} ${mode}: FP8 bytes`);
            assert.ok(Buffer.from(f.scaleInv!.buffer).equals(Buffer.from(p.scaleInv!.buffer)), `${label} ${mode}: scale_inv`);
            const fv = be.operandValues(f.operand);
            assert.ok(Buffer.from(fv.buffer).equals(Buffer.from(pv.buffer)), `${label} ${mode}: operand values (${f.operand.dtype})`);
            if (mode === "tensor-cores" && be.fp8.blockScaledGemms().available && spec.fp8 === "e4m3") assert.equal(f.operand.dtype, "e4m3", `${label}: kept in FP8`);
            be.releaseOperand(f.operand);
          }
          if (rows * cols <= 144 * 48 || si === 3) {
            const want = quantizeOperand(x, rows, cols, spec, tr, st, "x").values;
            assert.ok(Buffer.from(pv.buffer).equals(Buffer.from(want.buffer)), `${label}: = CPU operand`);
            cpuChecked++;
          }
          be.releaseOperand(p.operand);
        }
      });
    });
  });
  console.log(`# fp8 fast = plain on ${fastRuns} operands (both GEMM modes), ${cpuChecked} also = CPU`);
  assert.ok(fastRuns >= 100);
});

test("fp8 quantizers with the hardware cvt (FP4LM_FP8_CVT=hw, experimental) = plain kernels, byte for byte", { todo: "decides whether the hardware conversion can become the default; a failure here does not fail the suite" }, (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const shapes: [number, number][] = [[1024, 768], [1040, 784], [144, 48]];
  const hw = be.fp8.hwCvt;
  let checked = 0;
  try {
    withModes(be, () => {
      shapes.forEach(([rows, cols], si) => {
        // wide magnitudes, exact ties and zeros of both signs: where a conversion rule would show
        const x = randn(rows * cols, 950 + si, si ? 1e-3 : 30);
        for (let i = 0; i < x.length; i += 53) x[i] = [0, -0, 1e-30, -1e-30, 3e38, -448.5, 464, 0.0009765625][i % 8];
        const dx = be.fromArray(x, [rows, cols]);
        SPECS.forEach((spec, k) => {
          for (const tr of [false, true]) {
            if ((tr ? rows : cols) % 16) continue;
            const st: OperandStream = { seed: 3, gemmId: 7 * k + si, slot: 0 };
            be.setQuantKernels("plain");
            const p = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
            be.setQuantKernels("fast");
            be.fp8.hwCvt = true;
            const f = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
            be.fp8.hwCvt = hw;
            const i = p.packed!.findIndex((b, j) => b !== f.packed![j]);
            assert.equal(i, -1, `${JSON.stringify(spec)} [${rows},${cols}]${tr ? "ᵀ" : ""}: byte ${i}: hardware 0x${f.packed![i]?.toString(16)} vs plain 0x${p.packed![i]?.toString(16)}`);
            be.releaseOperand(f.operand);
            be.releaseOperand(p.operand);
            checked++;
          }
        });
      });
    });
  } finally {
    be.fp8.hwCvt = hw;
  }
  console.log(`# FP4LM_FP8_CVT=hw: the hardware conversion gave the plain kernels' bytes on ${checked} operands`);
});

test("fp8 GEMMs on the FP8 tensor cores (cuBLASLt 1x128·128x128, 1x128·1x128) vs emulated: max rel error ≤ 5e-3, Frobenius ≤ 1e-3", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const avail = be.fp8.blockScaledGemms();
  if (!avail.available) { t.skip(`no block-scaled FP8 GEMMs here: ${avail.reason}`); return; }
  // GPT-124M's fc1 at 2048 tokens: Fprop X (BT, 768)·W (3072, 768)ᵀ, Dgrad dY (BT, 3072)·Wᵀ, Wgrad dYᵀ·Xᵀ accumulated into dW
  const BT = 2048, IN = 768, OUT = 3072;
  const X = be.fromArray(randn(BT * IN, 31, 2), [BT, IN]), W = be.fromArray(randn(OUT * IN, 32, 0.02), [OUT, IN]);
  const dY = be.fromArray(randn(BT * OUT, 33, 1e-3), [BT, OUT]);
  const dW0 = randn(OUT * IN, 34, 1e-2);
  const st = (gemmId: number, slot: 0 | 1): OperandStream => ({ seed: 5, gemmId, slot });
  const cases: [string, (be: CudaBackend) => Float32Array][] = [
    ["Fprop X 1x128 · W 128x128", (b) => {
      const y = b.alloc([BT, OUT]);
      b.gemm(y, b.quantize(X, BT, IN, E4M3_1D, false, st(1, 0), "x"), b.quantize(W, OUT, IN, E4M3_2D, false, st(1, 1), "w"), false);
      return b.toArray(y);
    }],
    ["Dgrad dY 1x128 · Wᵀ 128x128", (b) => {
      const dx = b.alloc([BT, IN]);
      b.gemm(dx, b.quantize(dY, BT, OUT, E4M3_1D, false, st(2, 0), "dy"), b.quantize(W, OUT, IN, E4M3_2D, true, st(2, 1), "wT"), false);
      return b.toArray(dx);
    }],
    ["Wgrad dYᵀ 1x128 · Xᵀ 1x128, accumulated", (b) => {
      const dw = b.fromArray(dW0, [OUT, IN]);
      b.gemm(dw, b.quantize(dY, BT, OUT, E4M3_1D, true, st(3, 0), "dyT"), b.quantize(X, BT, IN, E4M3_1D, true, st(3, 1), "xT"), true);
      return b.toArray(dw);
    }],
  ];
  withModes(be, () => {
    be.setQuantKernels("fast");
    for (const [name, run] of cases) {
      be.fp8.mode = "emulated";
      const want = run(be);
      be.fp8.mode = "tensor-cores";
      const before: number = be.fp8.counts.tensorCores;
      const got = run(be);
      assert.equal(be.fp8.counts.tensorCores, before + 1, `${name}: ran on the FP8 tensor cores (no fallback)`);
      const e = errors(got, want);
      console.log(`# ${name}: FP8 tensor cores vs emulated: max rel ${e.max.toExponential(2)}, Frobenius ${e.fro.toExponential(2)}`);
      assert.ok(e.max <= 5e-3 && e.fro <= 1e-3, `${name}: max rel ${e.max}, Frobenius ${e.fro}`);
    }
    // a pair cuBLASLt has no mode for (128x128 · 128x128) falls back to the emulated GEMM, same values
    be.fp8.mode = "tensor-cores";
    const y = be.alloc([OUT, OUT]);
    const fell = be.fp8.counts.fellBack;
    be.gemm(y, be.quantize(W, OUT, IN, E4M3_2D, false, st(4, 0), "w"), be.quantize(W, OUT, IN, E4M3_2D, false, st(4, 1), "w"), false);
    assert.equal(be.fp8.counts.fellBack, fell + 1, "128x128·128x128 ran emulated");
    be.fp8.mode = "emulated";
    const y2 = be.alloc([OUT, OUT]);
    be.gemm(y2, be.quantize(W, OUT, IN, E4M3_2D, false, st(4, 0), "w"), be.quantize(W, OUT, IN, E4M3_2D, false, st(4, 1), "w"), false);
    assert.ok(relMaxErr(be.toArray(y), be.toArray(y2)) <= 1e-6, "the fallback = the emulated GEMM");
  });
});

test("training: 20 fp8 steps on the FP8 tensor cores track the CPU run (|Δloss| ≤ 0.02 per step); the precision table says so", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const avail = be.fp8.blockScaledGemms();
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-fp8-"));
  try {
    // d 128 so that a 1x128 block is whole; every block quantized (bf16First/Last 0)
    const base = [`outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model.dModel=128", "model.nLayers=2", "model.nHeads=4", "model.nKvHeads=2",
      "model.dFF=256", "model.seqLen=32", "batchSize=4", "steps=20", "evalEvery=10", "evalBatches=2", "recipe=fp8", "recipe.bf16First=0", "recipe.bf16Last=0"];
    const cpu = train(buildConfig([...base, "name=cpu", "device=cpu", "threads=2"]));
    const gpu = train(buildConfig([...base, "name=gpu", "device=cuda"]));
    const d = cpu.losses.map((l, i) => Math.abs(l - gpu.losses[i]));
    assert.ok(Math.max(...d) <= 0.02, `max |Δloss| ${Math.max(...d)}; cpu ${cpu.losses.map((x) => x.toFixed(4))} gpu ${gpu.losses.map((x) => x.toFixed(4))}`);
    assert.ok(gpu.losses[19] < gpu.losses[0] - 0.3, "the GPU run learns");
    const layers = JSON.parse(readFileSync(join(gpu.runDir, "precision.json"), "utf8")).layers as { layer: string; why: string; engine?: string }[];
    const quantized = layers.filter((l) => l.why === "quantized");
    assert.ok(quantized.length > 0);
    const want = avail.available && process.env.FP4LM_FP8_GEMM !== "emulated" && process.env.FP4LM_QUANT_KERNELS !== "plain" ? "FP8 tensor cores" : undefined;
    for (const l of quantized) {
      if (want) assert.equal(l.engine, want, `${l.layer}: runs on`);
      else assert.match(l.engine ?? "", /^emulated/, `${l.layer}: runs on`);
    }
    console.log(`# fp8 GPU (${quantized[0].engine}) vs CPU losses, max |Δ| ${Math.max(...d).toExponential(2)}; step 20: cpu ${cpu.losses[19].toFixed(4)} gpu ${gpu.losses[19].toFixed(4)}; gpu ${Math.round(gpu.tokensPerS)} tok/s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
