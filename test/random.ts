/**
 * Seeded random inputs for the unit tests: a tiny PRNG (mulberry32) with uniform, integer and
 * normal (Box–Muller) samplers, plus fp32/bf16 array helpers. Deliberately independent of the
 * Philox generator under test. Every test builds its own `new Rng(seed)` so cases stay isolated.
 */

export class Rng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = (Math.imul(seed | 0, 0x9e3779b1) ^ 0x85ebca6b) >>> 0;
    for (let i = 0; i < 4; i++) this.u32();
  }

  /** Uniform uint32 (mulberry32). */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  /** Standard normal sample (Box–Muller, polar-free form). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** ±1 with equal probability. */
  sign(): number {
    return this.u32() & 1 ? -1 : 1;
  }
}

/** n fp32 samples of N(0, scale²). */
export function normals(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** Round an fp32 array to BF16-representable values (RNE on the bits), in place. */
export function toBf16Values(a: Float32Array): Float32Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    const low = b & 0xffff;
    let hi = b >>> 16;
    if (low > 0x8000 || (low === 0x8000 && (hi & 1) === 1)) hi += 1;
    u[i] = (hi << 16) >>> 0;
  }
  return a;
}

/** n BF16-representable samples of N(0, scale²). */
export function bf16Normals(rng: Rng, n: number, scale = 1): Float32Array {
  return toBf16Values(normals(rng, n, scale));
}

/** Heavy-tailed samples: Student-t with 2 degrees of freedom (infinite variance). */
export function heavyTailed(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    const chi2 = rng.normal() ** 2 + rng.normal() ** 2;
    out[i] = z / Math.sqrt(chi2 / 2);
  }
  return out;
}

/** N(0,1) with a fraction `p` of elements multiplied by `factor` (outlier features). */
export function withOutliers(rng: Rng, n: number, p = 0.01, factor = 100): Float32Array {
  const out = normals(rng, n);
  for (let i = 0; i < n; i++) if (rng.uniform() < p) out[i] *= factor;
  return out;
}

/** Row-major transpose of a (rows, cols) matrix (test-side, independent of the sources). */
export function transposeRef(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

/** fp32 bit pattern of a number (via DataView, independent of formats/float-bits). */
export function f32Bits(x: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  return dv.getUint32(0);
}

/** fp32 value of a bit pattern (via DataView). */
export function f32FromBits(bits: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, bits >>> 0);
  return dv.getFloat32(0);
}

/** Next fp32 value above a finite fp32 x (toward +inf). */
export function nextUpF32(x: number): number {
  if (x === 0) return f32FromBits(1);
  const b = f32Bits(x);
  return f32FromBits(x > 0 ? b + 1 : b - 1);
}

/** Next fp32 value below a finite fp32 x (toward -inf). */
export function nextDownF32(x: number): number {
  return -nextUpF32(-x);
}

/** Token ids in [0, V): a 32-bit LCG (Numerical Recipes' constants, top 24 bits), the model tests' inputs. */
export function lcgTokens(n: number, V: number, seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % V);
}
