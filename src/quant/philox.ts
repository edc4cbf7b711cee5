/**
 * Philox4x32-10, the counter-based random generator of Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3" (SC'11), as in Random123 and cuRAND (`curand_Philox4x32_10`). Written here
 * because the SR bytes must be reproducible bit for bit by our CUDA kernels from
 * (seed, tensor id, element index) alone; no maintained npm package exposes raw Philox blocks.
 *
 * fp4lm's stream layout (the CUDA kernel uses the same): key = (seed low 32 bits, seed high
 * bits); counter = (block low, block high, tensorId, 0) with block = floor(element / 16); one
 * call gives 4 words = 16 bytes; byte j (little-endian) of word w is the random byte of element
 * 16·block + 4·w + j.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32. */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * One Philox4x32-10 block: 4 output words for counter (c0..c3) and key (k0, k1), written into
 * `out` at `offset`.
 */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array, offset = 0): void {
  c0 >>>= 0; c1 >>>= 0; c2 >>>= 0; c3 >>>= 0; k0 >>>= 0; k1 >>>= 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[offset] = c0; out[offset + 1] = c1; out[offset + 2] = c2; out[offset + 3] = c3;
}

/** Split a non-negative integer seed (< 2^53) into the two key words. */
export function seedKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be an integer in [0, 2^53), got ${seed}`);
  }
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

/**
 * The random bytes of elements [start, start + n) of stream (seed, tensorId): the bytes that
 * stochastic rounding consumes, one per element.
 */
export function philoxBytes(seed: number, tensorId: number, n: number, start = 0): Uint8Array {
  const [k0, k1] = seedKey(seed);
  if (!Number.isInteger(tensorId) || tensorId < 0 || tensorId > 0xffffffff) {
    throw new RangeError(`tensorId must be an integer in [0, 2^32), got ${tensorId}`);
  }
  const out = new Uint8Array(n);
  const words = new Uint32Array(4);
  const bytes = new Uint8Array(words.buffer);
  const first = Math.floor(start / 16), last = Math.floor((start + n - 1) / 16);
  for (let b = first; n > 0 && b <= last; b++) {
    philox4x32(b >>> 0, Math.floor(b / 2 ** 32), tensorId, 0, k0, k1, words);
    const base = b * 16;
    const lo = Math.max(base, start), hi = Math.min(base + 16, start + n);
    for (let e = lo; e < hi; e++) out[e - start] = bytes[e - base];
  }
  return out;
}

/** Uniform doubles in [0, 1) from the same stream (53 bits each from two words); for init etc. */
export function philoxUniform(seed: number, tensorId: number, n: number): Float64Array {
  const [k0, k1] = seedKey(seed);
  const out = new Float64Array(n);
  const w = new Uint32Array(4);
  for (let i = 0; i < n; i += 2) {
    const b = i / 2;
    philox4x32(b >>> 0, Math.floor(b / 2 ** 32), tensorId, 1, k0, k1, w);
    out[i] = ((w[0] >>> 5) * 67108864 + (w[1] >>> 6)) / 9007199254740992;
    if (i + 1 < n) out[i + 1] = ((w[2] >>> 5) * 67108864 + (w[3] >>> 6)) / 9007199254740992;
  }
  return out;
}
