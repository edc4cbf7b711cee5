/**
 * CPU FP32 GEMM throughput in GFLOP/s (2·M·N·K / time): gemmReference (smallest size only),
 * gemmBlocked on one thread, and GemmPool with 1 and 2 threads, on square NN sizes and on a
 * training-shaped GEMM (M = 4096 tokens, K = 256, N = 1024) in the NN, NT and TN layouts.
 * Operands are N(0,1) fp32 on SharedArrayBuffers (allocShared), so the pool copies nothing.
 * Prints a table and writes bench/results/gemm-cpu.json. Not a test: nothing here asserts speed;
 * on a shared machine the numbers move by ±20% from run to run.
 * Usage: npx tsx bench/gemm.bench.ts [--reps R] [--threads 1,2] [--sizes 256,512,1024]
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { gemmBlocked, gemmReference, type GemmArgs } from "../src/backends/cpu/gemm.ts";
import { GemmPool } from "../src/backends/cpu/gemm-pool.ts";
import { philoxUniform } from "../src/quant/philox.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({ options: { reps: { type: "string" }, threads: { type: "string" }, sizes: { type: "string" } } });
const reps = Number(values.reps ?? 3);
const threadCounts = (values.threads ?? "1,2").split(",").map(Number);
const sizes = (values.sizes ?? "256,512,1024").split(",").map(Number);

/** n N(0,1) samples on a SharedArrayBuffer (Box–Muller over Philox uniforms). */
function normalsShared(n: number, seed: number): Float32Array {
  const u = philoxUniform(seed, 0, n + 1);
  const x = GemmPool.allocShared(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u[i]));
    x[i] = r * Math.cos(2 * Math.PI * u[i + 1]);
    if (i + 1 < n) x[i + 1] = r * Math.sin(2 * Math.PI * u[i + 1]);
  }
  return x;
}

interface Case { name: string; args: GemmArgs }
const layout = (a: GemmArgs) => (a.transA ? "T" : "N") + (a.transB ? "T" : "N");
const cases: Case[] = [
  ...sizes.map((s) => ({ name: `square ${s}`, args: { M: s, N: s, K: s, transA: false, transB: false } })),
  ...(["NN", "NT", "TN"] as const).map((l) => ({
    name: "train 4096x1024x256",
    args: { M: 4096, N: 1024, K: 256, transA: l[0] === "T", transB: l[1] === "T" },
  })),
];

const pools = new Map(threadCounts.map((t) => [t, GemmPool.create(t)]));
for (const p of pools.values()) p.waitReady();

interface Row { case: string; layout: string; M: number; N: number; K: number; impl: string; medianMs: number; bestMs: number; gflops: number }
const results: Row[] = [];
for (const { name, args } of cases) {
  const { M, N, K } = args;
  const A = normalsShared(M * K, 1), B = normalsShared(K * N, 2), C = GemmPool.allocShared(M * N);
  const impls: [string, () => void][] = [];
  if (M * N * K <= 256 ** 3) impls.push(["gemmReference", () => gemmReference(A, B, C, args)]);
  impls.push(["gemmBlocked (1 thread)", () => gemmBlocked(A, B, C, args)]);
  for (const [t, pool] of pools) impls.push([`GemmPool ${t} thread${t > 1 ? "s" : ""}`, () => pool.gemmSync(A, B, C, args)]);
  for (const [impl, fn] of impls) {
    fn(); // warm up the JIT
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      fn();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const best = times[0], median = times[Math.floor(times.length / 2)];
    results.push({ case: name, layout: layout(args), M, N, K, impl, medianMs: median, bestMs: best, gflops: (2 * M * N * K) / (median * 1e6) });
    process.stderr.write(`  ${name} ${layout(args)} ${impl}: ${median.toFixed(1)} ms\n`);
  }
}
for (const p of pools.values()) p.close();

const machine = `${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores), Node ${process.version}`;
const load = loadavg()[0].toFixed(2);
console.log(`FP32 GEMM, GFLOP/s = 2·M·N·K / median of ${reps} (after one warm-up); ${machine}; load average ${load}`);
console.log(
  textTable(
    [["case", "layout", "implementation", "median ms", "best ms", "GFLOP/s"], ...results.map((r) => [r.case, r.layout, r.impl, r.medianMs.toFixed(1), r.bestMs.toFixed(1), r.gflops.toFixed(2)])],
    [false, false, false, true, true, true],
  ),
);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("./results/gemm-cpu.json", import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), machine, loadAverage1m: Number(load), command: `npx tsx bench/gemm.bench.ts${process.argv.slice(2).map((a) => " " + a).join("")}`, reps, results }, null, 1) + "\n",
);
