/**
 * ZeRO-1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
 * Models", 2020, stage 1): the AdamW moments are sharded over the ranks; every rank keeps all FP32
 * master weights. The shards follow the gradient buckets (grad-buckets.ts): bucket b of n elements
 * (its parameters concatenated in backward order, zero-padded to N·S, S = ⌈n/N⌉) gives rank r the
 * slice [r·S, r·S + S). A step: the buckets' gradients are reduce-scattered into this rank's
 * gradient shards (during the backward pass when overlapped), the global gradient norm is the sum
 * over ranks of each rank's sum of squares over its shards, each rank applies AdamW to its slice of
 * the master weights with its moments (elementwise the same arithmetic as optimizer.ts, so the same
 * bits), and the updated slices are all-gathered bucket by bucket into every rank's weights.
 * Moments on a rank: 2·Σ_b S_b FP32 values, 1/N of the unsharded optimizer's plus padding.
 * Checkpoints keep the unsharded format: `gatherMoments` (every rank calls it; rank 0 writes) and
 * `loadMoments` (every rank takes its slices of the full arrays), so a run resumes on any rank count.
 * Not ZeRO-2/3 (gradients and weights stay whole on every rank).
 */
import type { Backend, Tensor } from "../backends/backend.ts";
import { CpuTensor } from "../backends/cpu/cpu-backend.ts";
import { CudaTensor } from "../backends/cuda/cuda-backend.ts";
import type { Param } from "../nn/param.ts";
import { clipFactor, type AdamWConfig } from "../optim/adamw.ts";
import { shardElements, type Communicator } from "./communicator.ts";
import type { GradBuckets } from "./grad-buckets.ts";

/** Elements [offset, offset + length) of a CPU or CUDA tensor, as a tensor of that backend (no copy). */
export function tensorView(t: Tensor, offset: number, length: number): Tensor {
  if (offset < 0 || length < 0 || offset + length > t.size) throw new RangeError(`view [${offset}, ${offset + length}) of a ${t.size}-element tensor`);
  if (t instanceof CpuTensor) return new CpuTensor([length], t.data.subarray(offset, offset + length));
  if (t instanceof CudaTensor) return new CudaTensor([length], t.ptr + BigInt(offset * 4));
  throw new RangeError("tensorView: not a CPU or CUDA tensor");
}

/** Where this rank's slice of bucket `bucket` meets parameter `index`: elements [offset, offset + length) of it, at `at` in the shard. */
export interface Segment {
  bucket: number;
  /** the parameter's index in model.params */
  index: number;
  offset: number;
  length: number;
  at: number;
}

/** The segments of rank r's slices, bucket by bucket, each bucket's parameters in its (backward) order. */
export function shardSegments(plan: GradBuckets, params: readonly Param[], size: number, rank: number): { S: number[]; segments: Segment[] } {
  const indexOf = new Map(params.map((p, i) => [p, i]));
  const S: number[] = [], segments: Segment[] = [];
  plan.buckets.forEach((ps, b) => {
    const s = shardElements(plan.size(b), size), lo = rank * s, hi = lo + s;
    S.push(s);
    let o = 0;
    for (const p of ps) {
      const a = Math.max(lo, o), e = Math.min(hi, o + p.grad.size);
      if (a < e) segments.push({ bucket: b, index: indexOf.get(p)!, offset: a - o, length: e - a, at: a - lo });
      o += p.grad.size;
    }
  });
  return { S, segments };
}

