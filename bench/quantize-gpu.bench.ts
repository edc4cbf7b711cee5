/**
 * GPU quantizer throughput: each operand quantization the recipes use (non-finite scan, amax or
 * RHT amax, the fused quantize kernel writing codes, scales and the BF16 GEMM operand) on an
 * 8192x8192 FP32 input, timed with CUDA events per kernel (median of 5 after a warm-up), against
 * the HBM copy bandwidth measured in the same run. "min bytes" counts one read of the input and
 * every output written once; the achieved rate is min bytes / time. Writes
 * bench/results/quantize-gpu.json. Then every NVFP4 operand of one GPT-124M training step (its
 * shapes at B·T = 16384 tokens), with the fast kernels (quantize-fast.cu) and the plain ones
 * (quantize.cu): per kernel ms, GB/s of the bytes it must move and % of the copy ceiling, and the
 * step's total; the pairs training makes from one read (quantizePair: X with Xᵀ, dY with dYᵀ) against
 * those two quantizes; the same for every FP8 operand of a GPT-124M fp8 step (1x128 activations and
 * gradients, 128x128 weights) with the plain kernels (block amax, quantize to FP32, BF16 cast), the
 * one-pass kernels writing the BF16 operand (FP4LM_FP8_GEMM=emulated) and the one-pass kernels
 * writing FP8 bytes + scales for the tensor cores (the default).
 * Usage: npx tsx bench/quantize-gpu.bench.ts [--size 8192] [--tokens 16384] [--blocks 10]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CudaBackend, CudaTensor } from "../src/backends/cuda/cuda-backend.ts";
import type { OperandSpec } from "../src/recipes/operand.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({ options: { size: { type: "string" }, tokens: { type: "string" }, blocks: { type: "string" } } });
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

const fp8Spec = (block: "1x128" | "128x128"): OperandSpec => ({ format: "fp8", block, rounding: "rtn", fp8: "e4m3" });
// [name, spec, transpose, output bytes, fp8 GEMM mode for the case]
const cases: [string, OperandSpec, boolean, number, ("tensor-cores" | "emulated")?][] = [
  ["nvfp4 1x16 RTN (Fprop X)", { format: "nvfp4", block: "1x16", rounding: "rtn" }, false, n / 2 + n / 16 + 2 * n],
  ["nvfp4 16x16 RTN (W)", { format: "nvfp4", block: "16x16", rounding: "rtn" }, false, n / 2 + n / 16 + 2 * n],
  ["nvfp4 1x16 SR (Dgrad dY)", { format: "nvfp4", block: "1x16", rounding: "sr" }, false, n / 2 + n / 16 + 2 * n],
  ["nvfp4 colwise RHT16 SR (Wgrad dYᵀ)", { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "fixed" } }, true, n / 2 + n / 16 + 2 * n],
  ["mxfp4 1x32 RTN", { format: "mxfp4", block: "1x32", rounding: "rtn", mxScale: "floor" }, false, n / 2 + n / 32 + 2 * n],
  ["fp8 e4m3 1x128 → BF16 operand (emulated GEMM)", fp8Spec("1x128"), false, 2 * n, "emulated"],
  ["fp8 e4m3 1x128 → FP8 + scales (tensor cores)", fp8Spec("1x128"), false, n + n / 32, "tensor-cores"],
  ["fp8 e4m3 1x128 colwise (Wgrad dYᵀ) → FP8 + scales", fp8Spec("1x128"), true, n + n / 32, "tensor-cores"],
  ["fp8 e4m3 128x128 (W) → FP8 + scales", fp8Spec("128x128"), false, n + n / 4096, "tensor-cores"],
  ["bf16 cast", { format: "bf16", rounding: "rtn" }, false, 2 * n],
];
const rows: Record<string, unknown>[] = [];
for (const [name, spec, tr, outBytes, fp8Mode] of cases) {
  if (fp8Mode) be.fp8.mode = fp8Mode;
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

// ---- GPT-124M: every NVFP4 operand of one training step, fast kernels (quantize-fast.cu) vs plain (quantize.cu)
// tokens BT = 16384 (B 16 x T 1024); linears (in K, out N): qkv 768→1280, proj 768→768, fc1 768→3072, fc2 3072→768;
// per linear: Fprop X (BT,K) 1x16 RTN and W (N,K) 16x16; Dgrad dY (BT,N) 1x16 SR and Wᵀ 16x16; Wgrad dYᵀ and Xᵀ RHT16 (SR on dYᵀ).
// Each kernel's bytes: an amax pass reads the input (4 B/elem); a quantize pass reads it and writes codes,
// scales and the BF16 operand (4 + 0.5 + 1/16 + 2 B/elem).
const BT = values.tokens ? Number(values.tokens) : 16384, blocks = values.blocks ? Number(values.blocks) : 10;
const linears: [string, number, number][] = [["qkv", 768, 1280], ["proj", 768, 768], ["fc1", 768, 3072], ["fc2", 3072, 768]];
const rtn: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "rtn" };
const sr: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "sr" };
const w2d: OperandSpec = { format: "nvfp4", block: "16x16", rounding: "rtn" };
const rht = { size: 16, signs: "fixed" as const };
const ops: [string, number, number, OperandSpec, boolean][] = [];
for (const [lin, K, N] of linears) {
  ops.push([`${lin} Fprop X`, BT, K, rtn, false], [`${lin} Fprop W`, N, K, w2d, false], [`${lin} Dgrad dY`, BT, N, sr, false], [`${lin} Dgrad Wᵀ`, N, K, w2d, true]);
  ops.push([`${lin} Wgrad dYᵀ`, BT, N, { ...sr, rht }, true], [`${lin} Wgrad Xᵀ`, BT, K, { ...rtn, rht }, true]);
}
const maxN = Math.max(...ops.map(([, r, c]) => r * c));
const big = be.alloc([maxN]);
{
  const chunk = new Float32Array(1 << 22);
  for (let i = 0; i < chunk.length; i++) chunk[i] = Math.sin(i * 12.9898) * 43758.5453 % 1;
  for (let o = 0; o < maxN; o += chunk.length) {
    const len = Math.min(chunk.length, maxN - o);
    be.copy(new CudaTensor([len], big.ptr + BigInt(o) * 4n), be.fromArray(chunk.subarray(0, len), [len]));
  }
}
const kernelBytes = (name: string, elems: number, fp8Tc = false): number => {
  if (/^fp8_quantize_(rows|cols)_/.test(name)) return (4 + (fp8Tc ? 1 : 2) + 4 / 128) * elems; // one pass: x in, FP8 or BF16 out
  if (name === "fp8_quantize_f32") return (4 + 1 + 4) * elems; // plain: x in, FP8 and the FP32 dequantized operand out
  if (/^cast_bf16/.test(name)) return (4 + 2) * elems;
  return /quantize/.test(name) ? (4 + 0.5 + 1 / 16 + 2) * elems : 4 * elems;
};
/** `run` profiled per kernel: the run of median total time of 5 (after a warm-up). */
function medianProfiled(run: () => void): { total: number; kernels: { name: string; count: number; ms: number }[] } {
  run();
  be.synchronize();
  be.profileReport();
  const runs: { total: number; kernels: { name: string; count: number; ms: number }[] }[] = [];
  for (let k = 0; k < 5; k++) {
    be.profile(true);
    run();
    const kernels = be.profileReport();
    be.profile(false);
    runs.push({ total: kernels.reduce((a, q) => a + q.ms, 0), kernels });
  }
  runs.sort((a, b) => a.total - b.total);
  return runs[2];
}
/** One operand's quantize, profiled per kernel (medianProfiled). */
function medianQuantize(x: CudaTensor, r: number, c: number, spec: Parameters<typeof be.quantize>[3], tr: boolean) {
  const stream = { seed: 1, gemmId: 2, slot: 0 as const };
  return medianProfiled(() => be.releaseOperand(be.quantize(x, r, c, spec, tr, stream, "x")));
}
const gpt: Record<string, unknown>[] = [];
const stepMs = { fast: 0, plain: 0 };
for (const [name, r, c, spec, tr] of ops) {
  const x = new CudaTensor([r, c], big.ptr), elems = r * c;
  const row: Record<string, unknown> = { name, rows: r, cols: c, transpose: tr, spec };
  for (const mode of ["plain", "fast"] as const) {
    be.setQuantKernels(mode);
    const med = medianQuantize(x, r, c, spec, tr);
    const kernels = med.kernels.map((q) => ({ ...q, gbs: kernelBytes(q.name, elems) / (q.ms / 1000) / 1e9 }));
    row[mode] = { ms: med.total, path: be.nvfp4KernelPath(spec, r, c, tr).reason, kernels };
    stepMs[mode] += blocks * med.total;
  }
  be.flushChecks();
  gpt.push(row);
  const fmt = (m: string) => {
    const v = row[m] as { ms: number; kernels: { name: string; ms: number; gbs: number }[] };
    return `${v.ms.toFixed(3)} ms [${v.kernels.map((q) => `${q.name} ${q.ms.toFixed(3)} ms ${q.gbs.toFixed(0)} GB/s ${((100 * q.gbs) / copyGBs).toFixed(0)}%`).join(", ")}]`;
  };
  process.stderr.write(`  ${name} (${r}x${c}${tr ? "ᵀ" : ""}): plain ${fmt("plain")}; fast ${fmt("fast")}\n`);
}
be.setQuantKernels("fast");
const cell = (row: Record<string, unknown>, m: string, i: number) => {
  const v = row[m] as { kernels: { name: string; ms: number; gbs: number }[] };
  const q = v.kernels.filter((k) => k.name !== "nvfp4_alpha_store")[i];
  return q ? `${q.name} ${q.ms.toFixed(3)} ms, ${q.gbs.toFixed(0)} GB/s (${((100 * q.gbs) / copyGBs).toFixed(0)}%)` : "";
};
console.log(`\nGPT-124M NVFP4 operands (BT ${BT}), per kernel: ms, GB/s of the bytes it must move, % of the copy ceiling`);
console.log(textTable([
  ["operand", "shape", "plain ms", "fast ms", "fast kernel 1", "fast kernel 2"],
  ...gpt.map((g) => [g.name as string, `${g.rows}x${g.cols}${g.transpose ? "ᵀ" : ""}`, ((g.plain as { ms: number }).ms).toFixed(3), ((g.fast as { ms: number }).ms).toFixed(3), cell(g, "fast", 0), cell(g, "fast", 1)]),
], [false, false, true, true, false, false]));
console.log(`one step's ${ops.length * blocks} NVFP4 operands (${blocks} blocks): plain ${stepMs.plain.toFixed(1)} ms, fast ${stepMs.fast.toFixed(1)} ms`);

