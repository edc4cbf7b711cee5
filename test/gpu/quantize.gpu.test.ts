/**
 * GPU quantizers against the CPU oracle, byte for byte: NVFP4 (rowwise, columnwise, 16x16, RHT16,
 * SR with Philox), MXFP4 (floor, rceil, RHT32, SR), FP8 (per tensor, 1x128, 128x128), BF16, on
 * random inputs of many shapes, plus the shared vectors; and the NaN error naming the element.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gpuBackend, randn, relMaxErr } from "./gpu.ts";
import { quantizeNVFP4 } from "../../src/quant/nvfp4.ts";
import { quantizeMXFP4 } from "../../src/quant/mxfp4.ts";
import { quantizeFP8 } from "../../src/quant/fp8.ts";
import { transpose } from "../../src/quant/tensor-checks.ts";
import { mixIds, quantizeOperand, rhtSigns, type OperandStream } from "../../src/recipes/quantize-operand.ts";
import type { OperandSpec } from "../../src/recipes/operand.ts";
import { NonFiniteError } from "../../src/errors.ts";
import { f32s, loadVector, toHex } from "../vector-files.ts";
import type { CudaBackend, CudaOperand } from "../../src/backends/cuda/cuda-backend.ts";

const SHAPES: [number, number][] = [[32, 64], [64, 128], [32, 96], [128, 256], [256, 160], [96, 512]];
// (every dimension a multiple of 32: each shape is quantized in both orientations, MXFP4 included)
const SPECS: OperandSpec[] = [
  { format: "nvfp4", block: "1x16", rounding: "rtn" },
  { format: "nvfp4", block: "16x16", rounding: "rtn" },
  { format: "nvfp4", block: "1x16", rounding: "sr" },
  { format: "nvfp4", block: "1x16", rounding: "rtn", rht: { size: 16, signs: "fixed" } },
  { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "per-tensor" } },
  { format: "mxfp4", block: "1x32", rounding: "rtn", mxScale: "floor" },
  { format: "mxfp4", block: "1x32", rounding: "sr", mxScale: "rceil", rht: { size: 32, signs: "fixed" } },
  { format: "fp8", block: "tensor", rounding: "rtn", fp8: "e4m3" },
  { format: "fp8", block: "1x128", rounding: "rtn", fp8: "e4m3" },
  { format: "fp8", block: "128x128", rounding: "rtn", fp8: "e5m2" },
  { format: "bf16", rounding: "rtn" },
];

function download(be: CudaBackend, op: CudaOperand): Float32Array {
  return be.operandValues(op);
}

/** The CPU's bytes for the same operand (what quantizeOperand quantizes, before dequantizing). */
function cpuBytes(x: Float32Array, rows: number, cols: number, spec: OperandSpec, tr: boolean, st: OperandStream) {
  const src = tr ? transpose(x, [rows, cols]) : x;
  const shape: [number, number] = tr ? [cols, rows] : [rows, cols];
  const tensorId = mixIds(st.gemmId, st.slot + 1);
  const rht = spec.rht ? { size: spec.rht.size, signs: rhtSigns(spec.rht, st) } : undefined;
  if (spec.format === "nvfp4") {
    const q = quantizeNVFP4(src, shape, { tile2d: spec.block === "16x16", rounding: spec.rounding, seed: st.seed, tensorId, rht });
    return { packed: q.packed, scales: q.scales, amax: q.amax };
  }
  if (spec.format === "mxfp4") {
    const q = quantizeMXFP4(src, shape, { scaleRounding: spec.mxScale, rounding: spec.rounding, seed: st.seed, tensorId, rht });
    return { packed: q.packed, scales: q.scales };
  }
  if (spec.format === "fp8") {
    const q = quantizeFP8(src, shape, { format: spec.fp8, scaling: spec.block as "tensor" | "1x128" | "128x128" });
    return { packed: q.data, scaleInv: q.scaleInv };
  }
  return {};
}

