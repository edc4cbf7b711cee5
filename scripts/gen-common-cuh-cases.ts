/**
 * Case generator for the host check of the CUDA quantizer math (src/backends/cuda/kernels/
 * common.cuh, run by scripts/test-common-cuh.sh through common-host-test.cpp): random and
 * targeted inputs with the outputs of the TypeScript oracle (formats/, quant/), plus the key cases
 * of the shared vectors (test/vectors) with the outputs written in those files. Not a test by
 * itself: it only writes files. Inputs are seeded (mulberry32 from test/random.ts), so a run is
 * reproducible.
 *
 * Usage: npx tsx scripts/gen-common-cuh-cases.ts OUTDIR [N=1000000] [TENSORS=800] [--tensors-only | --fast-only | --fp8-fast-only]
 *   N = random cases per scalar function; TENSORS = random tensor-level cases (tensors.bin);
 *   --tensors-only writes just tensors.bin and vec_tensors.bin (small: for a parity run on a GPU);
 *   --fast-only writes just fast_tensors.bin (NVFP4 cases in the domain of quantize-fast.cu, for
 *   quantize-fast-host-test.cpp); --fp8-fast-only writes just fp8_fast_tensors.bin (block-scaled FP8
 *   cases in the domain of quantize-fp8-fast.cu, for quantize-fp8-fast-host-test.cpp).
 *
 * File format (little-endian uint32 words): header [0x48435546 "FUCH", 1, wordsPerRecord (0 =
 * variable), count], then the records. Each file's record layout is documented at its writer
 * below and in common-host-test.cpp (the reader).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { e2m1EncodeRN, e2m1EncodeSR } from "../src/formats/e2m1.ts";
import { e4m3Encode, E4M3_DECODE } from "../src/formats/e4m3.ts";
import { e5m2Encode, E5M2_DECODE } from "../src/formats/e5m2.ts";
import { f32ToBf16Bits, roundF64ToBf16 } from "../src/formats/bf16.ts";
import { bitsToF32, f32ToBits, FLT_MAX } from "../src/formats/float-bits.ts";
import { philox4x32 } from "../src/quant/philox.ts";
import { nvfp4BlockScaleByte, nvfp4EncodeScales, nvfp4Operand, nvfp4TensorScales, quantizeNVFP4 } from "../src/quant/nvfp4.ts";
import { dequantizeMXFP4, e8m0FloorFromAmax, e8m0RceilFromAmax, quantizeMXFP4 } from "../src/quant/mxfp4.ts";
import { dequantizeFP8, fp8ScaleFromAmax, quantizeFP8, type Fp8Scaling } from "../src/quant/fp8.ts";
import { rht, signMask, TE_SIGN_VECTOR } from "../src/quant/hadamard.ts";
import { firstNonFinite, transpose } from "../src/quant/tensor-checks.ts";
import { Rng } from "../test/random.ts";
import { f32s, hexBytes, loadVector, num, type Json } from "../test/vector-files.ts";

const outDir = process.argv[2];
if (!outDir) {
  console.error("usage: npx tsx scripts/gen-common-cuh-cases.ts OUTDIR [N]");
  process.exit(2);
}
const N = Number(process.argv[3] ?? 1_000_000);
const TENSORS = Number(process.argv[4] ?? 800);
const tensorsOnly = process.argv.includes("--tensors-only");
const fastOnly = process.argv.includes("--fast-only");
const fp8FastOnly = process.argv.includes("--fp8-fast-only");
mkdirSync(outDir, { recursive: true });
const fr = Math.fround;

/** A growable uint32 record file. */
class Sink {
  private buf = new Uint32Array(1 << 16);
  private n = 4;
  count = 0;
  constructor(readonly name: string, readonly wordsPerRecord: number) {}
  w(x: number): void {
    if (this.n === this.buf.length) {
      const b = new Uint32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = x >>> 0;
  }
  f(x: number): void { this.w(f32ToBits(x)); }
  /** a length-prefixed array of words */
  arr(a: ArrayLike<number>): void { this.w(a.length); for (let i = 0; i < a.length; i++) this.w(a[i]); }
  /** a length-prefixed array of fp32 values (as bits; every NaN → 0x7FC00000) */
  arrF(a: ArrayLike<number>): void { this.w(a.length); for (let i = 0; i < a.length; i++) this.w(a[i] !== a[i] ? 0x7fc00000 : f32ToBits(a[i])); }
  /** a byte array: its length, then the bytes packed 4 per word, little-endian */
  bytes(a: Uint8Array): void {
    this.w(a.length);
    for (let i = 0; i < a.length; i += 4) this.w(a[i] | ((a[i + 1] ?? 0) << 8) | ((a[i + 2] ?? 0) << 16) | ((a[i + 3] ?? 0) << 24));
  }
  end(): void { this.count++; }
  save(): void {
    const b = this.buf.subarray(0, this.n);
    b[0] = 0x48435546; b[1] = 1; b[2] = this.wordsPerRecord; b[3] = this.count;
    writeFileSync(join(outDir, this.name), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    console.log(`${this.name}: ${this.count} records`);
  }
}

const rng = new Rng(0x5eed_c0de);
const u32 = () => rng.u32();
const pick = <T>(a: readonly T[]): T => a[rng.int(0, a.length - 1)];

// ------------------------------------------------------------------ fp32 samplers
/** any bit pattern: NaN, inf, subnormals included */
const anyBits = () => bitsToF32(u32());
/** sign · random mantissa · 2^e, e uniform over [elo, ehi] (fp32 subnormals when e < −126) */
function wide(elo = -149, ehi = 127): number {
  const e = rng.int(elo, ehi);
  const v = fr((1 + rng.uniform()) * 2 ** e);
  return rng.u32() & 1 ? -v : v;
}
/** v moved by k ulps (k in −3..3) on its fp32 bit pattern, sign kept */
function nudge(v: number, k = rng.int(-3, 3)): number {
  const b = f32ToBits(fr(v));
  const a = b & 0x7fffffff;
  const na = Math.max(0, Math.min(0x7f800000, a + k));
  return bitsToF32((b & 0x80000000) | na);
}
const signed = (v: number) => (rng.u32() & 1 ? -v : v);
const uniformIn = (lo: number, hi: number) => fr(lo + (hi - lo) * rng.uniform());

const E2M1_POINTS = [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 2 ** -126, 2 ** -149, 1e-30];
function e2m1Input(): number {
  switch (rng.int(0, 4)) {
    case 0: return anyBits();
    case 1: return uniformIn(-8, 8);
    case 2: return signed(nudge(pick(E2M1_POINTS)));
    case 3: return wide();
    default: return signed(nudge(pick(E2M1_POINTS), 0));
  }
}

// ------------------------------------------------------------------ scalar functions

/** e2m1_rn.bin: [x bits, code] */
function genE2m1Rn(): void {
  const s = new Sink("e2m1_rn.bin", 2);
  for (let i = 0; i < 2 * N; i++) { const x = e2m1Input(); s.f(x); s.w(e2m1EncodeRN(x)); s.end(); }
  s.save();
  const v = new Sink("vec_e2m1_rn.bin", 2);
  for (const c of loadVector("e2m1_rn.json").cases as Json[]) { v.w(parseInt(c.x_bits, 16)); v.w(c.code); v.end(); }
  v.save();
}

/** e2m1_sr.bin: [x bits, r8, code] */
function genE2m1Sr(): void {
  const s = new Sink("e2m1_sr.bin", 3);
  const grid = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 7];
  for (let i = 0; i < 2 * N; i++) {
    let x: number;
    switch (rng.int(0, 5)) {
      case 0: x = uniformIn(-7, 7); break;
      case 1: x = signed(nudge(pick(grid), rng.int(-40, 40))); break;
      case 2: x = wide(-149, 4); break;
      case 3: x = anyBits(); break;
      case 4: x = signed(fr(pick(grid) + pick([0.5, 1, 2]) * rng.int(0, 256) / 256)); break;  // k boundaries
      default: x = wide(-149, -100);
    }
    const r8 = rng.int(0, 255);
    s.f(x); s.w(r8); s.w(e2m1EncodeSR(x, r8)); s.end();
  }
  s.save();
  const v = new Sink("vec_e2m1_sr.bin", 3);
  for (const c of loadVector("e2m1_sr.json").cases as Json[]) { v.w(parseInt(c.x_bits, 16)); v.w(c.r8); v.w(c.code); v.end(); }
  v.save();
}

/** Midpoints of consecutive finite magnitudes of an fp8 decode table (exact in fp32). */
function midpoints(table: Float32Array): number[] {
  const mags = Array.from(table.subarray(0, 128)).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const out: number[] = [];
  for (let i = 0; i + 1 < mags.length; i++) out.push(fr((mags[i] + mags[i + 1]) / 2), mags[i]);
  out.push(mags[mags.length - 1], 464, 480, 61440, 65536, 2 ** -10, 2 ** -17, 2 ** -18);
  return out;
}

/** fp8.bin: [x bits, e4m3 sat, e4m3 nosat, e5m2 sat, e5m2 nosat] */
function genFp8(): void {
  const s = new Sink("fp8.bin", 5);
  const mids = [...midpoints(E4M3_DECODE), ...midpoints(E5M2_DECODE)];
  for (let i = 0; i < 2 * N; i++) {
    let x: number;
    switch (rng.int(0, 5)) {
      case 0: x = anyBits(); break;
      case 1: x = uniformIn(-600, 600); break;
      case 2: x = uniformIn(-70000, 70000); break;
      case 3: case 4: x = signed(nudge(pick(mids))); break;
      default: x = wide(-149, 20);
    }
    s.f(x); s.w(e4m3Encode(x, true)); s.w(e4m3Encode(x, false)); s.w(e5m2Encode(x, true)); s.w(e5m2Encode(x, false)); s.end();
  }
  s.save();
  const v = new Sink("vec_e4m3.bin", 2);
  for (const c of loadVector("e4m3.json").encode_cases as Json[]) { v.w(parseInt(c.x_bits, 16)); v.w(c.byte); v.end(); }
  v.save();
  // decode tables, all 256 bytes: [byte, e4m3 value bits, e5m2 value bits] (NaN → 0x7FC00000)
  const d = new Sink("fp8_decode.bin", 3);
  const vt = loadVector("e4m3.json").decode_table as (number | string)[];
  for (let b = 0; b < 256; b++) {
    const e4 = E4M3_DECODE[b], e5 = E5M2_DECODE[b];
    if (!Object.is(num(vt[b]), e4) && !(Number.isNaN(num(vt[b])) && Number.isNaN(e4))) throw new Error(`e4m3 decode table differs from the vector at ${b}`);
    d.w(b); d.w(e4 !== e4 ? 0x7fc00000 : f32ToBits(e4)); d.w(e5 !== e5 ? 0x7fc00000 : f32ToBits(e5)); d.end();
  }
  d.save();
}

/** bf16_f32.bin: [x bits, bf16 bits] */
function genBf16F32(): void {
  const s = new Sink("bf16_f32.bin", 2);
  for (let i = 0; i < N; i++) {
    let x: number;
    switch (rng.int(0, 2)) {
      case 0: x = anyBits(); break;
      case 1: x = bitsToF32(((u32() & 0xffff0000) | 0x8000) + rng.int(-2, 2)); break;  // ties
      default: x = wide();
    }
    s.f(x); s.w(f32ToBf16Bits(x)); s.end();
  }
  s.save();
}

const f64 = new Float64Array(1);
const w64 = new Uint32Array(f64.buffer);
function f64FromWords(lo: number, hi: number): number { w64[0] = lo; w64[1] = hi; return f64[0]; }
/** v moved by k binary64 ulps (same sign) */
function nudge64(v: number, k: number): number {
  f64[0] = Math.abs(v);
  let lo = w64[0] + k, hi = w64[1];
  if (lo < 0) { lo += 2 ** 32; hi -= 1; } else if (lo >= 2 ** 32) { lo -= 2 ** 32; hi += 1; }
  if (hi < 0) return v < 0 ? -0 : 0;
  const r = f64FromWords(lo >>> 0, hi >>> 0);
  return v < 0 || Object.is(v, -0) ? -r : r;
}

/** bf16_f64.bin: [v lo word, v hi word, bf16 bits of roundF64ToBf16(v)] (NaN → 0x7FC0) */
function genBf16F64(): void {
  const s = new Sink("bf16_f64.bin", 3);
  const edges = [2 ** 128, (2 - 2 ** -8) * 2 ** 127, (2 - 2 ** -7) * 2 ** 127, 2 ** 127, 2 ** -126, 2 ** -127, 2 ** -133, 2 ** -134, 3 * 2 ** -134, 2 ** -140, 2 ** -1074, 0, 1.5 * 2 ** -126];
  for (let i = 0; i < 2 * N; i++) {
    let v: number;
    switch (rng.int(0, 6)) {
      case 0: v = f64FromWords(u32(), u32()); break;
      case 1: v = signed((1 + rng.uniform()) * 2 ** rng.int(-160, 130)); break;
      case 2: case 3: {  // a BF16 grid point + half a quantum, then a few binary64 ulps either way
        const e = rng.int(-140, 127);
        const q = 2 ** (Math.max(e, -126) - 7);
        const g = (2 ** e) + rng.int(0, 127) * q;
        v = signed(nudge64(g + q / 2, rng.int(-2, 2)));
        break;
      }
      case 4: {  // an RHT-like exact sum of 16 fp32 values, scaled by 1/4 or 1/sqrt(32)
        let acc = 0;
        const sc = 2 ** rng.int(-140, 100);
        for (let k = 0; k < 16; k++) acc += fr(rng.normal() * sc);
        v = rng.u32() & 1 ? acc * 0.25 : acc / Math.sqrt(32);
        break;
      }
      case 5: v = signed(nudge64(pick(edges), rng.int(-2, 2))); break;
      default: v = fr(wide());
    }
    const r = roundF64ToBf16(v);
    f64[0] = v;
    s.w(w64[0]); s.w(w64[1]); s.w(r !== r ? 0x7fc0 : f32ToBits(r) >>> 16); s.end();
  }
  s.save();
}

/** philox.bin: [c0, c1, c2, c3, k0, k1, w0, w1, w2, w3] */
function genPhilox(): void {
  const s = new Sink("philox.bin", 10);
  const out = new Uint32Array(4);
  for (let i = 0; i < N; i++) {
    const c = [u32(), u32(), u32(), u32(), u32(), u32()];
    if (i % 4 === 0) { c[1] = 0; c[3] = 0; c[5] = 0; c[0] &= 0xffff; }  // the SR layout: small blocks, c3 = 0
    philox4x32(c[0], c[1], c[2], c[3], c[4], c[5], out);
    for (const w of c) s.w(w);
    for (const w of out) s.w(w);
    s.end();
  }
  s.save();
}

/** a positive amax sample: realistic, tiny (s_enc overflow), huge, subnormal, 0, inf */
function amaxSample(): number {
  switch (rng.int(0, 7)) {
    case 0: return 0;
    case 1: return Infinity;
    case 2: return Math.abs(wide(-149, -110));
    case 3: return Math.abs(nudge(2688 / FLT_MAX, rng.int(-3, 3)));
    case 4: return Math.abs(wide(100, 127));
    case 5: return Math.abs(nudge(pick([FLT_MAX, 2688, 6, 448, 12, 1, 2 ** -126]), rng.int(-2, 2)));
    default: return Math.abs(wide(-40, 40));
  }
}

/** nvfp4_scales.bin: [amax, s_enc, s_dec, mult]; nvfp4_byte.bin: [bamax, mult, byte]; nvfp4_enc.bin: [byte, s_dec, enc] */
function genNvfp4Scalars(): void {
  const t = new Sink("nvfp4_scales.bin", 4);
  for (let i = 0; i < N; i++) {
    const amax = amaxSample();
    const { sEnc, sDec, mult } = nvfp4TensorScales(amax);
    t.f(amax); t.f(sEnc); t.f(sDec); t.f(mult); t.end();
  }
  t.save();
  const b = new Sink("nvfp4_byte.bin", 3);
  for (let i = 0; i < N; i++) {
    const { mult } = nvfp4TensorScales(amaxSample());
    const r = rng.int(0, 9);
    const bamax = r === 0 ? NaN : r === 1 ? Infinity : r < 4 ? Math.abs(wide()) : fr(Math.abs(uniformIn(0, 1)) * (2688 / (mult * 6)));
    b.f(bamax); b.f(mult); b.w(nvfp4BlockScaleByte(bamax, mult)); b.end();
  }
  b.save();
  const e = new Sink("nvfp4_enc.bin", 3);
  for (let i = 0; i < N / 256; i++) {
    const { sDec } = nvfp4TensorScales(amaxSample());
    const encs = nvfp4EncodeScales(sDec);
    for (let byte = 0; byte < 256; byte++) { e.w(byte); e.f(sDec); e.w(encs[byte] !== encs[byte] ? 0x7fc00000 : f32ToBits(encs[byte])); e.end(); }
  }
  e.save();
}

/** mx_scale.bin: [amax, floor byte, rceil byte]; fp8_scale.bin: [amax, fmax, pow2, scale] */
function genScaleRules(): void {
  const m = new Sink("mx_scale.bin", 3);
  for (let i = 0; i < N; i++) {
    const r = rng.int(0, 5);
    const amax = r === 0 ? anyBits() : r === 1 ? Math.abs(wide(-149, -120)) : r === 2 ? Math.abs(nudge(pick([6, 12, 2 ** -125, 2 ** -124 * 3, 6 * 2 ** 125, FLT_MAX]), rng.int(-3, 3))) : Math.abs(wide());
    m.f(amax); m.w(e8m0FloorFromAmax(amax)); m.w(e8m0RceilFromAmax(amax)); m.end();
  }
  m.save();
  const f = new Sink("fp8_scale.bin", 4);
  for (let i = 0; i < N; i++) {
    const amax = rng.int(0, 9) === 0 ? NaN : amaxSample();
    const fmax = rng.u32() & 1 ? 448 : 57344;
    const pow2 = rng.u32() & 1;
    f.f(amax); f.f(fmax); f.w(pow2); f.f(fp8ScaleFromAmax(amax, fmax, pow2 === 1)); f.end();
  }
  f.save();
}

// ------------------------------------------------------------------ block-level functions

/** Fill a block of n values: one of several distributions at scale 2^k, with occasional specials. */
function fillBlock(x: Float32Array, o: number, n: number, k: number, mode: number): void {
  const sc = 2 ** k;
  for (let i = o; i < o + n; i++) {
    let v: number;
    switch (mode) {
      case 0: v = rng.normal() * sc; break;
      case 1: v = rng.int(-12, 12) * sc / 2; break;  // small integers: exact ties
      case 2: v = pick(E2M1_POINTS) * pick([1, -1]) * sc; break;
      case 3: v = rng.normal() * sc * (rng.int(0, 15) === 0 ? 1000 : 1); break;  // outliers
      case 4: v = rng.int(0, 3) === 0 ? pick([0, -0]) : rng.normal() * sc; break;
      default: v = wide(-149, 127);
    }
    if (rng.int(0, 499) === 0) v = pick([NaN, Infinity, -Infinity, -0]);
    x[i] = v;
  }
}

/**
 * nvfp4_block.bin, one record per 1x16 block:
 *   [amax, sr, x[16], r8[16] packed 4 per word, scale byte, packed lo, packed hi, operand[16]]
 * from quantizeNVFP4 on batches of 64 blocks sharing one tensor amax (max|x| or a forced one).
 */
function genNvfp4Blocks(): void {
  const s = new Sink("nvfp4_block.bin", 1 + 1 + 16 + 4 + 1 + 2 + 16);
  const B = 64;
  for (let batch = 0; batch < N / B; batch++) {
    const x = new Float32Array(B * 16);
    const k = rng.int(0, 3) === 0 ? rng.int(-150, 125) : rng.int(-20, 20);
    const mode = rng.int(0, 5);
    for (let b = 0; b < B; b++) fillBlock(x, b * 16, 16, k + rng.int(-6, 0), mode);
    const sr = rng.u32() & 1;
    const rb = new Uint8Array(B * 16);
    for (let i = 0; i < rb.length; i++) rb[i] = rng.int(0, 255);
    const forced = rng.int(0, 3) === 0 ? amaxSample() : undefined;
    const q = quantizeNVFP4(x, [B, 16], { amax: forced, rounding: sr ? "sr" : "rtn", randomBytes: sr ? rb : undefined, nonFinite: "te" });
    const op = nvfp4Operand(q);
    for (let b = 0; b < B; b++) {
      s.f(q.amax); s.w(sr);
      for (let i = 0; i < 16; i++) s.w(f32ToBits(x[b * 16 + i]));
      for (let i = 0; i < 16; i += 4) s.w(rb[b * 16 + i] | (rb[b * 16 + i + 1] << 8) | (rb[b * 16 + i + 2] << 16) | (rb[b * 16 + i + 3] << 24));
      s.w(q.scales[b]);
      const p = q.packed;
      s.w(p[b * 8] | (p[b * 8 + 1] << 8) | (p[b * 8 + 2] << 16) | (p[b * 8 + 3] << 24));
      s.w(p[b * 8 + 4] | (p[b * 8 + 5] << 8) | (p[b * 8 + 6] << 16) | (p[b * 8 + 7] << 24));
      for (let i = 0; i < 16; i++) s.w(op[b * 16 + i] !== op[b * 16 + i] ? 0x7fc00000 : f32ToBits(op[b * 16 + i]));
      s.end();
    }
  }
  s.save();
}

/**
 * mxfp4_block.bin, one record per 1x32 block:
 *   [rceil, sr, x[32], r8[32] packed (8 words), scale byte, packed[16 bytes] (4 words), operand[32]]
 */
function genMxfp4Blocks(): void {
  const s = new Sink("mxfp4_block.bin", 1 + 1 + 32 + 8 + 1 + 4 + 32);
  const B = 64;
  for (let batch = 0; batch < N / B; batch++) {
    const x = new Float32Array(B * 32);
    const k = rng.int(0, 2) === 0 ? rng.int(-152, 130) : rng.int(-20, 20);
    const mode = rng.int(0, 5);
    for (let b = 0; b < B; b++) fillBlock(x, b * 32, 32, k + rng.int(-4, 0), mode);
    const sr = rng.u32() & 1, rceil = rng.u32() & 1;
    const rb = new Uint8Array(B * 32);
    for (let i = 0; i < rb.length; i++) rb[i] = rng.int(0, 255);
    const q = quantizeMXFP4(x, [B, 32], { scaleRounding: rceil ? "rceil" : "floor", rounding: sr ? "sr" : "rtn", randomBytes: sr ? rb : undefined, nonFinite: "te" });
    const op = dequantizeMXFP4(q);
    for (let b = 0; b < B; b++) {
      s.w(rceil); s.w(sr);
      for (let i = 0; i < 32; i++) s.w(f32ToBits(x[b * 32 + i]));
      for (let i = 0; i < 32; i += 4) s.w(rb[b * 32 + i] | (rb[b * 32 + i + 1] << 8) | (rb[b * 32 + i + 2] << 16) | (rb[b * 32 + i + 3] << 24));
      s.w(q.scales[b]);
      const p = q.packed;
      for (let i = 0; i < 16; i += 4) s.w(p[b * 16 + i] | (p[b * 16 + i + 1] << 8) | (p[b * 16 + i + 2] << 16) | (p[b * 16 + i + 3] << 24));
      for (let i = 0; i < 32; i++) s.w(op[b * 32 + i] !== op[b * 32 + i] ? 0x7fc00000 : f32ToBits(op[b * 32 + i]));
      s.end();
    }
  }
  s.save();
}

/**
 * fp8_block.bin, one record per row block of 16 (quantizeFP8 1x128 on (64, 16): each row one block):
 *   [e5m2, pow2, x[16], scaleInv, data[16 bytes] (4 words), operand[16]]
 */
function genFp8Blocks(): void {
  const s = new Sink("fp8_block.bin", 2 + 16 + 1 + 4 + 16);
  const B = 64;
  for (let batch = 0; batch < N / B; batch++) {
    const x = new Float32Array(B * 16);
    const k = rng.int(0, 2) === 0 ? rng.int(-150, 127) : rng.int(-20, 20);
    const mode = rng.int(0, 5);
    for (let b = 0; b < B; b++) fillBlock(x, b * 16, 16, k + rng.int(-4, 0), mode);
    const e5m2 = rng.u32() & 1, pow2 = rng.u32() & 1;
    const q = quantizeFP8(x, [B, 16], { format: e5m2 ? "e5m2" : "e4m3", scaling: "1x128", pow2Scales: pow2 === 1, nonFinite: "te" });
    const op = dequantizeFP8(q);
    for (let b = 0; b < B; b++) {
      s.w(e5m2); s.w(pow2);
      for (let i = 0; i < 16; i++) s.w(f32ToBits(x[b * 16 + i]));
      s.f(q.scaleInv[b]);
      for (let i = 0; i < 16; i += 4) s.w(q.data[b * 16 + i] | (q.data[b * 16 + i + 1] << 8) | (q.data[b * 16 + i + 2] << 16) | (q.data[b * 16 + i + 3] << 24));
      for (let i = 0; i < 16; i++) s.w(op[b * 16 + i] !== op[b * 16 + i] ? 0x7fc00000 : f32ToBits(op[b * 16 + i]));
      s.end();
    }
  }
  s.save();
}

/**
 * rht.bin, variable records, one per batch of groups:
 *   [n, mask0..3, G, x[G·n] bits, y[G·n] bf16 bits (one per word)]
 * y = rht(x, [G, n], {size: n, signs}) (BF16 output, one rounding of the exact binary64 sum).
 */
function genRht(): void {
  const s = new Sink("rht.bin", 0);
  const sizes = [2, 4, 8, 16, 32, 64, 128];
  let groups = 0;
  const addBatch = (n: number, signs: number[], x: Float32Array) => {
    const G = x.length / n;
    const y = rht(x, [G, n], { size: n, signs });
    const m = [0, 0, 0, 0];
    signs.forEach((v, i) => { if (v === -1) m[i >> 5] |= 1 << (i & 31); });
    s.w(n); for (const w of m) s.w(w >>> 0); s.w(G);
    for (let i = 0; i < x.length; i++) s.w(f32ToBits(x[i]));
    for (let i = 0; i < y.length; i++) s.w(y[i] !== y[i] ? 0x7fc0 : f32ToBits(y[i]) >>> 16);
    s.end();
    groups += G;
  };
  for (const n of sizes) {
    const target = n === 16 || n === 32 ? N : N / 8;
    for (let done = 0; done < target; ) {
      const G = 256;
      const signs = n === 16 && rng.int(0, 3) === 0 ? [...TE_SIGN_VECTOR] : Array.from({ length: n }, () => (rng.u32() & 1 ? -1 : 1));
      const x = new Float32Array(G * n);
      const mode = rng.int(0, 6);
      for (let g = 0; g < G; g++) {
        if (mode === 6) {  // wildly different magnitudes in one group: binary64 sums round, too
          for (let i = 0; i < n; i++) x[g * n + i] = wide(-149, 127);
        } else fillBlock(x, g * n, n, rng.int(-140, 120), mode);
      }
      addBatch(n, signs, x);
      done += G;
    }
  }
  // the vector file's examples (TE sign vector): checked against the file's BF16 outputs below too
  s.save();
  console.log(`  (${groups} groups)`);
  const rv = loadVector("rht16.json");
  const v = new Sink("vec_rht16.bin", 0);
  const ex = rv.examples;
  const x = f32s(ex.x);
  const G = ex.shape[0];
  v.w(16); v.w(signMask(rv.sign_vector)); v.w(0); v.w(0); v.w(0); v.w(G);
  for (let i = 0; i < x.length; i++) v.w(f32ToBits(x[i]));
  for (const b of ex.y_bf16_bits as string[]) v.w(parseInt(b, 16) >>> 16);
  v.end();
  v.save();
}

// ------------------------------------------------------------------ tensor-level cases

interface TensorCase {
  kind: 0 | 1 | 2;  // nvfp4, mxfp4, fp8
  rows: number; cols: number; transpose: number;
  opt: number;  // nvfp4: tile2d; mxfp4: rceil; fp8: scaling 0/1/2
  rhtSize: number; mask: number[];
  sr: number; seedLo: number; seedHi: number; tensorId: number;
  e5m2: number; pow2: number;
  x: Float32Array;
  r8?: Uint8Array;  // explicit SR bytes (vectors); else Philox
  amax: number;  // nvfp4 expected amax; others 0
  packed: Uint8Array;  // nvfp4/mxfp4 packed codes, fp8 data
  scales: Uint8Array;  // nvfp4/mxfp4 scale bytes
  scaleInv: Float32Array;  // fp8
  operand: Float32Array;
}

/**
 * tensors.bin / vec_tensors.bin, variable records:
 *   [kind, rows, cols, transpose, opt, rht_size, mask0..3, sr, seed_lo, seed_hi, tensor_id, e5m2,
 *    pow2, bf16_exact, first_bad (−1 = none), x (arr), r8 (bytes, length 0 = Philox), amax bits,
 *    packed (bytes), scales (bytes), scale_inv (arr of fp32 bits), operand (arr of fp32 bits)]
 */
function writeTensor(s: Sink, t: TensorCase): void {
  const bf16Exact = t.x.every((v) => v !== v || (f32ToBits(v) & 0xffff) === 0) ? 1 : 0;
  s.w(t.kind); s.w(t.rows); s.w(t.cols); s.w(t.transpose); s.w(t.opt); s.w(t.rhtSize);
  for (const m of t.mask) s.w(m >>> 0);
  s.w(t.sr); s.w(t.seedLo); s.w(t.seedHi); s.w(t.tensorId); s.w(t.e5m2); s.w(t.pow2); s.w(bf16Exact);
  s.w(firstNonFinite(t.x));
  s.arrF(t.x);
  s.bytes(t.r8 ?? new Uint8Array(0));
  s.f(t.amax);
  s.bytes(t.packed); s.bytes(t.scales); s.arrF(t.scaleInv); s.arrF(t.operand);
  s.end();
}

function maskWords(signs: number[]): number[] {
  const m = [0, 0, 0, 0];
  signs.forEach((v, i) => { if (v === -1) m[i >> 5] |= 1 << (i & 31); });
  return m.map((w) => w >>> 0);
}

function randomTensorCase(kind: 0 | 1 | 2): TensorCase {
  const transpose = rng.u32() & 1;
  let rhtSize = 0, opt = 0;
  if (kind === 0) { opt = rng.int(0, 2) === 0 ? 1 : 0; if (rng.u32() & 1) rhtSize = pick([16, 16, 16, 2, 4, 8, 32, 64, 128]); }
  if (kind === 1) { opt = rng.u32() & 1; if (rng.u32() & 1) rhtSize = pick([32, 32, 16, 64, 128, 2, 8]); }
  if (kind === 2) opt = rng.int(0, 2);
  const unitC = kind === 0 ? Math.max(16, rhtSize) : kind === 1 ? Math.max(32, rhtSize) : 1;
  // quantized orientation (R, C); C a multiple of unitC, R a multiple of 16 for tiles
  const C = kind === 2 ? rng.int(1, 300) : unitC * rng.int(1, Math.max(1, Math.floor(288 / unitC)));
  const R = kind === 0 && opt ? 16 * rng.int(1, 5) : kind === 2 ? (rng.u32() & 1 ? rng.int(1, 40) : rng.int(120, 170)) : rng.int(1, 70);
  const [rows, cols] = transpose ? [C, R] : [R, C];
  const x = new Float32Array(rows * cols);
  const mode = rng.int(0, 5);
  const k = rng.int(0, 4) === 0 ? rng.int(-140, 120) : rng.int(-10, 10);
  for (let i = 0; i < x.length; i += 16) fillBlock(x, i, Math.min(16, x.length - i), k + rng.int(-3, 0), mode === 5 ? 0 : mode);
  if (rng.int(0, 2) === 0) for (let i = 0; i < x.length; i++) x[i] = bitsToF32(f32ToBits(x[i]) & 0xffff0000);  // BF16 data
  if (rng.int(0, 3) !== 0) for (let i = 0; i < x.length; i++) if (x[i] !== x[i] || Math.abs(x[i]) === Infinity) x[i] = 1;  // mostly finite
  const signs = rhtSize ? (rhtSize === 16 && rng.u32() & 1 ? [...TE_SIGN_VECTOR] : Array.from({ length: rhtSize }, () => (rng.u32() & 1 ? -1 : 1))) : [];
  const sr = kind === 2 ? 0 : rng.u32() & 1;
  const seedLo = u32(), seedHi = rng.int(0, 0x1fffff), tensorId = u32();
  const seed = seedHi * 2 ** 32 + seedLo;
  const xo = transpose ? transpose_(x, rows, cols) : x;
  const base = { kind, rows, cols, transpose, opt, rhtSize, mask: maskWords(signs), sr, seedLo, seedHi, tensorId, e5m2: 0, pow2: 0, x };
  const rht_ = rhtSize ? { size: rhtSize, signs } : undefined;
  if (kind === 0) {
    const q = quantizeNVFP4(xo, [R, C], { tile2d: opt === 1, rounding: sr ? "sr" : "rtn", seed, tensorId, rht: rht_, nonFinite: "te" });
    return { ...base, amax: q.amax, packed: q.packed, scales: q.scales, scaleInv: new Float32Array(0), operand: nvfp4Operand(q) };
  }
  if (kind === 1) {
    const q = quantizeMXFP4(xo, [R, C], { scaleRounding: opt ? "rceil" : "floor", rounding: sr ? "sr" : "rtn", seed, tensorId, rht: rht_, nonFinite: "te" });
    return { ...base, amax: 0, packed: q.packed, scales: q.scales, scaleInv: new Float32Array(0), operand: dequantizeMXFP4(q) };
  }
  const e5m2 = rng.u32() & 1;
  const scaling: Fp8Scaling = (["tensor", "1x128", "128x128"] as const)[opt];
  const pow2 = rng.int(0, 2) === 0 ? (scaling === "tensor" ? 1 : 0) : scaling === "tensor" ? 0 : 1;
  const q = quantizeFP8(xo, [R, C], { format: e5m2 ? "e5m2" : "e4m3", scaling, pow2Scales: pow2 === 1, nonFinite: "te" });
  return { ...base, e5m2, pow2, amax: 0, packed: q.data, scales: new Uint8Array(0), scaleInv: q.scaleInv, operand: dequantizeFP8(q) };
}
const transpose_ = (x: Float32Array, rows: number, cols: number) => transpose(x, [rows, cols]);

function genTensors(): void {
  const s = new Sink("tensors.bin", 0);
  for (let i = 0; i < TENSORS; i++) writeTensor(s, randomTensorCase(([0, 0, 0, 0, 0, 1, 1, 2] as const)[i % 8]));
  s.save();
}

/** The shared vectors' NVFP4 / MXFP4 records as tensor cases, with the outputs from the files. */
function genVectorTensors(): void {
  const s = new Sink("vec_tensors.bin", 0);
  const none = { rhtSize: 0, mask: [0, 0, 0, 0], sr: 0, seedLo: 0, seedHi: 0, tensorId: 0, e5m2: 0, pow2: 0, scaleInv: new Float32Array(0) };
  const nv = (rec: Json, x: Float32Array, rows: number, cols: number, transpose: number, extra: Partial<TensorCase> = {}): TensorCase => {
    const packed = hexBytes(rec.packed), scales = hexBytes(rec.scales);
    const [R, C] = rec.shape as [number, number];
    const q = { shape: [R, C] as [number, number], packed, scales, amax: num(rec.amax.value), tile2d: false };
    return { kind: 0, rows, cols, transpose, opt: 0, x, amax: num(rec.amax.value), packed, scales, operand: nvfp4Operand(q), ...none, ...extra };
  };
  const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || (v !== v && b[i] !== b[i]));
  const edge = loadVector("nvfp4_1x16_edge.json");
  for (const c of edge.cases as Json[]) writeTensor(s, nv(c, f32s(c.x), c.shape[0], c.shape[1], 0));
  const hand = loadVector("nvfp4_1x16_hand.json").case;
  writeTensor(s, nv(hand, f32s(hand.x), 1, 32, 0));
  writeTensor(s, nv(loadVector("nvfp4_nan_policy.json").case, f32s(loadVector("nvfp4_nan_policy.json").case.x), 1, 32, 0));
  for (const [file, tile] of [["nvfp4_1x16_random.json", 0], ["nvfp4_2d_16x16.json", 1]] as const) {
    const v = loadVector(file);
    const xr = f32s(v.rowwise.x);
    const [r, c] = v.rowwise.shape;
    writeTensor(s, nv(v.rowwise, xr, r, c, 0, { opt: tile }));
    if (!same(f32s(v.columnwise.x), transpose(xr, [r, c]))) throw new Error(`${file}: columnwise.x is not rowwise.xᵀ`);
    writeTensor(s, nv(v.columnwise, xr, r, c, 1, { opt: tile }));
  }
  const sr = loadVector("nvfp4_sr_1x16.json");
  writeTensor(s, nv(sr.case, f32s(sr.case.x), sr.case.shape[0], sr.case.shape[1], 0, { sr: 1, r8: hexBytes(sr.r8) }));
  const g = loadVector("nvfp4_gemm.json");
  for (const op of [g.A, g.B]) writeTensor(s, nv(op, f32s(op.x), op.shape[0], op.shape[1], 0));
  const w = loadVector("nvfp4_rht_wgrad.json");
  const te = { rhtSize: 16, mask: [signMask(w.sign_vector), 0, 0, 0] };
  const X = f32s(w.X.x), dY = f32s(w.dY.x);
  writeTensor(s, nv(w.X_rowwise, X, w.X.shape[0], w.X.shape[1], 0));
  writeTensor(s, nv(w.X_columnwise_rht, X, w.X.shape[0], w.X.shape[1], 1, te));
  writeTensor(s, nv(w.dY_rowwise_sr, dY, w.dY.shape[0], w.dY.shape[1], 0, { sr: 1, r8: hexBytes(w.dY_rowwise_sr.r8) }));
  writeTensor(s, nv(w.dY_columnwise_rht_sr, dY, w.dY.shape[0], w.dY.shape[1], 1, { ...te, sr: 1, r8: hexBytes(w.dY_columnwise_rht_sr.r8) }));
  const mx = loadVector("mxfp4.json");
  const xm = f32s(mx.x);
  for (const [mode, rceil] of [["floor", 0], ["rceil", 1]] as const) {
    const packed = hexBytes(mx[mode].packed), scales = hexBytes(mx[mode].scales);
    const q = { shape: mx.shape as [number, number], packed, scales, scaleRounding: mode };
    writeTensor(s, { kind: 1, rows: mx.shape[0], cols: mx.shape[1], transpose: 0, opt: rceil, x: xm, amax: 0, packed, scales, operand: dequantizeMXFP4(q), ...none });
  }
  s.save();
}