// ---- the pairs training makes from one read (quantizePair: Fprop X + Wgrad Xᵀ, Dgrad dY + Wgrad dYᵀ) against the two single quantizes above
const fastMs = (name: string) => ((gpt.find((g) => g.name === name)!.fast) as { ms: number }).ms;
const pairRows: string[][] = [];
const pairStep = { pair: 0, singles: 0, weightsDgrad: 0 };
for (const [lin, K, N] of linears) {
  for (const [what, cols, a, b, singles] of [["X", K, rtn, { ...rtn, rht }, ["Fprop X", "Wgrad Xᵀ"]], ["dY", N, sr, { ...sr, rht }, ["Dgrad dY", "Wgrad dYᵀ"]]] as const) {
    const x = new CudaTensor([BT, cols], big.ptr), stream = { seed: 1, gemmId: 2, slot: 0 as const }, stream2 = { seed: 1, gemmId: 3, slot: 0 as const };
    const ms = medianProfiled(() => be.quantizePair(x, BT, cols, a, b, stream, stream2, "a", "b")!.forEach((o) => be.releaseOperand(o))).total;
    const two = fastMs(`${lin} ${singles[0]}`) + fastMs(`${lin} ${singles[1]}`);
    const gbs = (8 * BT * cols) / (ms / 1000) / 1e9; // x read once, two BF16 operands written
    pairRows.push([`${lin} ${what} + ${what}ᵀ`, `${BT}x${cols}`, ms.toFixed(3), `${gbs.toFixed(0)} (${((100 * gbs) / copyGBs).toFixed(0)}%)`, two.toFixed(3), `${(two / ms).toFixed(2)}x`]);
    pairStep.pair += blocks * ms;
    pairStep.singles += blocks * two;
  }
  pairStep.weightsDgrad += blocks * fastMs(`${lin} Dgrad Wᵀ`);
}
be.flushChecks();
console.log(`\nGPT-124M NVFP4 pairs from one read (nvfp4_dual_*; GB/s of x read once + two BF16 operands written) vs the two fast quantizes above`);
console.log(textTable([["pair", "shape", "pair ms", "GB/s (% of copy)", "two quantizes ms", "speed-up"], ...pairRows], [false, false, true, true, true, true]));
console.log(`one step (${blocks} blocks): pairs ${pairStep.pair.toFixed(1)} ms instead of ${pairStep.singles.toFixed(1)} ms; Dgrad's Wᵀ (shared from Fprop's W now) ${pairStep.weightsDgrad.toFixed(1)} ms saved`);

