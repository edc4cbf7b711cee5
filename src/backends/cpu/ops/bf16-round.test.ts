import { test } from "node:test";
import assert from "node:assert/strict";
import { roundToBf16 } from "./bf16-round.ts";
import { randn } from "./test-random.ts";

const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
const fromBits = (b: number) => new Float32Array(Uint32Array.of(b).buffer)[0];

test("roundToBf16: round to nearest, ties to even, on the fp32 bits; NaN stays NaN, inf stays inf", () => {
  const src = Float32Array.from([
    fromBits(0x3f808000), // 1 + 2^-8: tie, low bit of bf16 even → down to 1
    fromBits(0x3f818000), // tie with odd low bit → up to 0x3f82
    fromBits(0x3f808001), // just above a tie → up
    fromBits(0x3f807fff), // just below a tie → down
    fromBits(0x7f7fffff), // FLT_MAX → +inf (beyond the largest bf16 + half ulp)
    -Infinity,
    NaN,
    -0,
  ]);
  const dst = new Float32Array(src.length);
  roundToBf16(dst, src, src.length);
  assert.deepEqual(Array.from(dst.subarray(0, 6), bits), [0x3f800000, 0x3f820000, 0x3f810000, 0x3f800000, 0x7f800000, 0xff800000]);
  assert.ok(Number.isNaN(dst[6]));
  assert.ok(Object.is(dst[7], -0));
});

test("roundToBf16: every result is a bf16 value within half a bf16 ulp; in place equals out of place; tail untouched", () => {
  const n = 257;
  const src = Float32Array.from(randn(n + 3, 701, 100));
  const dst = new Float32Array(n + 3).fill(42);
  roundToBf16(dst, src, n);
  for (let i = 0; i < n; i++) {
    assert.equal(bits(dst[i]) & 0xffff, 0, `element ${i} has low bits`);
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(src[i]))) - 7);
    assert.ok(Math.abs(dst[i] - src[i]) <= ulp / 2, `element ${i}`);
  }
  assert.deepEqual(Array.from(dst.subarray(n)), [42, 42, 42]);
  const inPlace = src.slice();
  roundToBf16(inPlace, inPlace, n);
  assert.deepEqual(inPlace.subarray(0, n), dst.subarray(0, n));
  assert.deepEqual(inPlace.subarray(n), src.subarray(n));
});
