/**
 * CPU throughput of each quantizer on a 4096x4096 FP32 tensor, in MB/s of FP32 input
 * (64 MiB per pass). Prints a table and writes bench/results/quantize-cpu.json; the numbers
 * go into BENCHMARKS.md with the machine and date. Not a test: nothing here asserts speed.
 * Usage: npx tsx bench/quantize.bench.ts [--size N] [--reps R]
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { dequantizeNVFP4, quantizeNVFP4, quantizeNVFP4Columnwise } from "../src/quant/nvfp4.ts";
import { quantizeMXFP4 } from "../src/quant/mxfp4.ts";
import { quantizeFP8 } from "../src/quant/fp8.ts";
import { rht } from "../src/quant/hadamard.ts";
import { philoxBytes, philoxUniform } from "../src/quant/philox.ts";
import { roundBf16InPlace } from "../src/formats/bf16.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({ options: { size: { type: "string" }, reps: { type: "string" } } });
const N = Number(values.size ?? 4096);
const reps = Number(values.reps ?? 3);
const shape: [number, number] = [N, N];

// N(0,1) input rounded to BF16, as activations reach the quantizer in training
const u = philoxUniform(42, 0, N * N);
const x = new Float32Array(N * N);
for (let i = 0; i < x.length; i += 2) {
  const r = Math.sqrt(-2 * Math.log(1 - u[i]));
  x[i] = r * Math.cos(2 * Math.PI * u[i + 1]);
  if (i + 1 < x.length) x[i + 1] = r * Math.sin(2 * Math.PI * u[i + 1]);
}
roundBf16InPlace(x);
const q = quantizeNVFP4(x, shape);

const cases: [string, () => unknown][] = [
  ["nvfp4 1x16 RTN (Fprop X)", () => quantizeNVFP4(x, shape)],
  ["nvfp4 16x16 RTN (weights)", () => quantizeNVFP4(x, shape, { tile2d: true })],
  ["nvfp4 1x16 SR, Philox bytes (Dgrad dY)", () => quantizeNVFP4(x, shape, { rounding: "sr", seed: 1, tensorId: 2 })],
  ["nvfp4 columnwise RHT16 + SR (Wgrad dYᵀ)", () => quantizeNVFP4Columnwise(x, shape, { rht: true, rounding: "sr", seed: 1, tensorId: 3 })],
  ["nvfp4 dequantize", () => dequantizeNVFP4(q)],
  ["RHT16 alone (BF16 output)", () => rht(x, shape)],
  ["Philox bytes alone", () => philoxBytes(1, 2, N * N)],
  ["mxfp4 floor RTN", () => quantizeMXFP4(x, shape)],
  ["fp8 e4m3 per-tensor", () => quantizeFP8(x, shape)],
  ["fp8 e4m3 1x128 blocks", () => quantizeFP8(x, shape, { scaling: "1x128" })],
  ["fp8 e4m3 128x128 blocks", () => quantizeFP8(x, shape, { scaling: "128x128" })],
];

const mb = (N * N * 4) / 1e6;
const results: { name: string; bestMs: number; medianMs: number; mbPerS: number }[] = [];
for (const [name, fn] of cases) {
  fn(); // warm up the JIT
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const best = times[0], median = times[Math.floor(times.length / 2)];
  results.push({ name, bestMs: best, medianMs: median, mbPerS: mb / (median / 1000) });
  process.stderr.write(`  ${name}: ${median.toFixed(0)} ms\n`);
}

const machine = `${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores), Node ${process.version}`;
console.log(`Quantizer throughput, ${N}x${N} FP32 input (${mb.toFixed(1)} MB), median of ${reps}; ${machine}`);
console.log(textTable([["quantizer", "median ms", "best ms", "MB/s"], ...results.map((r) => [r.name, r.medianMs.toFixed(0), r.bestMs.toFixed(0), r.mbPerS.toFixed(1)])], [false, true, true, true]));
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/quantize-cpu.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, size: N, reps, results }, null, 1) + "\n");
