/**
 * Pick the backend a run asked for. `auto` takes CUDA when a GPU is usable and says which it
 * chose; an explicit `cuda` on a machine without one is an error, never a quiet CPU fallback.
 */
import { Fp4lmError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { CpuBackend } from "./cpu/cpu-backend.ts";

export function createBackend(cfg: { device: "cpu" | "cuda" | "auto"; threads: number }): Backend {
  if (cfg.device === "cuda") {
    throw new Fp4lmError("device=cuda: the CUDA backend is not part of this build yet; use --device=cpu");
  }
  // auto: no CUDA backend yet, so the CPU it is (announced by the run header)
  return new CpuBackend({ threads: cfg.threads > 0 ? cfg.threads : undefined }) as unknown as Backend;
}
