/**
 * GPU: quantizePair — a tensor's Dgrad dY (NVFP4 1x16, no RHT) and Wgrad dYᵀ (NVFP4 1x16, RHT16 or
 * none) from one read (nvfp4_dual_* kernels) — gives the operands of two quantize calls and of the
 * CPU oracle bit for bit (values and the tensor amaxes behind alpha), names a NaN as the first
 * operand's quantize would, and trains nvfp4 exactly like FP4LM_PAIR_QUANT=0. Skipped without a GPU.
 * (The kernels' bytes against the single kernels: the host SIMT test, scripts/test-quantize-fast.sh.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gpuBackend, randn, sameTrainingWithSwitch, smallRun } from "./gpu.ts";
import { CpuBackend } from "../../src/backends/cpu/cpu-backend.ts";
import type { CudaOperand } from "../../src/backends/cuda/cuda-backend.ts";
import { NonFiniteError } from "../../src/errors.ts";
import type { OperandSpec } from "../../src/recipes/operand.ts";

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const firstDiff = (a: Float32Array, b: Float32Array) => bits(a).findIndex((v, i) => v !== bits(b)[i]);

test("quantizePair on the GPU = two quantize calls = the CPU oracle, bit for bit (NVFP4 1x16 dY and RHT16 dYᵀ, SR and RTN, edge tiles)", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const cpu = new CpuBackend({ threads: 1 });
  try {
    const A = (rounding: "rtn" | "sr"): OperandSpec => ({ format: "nvfp4", block: "1x16", rounding });
    const B = (rounding: "rtn" | "sr", rht: boolean): OperandSpec => ({ ...A(rounding), ...(rht ? { rht: { size: 16, signs: "fixed" as const } } : {}) });
    let n = 0;
    for (const [rows, cols] of [[64, 64], [80, 144], [1040, 768], [256, 2304]]) {
      for (const [sa, sb] of [[A("sr"), B("sr", true)], [A("rtn"), B("rtn", true)], [A("rtn"), B("sr", false)]]) {
        const x = randn(rows * cols, rows + cols, 2);
        const sA = { seed: 77, gemmId: 9, slot: 0 } as const, sB = { seed: 77, gemmId: 10, slot: 0 } as const;
        const tag = `${rows}x${cols} ${sa.rounding}/${sb.rounding}${sb.rht ? " RHT16" : ""}`;
        const [pa, pb]: [CudaOperand, CudaOperand] = be.quantizePair(be.fromArray(x, [rows, cols]), rows, cols, sa, sb, sA, sB, "a", "b")!;
        const qa = be.quantize(be.fromArray(x, [rows, cols]), rows, cols, sa, false, sA, "a");
        const qb = be.quantize(be.fromArray(x, [rows, cols]), rows, cols, sb, true, sB, "b");
        const [ca, cb] = cpu.quantizePair(cpu.fromArray(x, [rows, cols]), rows, cols, sa, sb, sA, sB, "a", "b")!;
        assert.deepEqual([pa.rows, pa.cols, pb.rows, pb.cols], [rows, cols, cols, rows], tag);
        for (const [what, p, q, c] of [["dY", pa, qa, ca], ["dYᵀ", pb, qb, cb]] as const) {
          const pv = be.operandValues(p), qv = be.operandValues(q);
          assert.equal(firstDiff(pv, qv), -1, `${tag} ${what}: pair vs quantize`);
          assert.equal(firstDiff(pv, c.values), -1, `${tag} ${what}: pair vs CPU`);
        }
        // the amaxes behind the GEMM's alpha: a GEMM of the pair's operands = of the single ones
        const w = be.quantize(be.fromArray(randn(32 * cols, 5), [32, cols]), 32, cols, sa, false, { seed: 1, gemmId: 2, slot: 1 }, "w");
        const w2 = be.quantize(be.fromArray(randn(32 * cols, 5), [32, cols]), 32, cols, sa, false, { seed: 1, gemmId: 2, slot: 1 }, "w");
        const c1 = be.alloc([rows, 32]), c2 = be.alloc([rows, 32]);
        be.gemm(c1, pa, w, false);
        be.gemm(c2, qa, w2, false);
        assert.equal(firstDiff(be.toArray(c1), be.toArray(c2)), -1, `${tag}: GEMM with the pair's dY (its amax) = with quantize's`);
        for (const o of [pb, qb]) be.releaseOperand(o);
        n++;
      }
    }
    // NaN: named as the first operand's quantize names it
    const x = randn(64 * 64, 3);
    x[130] = NaN;
    assert.throws(() => {
      const ops = be.quantizePair(be.fromArray(x, [64, 64]), 64, 64, A("sr"), B("sr", true), { seed: 1, gemmId: 1, slot: 0 }, { seed: 1, gemmId: 2, slot: 0 }, "l.dgrad.gradOutput", "l.wgrad.gradOutput")!;
      ops.forEach((o) => be.releaseOperand(o));
      be.flushChecks();
    }, (e: Error) => e instanceof NonFiniteError && e.message.startsWith("l.dgrad.gradOutput: element [2, 2] (flat index 130) is NaN"));
    // pairs outside operand.ts pairable are refused (the caller quantizes each where it needs it)
    assert.equal(be.quantizePair(be.fromArray(x, [64, 64]), 64, 64, { format: "nvfp4", block: "16x16", rounding: "rtn" }, B("sr", true), { seed: 1, gemmId: 1, slot: 0 }, { seed: 1, gemmId: 2, slot: 0 }, "a", "b"), null);
    console.log(`# quantizePair = quantize × 2 = CPU on ${n} pairs`);
  } finally {
    cpu.close();
  }
});

test("nvfp4 training on the GPU: X/Xᵀ and dY/dYᵀ pairs from one read give the losses of two quantize calls bit for bit (FP4LM_PAIR_QUANT=0)", (t) => {
  if (!gpuBackend(t)) return;
  const r = sameTrainingWithSwitch("FP4LM_PAIR_QUANT", "0", (dir) => smallRun(dir, "nvfp4", ["gradAccum=2"]), "nvfp4 pairs");
  console.log(`# nvfp4 pairs = two quantizes bit for bit; tok/s ${Math.round(r.on)} vs ${Math.round(r.off)}`);
});
