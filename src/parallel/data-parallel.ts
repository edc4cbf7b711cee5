/**
 * One rank of a data-parallel run, as the training loop sees it (train.ts's `parallel` hook):
 * which batches it reads, which micro-batch identity it draws stochastic rounding for, how its
 * loss is scaled, the optimizer, and the gradient exchange. `DataParallel.single()` is the
 * one-process case and changes nothing.
 *
 * N ranks × A accumulation steps ≡ 1 rank × N·A: within a step, rank r's micro-batch m is the
 * global micro-batch j = r·A + m. It reads the j-th batch of the step (every rank moves its
 * loader over all N·A batches and reads only its own, so the loader position is the same on every
 * rank and independent of N: a checkpoint resumes with any N that keeps N·A), it draws the
 * stochastic-rounding streams of micro-batch j (ctx.micro = j), and its loss is scaled by
 * 1/(N·A), the scale the 1-rank run uses, so the all-reduced sum of gradients is the mean over
 * the global batch ("sum, then scale", with the scale applied where the 1-rank run applies it).
 * The logged loss is Σ_j loss_j/(N·A) over the gathered micro-batch losses in global order, as
 * the 1-rank loop sums it. What differs from 1 rank: the 1-rank run adds micro-batch j's weight
 * gradient onto the running sum inside its GEMM (in double, rounded once), N ranks round each
 * rank's sum to FP32 and add those; so from the second step on losses agree to rounding, not bits.
 * Quantization telemetry (nn/telemetry.ts) measures the step's micro-batch 0, rank 0's first: it
 * is written once, with the 1-rank run's values.
 *
 * amax: every rank holds the full FP32 master weights, identical after the broadcast at start
 * and after every step (same reduced gradients, same update), so each weight's per-tensor amax
 * is already the same on all ranks. Activations and gradients are quantized per micro-batch with
 * their own amax, exactly as the 1-rank run quantizes each of its micro-batches. A tensor split
 * across ranks (tensor or sequence parallelism, not done here) would need the global amax:
 * `Communicator.allReduceMax`.
 *
 * The exchange (ParallelConfig). Gradients go in buckets of ≤ bucketMB (grad-buckets.ts), in the
 * order the backward pass finishes them. With `overlap` (the default) the last micro-batch's
 * backward pass calls `gradsReady` after the head, the final norm, each block and the embedding,
 * and each bucket whose gradients are all final goes to the communicator at once: NCCL all-reduces
 * it on a second stream that waits on an event of the compute stream, while the backward pass goes
 * on; `reduce` sends what is left, then `flush` makes the compute stream wait for the second one
 * before the norm and the optimizer. Without overlap (`--parallel.overlap=false`, the plain twin)
 * one bucketed all-reduce runs after the backward pass on the compute stream. Summation is
 * elementwise, so both give the same bits (file communicator: always, rank order; NCCL with 2
 * ranks: one addition per element). With `zero1` the buckets are reduce-scattered instead and the
 * optimizer is zero1.ts's (AdamW moments sharded, weights all-gathered after the update).
 * Where it is tested: on CPU ranks (test/parallel.test.ts: overlapped and ZeRO-1 = plain bit for
 * bit, ZeRO-1 resume across rank counts) and on the fake NCCL (packing, padding, stream-ordering
 * calls); the one-GPU and two-GPU NCCL tests of both (test/gpu/nccl.gpu.test.ts) have not run yet.
 */
import type { Backend } from "../backends/backend.ts";
import type { Batch, TokenLoader } from "../data/loader.ts";
import type { Param } from "../nn/param.ts";
import type { AdamWConfig } from "../optim/adamw.ts";
import { Optimizer } from "../optim/optimizer.ts";
import type { ParallelConfig } from "../train/config.ts";
import { DEFAULT_BUCKET_BYTES, type Communicator } from "./communicator.ts";
import { GradBuckets } from "./grad-buckets.ts";
import { Zero1Optimizer } from "./zero1.ts";

/** Called during the backward pass with parameters whose gradients are now final (LanguageModel.step). */
export type GradsReady = (params: readonly Param[]) => void;

export class DataParallel {
  private comm: Communicator | undefined;
  readonly options: ParallelConfig;
  /** the buckets of the overlapped or ZeRO-1 exchange (undefined: the plain all-reduce after the backward pass) */
  private plan: GradBuckets | undefined;
  private zero: Zero1Optimizer | undefined;

