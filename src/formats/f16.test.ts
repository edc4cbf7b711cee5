import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeF16, f16BitsToF32, f32ToF16Bits } from "./f16.ts";

const hex = (b: number) => "0x" + b.toString(16).padStart(4, "0");
const isNanCode = (b: number) => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;

test("every one of the 65536 codes decodes and re-encodes to itself (NaNs to a NaN)", () => {
  let nans = 0;
  for (let c = 0; c < 65536; c++) {
    const v = f16BitsToF32(c);
    assert.equal(Math.fround(v), v, `${hex(c)} decodes to a non-fp32 value`);
    const back = f32ToF16Bits(v);
    if (isNanCode(c)) {
      nans++;
      assert.ok(Number.isNaN(v), `${hex(c)} should decode to NaN`);
      assert.ok(isNanCode(back), `${hex(c)} re-encodes to non-NaN ${hex(back)}`);
    } else {
      assert.equal(back, c, `${hex(c)} → ${v} → ${hex(back)}`);
    }
  }
  assert.equal(nans, 2 * 1023);
});

test("decodeF16 agrees with f16BitsToF32 on every code", () => {
  const all = new Uint16Array(65536);
  for (let c = 0; c < 65536; c++) all[c] = c;
  const out = decodeF16(all);
  assert.equal(out.length, 65536);
  for (let c = 0; c < 65536; c++) {
    const want = f16BitsToF32(c);
    assert.ok(Object.is(out[c], want) || (Number.isNaN(out[c]) && Number.isNaN(want)), hex(c));
  }
  assert.equal(decodeF16(new Uint16Array(0)).length, 0);
});

test("known decodings", () => {
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0xc000), -2);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x0400), 2 ** -14);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16BitsToF32(0x3555), 0.333251953125);
  assert.equal(f16BitsToF32(0x2e66), 0.0999755859375);
  assert.equal(f16BitsToF32(0x7c00), Infinity);
  assert.equal(f16BitsToF32(0xfc00), -Infinity);
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
  assert.ok(Object.is(f16BitsToF32(0x0000), 0));
  assert.ok(Number.isNaN(f16BitsToF32(0x7c01)));
  assert.ok(Number.isNaN(f16BitsToF32(0xfe00)));
});

test("encoding rounds to nearest, ties to even (hand-computed)", () => {
  const cases: [number, number, string][] = [
    [1, 0x3c00, "one"],
    [1 + 2 ** -11, 0x3c00, "tie between 0x3c00 (even) and 0x3c01"],
    [1 + 3 * 2 ** -11, 0x3c02, "tie between 0x3c01 and 0x3c02 (even)"],
    [1 + 2 ** -11 + 2 ** -30, 0x3c01, "just above a tie"],
    [1 + 2 ** -11 - 2 ** -30, 0x3c00, "just below a tie"],
    [2049, 0x6800, "quantum 2 above 2048: tie → 2048"],
    [2051, 0x6802, "tie → 2052"],
    [2 - 2 ** -12, 0x4000, "carry into the next binade"],
    [0.1, 0x2e66, "0.1"],
    [Math.fround(0.1), 0x2e66, "fp32 0.1"],
    [1 / 3, 0x3555, "1/3"],
    [-1.5, 0xbe00, "negative"],
    [2 ** -24, 0x0001, "smallest subnormal"],
    [2 ** -25, 0x0000, "half the smallest subnormal: tie → 0"],
    [2 ** -25 + 2 ** -40, 0x0001, "just above half the smallest subnormal"],
    [3 * 2 ** -25, 0x0002, "subnormal tie between 1 and 2 → 2"],
    [1023 * 2 ** -24, 0x03ff, "largest subnormal"],
    [1023.5 * 2 ** -24, 0x0400, "subnormal tie rounds up into the smallest normal"],
    [-(2 ** -26), 0x8000, "tiny negative underflows to -0"],
    [1e-30, 0x0000, "far underflow"],
    [1 + 2 ** -11 + 2 ** -40, 0x3c01, "one rounding of the double, not double rounding through fp32"],
  ];
  for (const [x, want, why] of cases) assert.equal(hex(f32ToF16Bits(x)), hex(want), `${x}: ${why}`);
});

test("overflow, infinities, zeros and NaN", () => {
  assert.equal(hex(f32ToF16Bits(65504)), "0x7bff");
  assert.equal(hex(f32ToF16Bits(65519.99)), "0x7bff", "below the halfway point to 2^16");
  assert.equal(hex(f32ToF16Bits(65520)), "0x7c00", "tie between 65504 (odd) and 2^16 → inf");
  assert.equal(hex(f32ToF16Bits(-65520)), "0xfc00");
  assert.equal(hex(f32ToF16Bits(1e6)), "0x7c00");
  assert.equal(hex(f32ToF16Bits(3.4e38)), "0x7c00");
  assert.equal(hex(f32ToF16Bits(Infinity)), "0x7c00");
  assert.equal(hex(f32ToF16Bits(-Infinity)), "0xfc00");
  assert.equal(hex(f32ToF16Bits(0)), "0x0000");
  assert.equal(hex(f32ToF16Bits(-0)), "0x8000");
  assert.equal(hex(f32ToF16Bits(NaN)), "0x7e00");
  assert.equal(hex(f32ToF16Bits(-NaN)), "0x7e00");
});
