/**
 * The whole-model gradient check of the model tests (test/train.test.ts, test/hybrid.test.ts): after
 * one forward + backward on a CPU model, ∇L·d from the analytic gradients along a seeded random
 * direction d over every parameter, and L(θ + h·d) for finite differences along it.
 */
import type { Tokens } from "../src/backends/backend.ts";
import type { CpuTensor } from "../src/backends/cpu/cpu-backend.ts";
import type { Model } from "../src/nn/create-model.ts";
import { lcgTokens } from "./random.ts";

export function directionalCheck(model: Model, x: Tokens, y: Tokens): { analytic: number; lossAt: (h: number) => number } {
  model.step(x, y, true);
  let analytic = 0;
  const dirs = model.params.map((p, i) => {
    const d = Float32Array.from(lcgTokens(p.data.size, 2001, 100 + i), (v) => (v - 1000) / 1000);
    const g = (p.grad as CpuTensor).data;
    for (let j = 0; j < d.length; j++) analytic += g[j] * d[j];
    return d;
  });
  const base = model.params.map((p) => Float32Array.from((p.data as CpuTensor).data));
  const lossAt = (h: number) => {
    model.params.forEach((p, i) => {
      const w = (p.data as CpuTensor).data;
      for (let j = 0; j < w.length; j++) w[j] = base[i][j] + h * dirs[i][j];
    });
    return model.step(x, y, false);
  };
  return { analytic, lossAt };
}
