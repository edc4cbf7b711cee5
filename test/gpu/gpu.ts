/**
 * GPU test gate: GPU suites call `gpuBackend(t)`; without a usable GPU the test is skipped with
 * the reason (so CI on CPU-only machines stays green), unless FP4LM_REQUIRE_GPU=1 (`npm run
 * test:gpu`), where a missing GPU is a failure.
 */
import type { TestContext } from "node:test";
import { cudaAvailable } from "../../src/backends/cuda/libraries.ts";
import { CudaBackend } from "../../src/backends/cuda/cuda-backend.ts";

let shared: CudaBackend | undefined;

/** The shared CUDA backend, or undefined after skipping the test. */
export function gpuBackend(t: TestContext): CudaBackend | undefined {
  const a = cudaAvailable();
  if (!a.ok) {
    if (process.env.FP4LM_REQUIRE_GPU === "1") throw new Error(`FP4LM_REQUIRE_GPU=1 but no usable GPU: ${a.reason}`);
    t.skip(`no GPU: ${a.reason.split("\n")[0]}`);
    return undefined;
  }
  shared ??= new CudaBackend();
  return shared;
}

/** Seeded N(0,1) values with a few outliers (never zeros). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) + 0.5) / 2 ** 32;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
    if (i % 97 === 5) out[i] *= 12;
  }
  return out;
}

/** max |a−b| / max |b| (NaN if either holds NaN). */
export function relMaxErr(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m > 0 ? d / m : d;
}
