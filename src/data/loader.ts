/**
 * Batches of token windows from a shard (shards.ts) for training and evaluation.
 * One file, one reader; data-parallel ranks each read their share of the same stream (`skip`).
 *
 * Windows: the shard's N tokens give W = floor((N - 1) / T) non-overlapping windows; window k
 * is tokens [k·T, k·T + T + 1): inputs are its first T tokens, targets the last T (shifted by
 * one), so every token after the first is a target exactly once per epoch.
 * Order: epoch e visits all W windows in a permutation fixed by (seed, e): Fisher-Yates from
 * the top, step i drawing j uniform in [0, i] from Philox4x32-10 (key = seed, counter =
 * (floor(i/2), e, 0x10ade7, 0), words 2(i mod 2) and 2(i mod 2)+1 as a 53-bit fraction). Batches
 * take the next B windows of that stream and run on into the next epoch, so no window is
 * skipped or repeated within an epoch and a batch may straddle two epochs.
 * Position: {epoch, index} = the next window to read. `state()` saves it with everything needed
 * to reopen; `TokenLoader.restore(state)` continues with exactly the next batch.
 * Evaluation (`evalBatches`): windows 0, 1, 2, ... in file order, independent of the position.
 *
 * Method: nanoGPT/llm.c data loaders (llm.c dataloader.h shuffles its samples per epoch too).
 */
import { statSync } from "node:fs";
import { Fp4lmError, FileFormatError, UsageError } from "../errors.ts";
import { philox4x32, seedKey } from "../quant/philox.ts";
import { readShard, ShardFile } from "./shards.ts";

/** Everything needed to reopen a loader at the same place; plain JSON. */
export interface LoaderState {
  version: 1;
  file: string;
  /** token count of the shard, to detect a changed file */
  tokens: number;
  B: number;
  T: number;
  seed: number;
  shuffle: boolean;
  /** next window to read: position `index` of epoch `epoch`'s order */
  epoch: number;
  index: number;
}

/** One batch: row b of inputs/targets is one window. */
export interface Batch {
  /** (B, T) token ids */
  inputs: Int32Array;
  /** (B, T) next-token ids: targets[b, t] = inputs[b, t + 1] within the window */
  targets: Int32Array;
  B: number;
  T: number;
  /** position of the batch's first window */
  epoch: number;
  index: number;
}

export interface TokenLoaderOptions {
  /** sequences per batch */
  B: number;
  /** tokens per sequence */
  T: number;
  /** window order seed (default 0) */
  seed?: number;
  /** false: windows in file order every epoch (default true) */
  shuffle?: boolean;
  /** hold the whole shard in memory (default: when the file is ≤ 1 GiB), else read windows from disk */
  inMemory?: boolean;
}

/** Philox counter word of the loader's permutation stream. */
const ORDER_STREAM = 0x10ade7;
const IN_MEMORY_LIMIT = 1 << 30;

interface TokenSource {
  tokens: number;
  /** copy tokens [start, start + n) into out[offset..] */
  read(start: number, n: number, out: Int32Array, offset: number): void;
  close(): void;
}

function openSource(file: string, inMemory: boolean | undefined): TokenSource {
  let size: number;
  try { size = statSync(file).size; } catch (e) {
    throw new Fp4lmError(`cannot open token shard ${file}: ${(e as Error).message}`);
  }
  if (inMemory ?? size <= IN_MEMORY_LIMIT) {
    const { tokens } = readShard(file);
    return {
      tokens: tokens.length,
      read: (start, n, out, offset) => { for (let i = 0; i < n; i++) out[offset + i] = tokens[start + i]; },
      close: () => {},
    };
  }
  const f = new ShardFile(file);
  let scratch = new Uint32Array(0);
  return {
    tokens: f.header.tokens,
    read: (start, n, out, offset) => {
      if (scratch.length < n) scratch = new Uint32Array(n);
      f.read(start, n, scratch);
      for (let i = 0; i < n; i++) out[offset + i] = scratch[i];
    },
    close: () => f.close(),
  };
}

