import { test } from "node:test";
import assert from "node:assert/strict";
import { E2M1_DECODE, E2M1_MAX, e2m1Decode, e2m1EncodeRN, e2m1EncodeSR, packNibbles, unpackNibbles } from "./e2m1.ts";
import { f32Bits, nextDownF32, nextUpF32, Rng } from "../../test/random.ts";

/** E2M1 value of a code from the format definition: 1 sign, 2 exponent (bias 1), 1 mantissa bit. */
function e2m1Formula(code: number): number {
  const sign = code & 8 ? -1 : 1;
  const e = (code >> 1) & 3, m = code & 1;
  const mag = e === 0 ? m * 0.5 : (1 + m / 2) * 2 ** (e - 1);
  return sign * mag;
}

/** Positive grid, codes 0..7 (derived from the formula, not from the module). */
const GRID = Array.from({ length: 8 }, (_, c) => e2m1Formula(c));

test("grid derived from the bit layout is {0, 0.5, 1, 1.5, 2, 3, 4, 6}", () => {
  assert.deepEqual(GRID, [0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  assert.equal(E2M1_MAX, 6);
});

test("all 16 codes decode to the formula value and re-encode (RN) to themselves", () => {
  for (let c = 0; c < 16; c++) {
    const want = c === 8 ? -0 : e2m1Formula(c);
    assert.ok(Object.is(e2m1Decode(c), want), `decode(${c}) = ${e2m1Decode(c)}, want ${want}`);
    assert.ok(Object.is(E2M1_DECODE[c], want), `E2M1_DECODE[${c}]`);
    assert.equal(e2m1EncodeRN(e2m1Decode(c)), c, `RN(decode(${c}))`);
    // SR of a grid value never moves, whatever the random byte
    if ((c & 7) !== 7) for (let r8 = 0; r8 < 256; r8++) assert.equal(e2m1EncodeSR(e2m1Decode(c), r8), c, `SR(decode(${c}), ${r8})`);
  }
  assert.equal(e2m1EncodeRN(-0), 8);
  assert.equal(e2m1EncodeRN(0), 0);
  assert.equal(e2m1Decode(0x1f), e2m1Decode(0xf), "decode looks at the low nibble only");
});

test("RN midpoints go to the even code; ±1 fp32 ulp goes to the nearer one", () => {
  for (let i = 0; i < 7; i++) {
    const mid = (GRID[i] + GRID[i + 1]) / 2;
    assert.equal(Math.fround(mid), mid);
    const even = i % 2 === 0 ? i : i + 1;
    for (const s of [0, 8]) {
      const sg = s ? -1 : 1;
      assert.equal(e2m1EncodeRN(sg * mid), s | even, `RN(${sg * mid})`);
      assert.equal(e2m1EncodeRN(sg * nextUpF32(mid)), s | (i + 1), `RN(${sg}·(mid+ulp)) mid=${mid}`);
      assert.equal(e2m1EncodeRN(sg * nextDownF32(mid)), s | i, `RN(${sg}·(mid−ulp)) mid=${mid}`);
    }
  }
});

test("RN agrees with a nearest-grid-point search (ties to even code) on random fp32 values", () => {
  const rng = new Rng(101);
  const nearest = (x: number): number => {
    const a = Math.abs(x);
    let best = 0;
    for (let c = 1; c < 8; c++) {
      const d = Math.abs(a - GRID[c]), db = Math.abs(a - GRID[best]);
      if (d < db || (d === db && c % 2 === 0)) best = c;
    }
    return (x < 0 || Object.is(x, -0) ? 8 : 0) | best;
  };
  for (let n = 0; n < 20000; n++) {
    // mix of uniform values in [-7, 7] and values on the 1/8 lattice (hits ties and grid points)
    const x = n % 2 ? Math.fround((rng.uniform() * 2 - 1) * 7) : rng.int(-56, 56) / 8;
    assert.equal(e2m1EncodeRN(x), nearest(x), `x=${x}`);
  }
});

test("RN saturates at ±6, keeps the sign of zero, and maps NaN to +6", () => {
  for (const [x, code] of [
    [6, 7], [7, 7], [5.0000005, 7], [1e30, 7], [Infinity, 7], [-6, 15], [-7, 15], [-1e30, 15], [-Infinity, 15],
    [5, 6], [-5, 14], [0.25, 0], [-0.25, 8], [-0.1, 8], [-1e-45, 8], [1e-45, 0], [0.2500001, 1],
  ] as const) {
    assert.equal(e2m1EncodeRN(x), code, `RN(${x})`);
  }
  assert.equal(e2m1EncodeRN(NaN), 7);
  assert.equal(e2m1EncodeSR(NaN, 0), 7);
  assert.equal(e2m1EncodeSR(NaN, 255), 7);
});

// ---- stochastic rounding, checked against exact rational arithmetic ----

const SHIFT = 160n; // every fp32 value times 2^160 is an integer (min subnormal is 2^-149)

/** |x| · 2^160 as an exact BigInt, from the fp32 bits. */
function absScaled(x: number): bigint {
  const b = f32Bits(x) & 0x7fffffff;
  const e = b >>> 23, m = b & 0x7fffff;
  if (e === 0) return BigInt(m) << (SHIFT - 149n);
  return BigInt(m | 0x800000) << BigInt(e - 150 + 160);
}

const GRID_SCALED = GRID.map((g) => BigInt(g * 2) << (SHIFT - 1n));
const SIX = GRID_SCALED[7];

/**
 * trunc8 from the spec, split into the per-value part (sign, lower grid index, floor(256·frac),
 * all from exact rationals) and the per-byte decision: up iff floor(256·frac) + r8 ≥ 256.
 */
function srSpec(x: number): { s: number; i: number; k: number } {
  const s = f32Bits(x) >>> 31 ? 8 : 0;
  const a = absScaled(x);
  if (a >= SIX) return { s, i: 7, k: 0 };
  let i = 0;
  while (!(a < GRID_SCALED[i + 1])) i++;
  const k = Number((256n * (a - GRID_SCALED[i])) / (GRID_SCALED[i + 1] - GRID_SCALED[i]));
  return { s, i, k };
}

function srExpected(spec: { s: number; i: number; k: number }, r8: number): number {
  if (spec.i === 7) return spec.s | 7;
  return spec.s | (spec.k + r8 >= 256 ? spec.i + 1 : spec.i);
}

test("SR trunc8 equals the exact-rational rule for every interval and every r8", () => {
  const rng = new Rng(202);
  let checked = 0, ups = 0;
  for (let i = 0; i < 7; i++) {
    const lo = GRID[i], hi = GRID[i + 1];
    const pts: number[] = [];
    for (let j = 0; j <= 256; j++) {
      const p = lo + (j * (hi - lo)) / 256; // exact: (hi−lo)/256 is a power of two
      pts.push(p, nextUpF32(p), nextDownF32(p));
    }
    for (let j = 0; j < 64; j++) pts.push(Math.fround(lo + rng.uniform() * (hi - lo)));
    if (i === 0) pts.push(1e-45, 1e-40, 2 ** -126, 2 ** -10, 2 ** -9 - 2 ** -30);
    for (const p of pts) {
      if (!(p >= lo && p < hi)) continue;
      for (const x of [p, -p]) {
        const spec = srSpec(x);
        assert.equal(spec.i, i);
        let upCount = 0;
        for (let r8 = 0; r8 < 256; r8++) {
          const got = e2m1EncodeSR(x, r8);
          if (got !== srExpected(spec, r8)) assert.equal(got, srExpected(spec, r8), `SR(${x}, ${r8})`);
          if ((got & 7) === i + 1) upCount++;
          checked++;
        }
        ups += upCount;
        // P(up) = floor(256·frac)/256 exactly
        assert.equal(upCount, spec.k, `number of r8 rounding ${x} up`);
      }
    }
  }
  assert.ok(checked > 1_000_000 && ups > 0);
});

test("SR: grid points never move; |x| ≥ 6 and ±inf saturate for every r8", () => {
  for (let r8 = 0; r8 < 256; r8++) {
    for (let c = 0; c < 7; c++) {
      assert.equal(e2m1EncodeSR(GRID[c], r8), c);
      assert.equal(e2m1EncodeSR(-GRID[c], r8), 8 | c);
    }
    for (const x of [6, nextUpF32(6), 7, 1e30, Infinity]) {
      assert.equal(e2m1EncodeSR(x, r8), 7, `SR(${x}, ${r8})`);
      assert.equal(e2m1EncodeSR(-x, r8), 15, `SR(${-x}, ${r8})`);
    }
    // just below 6: frac = 1 − 2^-22/2 → floor(256·frac) = 255, so only r8 = 0 keeps it at 4
    assert.equal(e2m1EncodeSR(nextDownF32(6), r8), r8 >= 1 ? 7 : 6);
    // a zero result keeps the sign
    assert.equal(e2m1EncodeSR(-1e-45, r8), 8);
    assert.equal(e2m1EncodeSR(-0, r8), 8);
  }
});

test("SR hand cases: frac exactly k/256 and one ulp either side", () => {
  // x = 1 + 0.5·(100/256): floor(256·frac) = 100 → up iff r8 ≥ 156
  const x = 1 + (0.5 * 100) / 256;
  assert.equal(e2m1EncodeSR(x, 155), 2);
  assert.equal(e2m1EncodeSR(x, 156), 3);
  // one ulp below: floor = 99 → up iff r8 ≥ 157
  assert.equal(e2m1EncodeSR(nextDownF32(x), 156), 2);
  assert.equal(e2m1EncodeSR(nextDownF32(x), 157), 3);
  // 4.5 in [4, 6): frac = 1/4 → up iff r8 ≥ 192
  assert.equal(e2m1EncodeSR(-4.5, 191), 8 | 6);
  assert.equal(e2m1EncodeSR(-4.5, 192), 8 | 7);
  // r8 is taken modulo 256
  assert.equal(e2m1EncodeSR(4.5, 192 + 256), 7);
});

test("pack/unpack: element 2i in the low nibble, round trip, odd length rejected", () => {
  const codes = Uint8Array.from([1, 2, 3, 4, 15, 0, 8, 7]);
  const packed = packNibbles(codes);
  assert.deepEqual([...packed], [0x21, 0x43, 0x0f, 0x78]);
  assert.deepEqual([...unpackNibbles(Uint8Array.from([0x21, 0x43, 0x0f, 0x78]))], [...codes]);

  const rng = new Rng(303);
  const many = Uint8Array.from({ length: 1002 }, () => rng.int(0, 15));
  const p = packNibbles(many);
  assert.equal(p.length, 501);
  for (let i = 0; i < p.length; i++) assert.equal(p[i], many[2 * i] + 16 * many[2 * i + 1]);
  assert.deepEqual(unpackNibbles(p), many);
  assert.throws(() => packNibbles(new Uint8Array(3)), /odd/);
  assert.equal(packNibbles(new Uint8Array(0)).length, 0);
});
