import { test } from "node:test";
import assert from "node:assert/strict";
import { UE8M0_NAN, ue8m0Decode, ue8m0Encode, type Ue8m0Rounding } from "./ue8m0.ts";
import { f32FromBits } from "../../test/random.ts";

const MODES: Ue8m0Rounding[] = ["floor", "ceil", "rn"];

test("all 256 bytes decode: b → 2^(b−127) (fp32 exponent field b), 0 → 2^-127, 0xFF → NaN", () => {
  for (let b = 0; b < 255; b++) {
    // fp32 with exponent field b and zero mantissa is 2^(b−127); b = 0 needs the subnormal 0x00400000
    const want = b === 0 ? f32FromBits(0x00400000) : f32FromBits(b << 23);
    assert.equal(ue8m0Decode(b), want, `byte ${b}`);
    assert.equal(Math.fround(ue8m0Decode(b)), ue8m0Decode(b), "every scale is an fp32 value");
  }
  assert.ok(Number.isNaN(ue8m0Decode(0xff)));
  assert.equal(UE8M0_NAN, 0xff);
  assert.equal(ue8m0Decode(0), 2 ** -127);
  assert.equal(ue8m0Decode(127), 1);
  assert.equal(ue8m0Decode(254), 2 ** 127);
  assert.equal(ue8m0Decode(256 + 127), 1, "only the low byte counts");
});

test("powers of two encode exactly in every mode", () => {
  for (let k = -127; k <= 127; k++) {
    for (const mode of MODES) assert.equal(ue8m0Encode(2 ** k, mode), k + 127, `2^${k} ${mode}`);
  }
});

test("values strictly between powers of two: floor → lower, ceil → upper, rn → nearer (ties to even byte)", () => {
  for (let k = -126; k <= 126; k++) {
    const lo = k + 127, hi = k + 128;
    for (const f of [1 + 2 ** -52, 1.25, 1.4999999, 1.5, 1.5000001, 1.75, 2 - 2 ** -52]) {
      const x = f * 2 ** k;
      assert.equal(ue8m0Encode(x, "floor"), lo, `floor ${f}·2^${k}`);
      assert.equal(ue8m0Encode(x, "ceil"), hi, `ceil ${f}·2^${k}`);
      const rn = f < 1.5 ? lo : f > 1.5 ? hi : lo % 2 === 0 ? lo : hi;
      assert.equal(ue8m0Encode(x, "rn"), rn, `rn ${f}·2^${k}`);
    }
  }
  // ties spelled out: 1.5 → byte 127 is odd → 128 (2.0); 3 → byte 128 even → 128 (2.0)
  assert.equal(ue8m0Encode(1.5, "rn"), 128);
  assert.equal(ue8m0Encode(3, "rn"), 128);
  assert.equal(ue8m0Encode(6, "rn"), 130);
  assert.equal(ue8m0Encode(0.75, "rn"), 126);
  assert.equal(ue8m0Encode(1.3), 127, "rn is the default");
});

test("saturation at 2^127 (0xFE) and 2^-127 (0x00)", () => {
  for (const mode of MODES) {
    assert.equal(ue8m0Encode(2 ** 128, mode), 0xfe, `2^128 ${mode}`);
    assert.equal(ue8m0Encode(1e300, mode), 0xfe, `1e300 ${mode}`);
    assert.equal(ue8m0Encode(Number.MAX_VALUE, mode), 0xfe);
    assert.equal(ue8m0Encode(2 ** -128, mode), 0x00, `2^-128 ${mode}`);
    assert.equal(ue8m0Encode(2 ** -1074, mode), 0x00, `min double ${mode}`);
    assert.equal(ue8m0Encode(0, mode), 0x00);
    assert.equal(ue8m0Encode(-0, mode), 0x00);
  }
  assert.equal(ue8m0Encode(1.5 * 2 ** 127, "ceil"), 0xfe);
  assert.equal(ue8m0Encode(1.5 * 2 ** 127, "floor"), 0xfe);
  assert.equal(ue8m0Encode(1.5 * 2 ** -128, "ceil"), 0x00, "ceil of 1.5·2^-128 is 2^-127");
  assert.equal(ue8m0Encode(1.5 * 2 ** -127, "ceil"), 0x01);
  assert.equal(ue8m0Encode(1.5 * 2 ** -127, "floor"), 0x00);
});

test("negative, NaN and infinite inputs → 0xFF", () => {
  for (const mode of MODES) {
    for (const x of [-1, -1e-30, -Infinity, Infinity, NaN, -(2 ** 127)]) {
      assert.equal(ue8m0Encode(x, mode), 0xff, `${x} ${mode}`);
    }
  }
});
