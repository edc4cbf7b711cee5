import { test } from "node:test";
import assert from "node:assert/strict";
import { DeviceBuffer, type DeviceMemory } from "./device-tensor.ts";
import { f32ToBf16Bits, roundBf16 } from "../../formats/bf16.ts";
import { Rng, normals } from "../../../test/random.ts";

/** Device memory faked in host memory: pointer → bytes. */
function fakeMemory() {
  const blocks = new Map<bigint, Uint8Array>();
  let next = 0x10000n;
  const memory: DeviceMemory = {
    alloc(bytes) {
      const p = next;
      next += BigInt(bytes + 256);
      blocks.set(p, new Uint8Array(bytes).fill(0xcd));
      return p;
    },
    free(ptr) {
      assert.ok(blocks.delete(ptr), "free of an unknown pointer");
    },
    upload(dst, src) {
      blocks.get(dst)!.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    },
    download(dst, src) {
      new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(blocks.get(src)!.subarray(0, dst.byteLength));
    },
  };
  return { memory, blocks };
}

test("FP32 uploaded as BF16 is rounded on the host (RNE) and downloads as those values", () => {
  const { memory, blocks } = fakeMemory();
  const rng = new Rng(11);
  const x = normals(rng, 1000);
  x[0] = 1 + 2 ** -8; // a tie: rounds to even (1.0)
  x[1] = 1 + 3 * 2 ** -8; // a tie: rounds up to even
  const b = DeviceBuffer.fromF32AsBf16(x, memory);
  assert.equal(b.dtype, "bf16");
  assert.equal(b.bytes, 2000);
  assert.equal(b.length, 1000);
  const stored = new Uint16Array(blocks.get(b.ptr)!.buffer);
  for (let i = 0; i < x.length; i++) assert.equal(stored[i], f32ToBf16Bits(x[i]), `bits of element ${i}`);
  const back = b.toF32();
  assert.equal(back[0], 1);
  assert.equal(back[1], 1 + 2 ** -6);
  for (let i = 0; i < x.length; i++) assert.equal(back[i], roundBf16(x[i]));
  b.free();
  assert.equal(blocks.size, 0);
  assert.throws(() => b.toF32(), /after free/);
});

test("f32, u8 and i32 buffers round-trip bit for bit; write checks dtype and length", () => {
  const { memory } = fakeMemory();
  const rng = new Rng(12);
  const f = normals(rng, 37);
  assert.deepEqual(DeviceBuffer.fromF32(f, memory).toF32(), f);
  const u = Uint8Array.from({ length: 19 }, (_, i) => (i * 37) & 255);
  assert.deepEqual(DeviceBuffer.fromU8(u, memory).toU8(), u);
  const n = Int32Array.from({ length: 9 }, (_, i) => (i - 4) * 123456789);
  const ib = DeviceBuffer.fromI32(n, memory);
  assert.deepEqual(ib.toI32(), n);
  assert.throws(() => ib.toF32(), /holds i32, not f32/);
  assert.throws(() => ib.write(new Float32Array(9)), /takes Int32Array/);
  assert.throws(() => ib.write(new Int32Array(8)), /8 elements for a 9-element/);
  const bf = DeviceBuffer.alloc("bf16", 3, memory);
  bf.write(new Float32Array([1.00390625, -2, 3]));
  assert.deepEqual([...bf.toF32()], [1, -2, 3]);
  bf.write(new Uint16Array([0x3f80, 0x4000, 0xc040]));
  assert.deepEqual([...bf.toF32()], [1, 2, -3]);
});
