/**
 * The fast non-GEMM kernels (FP4LM_OPS_KERNELS=fast, the default) against their plain twins
 * (opsKernels "plain": the previous kernels) and the CPU oracle: bit-identical where the
 * per-element arithmetic is the same, within the oracle's tolerances where a reduction order changed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gpuBackend, randn, relMaxErr } from "./gpu.ts";
import { CpuBackend } from "../../src/backends/cpu/cpu-backend.ts";
import { CudaBackend } from "../../src/backends/cuda/cuda-backend.ts";
import type { Backend, Tensor } from "../../src/backends/backend.ts";

/** runs body with the shared (fast) backend, a plain-kernel backend and the CPU oracle */
function withBackends(t: Parameters<typeof gpuBackend>[0], body: (fast: CudaBackend, plain: CudaBackend, cpu: CpuBackend) => void): void {
  const fast = gpuBackend(t);
  if (!fast) return;
  const plain = new CudaBackend({ opsKernels: "plain" });
  const cpu = new CpuBackend({ threads: 1 });
  try {
    body(fast, plain, cpu);
  } finally {
    plain.close();
    cpu.close();
  }
}

const bitsEqual = (what: string, a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const i = ua.findIndex((x, j) => x !== ub[j]);
  assert.equal(i, -1, `${what}: first difference at ${i}: ${a[i]} vs ${b[i]}`);
};

test("optimizer: multi-tensor AdamW = the per-tensor kernel bit for bit; multi-tensor Σg² within the oracle's tolerance", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    // sizes: chunk boundaries (8192), tails that are not a multiple of 4, a tiny tensor, an empty one
    const shapes = [[3, 8195], [7], [768], [0], [20000], [64, 64]];
    const decay = [true, false, false, true, true, true];
    const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 };
    const data = shapes.map((s, i) => {
      const n = s.reduce((a, b) => a * b, 1);
      return { s, p: randn(n, 100 + i), g: randn(n, 200 + i), m: randn(n, 300 + i, 0.1), v: randn(n, 400 + i, 0.1).map(Math.abs) };
    });
    const state = <T extends Tensor>(be: Backend<T>) => data.map((d) => ({
      p: be.fromArray(d.p, d.s), g: be.fromArray(d.g, d.s), m: be.fromArray(d.m, d.s), v: be.fromArray(d.v, d.s),
    }));
    const f = state(fast), pl = state(plain), c = state(cpu);
    for (const step of [1, 2, 3]) {
      fast.adamwMany(f.map((x) => x.p), f.map((x) => x.g), f.map((x) => x.m), f.map((x) => x.v), decay, 1e-3, step, cfg, 0.5);
      plain.adamwMany(pl.map((x) => x.p), pl.map((x) => x.g), pl.map((x) => x.m), pl.map((x) => x.v), decay, 1e-3, step, cfg, 0.5);
      cpu.adamwMany(c.map((x) => x.p), c.map((x) => x.g), c.map((x) => x.m), c.map((x) => x.v), decay, 1e-3, step, cfg, 0.5);
    }
    f.forEach((x, i) => {
      bitsEqual(`adamw param ${i}`, fast.toArray(x.p), plain.toArray(pl[i].p));
      bitsEqual(`adamw m ${i}`, fast.toArray(x.m), plain.toArray(pl[i].m));
      bitsEqual(`adamw v ${i}`, fast.toArray(x.v), plain.toArray(pl[i].v));
      const err = relMaxErr(fast.toArray(x.p), cpu.toArray(c[i].p));
      assert.ok(err <= 1e-6, `adamw param ${i} vs CPU: ${err}`);
    });
    const sf = fast.sumSquaresMany(f.map((x) => x.g)), sp = plain.sumSquaresMany(pl.map((x) => x.g)), sc = cpu.sumSquaresMany(c.map((x) => x.g));
    sc.forEach((want, i) => {
      assert.ok(Math.abs(sf[i] - want) <= 1e-5 * want, `sumSquaresMany fast ${i}: ${sf[i]} vs CPU ${want}`);
      assert.ok(Math.abs(sp[i] - want) <= 1e-5 * want, `sumSquaresMany plain ${i}: ${sp[i]} vs CPU ${want}`);
    });
    // the table is cached per list: a second call reads the same tensors
    const again = fast.sumSquaresMany(f.map((x) => x.g));
    assert.deepEqual([...again], [...sf], "sumSquaresMany is deterministic");
    // a NaN gradient surfaces as a non-finite sum for that tensor only
    const bad = randn(9000, 7);
    bad[8500] = NaN;
    const gs = [fast.fromArray(randn(100, 8), [100]), fast.fromArray(bad, [9000])];
    const s = fast.sumSquaresMany(gs);
    assert.ok(Number.isFinite(s[0]) && Number.isNaN(s[1]), `NaN reaches its own sum: ${[...s]}`);
  });
});
