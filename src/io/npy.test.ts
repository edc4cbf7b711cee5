import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileFormatError, ShapeError } from "../errors.ts";
import { npyToFloat32, parseNpy, readNpy, serializeNpy, type NpyArray, type NpyDtype } from "./npy.ts";
import { Rng } from "../../test/random.ts";

const ITEMSIZE: Record<NpyDtype, number> = { f2: 2, f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1 };
const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const u8 = (...b: number[]) => new Uint8Array(b);

/** An .npy file from header text (padded by the caller or not) and data, version 1.0 unless given. */
function makeNpy(header: string, data: Uint8Array, version = 1, lengthOverride?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const lenBytes = version === 1 ? 2 : 4;
  const out = new Uint8Array(8 + lenBytes + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (lenBytes === 2) dv.setUint16(8, lengthOverride ?? h.length, true);
  else dv.setUint32(8, lengthOverride ?? h.length, true);
  out.set(h, 8 + lenBytes);
  out.set(data, 8 + lenBytes + h.length);
  return out;
}
const hdr = (descr: string, shape: string, fortran = "False") =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;

function throwsFormat(fn: () => unknown, re: RegExp, file = "t.npy"): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected FileFormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, re);
    return true;
  });
}

// Produced by numpy 2.4 np.save (version 1.0 unless noted) and copied here verbatim.
const NUMPY = {
  f4_2x3: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=",
  f2_0d: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAQw==",
  u1_empty: "k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDAsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo=",
  b1: "k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAA==",
  i8: "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr//////////wAAAAAAAQAAAAAAAAAAAAA=",
  u2_big_empty: "k05VTVBZAQB2AHsnZGVzY3InOiAnPHUyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEyMzQ1Njc4OTAxMiwgMSwgMCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo=",
  f8_v2: "k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAADA",
  f8_v3: "k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAADA",
};

test("reads files written by numpy and decodes the right values", () => {
  const a = parseNpy(b64(NUMPY.f4_2x3), "a.npy");
  assert.equal(a.dtype, "f4");
  assert.deepEqual(a.shape, [2, 3]);
  assert.equal(a.fortranOrder, false);
  assert.deepEqual(Array.from(npyToFloat32(a, "a.npy")), [0, 1, 2, 3, 4, 5]);

  const h = parseNpy(b64(NUMPY.f2_0d), "h.npy");
  assert.deepEqual([h.dtype, h.shape, Array.from(npyToFloat32(h, "h.npy"))], ["f2", [], [3.5]]);

  const e = parseNpy(b64(NUMPY.u1_empty), "e.npy");
  assert.deepEqual([e.dtype, e.shape, e.data.length], ["u1", [0], 0]);

  const b = parseNpy(b64(NUMPY.b1), "b.npy");
  assert.deepEqual([b.dtype, b.shape, Array.from(b.data)], ["b1", [2], [1, 0]]);

  const i = parseNpy(b64(NUMPY.i8), "i.npy");
  assert.equal(i.dtype, "i8");
  const i64 = new BigInt64Array(i.data.slice().buffer);
  assert.deepEqual(Array.from(i64), [-1n, 2n ** 40n, 0n]);

  const big = parseNpy(b64(NUMPY.u2_big_empty), "big.npy");
  assert.deepEqual([big.dtype, big.shape, big.data.length], ["u2", [123456789012, 1, 0], 0]);

  for (const key of ["f8_v2", "f8_v3"] as const) {
    const d = parseNpy(b64(NUMPY[key]), `${key}.npy`);
    assert.deepEqual([d.dtype, d.shape, Array.from(npyToFloat32(d, "d.npy"))], ["f8", [2], [1.5, -2]], key);
  }
});

