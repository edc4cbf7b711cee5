import { test } from "node:test";
import assert from "node:assert/strict";
import { swizzledOffset, swizzledShape, swizzleScales, unswizzleScales } from "./scale-layout.ts";
import { Rng } from "../../test/random.ts";

/**
 * The cuBLAS block-scale layout written as a walk in output order (no index formula): pad to
 * (128·⌈R/128⌉, 4·⌈C/4⌉); for each 128×4 tile (row-tile major, then column tile), for each of
 * the 32 rows j, for each of the 4 row groups i (rows j, j+32, j+64, j+96), emit the 4 bytes.
 */
function swizzleByWalk(compact: Uint8Array, rows: number, cols: number): Uint8Array {
  const PR = Math.ceil(rows / 128) * 128, PC = Math.ceil(cols / 4) * 4;
  const at = (r: number, c: number) => (r < rows && c < cols ? compact[r * cols + c] : 0);
  const out = new Uint8Array(PR * PC);
  let pos = 0;
  for (let rb = 0; rb < PR / 128; rb++)
    for (let cb = 0; cb < PC / 4; cb++)
      for (let j = 0; j < 32; j++)
        for (let i = 0; i < 4; i++)
          for (let k = 0; k < 4; k++) out[pos++] = at(rb * 128 + i * 32 + j, cb * 4 + k);
  assert.equal(pos, out.length);
  return out;
}

function randomShapes(rng: Rng, n: number): [number, number][] {
  const shapes: [number, number][] = [[1, 1], [128, 4], [129, 5], [300, 20], [127, 3], [256, 8]];
  while (shapes.length < n) shapes.push([rng.int(1, 300), rng.int(1, 20)]);
  return shapes;
}

test("swizzledShape pads rows to 128 and columns to 4", () => {
  assert.deepEqual(swizzledShape(1, 1), [128, 4]);
  assert.deepEqual(swizzledShape(128, 4), [128, 4]);
  assert.deepEqual(swizzledShape(129, 5), [256, 8]);
  assert.deepEqual(swizzledShape(300, 20), [384, 20]);
});

test("swizzle equals the output-order walk, pads with zeros, and unswizzle inverts it (random shapes)", () => {
  const rng = new Rng(1);
  for (const [rows, cols] of randomShapes(rng, 60)) {
    // nonzero bytes everywhere, so every zero in the output is padding
    const compact = Uint8Array.from({ length: rows * cols }, () => rng.int(1, 255));
    const sw = swizzleScales(compact, rows, cols);
    const [pr, pc] = swizzledShape(rows, cols);
    assert.equal(sw.length, pr * pc);
    assert.deepEqual(sw, swizzleByWalk(compact, rows, cols), `[${rows}, ${cols}]`);
    let zeros = 0;
    for (const b of sw) if (b === 0) zeros++;
    assert.equal(zeros, pr * pc - rows * cols, `[${rows}, ${cols}]: padding bytes are zero, data bytes are not`);
    assert.deepEqual(unswizzleScales(sw, rows, cols), compact, `[${rows}, ${cols}] round trip`);
  }
});

test("offsets of the padded grid are a permutation of the swizzled buffer", () => {
  const rng = new Rng(2);
  for (const [rows, cols] of randomShapes(rng, 30)) {
    const [pr, pc] = swizzledShape(rows, cols);
    const seen = new Uint8Array(pr * pc);
    for (let r = 0; r < pr; r++) {
      for (let c = 0; c < pc; c++) {
        const o = swizzledOffset(r, c, cols);
        assert.ok(o >= 0 && o < pr * pc && Number.isInteger(o), `[${rows}, ${cols}] (${r},${c}) → ${o}`);
        seen[o]++;
      }
    }
    assert.ok(seen.every((v) => v === 1), `[${rows}, ${cols}]: every offset hit exactly once`);
  }
  // spot values from the formula in docs/numerics.md §7
  assert.equal(swizzledOffset(0, 0, 8), 0);
  assert.equal(swizzledOffset(0, 1, 8), 1);
  assert.equal(swizzledOffset(32, 0, 8), 4);
  assert.equal(swizzledOffset(1, 0, 8), 16);
  assert.equal(swizzledOffset(0, 4, 8), 512);
  assert.equal(swizzledOffset(128, 0, 8), 1024);
});

test("length mismatches are rejected", () => {
  assert.throws(() => swizzleScales(new Uint8Array(5), 2, 3), RangeError);
  assert.throws(() => unswizzleScales(new Uint8Array(511), 2, 3), /expected 512/);
});