/**
 * fast_tensors.bin: NVFP4 tensors in quantize-fast.cu's domain (RHT size 0..16), shaped to span
 * several CTAs of both its kernels (16x256 tiles of (R, C); 64x64 tiles of x for xᵀ) with partial
 * edge tiles.
 */
function genFastTensors(count: number): void {
  const s = new Sink("fast_tensors.bin", 0);
  for (let i = 0; i < count; i++) {
    const transpose = i & 1, tile2d = rng.int(0, 3) === 0 ? 1 : 0;
    const rhtSize = rng.u32() & 1 ? pick([16, 16, 2, 4, 8]) : 0;
    const C = 16 * rng.int(1, 20);
    const R = tile2d ? 16 * rng.int(1, 10) : rng.int(1, 150);
    const [rows, cols] = transpose ? [C, R] : [R, C];
    const x = new Float32Array(rows * cols);
    const mode = rng.int(0, 5);
    const k = rng.int(0, 5) === 0 ? rng.int(-140, 120) : rng.int(-10, 10);
    for (let j = 0; j < x.length; j += 16) fillBlock(x, j, Math.min(16, x.length - j), k + rng.int(-3, 0), mode === 5 ? 0 : mode);
    if (rng.int(0, 3) !== 0) for (let j = 0; j < x.length; j++) if (x[j] !== x[j] || Math.abs(x[j]) === Infinity) x[j] = 1;
    const signs = rhtSize ? (rhtSize === 16 && rng.u32() & 1 ? [...TE_SIGN_VECTOR] : Array.from({ length: rhtSize }, () => (rng.u32() & 1 ? -1 : 1))) : [];
    const sr = rng.u32() & 1;
    const seedLo = u32(), seedHi = rng.int(0, 0x1fffff), tensorId = u32();
    const seed = seedHi * 2 ** 32 + seedLo;
    const xo = transpose ? transpose_(x, rows, cols) : x;
    const q = quantizeNVFP4(xo, [R, C], { tile2d: tile2d === 1, rounding: sr ? "sr" : "rtn", seed, tensorId, rht: rhtSize ? { size: rhtSize, signs } : undefined, nonFinite: "te" });
    writeTensor(s, {
      kind: 0, rows, cols, transpose, opt: tile2d, rhtSize, mask: maskWords(signs), sr, seedLo, seedHi, tensorId, e5m2: 0, pow2: 0, x,
      amax: q.amax, packed: q.packed, scales: q.scales, scaleInv: new Float32Array(0), operand: nvfp4Operand(q),
    });
  }
  s.save();
}

