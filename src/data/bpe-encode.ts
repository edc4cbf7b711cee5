/**
 * Plain TypeScript byte-level BPE encoder over tiktoken-style ranks (token bytes → rank), and
 * GPT-2 pre-tokenization. This is the boring twin of tiktoken's WASM `CoreBPE`: same regex
 * semantics, same merge rule, so the two give identical ids (tokenizer.test.ts checks this on
 * GPT-2's own ranks and on our trained ones). Not the fast path: tokenizer.ts uses tiktoken.
 *
 * Method (tiktoken `src/lib.rs`, `_byte_pair_merge` / `encode_ordinary`): split the text with
 * the pre-tokenization regex; a piece whose bytes are a token is that token; otherwise start
 * from single bytes and repeatedly merge the adjacent pair whose concatenated bytes have the
 * lowest rank (leftmost on ties) until no adjacent pair is a token.
 *
 * Regex dialect: tiktoken compiles the pattern with Rust's fancy-regex, where `\s` is Unicode
 * White_Space. JavaScript's `\s` differs (it lacks U+0085 and adds U+FEFF), so `jsPattern`
 * rewrites `\s`/`\S` into an explicit White_Space class before compiling with the `u` flag.
 */

/** GPT-2's pre-tokenization pattern (tiktoken `gpt2` / `r50k_base` `pat_str`), Rust syntax. */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** The text of GPT-2's end-of-text special token; decoders print it for the EOT id. */
export const EOT_TEXT = "<|endoftext|>";

/** Unicode White_Space (Rust regex `\s`), as the body of a JavaScript character class. */
const WHITE_SPACE = "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/** True for a UTF-16 code unit that is Unicode White_Space (all White_Space is in the BMP). */
export function isWhiteSpace(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/**
 * Compile a tiktoken (Rust fancy-regex) pre-tokenization pattern as a global Unicode JavaScript
 * RegExp with the same matches: `\s` and `\S` become explicit White_Space classes. Patterns
 * using `\S` inside a character class, or Rust-only syntax such as `(?i:`, are refused.
 */
export function jsPattern(pattern: string): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "\\") {
      const next = pattern[i + 1];
      if (next === "s") out += inClass ? WHITE_SPACE : `[${WHITE_SPACE}]`;
      else if (next === "S" && !inClass) out += `[^${WHITE_SPACE}]`;
      else if (next === "S") throw new Error(`pre-tokenization pattern uses \\S inside a character class, which jsPattern cannot translate: ${pattern}`);
      else out += ch + (next ?? "");
      i++;
      continue;
    }
    if (ch === "[" && !inClass) inClass = true;
    else if (ch === "]" && inClass) inClass = false;
    out += ch;
  }
  if (/\(\?[a-zA-Z]/.test(pattern)) throw new Error(`pre-tokenization pattern uses inline flags, which JavaScript does not support: ${pattern}`);
  return new RegExp(out, "gu");
}

/** The UTF-8 bytes of `s`. */
export function utf8Bytes(s: string): Uint8Array {
  return Buffer.from(s, "utf8");
}

/** A byte string as a Map key: one char per byte (latin1). */
function byteKey(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Token byte strings of a vocabulary built from 256 single bytes and `merges` (token 256+i = left ++ right). */
export function tokenBytesFromMerges(merges: ReadonlyArray<readonly [number, number]>): Uint8Array[] {
  const bytes: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) bytes.push(Uint8Array.of(b));
  for (const [l, r] of merges) {
    const a = bytes[l], b = bytes[r];
    const c = new Uint8Array(a.length + b.length);
    c.set(a, 0); c.set(b, a.length);
    bytes.push(c);
  }
  return bytes;
}

/**
 * Encoder over ranks: `tokenBytes[rank]` is the byte string of token `rank`. Keeps a cache of
 * encoded pieces (prose repeats its words), cleared when it grows past `cacheLimit` entries.
 */
export class RankEncoder {
  private readonly ranks = new Map<string, number>();
  private readonly regex: RegExp;
  private readonly cache = new Map<string, number[]>();

  constructor(
    readonly tokenBytes: readonly Uint8Array[],
    readonly pattern: string,
    private readonly cacheLimit = 200_000,
  ) {
    tokenBytes.forEach((b, rank) => {
      const k = byteKey(b);
      if (this.ranks.has(k)) throw new Error(`token byte strings must be unique: ranks ${this.ranks.get(k)} and ${rank} are both [${[...b]}]`);
      this.ranks.set(k, rank);
    });
    this.regex = jsPattern(pattern);
  }

  /** Ids of `text` without special tokens (tiktoken's `encode_ordinary`). */
  encodeOrdinary(text: string): Uint32Array {
    const out: number[] = [];
    const re = new RegExp(this.regex.source, this.regex.flags);
    for (const m of text.matchAll(re)) {
      const piece = m[0];
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        ids = this.encodePiece(utf8Bytes(piece));
        if (this.cache.size >= this.cacheLimit) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    }
    return Uint32Array.from(out);
  }

  /** Ids of one pre-tokenized piece (its UTF-8 bytes). */
  encodePiece(piece: Uint8Array): number[] {
    const whole = this.ranks.get(byteKey(piece));
    if (whole !== undefined) return [whole];
    // parts[i] = start byte of part i; rank[i] = rank of part i ++ part i+1 (Infinity if none).
    const n = piece.length;
    const starts: number[] = [];
    const rank: number[] = [];
    for (let i = 0; i < n; i++) starts.push(i);
    starts.push(n);
    const pairRank = (i: number): number =>
      i + 2 < starts.length ? this.ranks.get(byteKey(piece, starts[i], starts[i + 2])) ?? Infinity : Infinity;
    for (let i = 0; i < n; i++) rank.push(pairRank(i));
    for (;;) {
      let best = Infinity, at = -1;
      for (let i = 0; i < rank.length; i++) if (rank[i] < best) { best = rank[i]; at = i; }
      if (at < 0) break;
      starts.splice(at + 1, 1);
      rank.splice(at + 1, 1);
      rank[at] = pairRank(at);
      if (at > 0) rank[at - 1] = pairRank(at - 1);
    }
    const ids: number[] = [];
    for (let i = 0; i + 1 < starts.length; i++) {
      const id = this.ranks.get(byteKey(piece, starts[i], starts[i + 1]));
      if (id === undefined) throw new Error(`byte ${piece[starts[i]]} has no rank: the vocabulary must contain all 256 single bytes`);
      ids.push(id);
    }
    return ids;
  }

  /** The concatenated bytes of ranks `ids` (each must be < tokenBytes.length). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let len = 0;
    for (let i = 0; i < ids.length; i++) len += this.tokenBytes[ids[i]].length;
    const out = new Uint8Array(len);
    let o = 0;
    for (let i = 0; i < ids.length; i++) { const b = this.tokenBytes[ids[i]]; out.set(b, o); o += b.length; }
    return out;
  }
}