export class Zero1Optimizer {
  /** updates applied so far (AdamW bias correction) */
  t = 0;
  /** per bucket: this rank's slice of the summed gradients, and of the two moments (S_b each) */
  readonly gradShards: Tensor[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private readonly S: number[];
  private readonly segments: Segment[];

  constructor(
    private readonly be: Backend,
    readonly params: Param[],
    readonly cfg: AdamWConfig,
    private readonly comm: Communicator,
    private readonly plan: GradBuckets,
  ) {
    ({ S: this.S, segments: this.segments } = shardSegments(plan, params, comm.size, comm.rank));
    this.gradShards = this.S.map((s) => be.alloc([s]));
    this.m = this.S.map((s) => be.alloc([s]));
    this.v = this.S.map((s) => be.alloc([s]));
  }

  /** FP32 values of AdamW moments this rank holds, and what one unsharded optimizer holds. */
  momentElements(): { here: number; unsharded: number } {
    return { here: 2 * this.S.reduce((a, b) => a + b, 0), unsharded: 2 * this.params.reduce((a, p) => a + p.grad.size, 0) };
  }

  private views(of: Tensor[], s: Segment): Tensor {
    return tensorView(of[s.bucket], s.at, s.length);
  }

  /**
   * The global L2 norm of the summed gradients: each rank's sum of squares over its shards (in
   * double), summed over ranks in rank order; and the first parameter (in model order) whose
   * gradient is not finite on any rank. Every rank calls it and gets the same answer.
   */
  gradNorm(): { norm: number; nonFinite?: string } {
    const sums = this.be.sumSquaresMany(this.segments.map((s) => this.views(this.gradShards, s)));
    let local = 0, bad = Infinity;
    this.segments.forEach((s, i) => {
      if (Number.isFinite(sums[i])) local += sums[i];
      else bad = Math.min(bad, s.index);
    });
    const all = this.comm.allGather(Float64Array.of(local, bad));
    let total = 0;
    for (let r = 0; r < this.comm.size; r++) {
      total += all[2 * r];
      bad = Math.min(bad, all[2 * r + 1]);
    }
    if (bad !== Infinity) return { norm: NaN, nonFinite: this.params[bad].name };
    return { norm: Math.sqrt(total) };
  }

  /** AdamW on this rank's slices with the clip factor for `norm`, then every rank's slices gathered into all weights. */
  step(lr: number, norm: number): void {
    this.t++;
    const scale = clipFactor(norm, this.cfg.gradClip);
    for (const s of this.segments) {
      const p = this.params[s.index];
      this.be.adamw(tensorView(p.data, s.offset, s.length), this.views(this.gradShards, s), this.views(this.m, s), this.views(this.v, s), lr, this.t, this.cfg, p.decay, scale);
    }
    this.plan.buckets.forEach((ps, b) => this.comm.allGatherShards(ps.map((p) => p.data), this.S[b]));
  }

  zeroGrad(): void {
    this.be.zeroMany(this.params.map((p) => p.grad));
  }

  /** The full moments of every parameter (model order), gathered from all ranks; every rank must call it. */
  gatherMoments(): { m: Float32Array[]; v: Float32Array[] } {
    const m = this.params.map((p) => new Float32Array(p.grad.size)), v = this.params.map((p) => new Float32Array(p.grad.size));
    const N = this.comm.size;
    this.plan.buckets.forEach((ps, b) => {
      const s = this.S[b];
      const mine = new Float64Array(2 * s);
      mine.set(this.be.toArray(this.m[b]));
      mine.set(this.be.toArray(this.v[b]), s);
      const all = this.comm.allGather(mine);
      // bucket b's concatenation, from each rank's slice in rank order; then cut into its parameters
      const fullM = new Float32Array(N * s), fullV = new Float32Array(N * s);
      for (let r = 0; r < N; r++) {
        fullM.set(all.subarray(2 * s * r, 2 * s * r + s), r * s);
        fullV.set(all.subarray(2 * s * r + s, 2 * s * (r + 1)), r * s);
      }
      let o = 0;
      for (const p of ps) {
        const i = this.params.indexOf(p), n = p.grad.size;
        m[i].set(fullM.subarray(o, o + n));
        v[i].set(fullV.subarray(o, o + n));
        o += n;
      }
    });
    return { m, v };
  }

  /** Take this rank's slices of the full moments (model order, as gatherMoments returns them). */
  loadMoments(m: readonly Float32Array[], v: readonly Float32Array[]): void {
    const hostM = this.S.map((s) => new Float32Array(s)), hostV = this.S.map((s) => new Float32Array(s));
    for (const s of this.segments) {
      hostM[s.bucket].set(m[s.index].subarray(s.offset, s.offset + s.length), s.at);
      hostV[s.bucket].set(v[s.index].subarray(s.offset, s.offset + s.length), s.at);
    }
    this.S.forEach((s, b) => {
      this.be.copy(this.m[b], this.be.fromArray(hostM[b], [s]));
      this.be.copy(this.v[b], this.be.fromArray(hostV[b], [s]));
    });
  }
}