/**
 * fp8_fast_tensors.bin: block-scaled FP8 tensors (1x128, 128x128; E4M3 and E5M2) in the domain of
 * quantize-fp8-fast.cu (C % 16 == 0 in the quantized orientation), shaped to span several CTAs of
 * its kernels with partial scale blocks in both directions (C not a multiple of 128, R not a
 * multiple of 128 or 32), per-block magnitudes spread over many octaves, some NaN/Inf.
 */
function genFp8FastTensors(count: number): void {
  const s = new Sink("fp8_fast_tensors.bin", 0);
  for (let i = 0; i < count; i++) {
    const transpose = i & 1, opt = rng.int(1, 2), e5m2 = rng.int(0, 3) === 0 ? 1 : 0, pow2 = rng.int(0, 5) === 0 ? 0 : 1;
    const C = 16 * rng.int(1, 26);
    const R = rng.int(0, 2) === 0 ? rng.int(1, 40) : rng.int(100, 300);
    const [rows, cols] = transpose ? [C, R] : [R, C];
    const x = new Float32Array(rows * cols);
    const mode = rng.int(0, 5);
    const k = rng.int(0, 5) === 0 ? rng.int(-140, 120) : rng.int(-10, 10);
    for (let j = 0; j < x.length; j += 16) fillBlock(x, j, Math.min(16, x.length - j), k + rng.int(-6, 0), mode === 5 ? 0 : mode);
    if (rng.int(0, 3) !== 0) for (let j = 0; j < x.length; j++) if (x[j] !== x[j] || Math.abs(x[j]) === Infinity) x[j] = 1;
    const xo = transpose ? transpose_(x, rows, cols) : x;
    const scaling: Fp8Scaling = opt === 1 ? "1x128" : "128x128";
    const q = quantizeFP8(xo, [R, C], { format: e5m2 ? "e5m2" : "e4m3", scaling, pow2Scales: pow2 === 1, nonFinite: "te" });
    writeTensor(s, {
      kind: 2, rows, cols, transpose, opt, rhtSize: 0, mask: [0, 0, 0, 0], sr: 0, seedLo: 0, seedHi: 0, tensorId: 0, e5m2, pow2, x,
      amax: 0, packed: q.data, scales: new Uint8Array(0), scaleInv: q.scaleInv, operand: dequantizeFP8(q),
    });
  }
  s.save();
}

const t0 = Date.now();
if (fp8FastOnly) {
  genFp8FastTensors(TENSORS);
  process.exit(0);
}
if (fastOnly) {
  genFastTensors(TENSORS);
  process.exit(0);
}
if (tensorsOnly) {
  genTensors();
  genVectorTensors();
  process.exit(0);
}
genE2m1Rn();
genE2m1Sr();
genFp8();
genBf16F32();
genBf16F64();
genPhilox();
genNvfp4Scalars();
genScaleRules();
genNvfp4Blocks();
genMxfp4Blocks();
genFp8Blocks();
genRht();
genTensors();
genVectorTensors();
console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
