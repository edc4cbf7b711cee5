import { test } from "node:test";
import assert from "node:assert/strict";
import { philox4x32, philoxBytes, philoxUniform, seedKey } from "./philox.ts";

const hex8 = (w: number) => (w >>> 0).toString(16).padStart(8, "0");

test("Random123 known-answer vectors for philox4x32-10", () => {
  const kat: [number[], number[], string][] = [
    [[0, 0, 0, 0], [0, 0], "6627e8d5 e169c58d bc57ac4c 9b00dbd8"],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], "408f276d 41c83b0e a20bc7c6 6d5451fd"],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], "d16cfe09 94fdcceb 5001e420 24126ea1"],
  ];
  for (const [c, k, want] of kat) {
    const out = new Uint32Array(6);
    philox4x32(c[0], c[1], c[2], c[3], k[0], k[1], out, 1);
    assert.equal([...out.subarray(1, 5)].map(hex8).join(" "), want);
    assert.equal(out[0], 0, "writes only at the offset");
    assert.equal(out[5], 0);
  }
});

test("philoxBytes follows the documented stream layout", () => {
  // element e of stream (seed, tensorId): byte e%16 (little-endian words) of block floor(e/16),
  // counter (block lo, block hi, tensorId, 0), key (seed lo, seed hi)
  const seed = 2 ** 32 * 3 + 12345, tensorId = 77;
  const bytes = philoxBytes(seed, tensorId, 100);
  const w = new Uint32Array(4);
  for (let e = 0; e < 100; e++) {
    const blk = Math.floor(e / 16), j = e % 16;
    philox4x32(blk, 0, tensorId, 0, 12345, 3, w);
    const want = (w[j >> 2] >>> (8 * (j & 3))) & 255;
    assert.equal(bytes[e], want, `element ${e}`);
  }
  // a window past 2^32 blocks uses the high counter word
  const far = 2 ** 32 * 16 + 5;
  philox4x32(0, 1, tensorId, 0, 12345, 3, w);
  assert.equal(philoxBytes(seed, tensorId, 1, far)[0], (w[1] >>> 8) & 255);
});

test("a window (start, n) equals the slice of a longer stream", () => {
  const long = philoxBytes(9, 3, 1000);
  for (const [start, n] of [[0, 1], [0, 16], [1, 15], [15, 2], [16, 16], [17, 100], [250, 750], [999, 1], [37, 0]]) {
    const w = philoxBytes(9, 3, n, start);
    assert.equal(w.length, n);
    assert.deepEqual(w, long.subarray(start, start + n), `start=${start} n=${n}`);
  }
});

test("different seeds and tensor ids give different streams; same arguments the same stream", () => {
  const base = philoxBytes(1, 0, 256);
  assert.deepEqual(philoxBytes(1, 0, 256), base);
  const others = [philoxBytes(2, 0, 256), philoxBytes(1, 1, 256), philoxBytes(1 + 2 ** 32, 0, 256), philoxBytes(0, 0, 256)];
  for (const o of others) {
    let same = 0;
    for (let i = 0; i < 256; i++) if (o[i] === base[i]) same++;
    assert.ok(same < 16, `streams agree on ${same}/256 bytes`); // ~1 expected by chance
  }
});

test("byte histogram of 1M bytes is near uniform (chi-square, 255 dof)", () => {
  const n = 1 << 20;
  const bytes = philoxBytes(20260101, 5, n);
  const hist = new Float64Array(256);
  for (let i = 0; i < n; i++) hist[bytes[i]]++;
  const expct = n / 256;
  let chi2 = 0;
  for (const h of hist) chi2 += (h - expct) ** 2 / expct;
  // mean 255, sd ≈ 22.6; the 1e-6 tails are roughly [150, 390]
  assert.ok(chi2 > 150 && chi2 < 400, `chi2 = ${chi2}`);
  // per-position-in-word check: byte lanes are not biased either
  for (let lane = 0; lane < 4; lane++) {
    let s = 0;
    for (let i = lane; i < n; i += 4) s += bytes[i];
    const mean = s / (n / 4);
    assert.ok(Math.abs(mean - 127.5) < 0.5, `lane ${lane} mean ${mean}`); // sd of the mean ≈ 0.14
  }
});

test("philoxUniform: values in [0, 1) with mean ≈ 1/2, independent of the byte stream", () => {
  const u = philoxUniform(7, 2, 20001);
  let s = 0;
  for (const v of u) {
    assert.ok(v >= 0 && v < 1);
    s += v;
  }
  assert.ok(Math.abs(s / u.length - 0.5) < 0.01);
  assert.notEqual(u[0], u[1]);
});

test("seedKey splits seeds into two words and rejects bad ones", () => {
  assert.deepEqual(seedKey(0), [0, 0]);
  assert.deepEqual(seedKey(2 ** 32 + 5), [5, 1]);
  assert.deepEqual(seedKey(2 ** 53 - 1), [0xffffffff, 0x1fffff]);
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, -0.5]) {
    assert.throws(() => seedKey(bad), (e: Error) => e instanceof RangeError && /seed must be an integer/.test(e.message), `seed ${bad}`);
    assert.throws(() => philoxBytes(bad, 0, 4), RangeError);
  }
  for (const bad of [-1, 2 ** 32, 0.5]) assert.throws(() => philoxBytes(0, bad, 4), /tensorId/);
});
