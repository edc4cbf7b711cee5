import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileFormatError, Fp4lmError, ShapeError } from "../errors.ts";
import { Rng } from "../../test/random.ts";
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  tensorToFloat32,
  writeSafetensors,
  type SafetensorsDtype,
  type TensorEntry,
} from "./safetensors.ts";

const SIZES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1,
  U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

const enc = new TextEncoder();
const u8 = (...b: number[]) => new Uint8Array(b);
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** A file from a header (object or raw JSON text) and data bytes, with a correct length prefix unless given. */
function makeFile(header: unknown, data: Uint8Array, lengthPrefix?: number): Uint8Array {
  const json = enc.encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthPrefix ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function headerOf(file: Uint8Array): { n: number; text: string } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { n, text: new TextDecoder().decode(file.subarray(8, 8 + n)) };
}

function throwsFormat(fn: () => unknown, re: RegExp, file = "t.safetensors"): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected FileFormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, re);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    return true;
  });
}

function sampleTensors(): TensorEntry[] {
  let seed = 1;
  const rnd = (n: number) => {
    const d = new Uint8Array(n);
    for (let i = 0; i < n; i++) d[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    return d;
  };
  const list: [string, SafetensorsDtype, number[]][] = [
    ["model.embed.weight", "F32", [2, 3]],
    ["h.0.attn.q", "F16", [4]],
    ["h.0.attn.k", "BF16", [2, 2]],
    ["h.0.norm", "F64", [3]],
    ["step", "I64", []],
    ["i32", "I32", [1, 2]],
    ["i16", "I16", [3]],
    ["i8", "I8", [5]],
    ["empty.u8", "U8", [0]],
    ["u16", "U16", [2]],
    ["u32", "U32", [1]],
    ["u64", "U64", [2]],
    ["mask", "BOOL", [3]],
    ["fp8.a", "F8_E4M3", [7]],
    ["fp8.b", "F8_E5M2", [1, 1]],
    ["empty.3d", "F32", [2, 0, 5]],
    ["__proto__", "U8", [2]],
    ["123", "U8", [1]],
  ];
  return list.map(([name, dtype, shape]) => ({ name, dtype, shape, data: rnd(prod(shape) * SIZES[dtype]) }));
}

test("round trip: every dtype, 0-d and empty tensors, metadata, order preserved", () => {
  const tensors = sampleTensors();
  const metadata = { format: "pt", "__proto__": "not a prototype", "ünïcödé": "välüe ✓", empty: "" };
  const file = serializeSafetensors(tensors, metadata);
  const { n, text } = headerOf(file);
  assert.equal(n % 8, 0, "header length must be a multiple of 8");
  assert.match(text, /^\{.*\} *$/);
  const dataBytes = tensors.reduce((a, t) => a + t.data.length, 0);
  assert.equal(file.length, 8 + n + dataBytes);

  const back = parseSafetensors(file, "rt.safetensors");
  assert.deepEqual(back.metadata, metadata);
  assert.equal(Object.getPrototypeOf(back.metadata), Object.prototype);
  assert.deepEqual(Object.keys(back.metadata).sort(), Object.keys(metadata).sort());
  assert.equal(back.tensors.length, tensors.length);
  for (let i = 0; i < tensors.length; i++) {
    const [a, b] = [tensors[i], back.tensors[i]];
    assert.equal(b.name, a.name);
    assert.equal(b.dtype, a.dtype);
    assert.deepEqual(b.shape, a.shape);
    assert.deepEqual(Array.from(b.data), Array.from(a.data), a.name);
    assert.equal(b.data.constructor, Uint8Array);
  }
  // Serializing what was parsed reproduces the file byte for byte.
  assert.deepEqual(serializeSafetensors(back.tensors, back.metadata), file);
});

test("no tensors and no metadata: an 8-byte-padded {} header", () => {
  const file = serializeSafetensors([]);
  assert.deepEqual(Array.from(file), [8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]);
  assert.deepEqual(parseSafetensors(file, "e.safetensors"), { tensors: [], metadata: {} });
});

test("writer output matches the reference layout byte for byte", () => {
  // The reference writer (serde_json, compact) emits exactly this JSON for one U8 tensor.
  const file = serializeSafetensors([{ name: "x", dtype: "U8", shape: [1], data: u8(5) }], { a: "b" });
  const json = '{"__metadata__":{"a":"b"},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  assert.equal(json.length, 78);
  const { n, text } = headerOf(file);
  assert.equal(n, 80);
  assert.equal(text, json + "  ");
  assert.equal(file.length, 8 + 80 + 1);
  assert.equal(file[88], 5);
});

test("parses the example file from the reference implementation's documentation", () => {
  // bytes from safetensors/src/tensor.rs doc comment of SafeTensors::deserialize
  const header = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
  assert.equal(header.length, 0x3c);
  const file = new Uint8Array(8 + 0x3c + 16);
  file[0] = 0x3c;
  file.set(enc.encode(header), 8);
  const st = parseSafetensors(file, "ref.safetensors");
  assert.equal(st.tensors.length, 1);
  assert.deepEqual(st.tensors[0].shape, [2, 2]);
  assert.equal(st.tensors[0].dtype, "I32");
  assert.equal(st.tensors[0].data.length, 16);
  assert.ok(st.tensors[0].data.every((b) => b === 0));
});

test("known bytes built by hand: values, offsets, out-of-order header, unaligned data", () => {
  // Header deliberately 87 bytes (odd), so the data buffer starts at byte 95: nothing aligned.
  const header =
    '{"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const data = u8(
    0x00, 0x00, 0x80, 0x3f, // 1.0f
    0x00, 0x00, 0x00, 0xc0, // -2.0f
    0x00, 0x3c, // f16 1.0
    0x55, 0x35, // f16 0.333251953125
    0x80, 0xbf, // bf16 -1.0
    0x49, 0x40, // bf16 3.140625
  );
  const full =
    header.slice(0, -1) + ',"c":{"dtype":"BF16","shape":[2,1],"data_offsets":[12,16]},"__metadata__":{"k":"v"}}';
  const file = makeFile(full, data);
  assert.equal((8 + enc.encode(full).length) % 2, 1, "test wants an odd data start");
  const st = parseSafetensors(file, "hand.safetensors");
  assert.deepEqual(st.metadata, { k: "v" });
  assert.deepEqual(st.tensors.map((t) => t.name), ["a", "b", "c"], "sorted by data offset");
  const [a, b, c] = st.tensors;
  assert.equal(a.data.byteOffset % 4 !== 0, true);
  assert.deepEqual(Array.from(tensorToFloat32(a, "hand.safetensors")), [1, -2]);
  assert.deepEqual(Array.from(tensorToFloat32(b, "hand.safetensors")), [1, 0.333251953125]);
  assert.deepEqual(Array.from(tensorToFloat32(c, "hand.safetensors")), [-1, 3.140625]);
  assert.deepEqual(c.shape, [2, 1]);
  // Views point at the right bytes of the input, not copies of the whole file.
  assert.equal(a.data.buffer, file.buffer);
  assert.equal(b.data[1], 0x3c);
});

