/**
 * Pick the backend a run asked for. `auto` takes CUDA when a GPU is usable and says which it
 * chose; an explicit `cuda` on a machine without one is an error that says why, never a quiet
 * CPU fallback. `deviceIndex` picks the GPU (a data-parallel rank's own; default 0).
 */
import { Fp4lmError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { CpuBackend } from "./cpu/cpu-backend.ts";
import { CudaBackend } from "./cuda/cuda-backend.ts";
import { cudaAvailable } from "./cuda/libraries.ts";

export function createBackend(cfg: { device: "cpu" | "cuda" | "auto"; threads: number; deviceIndex?: number }, log: (s: string) => void = () => {}): Backend {
  if (cfg.device === "cuda" || cfg.device === "auto") {
    const a = cudaAvailable();
    if (a.ok) return new CudaBackend({ device: cfg.deviceIndex }) as unknown as Backend;
    if (cfg.device === "cuda") throw new Fp4lmError(`device=cuda: no usable GPU (${a.reason}); use --device=cpu or --device=auto`);
    log(`device=auto: no usable GPU (${a.reason.split(/\.\s+Searched|\n/)[0]}), training on the CPU`);
  }
  return new CpuBackend({ threads: cfg.threads > 0 ? cfg.threads : undefined }) as unknown as Backend;
}
