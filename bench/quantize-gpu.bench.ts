/**
 * GPU quantizer throughput: each operand quantization the recipes use (non-finite scan, amax or
 * RHT amax, the fused quantize kernel writing codes, scales and the BF16 GEMM operand) on an
 * 8192x8192 FP32 input, timed with CUDA events per kernel (median of 5 after a warm-up), against
 * the HBM copy bandwidth measured in the same run. "min bytes" counts one read of the input and
 * every output written once; the achieved rate is min bytes / time. Writes
 * bench/results/quantize-gpu.json. Usage: npx tsx bench/quantize-gpu.bench.ts [--size 8192]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CudaBackend } from "../src/backends/cuda/cuda-backend.ts";
import type { OperandSpec } from "../src/recipes/operand.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({ options: { size: { type: "string" } } });
const S = Number(values.size ?? 8192), n = S * S;
const be = new CudaBackend();
const x = new Float32Array(n);
for (let i = 0; i < n; i++) x[i] = Math.sin(i * 12.9898) * 43758.5453 % 1;
const dx = be.fromArray(x, [S, S]);
// copy bandwidth ceiling: device-to-device copy of the same tensor
const dy = be.alloc([S, S]);
for (let i = 0; i < 3; i++) be.copy(dy, dx);
be.synchronize();
let t0 = performance.now();
for (let i = 0; i < 10; i++) be.copy(dy, dx);
be.synchronize();
const copyGBs = (2 * 4 * n * 10) / ((performance.now() - t0) / 1000) / 1e9;

const cases: [string, OperandSpec, boolean, number][] = [
  ["nvfp4 1x16 RTN (Fprop X)", { format: "nvfp4", block: "1x16", rounding: "rtn" }, false, n / 2 + n / 16 + 2 * n],
  ["nvfp4 16x16 RTN (W)", { format: "nvfp4", block: "16x16", rounding: "rtn" }, false, n / 2 + n / 16 + 2 * n],
  ["nvfp4 1x16 SR (Dgrad dY)", { format: "nvfp4", block: "1x16", rounding: "sr" }, false, n / 2 + n / 16 + 2 * n],
  ["nvfp4 colwise RHT16 SR (Wgrad dYᵀ)", { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "fixed" } }, true, n / 2 + n / 16 + 2 * n],
  ["mxfp4 1x32 RTN", { format: "mxfp4", block: "1x32", rounding: "rtn", mxScale: "floor" }, false, n / 2 + n / 32 + 2 * n],
  ["fp8 e4m3 1x128", { format: "fp8", block: "1x128", rounding: "rtn", fp8: "e4m3" }, false, n + n / 32 + 2 * n],
  ["bf16 cast", { format: "bf16", rounding: "rtn" }, false, 2 * n],
];
const rows: Record<string, unknown>[] = [];
for (const [name, spec, tr, outBytes] of cases) {
  const stream = { seed: 1, gemmId: 2, slot: 0 as const };
  be.releaseOperand(be.quantize(dx, S, S, spec, tr, stream, "x"));
  be.synchronize();
  be.profileReport();
  const totals: number[] = [];
  let kernels: { name: string; count: number; ms: number }[] = [];
  for (let r = 0; r < 5; r++) {
    be.profile(true);
    be.releaseOperand(be.quantize(dx, S, S, spec, tr, stream, "x"));
    kernels = be.profileReport();
    be.profile(false);
    totals.push(kernels.reduce((a, k) => a + k.ms, 0));
  }
  be.flushChecks();
  totals.sort((a, b) => a - b);
  const ms = totals[2];
  const minBytes = 4 * n + outBytes;
  const gbs = minBytes / (ms / 1000) / 1e9;
  rows.push({ name, ms, minBytes, gbs, ofCopy: gbs / copyGBs, kernels });
  process.stderr.write(`  ${name}: ${ms.toFixed(3)} ms, ${gbs.toFixed(0)} GB/s (${kernels.map((k) => `${k.name} ${k.ms.toFixed(3)}`).join(", ")})\n`);
}
console.log(`GPU quantizers, ${S}x${S} FP32 input; HBM copy ceiling ${copyGBs.toFixed(0)} GB/s (read + write) measured in this run`);
console.log(textTable([["operand", "ms", "min bytes (MB)", "GB/s", "% of copy"], ...rows.map((r) => [r.name as string, (r.ms as number).toFixed(3), ((r.minBytes as number) / 1e6).toFixed(0), (r.gbs as number).toFixed(0), (100 * (r.ofCopy as number)).toFixed(0) + "%"])], [false, true, true, true, true]));
writeFileSync(new URL("./results/quantize-gpu.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), size: S, copyGBs, rows }, null, 1) + "\n");
be.close();