test("tensorToFloat32: F64 rounding, unaligned F32/F64, fresh arrays, non-float dtypes refused", () => {
  const f64 = new Float64Array([0.1, -1e300, 1 + 2 ** -30, 5e-324]);
  const buf = new Uint8Array(3 + 32);
  buf.set(bytesOf(f64), 3);
  const t: TensorEntry = { name: "d", dtype: "F64", shape: [4], data: buf.subarray(3) };
  const out = tensorToFloat32(t, "x.safetensors");
  assert.deepEqual(Array.from(out), [Math.fround(0.1), -Infinity, 1, 0]);

  const f32 = new Float32Array([1.5, -0, 3e38]);
  const buf2 = new Uint8Array(1 + 12);
  buf2.set(bytesOf(f32), 1);
  const t2: TensorEntry = { name: "f", dtype: "F32", shape: [3], data: buf2.subarray(1) };
  const out2 = tensorToFloat32(t2, "x.safetensors");
  assert.deepEqual(Array.from(out2), [1.5, -0, Math.fround(3e38)]);
  out2[0] = 99;
  assert.equal(tensorToFloat32(t2, "x.safetensors")[0], 1.5, "result must not alias the tensor data");

  throwsFormat(
    () => tensorToFloat32({ name: "ids", dtype: "I32", shape: [1], data: u8(1, 0, 0, 0) }, "t.safetensors"),
    /tensor "ids" has dtype I32, not a float dtype \(F32, F16, BF16, F64\)/,
  );
  throwsFormat(
    () => tensorToFloat32({ name: "w", dtype: "F32", shape: [2], data: u8(1, 0, 0, 0) }, "t.safetensors"),
    /has 4 data bytes but F32 shape \[2\] needs 8/,
  );
});