/** The permutation of [0, W) for (seed, epoch), by the rule in this file's header. */
export function windowOrder(W: number, seed: number, epoch: number): Uint32Array {
  const [k0, k1] = seedKey(seed);
  const order = new Uint32Array(W);
  for (let i = 0; i < W; i++) order[i] = i;
  const w = new Uint32Array(4);
  for (let i = W - 1; i > 0; i--) {
    const half = i & 1;
    if (half === 1 || i === W - 1) philox4x32(Math.floor(i / 2), epoch, ORDER_STREAM, 0, k0, k1, w);
    const u = (w[2 * half] * 2 ** 21 + (w[2 * half + 1] >>> 11)) / 2 ** 53;
    const j = Math.min(i, Math.floor(u * (i + 1)));
    const t = order[i]; order[i] = order[j]; order[j] = t;
  }
  return order;
}

function checkStateShape(state: unknown): asserts state is LoaderState {
  const s = state as Partial<LoaderState> | null;
  if (typeof s !== "object" || s === null || s.version !== 1) {
    throw new FileFormatError("loader state", `is not a version-1 TokenLoader state (got ${JSON.stringify(s)?.slice(0, 80)})`);
  }
  const ints = [s.tokens, s.B, s.T, s.seed, s.epoch, s.index];
  if (!ints.every((x) => Number.isSafeInteger(x) && (x as number) >= 0) || typeof s.shuffle !== "boolean" || typeof s.file !== "string") {
    throw new FileFormatError("loader state", `has missing or invalid fields (needs file, tokens, B, T, seed, shuffle, epoch, index): ${JSON.stringify(s).slice(0, 200)}`);
  }
}

export class TokenLoader {
  readonly file: string;
  readonly B: number;
  readonly T: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** tokens in the shard */
  readonly tokens: number;
  /** windows per epoch: floor((tokens - 1) / T) */
  readonly windows: number;
  private readonly source: TokenSource;
  private epoch = 0;
  private index = 0;
  private order: Uint32Array | undefined;
  private orderEpoch = -1;

  private constructor(file: string, opts: TokenLoaderOptions) {
    const { B, T } = opts;
    if (!Number.isInteger(B) || B < 1) throw new UsageError(`batch size B must be a positive integer, got ${B}`);
    if (!Number.isInteger(T) || T < 1) throw new UsageError(`sequence length T must be a positive integer, got ${T}`);
    this.file = file;
    this.B = B;
    this.T = T;
    this.seed = opts.seed ?? 0;
    seedKey(this.seed);
    this.shuffle = opts.shuffle ?? true;
    this.source = openSource(file, opts.inMemory);
    this.tokens = this.source.tokens;
    this.windows = this.tokens > 0 ? Math.floor((this.tokens - 1) / T) : 0;
    if (this.windows < B) {
      this.source.close();
      throw new Fp4lmError(`${file} holds ${this.tokens} tokens, but one batch of B=${B} windows of T+1=${T + 1} tokens needs at least B·T+1 = ${B * T + 1}; use a smaller B or T, or more text (or a larger --val-fraction for the validation shard)`);
    }
  }

  /** A loader at the start of epoch 0. */
  static open(file: string, opts: TokenLoaderOptions): TokenLoader {
    return new TokenLoader(file, opts);
  }

  /**
   * Reopen a loader from `state()`, positioned at the next batch. `opts.file` overrides the
   * saved path (a moved run directory); the shard must still hold the same number of tokens.
   */
  static restore(state: LoaderState, opts: { file?: string; inMemory?: boolean } = {}): TokenLoader {
    checkStateShape(state);
    const loader = new TokenLoader(opts.file ?? state.file, { B: state.B, T: state.T, seed: state.seed, shuffle: state.shuffle, inMemory: opts.inMemory });
    try {
      loader.restore(state);
    } catch (e) {
      loader.close();
      throw e;
    }
    return loader;
  }

