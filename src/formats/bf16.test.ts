import { test } from "node:test";
import assert from "node:assert/strict";
import { bf16BitsToF32, f32ToBf16Bits, fromBf16Bits, roundBf16, roundBf16InPlace, roundF64ToBf16, toBf16Bits } from "./bf16.ts";
import { f32Bits, f32FromBits, Rng } from "../../test/random.ts";

const hex = (b: number, w = 4) => "0x" + (b >>> 0).toString(16).padStart(w, "0");
const isNanBf16 = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

/** RNE of an fp32 bit pattern to BF16 bits, written from the definition (non-NaN input). */
function bf16RneRef(bits: number): number {
  const low = bits & 0xffff;
  let hi = bits >>> 16;
  if (low > 0x8000 || (low === 0x8000 && (hi & 1) === 1)) hi += 1;
  return hi & 0xffff;
}

test("all 65536 BF16 patterns decode exactly and round trip (NaN → a NaN)", () => {
  let nans = 0;
  for (let b = 0; b < 65536; b++) {
    const v = bf16BitsToF32(b);
    const want = f32FromBits(b << 16);
    const back = f32ToBf16Bits(v);
    if (isNanBf16(b)) {
      nans++;
      assert.ok(Number.isNaN(v), hex(b));
      assert.ok(isNanBf16(back), `${hex(b)} → ${hex(back)}`);
    } else {
      assert.ok(Object.is(v, want), `${hex(b)}: ${v} vs ${want}`);
      assert.equal(back, b, `${hex(b)} → ${v} → ${hex(back)}`);
    }
  }
  assert.equal(nans, 2 * 127);
  // array helpers agree with the scalar ones
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const vals = fromBf16Bits(all);
  const again = toBf16Bits(vals);
  for (let b = 0; b < 65536; b++) if (!isNanBf16(b)) assert.equal(again[b], b);
});

test("RNE ties and near-ties on hand-built fp32 patterns", () => {
  const cases: [number, number][] = [
    [0x3f808000, 0x3f80], // 1 + 2^-8: tie, lower is even
    [0x3f818000, 0x3f82], // tie, upper is even
    [0x3f808001, 0x3f81], // just above the tie
    [0x3f807fff, 0x3f80], // just below the tie
    [0x3f80ffff, 0x3f81],
    [0xbf808000, 0xbf80], // negative tie
    [0xbf818000, 0xbf82],
    [0x3f7f8000, 0x3f80], // tie at the top of a binade carries into the exponent (0x3f7f odd)
    [0x7f7f8000, 0x7f80], // tie above the largest BF16 → +inf (0x7f7f is odd)
    [0x7f7f7fff, 0x7f7f], // largest fp32 below the tie stays finite
    [0x7f7fffff, 0x7f80], // FLT_MAX → inf
    [0xff7fffff, 0xff80],
    [0x00008000, 0x0000], // subnormal tie → 0
    [0x00018000, 0x0002], // subnormal tie → even
    [0x00008001, 0x0001],
    [0x80008000, 0x8000], // −tiny → −0
    [0x7f800000, 0x7f80], // +inf
    [0xff800000, 0xff80], // −inf
    [0x00000000, 0x0000],
    [0x80000000, 0x8000],
  ];
  for (const [bits, want] of cases) {
    assert.equal(f32ToBf16Bits(f32FromBits(bits)), want, hex(bits, 8));
    assert.equal(bf16RneRef(bits), want, `reference ${hex(bits, 8)}`);
    const a = new Float32Array(1);
    new Uint32Array(a.buffer)[0] = bits;
    roundBf16InPlace(a);
    assert.equal(new Uint32Array(a.buffer)[0], (want << 16) >>> 0, `in place ${hex(bits, 8)}`);
    assert.ok(Object.is(roundBf16(f32FromBits(bits)), f32FromBits(want << 16)));
  }
  assert.ok(isNanBf16(f32ToBf16Bits(NaN)));
});

test("roundBf16InPlace keeps NaN payload-free quiet NaNs with their sign (bits, not numbers)", () => {
  const a = new Float32Array(4);
  const u = new Uint32Array(a.buffer);
  u.set([0x7f800001, 0xff800001, 0x7fffffff, 0x7fc00000]);
  roundBf16InPlace(a);
  assert.deepEqual([...u], [0x7fc00000, 0xffc00000, 0x7fc00000, 0x7fc00000]);
});

