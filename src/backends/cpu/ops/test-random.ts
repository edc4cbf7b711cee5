/**
 * Test helpers for the CPU ops: seeded float64 inputs (mulberry32 + Box–Muller, the same
 * generator as test/random.ts but returning the FloatArray the ops take) and the central
 * finite-difference gradient check every op's test uses. Test-only; nothing in src imports it.
 */
import type { FloatArray } from "./float-array.ts";

/** A tiny seeded uniform generator in [0, 1) (mulberry32). */
export function uniformSource(seed: number): () => number {
  let state = (Math.imul(seed | 0, 0x9e3779b1) ^ 0x85ebca6b) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n float64 samples of N(0, scale²), seeded. */
export function randn(n: number, seed: number, scale = 1): Float64Array {
  const u = uniformSource(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    let a = 0;
    while (a === 0) a = u();
    const r = Math.sqrt(-2 * Math.log(a)) * scale, phi = 2 * Math.PI * u();
    out[i] = r * Math.cos(phi);
    if (i + 1 < n) out[i + 1] = r * Math.sin(phi);
  }
  return out;
}

/** n float64 samples uniform in [lo, hi), seeded. */
export function randUniform(n: number, seed: number, lo: number, hi: number): Float64Array {
  const u = uniformSource(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * u();
  return out;
}

/** n integers uniform in [0, V), seeded, as an Int32Array. */
export function randTokens(n: number, V: number, seed: number): Int32Array {
  const u = uniformSource(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(u() * V);
  return out;
}

/** Σ_i w_i · a_i in float64: the random scalar projection L whose gradient w.r.t. a is w. */
export function dot(w: FloatArray, a: FloatArray): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += w[i] * a[i];
  return s;
}

/**
 * Central finite-difference check of `analytic` = dL/dx: perturbs each x_i by ±h_i with
 * h_i = h · max(1, |x_i|), calls `loss()` (which must read x) twice, restores x_i. Returns the
 * normwise relative error max_i |analytic_i − numeric_i| / max_i |numeric_i| — normwise rather than
 * per element because structurally tiny gradient entries have no meaningful relative error.
 * Truncation error is O(h²) and round-off O(ε·|L|/h), both ~1e-10 for h = 1e-5 in float64.
 */
export function gradCheck(x: Float64Array, analytic: FloatArray, loss: () => number, h = 1e-5): number {
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    const hi = h * Math.max(1, Math.abs(x0));
    x[i] = x0 + hi;
    const lp = loss();
    x[i] = x0 - hi;
    const lm = loss();
    x[i] = x0;
    const num = (lp - lm) / (2 * hi);
    maxErr = Math.max(maxErr, Math.abs(analytic[i] - num));
    maxRef = Math.max(maxRef, Math.abs(num));
  }
  if (maxRef === 0) throw new Error("gradCheck: the numeric gradient is all zero; the test inputs do not exercise the op");
  return maxErr / maxRef;
}

/** Max |a_i − b_i| over the first n elements. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