test("quantizers: GPU bytes = CPU bytes for every format, orientation and shape", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  let checked = 0;
  SHAPES.forEach(([rows, cols], si) => {
    const x = randn(rows * cols, 100 + si, si % 2 ? 0.01 : 3);
    const dx = be.fromArray(x, [rows, cols]);
    for (const [k, spec] of SPECS.entries()) {
      for (const tr of [false, true]) {
        const st: OperandStream = { seed: 1234 + si, gemmId: 77 * k + si, slot: tr ? 1 : 0 };
        const label = `${JSON.stringify(spec)} [${rows},${cols}]${tr ? "ᵀ" : ""}`;
        const g = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
        const c = cpuBytes(x, rows, cols, spec, tr, st);
        if (c.packed) assert.equal(toHex(g.packed!), toHex(c.packed), `${label}: codes`);
        if (c.scales) assert.equal(toHex(g.scales!), toHex(c.scales), `${label}: scales`);
        if (c.amax !== undefined) assert.ok(Object.is(g.amax, c.amax), `${label}: amax ${g.amax} vs ${c.amax}`);
        if (c.scaleInv) assert.deepEqual([...g.scaleInv!], [...c.scaleInv], `${label}: scale_inv`);
        const op = download(be, g.operand);
        const want = quantizeOperand(x, rows, cols, spec, tr, st, "x").values;
        assert.deepEqual(new Uint32Array(op.buffer), new Uint32Array(want.buffer), `${label}: GEMM operand`);
        be.releaseOperand(g.operand);
        checked++;
      }
    }
  });
  assert.equal(checked, SHAPES.length * SPECS.length * 2);
});

test("quantizers: the shared NVFP4 vectors (RN, 1x16 and 16x16, RHT Wgrad operand) on the GPU", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const st: OperandStream = { seed: 0, gemmId: 0, slot: 0 };
  const cases: [string, { x: (number | string)[]; shape: [number, number]; packed: string; scales: string }, OperandSpec, boolean][] = [];
  const r = loadVector("nvfp4_1x16_random.json");
  cases.push(["1x16 rowwise", r.rowwise, { format: "nvfp4", block: "1x16", rounding: "rtn" }, false]);
  cases.push(["1x16 columnwise", r.columnwise, { format: "nvfp4", block: "1x16", rounding: "rtn" }, false]);
  const d2 = loadVector("nvfp4_2d_16x16.json");
  cases.push(["16x16", d2.rowwise, { format: "nvfp4", block: "16x16", rounding: "rtn" }, false]);
  const h = loadVector("nvfp4_1x16_hand.json");
  cases.push(["hand", h.case, { format: "nvfp4", block: "1x16", rounding: "rtn" }, false]);
  for (const c of loadVector("nvfp4_1x16_edge.json").cases) {
    if (c.x.some((v: number | string) => v === "Infinity" || v === "-Infinity" || v === "NaN")) continue;
    cases.push([`edge ${c.name}`, c, { format: "nvfp4", block: "1x16", rounding: "rtn" }, false]);
  }
  const w = loadVector("nvfp4_rht_wgrad.json");
  const X = { x: w.X.x, shape: w.X.shape as [number, number], packed: w.X_columnwise_rht.packed, scales: w.X_columnwise_rht.scales };
  cases.push(["RHT Wgrad Xᵀ", X, { format: "nvfp4", block: "1x16", rounding: "rtn", rht: { size: 16, signs: "fixed" } }, true]);
  for (const [name, c, spec, tr] of cases) {
    const [rows, cols] = c.shape;
    const g = be.quantizeBytes(be.fromArray(f32s(c.x), [rows, cols]), rows, cols, spec, tr, st, name);
    assert.equal(toHex(g.packed!), c.packed, `${name}: packed`);
    assert.equal(toHex(g.scales!), c.scales, `${name}: scales`);
  }
  assert.ok(cases.length >= 12);
});

test("quantizers: NaN/Inf on the GPU raise the CPU's NonFiniteError with the element", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const x = randn(64 * 32, 9);
  x[5 * 32 + 7] = Infinity;
  x[9 * 32 + 1] = NaN;
  const dx = be.fromArray(x, [64, 32]);
  assert.throws(
    () => {
      // queued: the error comes where the backend synchronises anyway (loss, gradient norm)
      be.releaseOperand(be.quantize(dx, 64, 32, { format: "nvfp4", block: "1x16", rounding: "rtn" }, false, { seed: 0, gemmId: 0, slot: 0 }, "blocks.0.mlp.fc1.fprop.input"));
      be.flushChecks();
    },
    (e: Error) => e instanceof NonFiniteError && /blocks\.0\.mlp\.fc1\.fprop\.input: element \[5, 7\] \(flat index 167\) is Infinity/.test(e.message),
  );
});

