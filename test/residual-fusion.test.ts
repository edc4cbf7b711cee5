/**
 * Residual connections fused into the ops next to them, on the CPU oracle: forward, Backend.gemm's
 * addend (Linear.forward's `residual`): c = A·Bᵀ + addend gives gemm-then-accumulate's bits for BF16
 * and NVFP4 operands (alpha ≠ 1), bad addends refused; backward, rmsnormBackward's `residual`
 * (RMSNorm.backward): dx = residual + ∂L/∂x with add's bits, dx's own storage allowed as the
 * residual, and the BF16 operand filled. (The GPU: test/gpu/ops-fast.gpu.test.ts; whole training
 * runs with both: test/bf16-operands.test.ts, test/shared-tiles.test.ts, test/pair-quant.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend } from "../src/backends/cpu/cpu-backend.ts";
import type { OperandSpec } from "../src/recipes/operand.ts";

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

test("CPU gemm with an addend = gemm then accumulate, bit for bit (bf16 and nvfp4 operands); addends that alias c, with accumulate or of the wrong size are refused", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const M = 32, N = 48, K = 64;
    for (const spec of [{ format: "bf16", rounding: "rtn" }, { format: "nvfp4", block: "1x16", rounding: "rtn" }] as OperandSpec[]) {
      const run = (fused: boolean) => {
        const a = be.quantize(be.fromArray(randn(M * K, 1), [M, K]), M, K, spec, false, { seed: 1, gemmId: 1, slot: 0 }, "x");
        const b = be.quantize(be.fromArray(randn(N * K, 2), [N, K]), N, K, spec, false, { seed: 1, gemmId: 1, slot: 1 }, "w");
        const c = be.alloc([M, N]), r = be.fromArray(randn(M * N, 3), [M, N]);
        if (fused) be.gemm(c, a, b, false, r);
        else { be.gemm(c, a, b, false); be.accumulate(c, r); }
        return c.data;
      };
      const fused = run(true), apart = run(false);
      assert.deepEqual(bits(fused), bits(apart), spec.format);
    }
    const s: OperandSpec = { format: "bf16", rounding: "rtn" };
    const op = () => be.quantize(be.alloc([4, 16]), 4, 16, s, false, { seed: 1, gemmId: 1, slot: 0 }, "z");
    const c = be.alloc([4, 4]);
    assert.throws(() => be.gemm(c, op(), op(), true, be.alloc([4, 4])), /addend with accumulate/);
    assert.throws(() => be.gemm(c, op(), op(), false, c), /must not be c/);
    assert.throws(() => be.gemm(c, op(), op(), false, be.alloc([4, 5])), /the addend has 20 elements, C 16/);
  } finally {
    be.close();
  }
});

test("CPU rmsnormBackward with the residual's gradient = rmsnormBackward then add, bit for bit; the residual may be dx itself; its BF16 operand filled", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const N = 6, C = 32;
    const x = be.fromArray(randn(N * C, 4), [N, C]), w = be.fromArray(randn(C, 5), [C]), rstd = be.alloc([N]), dout = be.fromArray(randn(N * C, 6), [N, C]);
    be.rmsnormForward(be.alloc([N, C]), rstd, x, w, N, C, 1e-5);
    const res = randn(N * C, 7);
    const g = be.alloc([N, C]), dw1 = be.alloc([C]);
    be.rmsnormBackward(g, dw1, dout, x, w, rstd, N, C);
    const apart = be.alloc([N, C]);
    be.add(apart, be.fromArray(res, [N, C]), g);
    const fused = be.alloc([N, C]), dw2 = be.alloc([C]);
    const op = be.bf16Operand(N, C, { format: "bf16", rounding: "rtn" }, "r.dgrad.gradOutput")!;
    be.rmsnormBackward(fused, dw2, dout, x, w, rstd, N, C, be.fromArray(res, [N, C]), op);
    assert.deepEqual(bits(fused.data), bits(apart.data));
    assert.deepEqual(bits(dw2.data), bits(dw1.data));
    assert.equal(op.pending, undefined, "the operand is filled");
    assert.ok(op.values.every((v, i) => Math.abs(v - apart.data[i]) <= Math.abs(apart.data[i]) * 2 ** -8), "operand = BF16 of dx");
    const inPlace = be.fromArray(res, [N, C]);
    be.rmsnormBackward(inPlace, be.alloc([C]), dout, x, w, rstd, N, C, inPlace);
    assert.deepEqual(bits(inPlace.data), bits(apart.data), "dx's own storage as the residual");
  } finally {
    be.close();
  }
});