test("roundBf16InPlace agrees with f32ToBf16Bits and the RNE definition on 100k random patterns", () => {
  const rng = new Rng(404);
  const n = 100_000;
  const a = new Float32Array(n);
  const u = new Uint32Array(a.buffer);
  for (let i = 0; i < n; i++) {
    let b = rng.u32();
    switch (i % 5) {
      case 1: b &= 0x807fffff; break; // subnormal / zero
      case 2: b |= 0x7f800000; break; // inf / NaN
      case 3: b = (b & 0xffff0000) | 0x8000; break; // exact tie
      case 4: b = (b & 0xffff0000) | (0x8000 + (rng.u32() & 1 ? 1 : -1)); break; // next to a tie
    }
    u[i] = b >>> 0;
  }
  const orig = Uint32Array.from(u);
  roundBf16InPlace(a);
  let nans = 0, ties = 0;
  for (let i = 0; i < n; i++) {
    const b = orig[i];
    const isNan = (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
    if (isNan) {
      nans++;
      assert.equal(u[i], ((b & 0x80000000) | 0x7fc00000) >>> 0, hex(b, 8));
      assert.ok(isNanBf16(f32ToBf16Bits(f32FromBits(b))));
      continue;
    }
    if ((b & 0xffff) === 0x8000) ties++;
    const want = bf16RneRef(b);
    assert.equal(u[i], (want << 16) >>> 0, hex(b, 8));
    assert.equal(f32ToBf16Bits(f32FromBits(b)), want, hex(b, 8));
  }
  assert.ok(nans > 1000 && ties > 10000);
});

// ---- binary64 → BF16 in one rounding, checked with exact BigInt arithmetic ----

/** Decompose a finite nonzero double into (mantissa, exponent): |v| = M · 2^E, M integer. */
function decompose(v: number): { M: bigint; E: number } {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, Math.abs(v));
  const bits = dv.getBigUint64(0);
  const e = Number((bits >> 52n) & 0x7ffn);
  const m = bits & ((1n << 52n) - 1n);
  return e === 0 ? { M: m, E: -1074 } : { M: m | (1n << 52n), E: e - 1075 };
}

/** Exact RNE of a double to BF16 (8 significant bits, min normal 2^-126, quantum ≥ 2^-133). */
function f64ToBf16Ref(v: number): number {
  if (v === 0) return v;
  const { M, E } = decompose(v);
  const floorLog2 = M.toString(2).length - 1 + E;
  const q = Math.max(floorLog2, -126) - 7; // exponent of the BF16 quantum
  let r: bigint;
  if (E >= q) r = M << BigInt(E - q);
  else {
    const sh = BigInt(q - E);
    r = M >> sh;
    const rem = M & ((1n << sh) - 1n), half = 1n << (sh - 1n);
    if (rem > half || (rem === half && (r & 1n) === 1n)) r += 1n;
  }
  const mag = Number(r) * 2 ** q;
  const out = mag >= 2 ** 128 ? Infinity : mag;
  return v < 0 ? -out : out;
}

test("roundF64ToBf16 equals exact rational rounding on random doubles", () => {
  const rng = new Rng(505);
  let ties = 0;
  for (let n = 0; n < 30000; n++) {
    let v: number;
    const e = rng.int(-140, 129);
    if (n % 3 === 0) {
      // a BF16 value plus half a quantum plus a tiny perturbation (or exactly the tie)
      const q = 2 ** (Math.max(e, -126) - 7);
      const k = rng.int(128, 255);
      const pert = [0, q * 2 ** -30, -q * 2 ** -30, q * 2 ** -45][rng.int(0, 3)];
      v = (k + 0.5) * q + pert;
      if (pert === 0) ties++;
    } else {
      v = (1 + rng.uniform()) * 2 ** e;
    }
    if (rng.u32() & 1) v = -v;
    const want = f64ToBf16Ref(v);
    const got = roundF64ToBf16(v);
    assert.ok(Object.is(got, want), `v=${v}: got ${got}, want ${want}`);
    if (Number.isFinite(got)) assert.equal(f32Bits(got) & 0xffff, 0, "result is BF16-representable");
  }
  assert.ok(ties > 1000);
  for (const v of [0, -0, Infinity, -Infinity, 1e300, -1e300, 2 ** -140, -(2 ** -134), 3 * 2 ** -134]) {
    assert.ok(Object.is(roundF64ToBf16(v), f64ToBf16Ref(v)), `${v}`);
  }
  assert.ok(Number.isNaN(roundF64ToBf16(NaN)));
});

test("roundF64ToBf16 avoids the double rounding of Math.fround-then-BF16", () => {
  // v = 1 + 2^-8 + 2^-30: above the BF16 midpoint 1 + 2^-8, so one rounding gives 1 + 2^-7;
  // Math.fround drops 2^-30 (< half an fp32 ulp) and lands exactly on the tie, which goes to 1.
  const v = 1 + 2 ** -8 + 2 ** -30;
  assert.equal(Math.fround(v), 1 + 2 ** -8);
  assert.equal(roundF64ToBf16(v), 1 + 2 ** -7);
  assert.equal(bf16BitsToF32(f32ToBf16Bits(Math.fround(v))), 1);
  assert.equal(roundF64ToBf16(-v), -(1 + 2 ** -7));
  // the mirrored case below a tie whose lower neighbour is odd: 1 + 3·2^-8 − 2^-30
  const w = 1 + 3 * 2 ** -8 - 2 ** -30;
  assert.equal(roundF64ToBf16(w), 1 + 2 ** -7);
  assert.equal(bf16BitsToF32(f32ToBf16Bits(Math.fround(w))), 1 + 2 ** -6);
});