test("quantizers: fast NVFP4 kernels (quantize-fast.cu) = plain kernels (quantize.cu), byte for byte, GPT-sized and edge shapes", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const mode = be.quantKernelMode;
  const nv: OperandSpec[] = SPECS.filter((s) => s.format === "nvfp4");
  nv.push({ format: "nvfp4", block: "16x16", rounding: "sr", rht: { size: 8, signs: "per-tensor" } });
  // (rows, cols): GPT-124M's activations at 1024 tokens (768, the q/k/v width 1280, 3072), partial tiles of
  // both kernels (784 = 3·256 + 16 columns; 1040 rows = 16 bands of 64 + 16), narrow and odd widths
  const shapes: [number, number][] = [[1024, 768], [1024, 1280], [512, 3072], [1040, 784], [48, 36], [64, 18]];
  let fastRuns = 0;
  try {
    shapes.forEach(([rows, cols], si) => {
      const x = randn(rows * cols, 500 + si, si % 2 ? 0.02 : 4);
      const dx = be.fromArray(x, [rows, cols]);
      nv.forEach((spec, k) => {
        for (const tr of [false, true]) {
          const [R, C] = tr ? [cols, rows] : [rows, cols];
          if (C % 16 || (spec.block === "16x16" && R % 16) || (spec.rht && C % spec.rht.size)) continue;
          const st: OperandStream = { seed: 99 + si, gemmId: 13 * k + si, slot: tr ? 1 : 0 };
          const label = `${JSON.stringify(spec)} [${rows},${cols}]${tr ? "ᵀ" : ""}`;
          be.setQuantKernels("plain");
          const p = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
          be.setQuantKernels("fast");
          if (be.nvfp4KernelPath(spec, rows, cols, tr).fast) fastRuns++;
          const f = be.quantizeBytes(dx, rows, cols, spec, tr, st, "x");
          assert.ok(Object.is(f.amax, p.amax), `${label}: amax ${f.amax} vs ${p.amax}`);
          assert.ok(Buffer.from(f.packed!).equals(Buffer.from(p.packed!)), `${label}: codes`);
          assert.ok(Buffer.from(f.scales!).equals(Buffer.from(p.scales!)), `${label}: scales`);
          const fo = download(be, f.operand), po = download(be, p.operand);
          assert.ok(Buffer.from(fo.buffer).equals(Buffer.from(po.buffer)), `${label}: GEMM operand`);
          be.releaseOperand(f.operand);
          be.releaseOperand(p.operand);
        }
      });
    });
  } finally {
    be.setQuantKernels(mode);
  }
  assert.equal(be.nvfp4KernelPath({ ...nv[0], rht: { size: 32, signs: "fixed" } }, 64, 32, true).fast, false);
  assert.ok(fastRuns > 40, `${fastRuns} operands took the fast kernels`);
});

test("NVFP4 GEMM: alpha read by cuBLASLt from device memory = the plain alpha pass after the GEMM", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const mode = be.quantKernelMode;
  const M = 256, N = 384, K = 768;
  const spec: OperandSpec = { format: "nvfp4", block: "1x16", rounding: "rtn" };
  const a = be.fromArray(randn(M * K, 71, 3), [M, K]), b = be.fromArray(randn(N * K, 72, 0.05), [N, K]);
  const c0 = randn(M * N, 73);
  const out: Float32Array[] = [];
  try {
    for (const m of ["plain", "fast"] as const) {
      be.setQuantKernels(m);
      for (const accumulate of [false, true]) {
        const c = be.fromArray(c0, [M, N]);
        be.gemm(c, be.quantize(a, M, K, spec, false, { seed: 1, gemmId: 2, slot: 0 }, "a"), be.quantize(b, N, K, spec, false, { seed: 1, gemmId: 2, slot: 1 }, "b"), accumulate);
        out.push(be.toArray(c));
      }
    }
  } finally {
    be.setQuantKernels(mode);
  }
  const [plain0, plain1, fast0, fast1] = out;
  assert.ok(relMaxErr(fast0, plain0) <= 1e-6, `beta 0: ${relMaxErr(fast0, plain0)}`);
  assert.ok(relMaxErr(fast1, plain1) <= 1e-6, `beta 1: ${relMaxErr(fast1, plain1)}`);
  assert.ok(relMaxErr(plain1, plain0) > 1e-3, "accumulate added C");
});