test("serializeNpy writes exactly the bytes np.save writes", () => {
  const f4 = new Float32Array([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(serializeNpy({ dtype: "f4", shape: [2, 3], data: bytesOf(f4) }), b64(NUMPY.f4_2x3));
  assert.deepEqual(serializeNpy({ dtype: "f2", shape: [], data: u8(0x00, 0x43) }), b64(NUMPY.f2_0d));
  assert.deepEqual(serializeNpy({ dtype: "u1", shape: [0], data: u8() }), b64(NUMPY.u1_empty));
  assert.deepEqual(serializeNpy({ dtype: "b1", shape: [2], data: u8(1, 0) }), b64(NUMPY.b1));
  const i8 = bytesOf(new BigInt64Array([-1n, 2n ** 40n, 0n]));
  assert.deepEqual(serializeNpy({ dtype: "i8", shape: [3], data: i8 }), b64(NUMPY.i8));
  assert.deepEqual(serializeNpy({ dtype: "u2", shape: [123456789012, 1, 0], data: u8() }), b64(NUMPY.u2_big_empty));
});

test("round trip of every dtype, with the header aligned to 64 bytes", () => {
  let seed = 7;
  for (const dtype of Object.keys(ITEMSIZE) as NpyDtype[]) {
    for (const shape of [[], [0], [5], [2, 3, 1], [3, 0, 2]]) {
      const data = new Uint8Array(prod(shape) * ITEMSIZE[dtype]);
      for (let i = 0; i < data.length; i++) data[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      const file = serializeNpy({ dtype, shape, data });
      assert.equal((file.length - data.length) % 64, 0, `${dtype} ${shape}`);
      assert.equal(file[file.length - data.length - 1], 0x0a, "header ends with a newline");
      const back = parseNpy(file, "rt.npy");
      assert.deepEqual([back.dtype, back.shape, back.fortranOrder], [dtype, shape, false]);
      assert.deepEqual(back.data, data);
    }
  }
});

test("a header too long for version 1.0 is written as version 2.0 and read back", () => {
  const shape = new Array(25000).fill(1);
  const file = serializeNpy({ dtype: "u1", shape, data: u8(42) });
  assert.deepEqual([file[6], file[7]], [2, 0]);
  const hlen = new DataView(file.buffer).getUint32(8, true);
  assert.ok(hlen > 0xffff);
  assert.equal((12 + hlen) % 64, 0);
  const back = parseNpy(file, "v2.npy");
  assert.equal(back.shape.length, 25000);
  assert.deepEqual(Array.from(back.data), [42]);
});

test("hand-built headers: quoting, whitespace, Python 2 longs, unaligned data", () => {
  const f32 = bytesOf(new Float32Array([1.25, -3]));
  // double quotes, no trailing comma, odd header length so the data is unaligned
  const a = parseNpy(makeNpy(`{"shape": (2,),"descr":"<f4","fortran_order":False}`, f32), "q.npy");
  assert.deepEqual([a.dtype, a.shape], ["f4", [2]]);
  assert.equal(a.data.byteOffset % 2, 1);
  assert.deepEqual(Array.from(npyToFloat32(a, "q.npy")), [1.25, -3]);
  // Python 2 era headers wrote longs with an L suffix
  const l = parseNpy(makeNpy(hdr("<f4", "(1L, 2L)"), f32), "l.npy");
  assert.deepEqual(l.shape, [1, 2]);
  // Fortran order is harmless when at most one axis is longer than 1
  const f = parseNpy(makeNpy(hdr("<f4", "(1, 2)", "True"), f32), "f.npy");
  assert.deepEqual([f.shape, f.fortranOrder], [[1, 2], false]);
  // 1-byte types may carry any byte-order character
  assert.equal(parseNpy(makeNpy(hdr(">u1", "(2,)"), u8(1, 2)), "u.npy").dtype, "u1");
  assert.equal(parseNpy(makeNpy(hdr("<i1", "(2,)"), u8(1, 2)), "u.npy").dtype, "i1");
  // f8 rounds to fp32 when converted
  const d = parseNpy(makeNpy(hdr("<f8", "(2,)"), bytesOf(new Float64Array([0.1, 1e300]))), "d.npy");
  assert.deepEqual(Array.from(npyToFloat32(d, "d.npy")), [Math.fround(0.1), Infinity]);
});

test("errors: each bad file is a FileFormatError that says what to do", () => {
  const f8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", u8(), /does not start with the magic "\\x93NUMPY" \(only 0 bytes\)/],
    ["wrong magic", new TextEncoder().encode("\x93NUMPX\x01\x00\x10\x00{}"), /not an \.npy file/],
    ["npz", u8(0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0), /zip archive \(an \.npz\?\)/],
    ["version 4.0", makeNpy(hdr("<f4", "(2,)"), f8, 4), /unsupported \.npy format version 4\.0 \(supported: 1\.0, 2\.0, 3\.0\)/],
    ["version 0.0", makeNpy(hdr("<f4", "(2,)"), f8, 0), /version 0\.0/],
    ["header past EOF", makeNpy(hdr("<f4", "(2,)"), f8, 1, 60000), /header length 60000 runs past the end of the \d+-byte file \(file truncated\?\)/],
    ["v2 huge length", makeNpy(hdr("<f4", "(2,)"), f8, 2, 0xffffffff), /header length 4294967295 runs past the end/],
    ["magic only", u8(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 5), /too short to hold the header length/],
    ["not a dict", makeNpy("[1, 2]\n", f8), /header must be a dict literal/],
    ["garbage", makeNpy("{'descr': <f4}", f8), /cannot parse the header dict: expected a Python literal/],
    ["unterminated", makeNpy("{'descr': '<f4", f8), /unterminated string/],
    ["trailing text", makeNpy(hdr("<f4", "(2,)") + "x", f8), /unexpected text after the closing brace/],
    ["eval attempt", makeNpy("{'descr': __import__('os'), 'fortran_order': False, 'shape': (2,)}", f8), /expected a Python literal/],
    ["escape", makeNpy("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", f8), /escape sequences/],
    ["duplicate key", makeNpy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", f8), /duplicate key 'descr'/],
    ["missing shape", makeNpy("{'descr': '<f4', 'fortran_order': False}", f8), /header has no 'shape' key/],
    ["extra key", makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", f8), /unexpected key 'x'/],
    ["deep nesting", makeNpy(`{'descr': ${"(".repeat(100)}${")".repeat(100)}}`, f8), /nesting deeper than 16/],
    ["big-endian", makeNpy(hdr(">f4", "(2,)"), f8), /descr '>f4' is big-endian; re-save with a\.astype\('<f4'\)/],
    ["native order", makeNpy(hdr("=f4", "(2,)"), f8), /native byte order.*a\.astype\('<f4'\)/],
    ["fortran", makeNpy(hdr("<f4", "(2, 1, 3)", "True"), new Uint8Array(24)), /shape \(2, 1, 3\) is stored in Fortran order; re-save it with np\.save\(path, np\.ascontiguousarray\(a\)\)/],
    ["fortran not bool", makeNpy(hdr("<f4", "(2,)", "1"), f8), /'fortran_order' must be True or False, got 1/],
    ["object", makeNpy(hdr("|O", "(1,)"), f8), /object arrays \(descr '\|O'\) hold pickled Python objects/],
    ["bfloat16 / V2", makeNpy(hdr("<V2", "(4,)"), f8), /ml_dtypes bfloat16.*a\.astype\(np\.float32\)/],
    ["structured", makeNpy("{'descr': [('a', '<f4'), ('b', '<i2')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(6)), /structured \(record\) dtypes are not supported/],
    ["complex", makeNpy(hdr("<c8", "(1,)"), f8), /unsupported dtype descr '<c8'; supported: <f2, <f4, <f8, \|i1, <i2, <i4, <i8, \|u1, <u2, <u4, <u8, \|b1/],
    ["datetime", makeNpy(hdr("<M8[ns]", "(1,)"), f8), /unsupported dtype descr '<M8\[ns\]'/],
    ["string", makeNpy(hdr("<U2", "(1,)"), f8), /unsupported dtype descr '<U2'/],
    ["descr int", makeNpy("{'descr': 4, 'fortran_order': False, 'shape': (2,)}", f8), /'descr' must be a dtype string like '<f4', got 4/],
    ["shape list", makeNpy(hdr("<f4", "[2]"), f8), /'shape' must be a tuple of ints like \(3, 4\), got \[2\]/],
    ["shape int", makeNpy(hdr("<f4", "(2)"), f8), /'shape' must be a tuple of ints like \(3, 4\), got 2/],
    ["shape negative", makeNpy(hdr("<f4", "(-2,)"), f8), /negative dimension -2 at axis 0/],
    ["shape huge", makeNpy(hdr("<f4", "(99999999999999999999,)"), f8), /integer 99999999999999999999 is too large/],
    ["shape overflow", makeNpy(hdr("<f4", "(4000000000, 4000000000)"), f8), /more elements than can be addressed/],
    ["truncated data", makeNpy(hdr("<f4", "(3,)"), f8), /data is 8 bytes but shape \(3,\) of '<f4' needs 12 \(file truncated\?\)/],
    ["trailing data", makeNpy(hdr("<f4", "(1,)"), f8), /4 bytes follow the array data \(several arrays saved into one file\?/],
    ["L suffix in v3", makeNpy(hdr("<f4", "(2L,)"), f8, 3), /malformed integer/],
  ];
  for (const [why, bytes, re] of cases) {
    try {
      throwsFormat(() => parseNpy(bytes, "t.npy"), re);
    } catch (e) {
      throw new Error(`case "${why}": ${(e as Error).message}`);
    }
  }
  const badUtf8 = makeNpy(hdr("<f4", "(2,)"), f8, 3);
  badUtf8[15] = 0xff;
  throwsFormat(() => parseNpy(badUtf8, "t.npy"), /header is not valid UTF-8 \(required by format version 3\.0\)/);
});

test("npyToFloat32 refuses non-float arrays and inconsistent data", () => {
  const i = parseNpy(serializeNpy({ dtype: "i4", shape: [1], data: u8(1, 0, 0, 0) }), "i.npy");
  throwsFormat(() => npyToFloat32(i, "i.npy"), /array has dtype '<i4', not a float dtype \('<f2', '<f4', '<f8'\); save it with a\.astype\(np\.float32\)/, "i.npy");
  const broken: NpyArray = { dtype: "f4", shape: [3], data: new Uint8Array(8), fortranOrder: false };
  throwsFormat(() => npyToFloat32(broken, "x.npy"), /does not match shape \(3,\)/, "x.npy");
  const ok: NpyArray = { dtype: "f4", shape: [1], data: bytesOf(new Float32Array([2])), fortranOrder: false };
  const out = npyToFloat32(ok, "x.npy");
  out[0] = 5;
  assert.equal(npyToFloat32(ok, "x.npy")[0], 2, "result must not alias the data");
});

test("serializeNpy refuses data that does not match the shape", () => {
  assert.throws(() => serializeNpy({ dtype: "f4", shape: [2], data: new Uint8Array(4) }), (e: unknown) =>
    e instanceof ShapeError && /npy: data has 4 bytes but '<f4' shape \(2,\) needs 8/.test(e.message));
  assert.throws(() => serializeNpy({ dtype: "f4", shape: [1.5], data: new Uint8Array(4) }), ShapeError);
  assert.throws(() => serializeNpy({ dtype: "c8" as NpyDtype, shape: [1], data: new Uint8Array(8) }), /unsupported dtype "c8"/);
});

test("readNpy reads a file from disk and names it in errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-npy-"));
  try {
    const path = join(dir, "a.npy");
    writeFileSync(path, b64(NUMPY.f4_2x3));
    assert.deepEqual(Array.from(npyToFloat32(readNpy(path), path)), [0, 1, 2, 3, 4, 5]);
    const bad = join(dir, "bad.npy");
    writeFileSync(bad, b64(NUMPY.f4_2x3).subarray(0, 140));
    throwsFormat(() => readNpy(bad), /file truncated\?/, bad);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Fuzz: every input either parses to something self-consistent or throws FileFormatError.

/** A seeded uniform [0, 1) source (the suite's shared generator). */
function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.uniform();
}

function checkOne(bytes: Uint8Array, label: string): "ok" | "error" {
  let a: NpyArray;
  try {
    a = parseNpy(bytes, "fuzz.npy");
  } catch (e) {
    if (e instanceof FileFormatError && e.file === "fuzz.npy") return "error";
    throw new Error(`${label}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  assert.ok(a.dtype in ITEMSIZE, label);
  assert.ok(a.shape.every((d) => Number.isSafeInteger(d) && d >= 0), label);
  assert.equal(a.data.length, prod(a.shape) * ITEMSIZE[a.dtype], label);
  assert.equal(a.data.byteOffset + a.data.length, bytes.byteOffset + bytes.length, `${label}: data runs to the end of the file`);
  assert.equal(a.fortranOrder, false);
  if (a.dtype === "f2" || a.dtype === "f4" || a.dtype === "f8") assert.equal(npyToFloat32(a, "fuzz.npy").length, prod(a.shape));
  return "ok";
}

test("fuzz: 2000 random byte strings", () => {
  const rand = mulberry32(0xc0ffee);
  const ri = (n: number) => Math.floor(rand() * n);
  const alphabet = "{}()[]',:\" 0123456789-LTrueFalsNonedscrfortan_ohp<>|=f4u1b1V2O\n";
  const counts = { ok: 0, error: 0 };
  for (let i = 0; i < 2000; i++) {
    const len = ri(200);
    const b = new Uint8Array(len);
    for (let j = 0; j < len; j++) b[j] = ri(256);
    const mode = i % 3;
    if (len >= 10 && mode > 0) {
      b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      const hlen = ri(len - 9);
      new DataView(b.buffer).setUint16(8, hlen, true);
      if (mode === 2) for (let j = 10; j < 10 + hlen; j++) b[j] = alphabet.charCodeAt(ri(alphabet.length));
    }
    counts[checkOne(b, `random #${i}`)]++;
  }
  assert.equal(counts.ok + counts.error, 2000);
  assert.ok(counts.error > 1900, JSON.stringify(counts));
});

test("fuzz: 2000 mutations of a valid file", () => {
  const rand = mulberry32(424242);
  const ri = (n: number) => Math.floor(rand() * n);
  const pick = <T>(a: readonly T[]): T => a[ri(a.length)];
  const valid = serializeNpy({ dtype: "f4", shape: [2, 3], data: bytesOf(new Float32Array([1, 2, 3, 4, 5, 6])) });
  const hlen = new DataView(valid.buffer).getUint16(8, true);
  const text = new TextDecoder().decode(valid.subarray(10, 10 + hlen));
  const data = valid.subarray(10 + hlen);
  const values = [
    "'<f4'", "'<f2'", "'<f8'", "'|u1'", "'>f4'", "'<V2'", "'|O'", "''", "'<f4 '", "4", "-1", "None", "True", "False", "()", "(6,)",
    "(3, 2)", "(2, 3, 1)", "(-1,)", "(2,", "(1e3,)", "[2, 3]", "(99999999999999999999,)", "'shape'", "{}", "((()))", "(2, 3)L",
  ];
  const counts = { ok: 0, error: 0 };
  const kinds: Record<string, { ok: number; error: number }> = {};
  for (let i = 0; i < 2000; i++) {
    let b: Uint8Array;
    const kind = pick(["flip", "truncate", "length", "field", "field", "data"] as const);
    if (kind === "flip") {
      b = valid.slice();
      for (let k = 1 + ri(4); k > 0; k--) b[ri(10 + hlen)] ^= 1 << ri(8);
    } else if (kind === "truncate") {
      b = valid.slice(0, ri(valid.length));
    } else if (kind === "length") {
      b = valid.slice();
      new DataView(b.buffer).setUint16(8, rand() < 0.5 ? hlen + ri(33) - 16 : ri(65536), true);
    } else if (kind === "field") {
      const key = pick(["descr", "fortran_order", "shape"]);
      const re = new RegExp(`'${key}': (\\([^)]*\\)|'[^']*'|\\w+)`);
      let t = rand() < 0.15 ? text.replace(re, "") : text.replace(re, `'${key}': ${pick(values)}`);
      if (rand() < 0.2) t = t.replace(/'/g, '"');
      b = makeNpy(t, data, pick([1, 2, 3]));
    } else {
      const extra = ri(9) - 4;
      const d = extra >= 0 ? new Uint8Array(data.length + extra) : data.slice(0, data.length + extra);
      if (extra >= 0) d.set(data);
      b = makeNpy(text, d);
    }
    const o = checkOne(b, `mutation #${i} (${kind})`);
    counts[o]++;
    (kinds[kind] ??= { ok: 0, error: 0 })[o]++;
  }
  if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(kinds));
  assert.equal(counts.ok + counts.error, 2000);
  assert.ok(counts.ok > 50 && counts.error > 500, JSON.stringify(kinds));
  assert.ok(kinds.truncate.error > 0 && kinds.length.error > 0 && kinds.field.ok > 0 && kinds.field.error > 0, JSON.stringify(kinds));
});