  /**
   * Move this loader to a saved position (the in-place form of `TokenLoader.restore`, for
   * checkpoint code that opened the loader itself). B, T, seed, shuffle and the shard's token
   * count must match the saved state; the path may differ.
   */
  restore(state: unknown): void {
    checkStateShape(state);
    const mismatch = (["B", "T", "seed", "shuffle", "tokens"] as const).filter((k) => state[k] !== this[k]);
    if (mismatch.length > 0) {
      throw new FileFormatError(this.file, `does not match the saved loader state (${mismatch.map((k) => `${k}: saved ${state[k]}, now ${this[k]}`).join("; ")}); resume with the same data and batch settings`);
    }
    if (state.index > this.windows) {
      throw new FileFormatError("loader state", `position epoch=${state.epoch} index=${state.index} is past the ${this.windows} windows of ${this.file}`);
    }
    this.epoch = state.epoch;
    this.index = state.index;
  }

  /** The saved position and settings (JSON-serialisable). */
  state(): LoaderState {
    return { version: 1, file: this.file, tokens: this.tokens, B: this.B, T: this.T, seed: this.seed, shuffle: this.shuffle, epoch: this.epoch, index: this.index };
  }

  /** Batches per epoch (W / B; fractional when B does not divide W). */
  get batchesPerEpoch(): number {
    return this.windows / this.B;
  }

  /** The window (0..W-1) at position `index` of epoch `epoch`. */
  windowAt(epoch: number, index: number): number {
    if (!this.shuffle) return index;
    if (this.orderEpoch !== epoch) {
      this.order = windowOrder(this.windows, this.seed, epoch);
      this.orderEpoch = epoch;
    }
    return this.order![index];
  }

  /** A batch of the given windows; (epoch, index) label its first one. */
  private fill(windows: readonly number[], epoch: number, index: number): Batch {
    const { B, T } = this;
    const inputs = new Int32Array(B * T), targets = new Int32Array(B * T);
    const row = new Int32Array(T + 1);
    for (let b = 0; b < B; b++) {
      this.source.read(windows[b] * T, T + 1, row, 0);
      inputs.set(row.subarray(0, T), b * T);
      targets.set(row.subarray(1), b * T);
    }
    return { inputs, targets, B, T, epoch, index };
  }

  /** The next training batch; advances the position by B windows. */
  next(): Batch {
    if (this.index >= this.windows) { this.epoch++; this.index = 0; }
    const epoch = this.epoch, index = this.index;
    const windows: number[] = [];
    for (let b = 0; b < this.B; b++) {
      if (this.index >= this.windows) { this.epoch++; this.index = 0; }
      windows.push(this.windowAt(this.epoch, this.index));
      this.index++;
    }
    return this.fill(windows, epoch, index);
  }

  /**
   * Advance the position by `batches` batches without reading them, exactly as that many `next()`
   * calls would (data-parallel ranks step over their peers' batches, so every rank's position
   * stays the one a single process would have).
   */
  skip(batches: number): void {
    if (!Number.isInteger(batches) || batches < 0) throw new UsageError(`skip: number of batches must be a non-negative integer, got ${batches}`);
    for (let i = 0; i < batches * this.B; i++) {
      if (this.index >= this.windows) { this.epoch++; this.index = 0; }
      this.index++;
    }
  }

  /**
   * `n` evaluation batches (default: all full batches) of windows in file order: batch i holds
   * windows iB .. iB+B-1. The same every call; does not move the training position.
   */
  *evalBatches(n?: number): Generator<Batch> {
    const available = Math.floor(this.windows / this.B);
    const count = n ?? available;
    if (!Number.isInteger(count) || count < 0) throw new UsageError(`number of eval batches must be a non-negative integer, got ${n}`);
    if (count > available) {
      throw new Fp4lmError(`${this.file} holds ${this.tokens} tokens = ${available} eval batches of B=${this.B}, T=${this.T}; asked for ${count} (needs ${count * this.B * this.T + 1} tokens); ask for fewer or make the validation split larger (--val-fraction)`);
    }
    for (let i = 0; i < count; i++) {
      yield this.fill(Array.from({ length: this.B }, (_, b) => i * this.B + b), 0, i * this.B);
    }
  }

  /** Release the file (disk-backed loaders). */
  close(): void {
    this.source.close();
  }
}