test("validation: each malformed file is a FileFormatError that says what is wrong", () => {
  const ok = { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const d8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length/],
    ["7 bytes", new Uint8Array(7), /shorter than the 8-byte/],
    ["length past EOF", makeFile(ok, d8, 5000), /header length 5000 exceeds file size 70 bytes \(file truncated\?\)/],
    ["absurd length", makeFile(ok, d8, 2 ** 40), /exceeds the 100\.0 MB limit/],
    ["not JSON", makeFile("{w: 1}", d8), /header is not valid JSON/],
    ["JSON array", makeFile("[1,2]", d8), /header must be a JSON object, got an array/],
    ["JSON null", makeFile("null", d8), /header must be a JSON object, got null/],
    ["entry not object", makeFile({ w: [1] }, d8), /tensor "w": header entry must be an object/],
    ["missing dtype", makeFile({ w: { shape: [2], data_offsets: [0, 8] } }, d8), /tensor "w": header entry has no "dtype"/],
    ["missing shape", makeFile({ w: { dtype: "F32", data_offsets: [0, 8] } }, d8), /has no "shape"/],
    ["missing offsets", makeFile({ w: { dtype: "F32", shape: [2] } }, d8), /has no "data_offsets"/],
    ["dtype number", makeFile({ w: { dtype: 4, shape: [2], data_offsets: [0, 8] } }, d8), /dtype must be a string, got number 4/],
    [
      "unknown dtype",
      makeFile({ w: { dtype: "F128", shape: [2], data_offsets: [0, 8] } }, d8),
      /unsupported dtype "F128"; supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, U16, U32, U64, BOOL, F8_E4M3, F8_E5M2/,
    ],
    ["negative dim", makeFile({ w: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, d8), /shape\[0\] must be a non-negative integer, got number -2/],
    ["fractional dim", makeFile({ w: { dtype: "F32", shape: [2, 1.5], data_offsets: [0, 8] } }, d8), /shape\[1\] must be a non-negative integer/],
    ["string dim", makeFile({ w: { dtype: "F32", shape: ["2"], data_offsets: [0, 8] } }, d8), /shape\[0\] must be a non-negative integer, got the string "2"/],
    ["shape not array", makeFile({ w: { dtype: "F32", shape: 2, data_offsets: [0, 8] } }, d8), /shape must be an array/],
    ["overflowing shape", makeFile({ w: { dtype: "F32", shape: [1e6, 1e6, 1e6], data_offsets: [0, 8] } }, d8), /more than 2\^53 elements/],
    ["negative offset", makeFile({ w: { dtype: "F32", shape: [2], data_offsets: [-8, 0] } }, d8), /data_offsets must be \[begin, end\] with non-negative integers, got \[-8,0\]/],
    ["three offsets", makeFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8, 9] } }, d8), /data_offsets must be \[begin, end\]/],
    ["huge offset", makeFile({ w: { dtype: "F32", shape: [2], data_offsets: [1e300, 1e300] } }, d8), /data_offsets must be/],
    ["begin > end", makeFile({ w: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, d8), /data_offsets \[8, 0\] have begin > end/],
    ["past buffer", makeFile({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, d8), /data_offsets \[0, 16\] extend past the end of the data buffer \(8 bytes; file truncated\?\)/],
    ["size mismatch", makeFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, d8), /tensor "w": data_offsets \[0, 8\] span 8 bytes but F32 shape \[3\] needs 12/],
    [
      "overlap",
      makeFile({ a: { dtype: "U8", shape: [6], data_offsets: [0, 6] }, b: { dtype: "U8", shape: [4], data_offsets: [4, 8] } }, d8),
      /tensor "b" data_offsets \[4, 8\] overlap tensor "a" \[0, 6\]/,
    ],
    [
      "hole",
      makeFile({ a: { dtype: "U8", shape: [2], data_offsets: [0, 2] }, b: { dtype: "U8", shape: [4], data_offsets: [4, 8] } }, d8),
      /data buffer bytes \[2, 4\) belong to no tensor \(before tensor "b"\)/,
    ],
    ["hole at start", makeFile({ b: { dtype: "U8", shape: [4], data_offsets: [4, 8] } }, d8), /bytes \[0, 4\) belong to no tensor/],
    ["trailing bytes", makeFile({ a: { dtype: "U8", shape: [6], data_offsets: [0, 6] } }, d8), /cover only 6 bytes; the last 2 bytes belong to no tensor/],
    ["metadata array", makeFile({ ...ok, __metadata__: ["x"] }, d8), /__metadata__ must be an object of strings, got an array/],
    ["metadata value", makeFile({ ...ok, __metadata__: { k: 3 } }, d8), /__metadata__\["k"\] must be a string, got number 3/],
  ];
  for (const [why, bytes, re] of cases) {
    try {
      throwsFormat(() => parseSafetensors(bytes, "t.safetensors"), re);
    } catch (e) {
      throw new Error(`case "${why}": ${(e as Error).message}`);
    }
  }
  // These need byte-level edits that makeFile cannot express.
  const ones = makeFile(ok, d8);
  ones.fill(0xff, 0, 8);
  throwsFormat(() => parseSafetensors(ones, "t.safetensors"), /header length ≈1\.845e\+19 exceeds the 100\.0 MB limit/);
  const badUtf8 = makeFile('{"w":1}', d8);
  badUtf8[10] = 0xff;
  throwsFormat(() => parseSafetensors(badUtf8, "t.safetensors"), /header is not valid UTF-8/);
  const bom = makeFile("\ufeff{}", new Uint8Array(0));
  throwsFormat(() => parseSafetensors(bom, "t.safetensors"), /not valid JSON/);
});

