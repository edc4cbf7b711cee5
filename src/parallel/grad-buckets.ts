/**
 * The gradient buckets of a data-parallel step: the parameters in the order the backward pass
 * finishes them (head, final norm, the blocks from the last, the embedding: the reverse of
 * `model.params`), cut into consecutive buckets of at most `cap` elements (communicator.ts's
 * `buckets`, so the same cut as the plain all-reduce). During the last micro-batch's backward,
 * `ready` is told which parameters' gradients are final and answers the buckets that have just
 * become complete, in order: a bucket is handed to the communicator only when every bucket before
 * it has been, so all ranks issue the same collectives in the same order.
 * Not the communication itself (data-parallel.ts starts it) and not ZeRO-1's shards (zero1.ts).
 */
import type { Param } from "../nn/param.ts";
import { buckets } from "./communicator.ts";

export class GradBuckets {
  /** parameters in backward order */
  readonly order: Param[];
  /** each bucket: its parameters, in backward order */
  readonly buckets: Param[][];
  private readonly bucketOf: Map<Param, number>;
  private missing: number[];
  private next = 0;

  constructor(params: readonly Param[], cap: number) {
    this.order = [...params].reverse();
    this.buckets = buckets(this.order.map((p) => p.grad.size), cap).map((b) => b.map((i) => this.order[i]));
    this.bucketOf = new Map(this.buckets.flatMap((b, i) => b.map((p) => [p, i] as const)));
    this.missing = this.buckets.map((b) => b.length);
  }

  /** Elements in bucket b. */
  size(b: number): number {
    return this.buckets[b].reduce((s, p) => s + p.grad.size, 0);
  }

  /** These parameters' gradients are final: the buckets that are now complete and next in line. */
  ready(params: readonly Param[]): number[] {
    for (const p of params) {
      const b = this.bucketOf.get(p);
      if (b === undefined) throw new RangeError(`gradient bucket: ${p.name} is not a parameter of this model`);
      this.missing[b]--;
    }
    const out: number[] = [];
    while (this.next < this.buckets.length && this.missing[this.next] === 0) out.push(this.next++);
    return out;
  }

  /** The buckets not handed over yet (all of them when nothing was overlapped); starts the next step. */
  rest(): number[] {
    const out: number[] = [];
    while (this.next < this.buckets.length) out.push(this.next++);
    this.next = 0;
    this.missing = this.buckets.map((b) => b.length);
    return out;
  }
}