// ---- GPT-124M: every FP8 operand of one fp8 step: plain kernels, one-pass → BF16 (emulated GEMMs), one-pass → FP8 (tensor cores)
const a1 = fp8Spec("1x128"), w2 = fp8Spec("128x128");
const fp8Ops: [string, number, number, OperandSpec, boolean][] = [];
for (const [lin, K, N] of linears) {
  fp8Ops.push([`${lin} Fprop X`, BT, K, a1, false], [`${lin} Fprop W`, N, K, w2, false], [`${lin} Dgrad dY`, BT, N, a1, false], [`${lin} Dgrad Wᵀ`, N, K, w2, true]);
  fp8Ops.push([`${lin} Wgrad dYᵀ`, BT, N, a1, true], [`${lin} Wgrad Xᵀ`, BT, K, a1, true]);
}
const fp8Blocks = 9; // the fp8 recipe keeps the first block and the last 2 of 12 in BF16
const fp8Modes = [["plain", "plain", "emulated"], ["one-pass → BF16", "fast", "emulated"], ["one-pass → FP8", "fast", "tensor-cores"]] as const;
const fp8Rows: Record<string, unknown>[] = [];
const fp8StepMs: Record<string, number> = {};
for (const [name, r, c, spec, tr] of fp8Ops) {
  const x = new CudaTensor([r, c], big.ptr), elems = r * c;
  const row: Record<string, unknown> = { name, rows: r, cols: c, transpose: tr, spec };
  for (const [label, qk, gm] of fp8Modes) {
    be.setQuantKernels(qk);
    be.fp8.mode = gm;
    const med = medianQuantize(x, r, c, spec, tr);
    const kernels = med.kernels.map((q) => ({ ...q, gbs: kernelBytes(q.name, elems, gm === "tensor-cores") / (q.ms / 1000) / 1e9 }));
    row[label] = { ms: med.total, path: be.fp8.kernelPath(spec, r, c, tr).reason, kernels };
    fp8StepMs[label] = (fp8StepMs[label] ?? 0) + fp8Blocks * med.total;
  }
  be.flushChecks();
  fp8Rows.push(row);
  const fmt = (m: string) => {
    const v = row[m] as { ms: number; kernels: { name: string; ms: number; gbs: number }[] };
    return `${v.ms.toFixed(3)} ms [${v.kernels.map((q) => `${q.name} ${q.ms.toFixed(3)} ms ${q.gbs.toFixed(0)} GB/s ${((100 * q.gbs) / copyGBs).toFixed(0)}%`).join(", ")}]`;
  };
  process.stderr.write(`  fp8 ${name} (${r}x${c}${tr ? "ᵀ" : ""}): ${fp8Modes.map(([l]) => `${l} ${fmt(l)}`).join("; ")}\n`);
}
be.setQuantKernels("fast");
be.fp8.mode = "tensor-cores";
const fp8Cell = (row: Record<string, unknown>, m: string) => {
  const v = row[m] as { ms: number; kernels: { name: string; ms: number; gbs: number }[] };
  const q = v.kernels[0];
  return `${v.ms.toFixed(3)}${v.kernels.length === 1 ? ` (${q.gbs.toFixed(0)} GB/s, ${((100 * q.gbs) / copyGBs).toFixed(0)}%)` : ""}`;
};
console.log(`\nGPT-124M FP8 operands (BT ${BT}), ms per operand (one-pass kernels: GB/s of the bytes they must move, % of the copy ceiling)`);
console.log(textTable([
  ["operand", "shape", ...fp8Modes.map(([l]) => `${l} ms`)],
  ...fp8Rows.map((g) => [g.name as string, `${g.rows}x${g.cols}${g.transpose ? "ᵀ" : ""}`, ...fp8Modes.map(([l]) => fp8Cell(g, l))]),
], [false, false, true, true, true]));
console.log(`one step's ${fp8Ops.length * fp8Blocks} FP8 operands (${fp8Blocks} blocks): ${fp8Modes.map(([l]) => `${l} ${fp8StepMs[l].toFixed(1)} ms`).join(", ")}`);
writeFileSync(new URL("./results/quantize-gpu.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), size: S, copyGBs, rows, gpt124m: { tokens: BT, blocks, stepMs, operands: gpt, pairs: { step: pairStep, rows: pairRows }, fp8: { stepMs: fp8StepMs, operands: fp8Rows } } }, null, 1) + "\n");
be.close();