  constructor(
    readonly rank: number,
    readonly size: number,
    /** the CUDA device of this rank (= rank), undefined on the CPU */
    readonly deviceIndex: number | undefined,
    /** makes the communicator once the backend exists (NCCL needs the rank's device current) */
    private readonly connect: ((be: Backend) => Communicator) | undefined,
    options: Partial<ParallelConfig> = {},
  ) {
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`rank ${rank} of ${size} is not a valid rank`);
    if (size > 1 && !connect) throw new RangeError(`${size} ranks need a communicator`);
    this.options = { overlap: true, zero1: false, bucketMB: DEFAULT_BUCKET_BYTES / 2 ** 20, ...options };
  }
  /** One process, no communication. */
  static single(): DataParallel {
    return new DataParallel(0, 1, undefined, undefined);
  }

  /** Rank 0 logs, evaluates and writes metrics and checkpoints. */
  get leader(): boolean {
    return this.rank === 0;
  }

  /** Connect to the peers once the backend exists; the leader logs how. */
  attach(be: Backend, log: (s: string) => void): void {
    if (!this.connect) return;
    this.comm = this.connect(be);
    log(`data parallel: ${this.size} ranks, ${this.comm.description}`);
  }

  /** The global micro-batch index of this rank's micro-batch m of A. */
  micro(m: number, A: number): number {
    return this.rank * A + m;
  }

  /** The gradient scale of each micro-batch: 1 / (global micro-batches per step). */
  lossScale(A: number): number {
    return 1 / (this.size * A);
  }

  /** This rank's micro-batch m of A, stepping over the peers' batches. */
  batch(loader: TokenLoader, m: number, A: number): Batch {
    if (m === 0) loader.skip(this.rank * A);
    const b = loader.next();
    if (m === A - 1) loader.skip((this.size - 1 - this.rank) * A);
    return b;
  }

  /** All ranks' parameters := rank 0's (at start, after init or resume). */
  syncParams(params: readonly Param[]): void {
    this.comm?.broadcast(params.map((p) => p.data), 0);
  }

  /**
   * The optimizer: AdamW over all parameters (optimizer.ts), or with --parallel.zero1 and a
   * communicator, ZeRO-1's sharded one (zero1.ts). Makes the gradient buckets when the exchange
   * uses them (overlap or ZeRO-1); call after `attach`.
   */
  optimizer(be: Backend, params: Param[], cfg: AdamWConfig, log: (s: string) => void = () => {}): Optimizer | Zero1Optimizer {
    const comm = this.comm;
    if (!comm || !(this.options.overlap || this.options.zero1)) return new Optimizer(be, params, cfg);
    this.plan = new GradBuckets(params, Math.max(1, Math.floor((this.options.bucketMB * 2 ** 20) / 4)));
    const how = `${this.plan.buckets.length} gradient bucket${this.plan.buckets.length > 1 ? "s" : ""} of ≤ ${this.options.bucketMB} MiB, ${this.options.overlap ? "each sent as soon as its gradients are final in the backward pass" : "sent after the backward pass"}`;
    if (!this.options.zero1) {
      log(`data parallel: ${how}`);
      return new Optimizer(be, params, cfg);
    }
    this.zero = new Zero1Optimizer(be, params, cfg, comm, this.plan);
    const { here, unsharded } = this.zero.momentElements();
    log(`data parallel: ZeRO-1, ${how}; AdamW moments ${(here * 4 / 2 ** 20).toFixed(2)} MiB on each rank (unsharded ${(unsharded * 4 / 2 ** 20).toFixed(2)} MiB; 1/${this.size} is ${(unsharded * 4 / 2 ** 20 / this.size).toFixed(2)})`);
    return this.zero;
  }

  /**
   * The backward pass's hook for this rank's micro-batch m of A: on the last one, with
   * --parallel.overlap, each bucket goes to the communicator as soon as its gradients are final.
   */
  gradsReady(m: number, A: number): GradsReady | undefined {
    const plan = this.plan;
    if (!plan || !this.options.overlap || m !== A - 1) return undefined;
    return (params) => { for (const b of plan.ready(params)) this.send(b); };
  }

  private send(b: number): void {
    const grads = this.plan!.buckets[b].map((p) => p.grad);
    if (this.zero) this.comm!.reduceScatterSumAsync(grads, this.zero.gradShards[b]);
    else this.comm!.allReduceSumAsync(grads);
  }

  /**
   * Sum the gradients over ranks (each already scaled by lossScale; ZeRO-1: each rank's shards
   * of the sum) and return the step's loss, the mean over the global batch of the micro-batch
   * losses, summed in global order: reduceGradients, then reduceLoss.
   */
  reduce(params: readonly Param[], losses: readonly number[]): number {
    this.reduceGradients(params);
    return this.reduceLoss(losses);
  }

  /** Sum the gradients over ranks (ZeRO-1: each rank's shards of the sum); nothing on one rank. */
  reduceGradients(params: readonly Param[]): void {
    if (this.comm && this.plan) {
      // the buckets the backward pass has not sent (all of them without overlap), then wait for every one
      for (const b of this.plan.rest()) this.send(b);
      this.comm.flush();
    } else if (this.comm) {
      // in the order the backward pass finishes them: the same buckets as GradBuckets
      this.comm.allReduceSum(params.map((p) => p.grad).reverse());
    }
  }

  /** The step's loss: the mean over the global batch of the micro-batch losses, summed in global order. */
  reduceLoss(losses: readonly number[]): number {
    const all: ArrayLike<number> = this.comm ? this.comm.allGather(Float64Array.from(losses)) : losses;
    let loss = 0;
    for (let i = 0; i < all.length; i++) loss += all[i] / all.length;
    return loss;
  }

  /** Close the communicator; `failed`: abort without waiting for peers. */
  close(failed: boolean): void {
    this.comm?.close(failed);
    this.comm = undefined;
  }
}
