import { test } from "node:test";
import assert from "node:assert/strict";
import { E4M3, E4M3_DECODE, E4M3_MAX, e4m3Decode, e4m3Encode } from "./e4m3.ts";
import { nextDownF32, nextUpF32 } from "../../test/random.ts";

/** OCP e4m3fn decode from the bit layout: s eeee mmm, bias 7, S.1111.111 = NaN, no infinities. */
function e4m3Formula(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15, m = b & 7;
  if (e === 15 && m === 7) return NaN;
  const mag = e === 0 ? m * 2 ** -9 : (8 + m) * 2 ** (e - 10);
  return sign * mag;
}

const hex = (b: number) => "0x" + b.toString(16).padStart(2, "0");

test("decode table equals the bit-layout formula for all 256 bytes", () => {
  assert.equal(E4M3_DECODE.length, 256);
  for (let b = 0; b < 256; b++) {
    const want = b === 0x80 ? -0 : e4m3Formula(b);
    const got = e4m3Decode(b);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), hex(b));
    else assert.ok(Object.is(got, want), `${hex(b)}: ${got} vs ${want}`);
    assert.ok(Object.is(E4M3_DECODE[b], got));
  }
  assert.equal(e4m3Decode(0x7e), 448);
  assert.equal(E4M3_MAX, 448);
  assert.equal(e4m3Decode(0x08), 2 ** -6);
  assert.equal(e4m3Decode(0x01), 2 ** -9);
  assert.equal(E4M3.maxCode, 0x7e);
});

test("every byte re-encodes to itself (NaN bytes → canonical 0x7F), saturating or not", () => {
  let nans = 0;
  for (let b = 0; b < 256; b++) {
    const v = e4m3Decode(b);
    for (const sat of [true, false]) {
      const back = e4m3Encode(v, sat);
      if (Number.isNaN(v)) assert.equal(back, 0x7f, `${hex(b)} sat=${sat}`);
      else assert.equal(back, b, `${hex(b)} → ${v} → ${hex(back)} sat=${sat}`);
    }
    if (Number.isNaN(v)) nans++;
  }
  assert.equal(nans, 2);
  assert.equal(e4m3Encode(NaN), 0x7f);
  assert.equal(e4m3Encode(-NaN, false), 0x7f);
});

test("midpoints between consecutive finite codes round to the even code; ±1 fp32 ulp to the nearer", () => {
  let count = 0;
  for (let c = 0; c < 0x7e; c++) {
    const lo = e4m3Formula(c), hi = e4m3Formula(c + 1);
    assert.ok(hi > lo, `codes are monotone at ${hex(c)}`);
    const mid = (lo + hi) / 2;
    assert.equal(Math.fround(mid), mid);
    const even = c % 2 === 0 ? c : c + 1;
    for (const sat of [true, false]) {
      for (const s of [0, 0x80]) {
        const sg = s ? -1 : 1;
        assert.equal(e4m3Encode(sg * mid, sat), s | even, `${sg * mid}`);
        assert.equal(e4m3Encode(sg * nextUpF32(mid), sat), s | (c + 1), `${sg}·(${mid}+ulp)`);
        assert.equal(e4m3Encode(sg * nextDownF32(mid), sat), s | c, `${sg}·(${mid}−ulp)`);
        // doubles just off the midpoint (not fp32 values) round to the nearer code too
        assert.equal(e4m3Encode(sg * mid * (1 + 2 ** -40), sat), s | (c + 1), `${sg}·${mid}·(1+2^-40)`);
        assert.equal(e4m3Encode(sg * mid * (1 - 2 ** -40), sat), s | c, `${sg}·${mid}·(1−2^-40)`);
        count++;
      }
    }
  }
  assert.equal(count, 0x7e * 4);
});

test("overflow: 464 is a tie → 448; above it satfinite → 448, non-saturating → NaN", () => {
  const up = nextUpF32(464);
  assert.equal(e4m3Encode(448), 0x7e);
  assert.equal(e4m3Encode(464), 0x7e);
  assert.equal(e4m3Encode(464, false), 0x7e, "464 rounds to 448 (even) before any overflow");
  assert.equal(e4m3Encode(nextDownF32(464), false), 0x7e);
  assert.equal(e4m3Encode(up), 0x7e);
  assert.equal(e4m3Encode(-up), 0xfe);
  assert.equal(e4m3Encode(up, false), 0x7f);
  assert.ok(Number.isNaN(e4m3Decode(e4m3Encode(-up, false))), "negative overflow without saturation is a NaN byte");
  for (const x of [500, 1e6, 3.4e38, Infinity]) {
    assert.equal(e4m3Encode(x), 0x7e, `${x}`);
    assert.equal(e4m3Encode(-x), 0xfe, `${-x}`);
    assert.ok(Number.isNaN(e4m3Decode(e4m3Encode(x, false))), `${x} without saturation`);
    assert.ok(Number.isNaN(e4m3Decode(e4m3Encode(-x, false))), `${-x} without saturation`);
  }
  assert.equal(e4m3Encode(Infinity, false), 0x7f);
  // the same thresholds for doubles that are not fp32 values
  assert.equal(e4m3Encode(464 + 1e-9), 0x7e);
  assert.equal(e4m3Encode(464 + 1e-9, false), 0x7f);
  assert.equal(e4m3Encode(-(464 + 1e-9)), 0xfe);
  assert.equal(e4m3Encode(464 - 1e-9, false), 0x7e);
  assert.equal(e4m3Encode(1e300), 0x7e);
  assert.ok(Number.isNaN(e4m3Decode(e4m3Encode(1e300, false))));
  assert.equal(e4m3Encode(2 ** -10 * (1 + 2 ** -40)), 0x01);
  assert.equal(e4m3Encode(1e-300), 0x00);
});

test("subnormals: 2^-10 → 0, 2^-10+ulp → 2^-9, 3·2^-10 → even (2^-8), sign of zero kept", () => {
  assert.equal(e4m3Encode(2 ** -10), 0x00);
  assert.equal(e4m3Encode(-(2 ** -10)), 0x80);
  assert.equal(e4m3Encode(nextUpF32(2 ** -10)), 0x01);
  assert.equal(e4m3Encode(3 * 2 ** -10), 0x02);
  assert.equal(e4m3Encode(5 * 2 ** -10), 0x02);
  assert.equal(e4m3Encode(7 * 2 ** -10), 0x04);
  assert.equal(e4m3Encode(15 * 2 ** -10), 0x08, "7.5 quanta is a tie between 7·2^-9 and the smallest normal 2^-6");
  assert.equal(e4m3Encode(1e-45), 0x00);
  assert.equal(e4m3Encode(-1e-45), 0x80);
  assert.equal(e4m3Encode(-0), 0x80);
  assert.equal(e4m3Encode(0), 0x00);
});

test("encode equals nearest-value search over the decode formula (ties to even) on a dense sweep", () => {
  const finite: number[] = [];
  for (let c = 0; c <= 0x7e; c++) finite.push(e4m3Formula(c));
  const nearest = (a: number): number => {
    let best = 0;
    for (let c = 1; c < finite.length; c++) {
      const d = Math.abs(a - finite[c]), db = Math.abs(a - finite[best]);
      if (d < db || (d === db && c % 2 === 0)) best = c;
    }
    return best;
  };
  // geometric sweep from 2^-12 to 464 with a step that is not a power of two
  for (let a = 2 ** -12; a <= 464; a = Math.fround(a * 1.0137)) {
    assert.equal(e4m3Encode(a), nearest(a), `${a}`);
    assert.equal(e4m3Encode(-a), 0x80 | nearest(a), `${-a}`);
  }
});
