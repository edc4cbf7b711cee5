/**
 * GPU test gate: GPU suites call `gpuBackend(t)`; without a usable GPU the test is skipped with
 * the reason (so CI on CPU-only machines stays green), unless FP4LM_REQUIRE_GPU=1 (`npm run
 * test:gpu`), where a missing GPU is a failure.
 */
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConfig } from "../../src/train/config.ts";
import { train } from "../../src/train/train.ts";
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

/** The small GPU training run the A/B tests compare paths on (config keys for train/config.ts), in `dir`. */
export function smallRun(dir: string, recipe: string, extra: string[] = []): string[] {
  return [`outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model.dModel=128", "model.nLayers=3", "model.nHeads=2", "model.nKvHeads=1",
    "model.dFF=256", "model.seqLen=64", "batchSize=4", "steps=8", "evalEvery=4", "evalBatches=2", `recipe=${recipe}`, "device=cuda", ...extra];
}

/**
 * Trains `config` (smallRun's keys) on the GPU with the environment variable `name` unset (the
 * default path) and set to `off` (its plain twin), in a temporary folder, and requires the same
 * losses and validation losses bit for bit; the variable is restored after. Returns both runs'
 * tokens/s for the log line.
 */
export function sameTrainingWithSwitch(name: string, off: string, config: (dir: string) => string[], what: string): { on: number; off: number } {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-ab-"));
  const saved = process.env[name];
  try {
    delete process.env[name];
    const a = train(buildConfig([...config(dir), "name=default"]));
    process.env[name] = off;
    const b = train(buildConfig([...config(dir), "name=switched"]));
    assert.deepEqual(a.losses, b.losses, `${what}: losses bit for bit with ${name}=${off}`);
    assert.deepEqual(a.evals, b.evals, `${what}: validation losses bit for bit with ${name}=${off}`);
    return { on: a.tokensPerS, off: b.tokensPerS };
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
}