test("accepted edge cases: null metadata, zero-size tensors sharing an offset, whitespace padding, extra fields", () => {
  const header =
    '  {"__metadata__":null,"z1":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},' +
    '"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":1},"z0":{"dtype":"I64","shape":[3,0],"data_offsets":[2,2]}}\n\t  ';
  const st = parseSafetensors(makeFile(header, u8(9, 8)), "e.safetensors");
  assert.deepEqual(st.metadata, {});
  assert.deepEqual(st.tensors.map((t) => [t.name, t.data.length]), [["a", 2], ["z1", 0], ["z0", 0]]);
  assert.deepEqual(Array.from(st.tensors[0].data), [9, 8]);
  assert.deepEqual(Array.from(tensorToFloat32(st.tensors[1], "e.safetensors")), []);
});

test("serialize refuses bad input with a clear error and names the tensor", () => {
  const cases: [TensorEntry[], RegExp, Function][] = [
    [[{ name: "w", dtype: "F32", shape: [3], data: new Uint8Array(8) }], /tensor "w": data has 8 bytes but F32 shape \[3\] needs 12/, ShapeError],
    [[{ name: "w", dtype: "F32", shape: [-1], data: new Uint8Array(0) }], /shape\[0\] must be a non-negative integer/, ShapeError],
    [[{ name: "w", dtype: "Q4" as SafetensorsDtype, shape: [1], data: u8(1) }], /unsupported dtype the string "Q4"/, Fp4lmError],
    [[{ name: "__metadata__", dtype: "U8", shape: [1], data: u8(1) }], /reserved for metadata/, Fp4lmError],
    [
      [{ name: "w", dtype: "U8", shape: [1], data: u8(1) }, { name: "w", dtype: "U8", shape: [1], data: u8(2) }],
      /tensor "w": duplicate name/,
      Fp4lmError,
    ],
  ];
  for (const [tensors, re, cls] of cases)
    assert.throws(() => serializeSafetensors(tensors), (e: unknown) => e instanceof cls && re.test((e as Error).message));
  assert.throws(
    () => serializeSafetensors([], { n: 3 as unknown as string }),
    /metadata\["n"\] must be a string, got number 3/,
  );
});

