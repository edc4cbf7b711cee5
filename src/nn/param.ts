/**
 * A trainable parameter: FP32 master weights and their FP32 gradient on a backend, with the
 * name checkpoints use and whether weight decay applies. Initialisation is seeded per name, so
 * a model built twice with the same seed is identical on any backend.
 */
import type { Backend, Tensor } from "../backends/backend.ts";
import { philoxUniform } from "../quant/philox.ts";
import { mixIds } from "../recipes/quantize-operand.ts";

export interface Param {
  readonly name: string;
  readonly shape: number[];
  readonly data: Tensor;
  readonly grad: Tensor;
  /** AdamW weight decay applies (matrices yes, norm gains no) */
  readonly decay: boolean;
}

/** FNV-1a of a string, for per-parameter init streams. */
function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export type Init =
  | { kind: "normal"; std: number }
  | { kind: "ones" }
  | { kind: "zeros" }
  /** U[lo, hi), then `map` (e.g. Mamba-2's A_log = log U[1, 16]) */
  | { kind: "uniform"; lo: number; hi: number; map?: (v: number) => number };

/** Values of a parameter's initialisation (N(0, std²) by Box–Muller, or uniform, from its own Philox stream). */
export function initValues(name: string, size: number, init: Init, seed: number): Float32Array {
  const out = new Float32Array(size);
  if (init.kind === "ones") return out.fill(1);
  if (init.kind === "zeros") return out;
  const u = philoxUniform(seed, mixIds(hashName(name), 0x1417), size + (size & 1));
  if (init.kind === "uniform") {
    const map = init.map ?? ((v: number) => v);
    for (let i = 0; i < size; i++) out[i] = map(init.lo + (init.hi - init.lo) * u[i]);
    return out;
  }
  for (let i = 0; i < size; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u[i])) * init.std;
    out[i] = r * Math.cos(2 * Math.PI * u[i + 1]);
    if (i + 1 < size) out[i + 1] = r * Math.sin(2 * Math.PI * u[i + 1]);
  }
  return out;
}

export function createParam(be: Backend, name: string, shape: number[], init: Init, seed: number, decay: boolean): Param {
  const size = shape.reduce((a, b) => a * b, 1);
  return { name, shape, data: be.fromArray(initValues(name, size, init, seed), shape), grad: be.alloc(shape), decay };
}
