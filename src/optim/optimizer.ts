/**
 * The optimizer over a model's parameters on a backend: FP32 AdamW moments per parameter, the
 * global gradient norm (and the first parameter whose gradient is not finite), clipping, the
 * update, zeroing gradients, and its state for checkpoints.
 */
import type { Backend } from "../backends/backend.ts";
import type { Param } from "../nn/param.ts";
import type { Tensor } from "../backends/backend.ts";
import { clipFactor, type AdamWConfig } from "./adamw.ts";

export class Optimizer {
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** updates applied so far (AdamW bias correction) */
  t = 0;

  constructor(private readonly be: Backend, readonly params: Param[], readonly cfg: AdamWConfig) {
    this.m = params.map((p) => be.alloc(p.shape));
    this.v = params.map((p) => be.alloc(p.shape));
  }

  /** Global L2 norm of all gradients and the name of the first non-finite one, if any. */
  gradNorm(): { norm: number; nonFinite?: string } {
    const sums = this.be.sumSquaresMany(this.params.map((p) => p.grad));
    let s = 0;
    for (let i = 0; i < sums.length; i++) {
      if (!Number.isFinite(sums[i])) return { norm: NaN, nonFinite: this.params[i].name };
      s += sums[i];
    }
    return { norm: Math.sqrt(s) };
  }

  /** One AdamW update with the clip factor for `norm`. */
  step(lr: number, norm: number): void {
    this.t++;
    const scale = clipFactor(norm, this.cfg.gradClip);
    const ps = this.params;
    this.be.adamwMany(ps.map((p) => p.data), ps.map((p) => p.grad), this.m, this.v, ps.map((p) => p.decay), lr, this.t, this.cfg, scale);
  }

  zeroGrad(): void {
    this.be.zeroMany(this.params.map((p) => p.grad));
  }
}