test("writeSafetensors: round trip, atomic replace, nothing left behind on failure", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-st-"));
  try {
    const path = join(dir, "model.safetensors");
    const v1 = sampleTensors();
    writeSafetensors(path, v1, { version: "1" });
    assert.deepEqual(readFileSync(path), Buffer.from(serializeSafetensors(v1, { version: "1" })));
    const r1 = readSafetensors(path);
    assert.deepEqual(r1.metadata, { version: "1" });
    assert.deepEqual(r1.tensors.map((t) => t.name), v1.map((t) => t.name));

    const v2: TensorEntry[] = [{ name: "only", dtype: "F32", shape: [1], data: bytesOf(new Float32Array([7.25])) }];
    writeSafetensors(path, v2, { version: "2" });
    const r2 = readSafetensors(path);
    assert.deepEqual(r2.metadata, { version: "2" });
    assert.deepEqual(Array.from(tensorToFloat32(r2.tensors[0], path)), [7.25]);
    assert.deepEqual(readdirSync(dir), ["model.safetensors"], "replacing leaves no temp file");

    // Validation failure: nothing written, the existing file untouched.
    const before = readFileSync(path);
    const bad: TensorEntry[] = [{ name: "w", dtype: "F32", shape: [4], data: new Uint8Array(12) }];
    assert.throws(() => writeSafetensors(path, bad), (e: unknown) => e instanceof ShapeError && e.message.startsWith(path));
    assert.deepEqual(readFileSync(path), before);
    const fresh = join(dir, "new.safetensors");
    assert.throws(() => writeSafetensors(fresh, bad), ShapeError);
    assert.deepEqual(readdirSync(dir), ["model.safetensors"]);

    // I/O failure after the temp file exists (rename onto a non-empty directory): temp removed.
    const blocker = join(dir, "blocked.safetensors");
    mkdirSync(blocker);
    writeFileSync(join(blocker, "keep"), "x");
    assert.throws(() => writeSafetensors(blocker, v2), (e: unknown) => (e as NodeJS.ErrnoException).code !== undefined);
    assert.deepEqual(readdirSync(dir).sort(), ["blocked.safetensors", "model.safetensors"]);

    // Missing directory: the temp file cannot even be created; the error is Node's, naming the path.
    assert.throws(() => writeSafetensors(join(dir, "nope", "m.safetensors"), v2), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("readSafetensors names the file in its errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-st-"));
  try {
    const path = join(dir, "trunc.safetensors");
    const full = serializeSafetensors(sampleTensors());
    writeFileSync(path, full.subarray(0, full.length - 3));
    throwsFormat(() => readSafetensors(path), /extend past the end of the data buffer \(.*; file truncated\?\)/, path);
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

type Outcome = "ok" | "error";

function checkOne(bytes: Uint8Array, label: string): Outcome {
  let st;
  try {
    st = parseSafetensors(bytes, "fuzz.safetensors");
  } catch (e) {
    if (e instanceof FileFormatError) return "error";
    throw new Error(`${label}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  let total = 0;
  for (const t of st.tensors) {
    assert.ok(t.dtype in SIZES, `${label}: dtype ${t.dtype}`);
    assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `${label}: shape`);
    assert.equal(t.data.length, prod(t.shape) * SIZES[t.dtype], `${label}: ${t.name} data length`);
    assert.equal(t.data.buffer, bytes.buffer);
    assert.ok(t.data.byteOffset >= bytes.byteOffset + 8 + n && t.data.byteOffset + t.data.length <= bytes.byteOffset + bytes.length);
    total += t.data.length;
    if (t.dtype === "F32" || t.dtype === "F16" || t.dtype === "BF16" || t.dtype === "F64")
      assert.equal(tensorToFloat32(t, "fuzz.safetensors").length, prod(t.shape));
  }
  assert.equal(total, bytes.length - 8 - n, `${label}: tensors must cover the buffer`);
  for (const v of Object.values(st.metadata)) assert.equal(typeof v, "string");
  return "ok";
}

test("fuzz: 2000 random byte strings", () => {
  const rand = mulberry32(0xdecafbad);
  const ri = (n: number) => Math.floor(rand() * n);
  const alphabet = '{}[]":,0123456789-.eE tfalsnu"dtypeshapedata_offsetsF32U8BF16__metadata__';
  const counts = { ok: 0, error: 0 };
  for (let i = 0; i < 2000; i++) {
    const len = ri(160);
    const b = new Uint8Array(len);
    for (let j = 0; j < len; j++) b[j] = ri(256);
    const mode = i % 3;
    if (len >= 8 && mode > 0) {
      // plausible length prefix so the parser gets past the first check
      const hlen = ri(len - 7);
      b.fill(0, 0, 8);
      new DataView(b.buffer).setUint32(0, hlen, true);
      if (mode === 2) for (let j = 8; j < 8 + hlen; j++) b[j] = alphabet.charCodeAt(ri(alphabet.length));
    }
    counts[checkOne(b, `random #${i}`)]++;
  }
  assert.equal(counts.ok + counts.error, 2000);
  if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(counts));
  assert.ok(counts.error > 1900, JSON.stringify(counts));
});

test("fuzz: 2000 mutations of a valid file", () => {
  const rand = mulberry32(12345);
  const ri = (n: number) => Math.floor(rand() * n);
  const pick = <T>(a: readonly T[]): T => a[ri(a.length)];
  const tensors = sampleTensors().slice(0, 9);
  const valid = serializeSafetensors(tensors, { a: "1", b: "two" });
  const { n, text } = headerOf(valid);
  const data = valid.subarray(8 + n);
  const weird: unknown[] = [
    -1, 0, 1, 1.5, -8, 1e300, 2 ** 53, 2 ** 64, 7, "7", "", null, true, false, [], {}, [0], [0, 1, 2], [-8, 0],
    [1e20, 1e20 + 8], [4, 2], [0, 1e9], [2 ** 53, 2 ** 53], ["F32"], "F32", "I8", "BF16", "F8_E4M3", "X", { dtype: "U8" },
    [1, -1], [3.5], [1e6, 1e6, 1e6], [[2]], [null],
  ];
  const counts = { ok: 0, error: 0 };
  const kinds: Record<string, { ok: number; error: number }> = {};
  for (let i = 0; i < 2000; i++) {
    let b: Uint8Array;
    const kind = pick(["flip", "truncate", "prefix", "field", "field", "data"] as const);
    if (kind === "flip") {
      b = valid.slice();
      const k = 1 + ri(4);
      for (let j = 0; j < k; j++) b[8 + ri(n)] = rand() < 0.5 ? ri(256) : b[8 + ri(n)] ^ (1 << ri(8));
    } else if (kind === "truncate") {
      b = valid.slice(0, ri(valid.length));
    } else if (kind === "prefix") {
      b = valid.slice();
      const dv = new DataView(b.buffer);
      const r = rand();
      if (r < 0.4) dv.setUint32(0, n + ri(17) - 8, true);
      else if (r < 0.7) dv.setUint32(0, ri(2 ** 32), true);
      else dv.setUint32(4, ri(2 ** 32), true);
    } else if (kind === "field") {
      const h = JSON.parse(text) as Record<string, Record<string, unknown>>;
      const names = Object.keys(h);
      const name = pick(names);
      const r = rand();
      if (name === "__metadata__") h[name][pick(["a", "b", "c"])] = pick(weird);
      else if (r < 0.25) h[name] = pick(weird) as Record<string, unknown>;
      else if (r < 0.5) h[name][pick(["dtype", "shape", "data_offsets", "other"])] = pick(weird);
      else if (r < 0.65) delete h[name][pick(["dtype", "shape", "data_offsets"])];
      else {
        const field = pick(["shape", "data_offsets"]);
        const arr = h[name][field] as unknown[];
        if (arr.length > 0) arr[ri(arr.length)] = pick(weird);
        else arr.push(pick(weird));
      }
      b = makeFile(h, data);
      if (rand() < 0.1) new DataView(b.buffer).setUint32(0, n + ri(9) - 4, true);
    } else {
      const extra = ri(9) - 4;
      const d = extra >= 0 ? new Uint8Array(data.length + extra) : data.slice(0, data.length + extra);
      if (extra >= 0) d.set(data);
      b = makeFile(text, d);
    }
    const o = checkOne(b, `mutation #${i} (${kind})`);
    counts[o]++;
    (kinds[kind] ??= { ok: 0, error: 0 })[o]++;
  }
  assert.equal(counts.ok + counts.error, 2000);
  if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(kinds));
  // The mutations must exercise both outcomes, or the fuzz is testing nothing.
  assert.ok(counts.ok > 50 && counts.error > 500, JSON.stringify(kinds));
  assert.ok(kinds.truncate.error > 0 && kinds.prefix.error > 0 && kinds.field.error > 0, JSON.stringify(kinds));
});
