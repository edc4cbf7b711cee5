/**
 * One rank of a data-parallel run, as the training loop sees it (train.ts's `parallel` hook):
 * which batches it reads, which micro-batch identity it draws stochastic rounding for, how its
 * loss is scaled, and the gradient all-reduce. `DataParallel.single()` is the one-process case
 * and changes nothing.
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
 * `Communicator.allReduceMax`. ZeRO-1 (sharding the AdamW moments with reduce-scatter and
 * all-gather) is not implemented: the bindings have both collectives.
 */
import type { Backend } from "../backends/backend.ts";
import type { Batch, TokenLoader } from "../data/loader.ts";
import type { Param } from "../nn/param.ts";
import type { Communicator } from "./communicator.ts";

export class DataParallel {
  private comm: Communicator | undefined;

  constructor(
    readonly rank: number,
    readonly size: number,
    /** the CUDA device of this rank (= rank), undefined on the CPU */
    readonly deviceIndex: number | undefined,
    /** makes the communicator once the backend exists (NCCL needs the rank's device current) */
    private readonly connect: ((be: Backend) => Communicator) | undefined,
  ) {
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`rank ${rank} of ${size} is not a valid rank`);
    if (size > 1 && !connect) throw new RangeError(`${size} ranks need a communicator`);
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
   * Sum the gradients over ranks (each already scaled by lossScale) and return the step's loss,
   * the mean over the global batch of the micro-batch losses, summed in global order.
   */
  reduce(params: readonly Param[], losses: readonly number[]): number {
    const all = this.comm ? this.comm.allGather(Float64Array.from(losses)) : losses;
    // in the order the backward pass finishes them, so an overlapped version sends the first bucket first
    this.comm?.allReduceSum(params.map((p) => p.grad).reverse());
    let loss = 0;
    for (const l of all) loss += l / all.length;
    return loss;
  }

  /** Close the communicator; `failed`: abort without waiting for peers. */
  close(failed: boolean): void {
    this.comm?.close(failed);
    this.comm = undefined;
  }
}
