/**
 * Backend.gemm's addend (a residual connection added in the GEMM, Linear.forward's `residual`) on
 * the CPU oracle: c = A·Bᵀ + addend gives gemm-then-accumulate's bits for BF16 and NVFP4 operands
 * (alpha ≠ 1); bad addends are refused. (The GPU's cuBLASLt epilogue: test/gpu/ops-fast.gpu.test.ts;
 * whole training runs with the fused residual: test/bf16-operands.test.ts, test/shared-tiles.test.ts.)
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
