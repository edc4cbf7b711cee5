/**
 * Byte-level BPE trainer (GPT-2 style): the vocabulary starts as the 256 bytes, and each step
 * merges the most frequent adjacent pair of tokens inside pre-tokenized pieces, until the
 * vocabulary (plus one end-of-text token) reaches `vocabSize`. The result encodes through
 * tokenizer.ts's `bpeTokenizer` (tiktoken custom ranks, rank = token id).
 * Not a SentencePiece/unigram trainer and no byte fallback tricks: every byte is a token, so any
 * UTF-8 text round-trips exactly, including bytes never seen in training.
 *
 * Method: Sennrich et al. 2016 (BPE for subwords) on bytes as in GPT-2 (Radford et al. 2019);
 * counts over unique pieces with incremental pair counts and a lazy max-heap (as in HF
 * `tokenizers` BpeTrainer), not a recount per merge.
 *
 * Deterministic tie-breaking: the pair with the highest count wins; among equal counts the
 * pair (left id, right id) that is smallest lexicographically wins. Counts and ids do not depend
 * on Map iteration order, so a given text and vocabSize always give the same merges.
 * Should a merge's bytes already exist as a token ("a"+"bc" after "ab"+"c"; not seen on real or
 * randomised text, but nothing in BPE rules it out), the existing id is reused and no token is
 * added, so token byte strings stay unique, as tiktoken requires.
 */
import { GPT2_PATTERN, jsPattern, utf8Bytes } from "./bpe-encode.ts";

/** A trained byte-level BPE: token 256+i = bytes(merges[i][0]) ++ bytes(merges[i][1]); EOT = 256 + merges.length. */
export interface BpeModel {
  /** pre-tokenization regex in tiktoken (Rust) syntax; GPT-2's unless trained otherwise */
  pattern: string;
  /** merges in rank order: merge i creates token id 256 + i from (left id, right id) */
  merges: Array<[number, number]>;
}

export interface TrainBpeOptions {
  /** pre-tokenization pattern (default GPT-2's) */
  pattern?: string;
  /** stop early when the best pair occurs fewer times than this (default 1: merge until vocabSize) */
  minFrequency?: number;
  /** called every `progressEvery` merges (default 1000) */
  onProgress?: (merges: number, target: number) => void;
  progressEvery?: number;
}

/** Vocabulary size of a model: 256 bytes + merges + the end-of-text token. */
export function bpeVocabSize(model: BpeModel): number {
  return 256 + model.merges.length + 1;
}

/** Largest vocabSize we train: pair keys pack two ids into left * 2^20 + right. */
export const MAX_BPE_VOCAB = 1 << 20;
const SHIFT = 1 << 20;

/** Binary max-heap of (count, pair key): higher count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number { return this.counts.length; }
  private better(i: number, j: number): boolean {
    const a = this.counts[i], b = this.counts[j];
    return a > b || (a === b && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]; this.counts[i] = this.counts[j]; this.counts[j] = c;
    const k = this.keys[i]; this.keys[i] = this.keys[j]; this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count); this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p); i = p;
    }
  }
  /** Remove the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastC; this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < n && this.better(l, m)) m = l;
        if (r < n && this.better(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m); i = m;
      }
    }
    return top;
  }
}

/**
 * Train a byte-level BPE on `text` (or several texts, pre-tokenized separately) until the
 * vocabulary holds `vocabSize` ids including EOT, or no pair is left (tiny texts: the model is
 * then smaller; check `bpeVocabSize`).
 */
export function trainBpe(text: string | readonly string[], vocabSize: number, opts: TrainBpeOptions = {}): BpeModel {
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize > MAX_BPE_VOCAB) {
    throw new RangeError(`vocabSize must be an integer in [257, ${MAX_BPE_VOCAB}] (256 bytes + merges + 1 end-of-text), got ${vocabSize}`);
  }
  const pattern = opts.pattern ?? GPT2_PATTERN;
  const minFrequency = opts.minFrequency ?? 1;
  const progressEvery = opts.progressEvery ?? 1000;
  const targetMerges = vocabSize - 257;

  // Unique pieces and their counts.
  const pieceCounts = new Map<string, number>();
  const re = jsPattern(pattern);
  for (const t of typeof text === "string" ? [text] : text) {
    for (const m of t.matchAll(re)) pieceCounts.set(m[0], (pieceCounts.get(m[0]) ?? 0) + 1);
  }
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [piece, count] of pieceCounts) {
    const b = utf8Bytes(piece);
    if (b.length < 2) continue;
    words.push(Array.from(b));
    freq.push(count);
  }

  // Pair counts and, per pair, the words it occurs in (may list stale words or repeats).
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const word = words[w], f = freq[w];
    for (let i = 0; i + 1 < word.length; i++) {
      const key = word[i] * SHIFT + word[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      let list = pairWords.get(key);
      if (list === undefined) pairWords.set(key, list = []);
      if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const tokenKeys = new Map<string, number>(); // token bytes (latin1) -> id
  const tokenStr: string[] = [];
  for (let b = 0; b < 256; b++) { tokenStr.push(String.fromCharCode(b)); tokenKeys.set(tokenStr[b], b); }
  const merges: Array<[number, number]> = [];
  const seen = new Int32Array(words.length).fill(-1);
  let step = 0;

  while (merges.length < targetMerges && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      // Stale entry: counts only shrink without a push, so re-queue the true (lower) count.
      if (current > 0 && current < count) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const a = Math.floor(key / SHIFT), b = key % SHIFT;
    const bytes = tokenStr[a] + tokenStr[b];
    let c = tokenKeys.get(bytes);
    if (c === undefined) {
      c = 256 + merges.length;
      merges.push([a, b]);
      tokenStr.push(bytes);
      tokenKeys.set(bytes, c);
    }

    // Rewrite every word holding (a, b); collect pair count changes.
    const delta = new Map<number, number>();
    const add = (k: number, d: number) => delta.set(k, (delta.get(k) ?? 0) + d);
    for (const w of pairWords.get(key) ?? []) {
      if (seen[w] === step) continue;
      seen[w] = step;
      const word = words[w];
      let has = false;
      for (let i = 0; i + 1 < word.length; i++) if (word[i] === a && word[i + 1] === b) { has = true; break; }
      if (!has) continue;
      const f = freq[w];
      for (let i = 0; i + 1 < word.length; i++) add(word[i] * SHIFT + word[i + 1], -f);
      const next: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) { next.push(c); i++; }
        else next.push(word[i]);
      }
      words[w] = next;
      for (let i = 0; i + 1 < next.length; i++) {
        const k = next[i] * SHIFT + next[i + 1];
        add(k, f);
        if (next[i] === c || next[i + 1] === c) {
          let list = pairWords.get(k);
          if (list === undefined) pairWords.set(k, list = []);
          if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const n = (pairCount.get(k) ?? 0) + d;
      if (n > 0) pairCount.set(k, n);
      else { pairCount.delete(k); pairWords.delete(k); }
      if (d > 0) heap.push(n, k);
    }
    pairCount.delete(key);
    pairWords.delete(key);
    step++;
    if (opts.onProgress && merges.length % progressEvery === 0) opts.onProgress(merges.length, targetMerges);
  }
  return { pattern, merges };
}
