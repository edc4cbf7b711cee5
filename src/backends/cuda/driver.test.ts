import { test } from "node:test";
import assert from "node:assert/strict";
import { packLaunchArgs } from "./driver.ts";

test("launch arguments pack into one-element typed arrays of the kernel's C types", () => {
  const ptr = 0x7f3a_1234_5600n;
  const packed = packLaunchArgs([
    { kind: "ptr", value: ptr },
    { kind: "i32", value: -7 },
    { kind: "u32", value: 0xfffffffe },
    { kind: "f32", value: 0.1 },
    { kind: "u64", value: 2 ** 40 + 3 },
    { kind: "u64", value: 0xffff_ffff_ffff_ffffn },
  ]);
  assert.equal(packed.length, 6);
  assert.ok(packed[0] instanceof BigUint64Array);
  assert.equal(packed[0][0], ptr);
  assert.ok(packed[1] instanceof Int32Array);
  assert.equal(packed[1][0], -7);
  assert.ok(packed[2] instanceof Uint32Array);
  assert.equal(packed[2][0], 0xfffffffe);
  assert.ok(packed[3] instanceof Float32Array);
  assert.equal(packed[3][0], Math.fround(0.1));
  assert.ok(packed[4] instanceof BigUint64Array);
  assert.equal(packed[4][0], 2n ** 40n + 3n);
  assert.equal(packed[5][0], 0xffff_ffff_ffff_ffffn);
  for (const p of packed) assert.equal(p.length, 1);
  // the byte image each element points at is what the kernel reads
  assert.deepEqual([...new Uint8Array(packed[1].buffer)], [0xf9, 0xff, 0xff, 0xff]);
  assert.equal(packed[0].byteLength, 8);
});

test("launch arguments out of their C type's range are refused", () => {
  assert.throws(() => packLaunchArgs([{ kind: "i32", value: 2 ** 31 }]), /argument 0 \(i32\)/);
  assert.throws(() => packLaunchArgs([{ kind: "i32", value: 1.5 }]), RangeError);
  assert.throws(() => packLaunchArgs([{ kind: "f32", value: 1 }, { kind: "u32", value: -1 }]), /argument 1 \(u32\)/);
  assert.throws(() => packLaunchArgs([{ kind: "ptr", value: -1n }]), /outside uint64/);
  assert.throws(() => packLaunchArgs([{ kind: "u64", value: 2n ** 64n }]), /outside uint64/);
  assert.deepEqual(packLaunchArgs([]), []);
});
