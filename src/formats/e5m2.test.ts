import { test } from "node:test";
import assert from "node:assert/strict";
import { E5M2, E5M2_DECODE, E5M2_MAX, e5m2Decode, e5m2Encode } from "./e5m2.ts";
import { nextDownF32, nextUpF32 } from "../../test/random.ts";

/** OCP E5M2 decode from the bit layout: s eeeee mm, bias 15, IEEE-like (e = 31: inf / NaN). */
function e5m2Formula(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 2) & 31, m = b & 3;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  const mag = e === 0 ? m * 2 ** -16 : (4 + m) * 2 ** (e - 17);
  return sign * mag;
}

const hex = (b: number) => "0x" + b.toString(16).padStart(2, "0");

test("decode table equals the bit-layout formula for all 256 bytes", () => {
  assert.equal(E5M2_DECODE.length, 256);
  let nans = 0;
  for (let b = 0; b < 256; b++) {
    const want = b === 0x80 ? -0 : e5m2Formula(b);
    const got = e5m2Decode(b);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(got), hex(b));
      nans++;
    } else assert.ok(Object.is(got, want), `${hex(b)}: ${got} vs ${want}`);
  }
  assert.equal(nans, 6);
  assert.equal(e5m2Decode(0x7b), 57344);
  assert.equal(E5M2_MAX, 57344);
  assert.equal(e5m2Decode(0x7c), Infinity);
  assert.equal(e5m2Decode(0xfc), -Infinity);
  assert.equal(e5m2Decode(0x01), 2 ** -16);
  assert.equal(E5M2.maxCode, 0x7b);
});

test("every byte re-encodes to itself; NaN → 0x7F; ±inf saturate by default, stay inf without", () => {
  for (let b = 0; b < 256; b++) {
    const v = e5m2Decode(b);
    const mag = b & 0x7f;
    if (Number.isNaN(v)) {
      assert.equal(e5m2Encode(v), 0x7f, hex(b));
      assert.equal(e5m2Encode(v, false), 0x7f, hex(b));
    } else if (mag === 0x7c) {
      assert.equal(e5m2Encode(v), (b & 0x80) | 0x7b, `${hex(b)} saturating`);
      assert.equal(e5m2Encode(v, false), b, `${hex(b)} non-saturating`);
    } else {
      assert.equal(e5m2Encode(v), b, `${hex(b)} → ${v}`);
      assert.equal(e5m2Encode(v, false), b, `${hex(b)} → ${v} non-saturating`);
    }
  }
});

test("midpoints between consecutive finite codes round to the even code; ±1 fp32 ulp to the nearer", () => {
  for (let c = 0; c < 0x7b; c++) {
    const lo = e5m2Formula(c), hi = e5m2Formula(c + 1);
    assert.ok(hi > lo);
    const mid = (lo + hi) / 2;
    assert.equal(Math.fround(mid), mid);
    const even = c % 2 === 0 ? c : c + 1;
    for (const sat of [true, false]) {
      for (const s of [0, 0x80]) {
        const sg = s ? -1 : 1;
        assert.equal(e5m2Encode(sg * mid, sat), s | even, `${sg * mid}`);
        assert.equal(e5m2Encode(sg * nextUpF32(mid), sat), s | (c + 1), `${sg}·(${mid}+ulp)`);
        assert.equal(e5m2Encode(sg * nextDownF32(mid), sat), s | c, `${sg}·(${mid}−ulp)`);
        // doubles just off the midpoint (not fp32 values) round to the nearer code too
        assert.equal(e5m2Encode(sg * mid * (1 + 2 ** -40), sat), s | (c + 1), `${sg}·${mid}·(1+2^-40)`);
        assert.equal(e5m2Encode(sg * mid * (1 - 2 ** -40), sat), s | c, `${sg}·${mid}·(1−2^-40)`);
      }
    }
  }
});

test("overflow: 61440 (tie between 57344 and 2^16) → inf without saturation, 57344 with it", () => {
  assert.equal(e5m2Encode(61440, false), 0x7c);
  assert.equal(e5m2Encode(-61440, false), 0xfc);
  assert.equal(e5m2Encode(61440), 0x7b);
  assert.equal(e5m2Encode(-61440), 0xfb);
  assert.equal(e5m2Encode(nextDownF32(61440), false), 0x7b, "just below the tie rounds down to max");
  assert.equal(e5m2Encode(nextUpF32(61440), false), 0x7c);
  assert.equal(e5m2Encode(61440 + 1e-9, false), 0x7c, "a double just above the tie");
  assert.equal(e5m2Encode(61440 - 1e-9, false), 0x7b, "a double just below the tie");
  assert.equal(e5m2Encode(2 ** -17 * (1 + 2 ** -40)), 0x01);
  for (const x of [65536, 1e10, 3.4e38, 1e300, Infinity]) {
    assert.equal(e5m2Encode(x), 0x7b, `${x}`);
    assert.equal(e5m2Encode(-x), 0xfb, `${-x}`);
    assert.equal(e5m2Encode(x, false), 0x7c, `${x} non-saturating`);
    assert.equal(e5m2Encode(-x, false), 0xfc, `${-x} non-saturating`);
  }
});

test("subnormals: 2^-17 → 0, 2^-17+ulp → 2^-16, 3·2^-17 → even (2^-15), sign of zero kept", () => {
  assert.equal(e5m2Encode(2 ** -17), 0x00);
  assert.equal(e5m2Encode(-(2 ** -17)), 0x80);
  assert.equal(e5m2Encode(nextUpF32(2 ** -17)), 0x01);
  assert.equal(e5m2Encode(3 * 2 ** -17), 0x02);
  assert.equal(e5m2Encode(7 * 2 ** -17), 0x04, "3.5 quanta is a tie between 3·2^-16 and the smallest normal 2^-14");
  assert.equal(e5m2Encode(1e-45), 0x00);
  assert.equal(e5m2Encode(-0), 0x80);
});
