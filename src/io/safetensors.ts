/**
 * Reader and writer for safetensors files: 8-byte little-endian header length N, N bytes of
 * UTF-8 JSON header (tensor name → {dtype, shape, data_offsets}, plus an optional
 * "__metadata__" string map), then the data buffer that the offsets index into.
 * Parsing validates as strictly as the reference implementation: every byte of the data buffer
 * belongs to exactly one tensor (no holes, no overlaps, nothing past the end).
 * Not a lazy / memory-mapped loader: the whole file is read into memory. Not a converter to
 * other dtypes beyond tensorToFloat32.
 * Assumes a little-endian host (every machine Node runs on in practice); the file format itself
 * is little-endian, so tensor bytes are reinterpreted without swapping.
 * Spec: https://github.com/huggingface/safetensors (README "Format"; validation rules from
 * safetensors/src/tensor.rs). Written here because no maintained npm package covers it.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { readWholeFile } from "./read-whole-file.ts";
import { FileFormatError, Fp4lmError, ShapeError } from "../errors.ts";
import { decodeF16 } from "../formats/f16.ts";
import { bf16BitsToF32 } from "../formats/bf16.ts";

export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "U16"
  | "U32"
  | "U64"
  | "BOOL"
  | "F8_E4M3"
  | "F8_E5M2";

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** exactly product(shape) * dtypeSize bytes; from the parser, a view into the file's bytes */
  data: Uint8Array;
}

export interface SafetensorsFile {
  /** in data-buffer order (ascending data_offsets), which is the order serializeSafetensors wrote */
  tensors: TensorEntry[];
  metadata: Record<string, string>;
}

const DTYPE_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
  throw new Error("src/io/safetensors.ts assumes a little-endian host; this machine is big-endian");

const SUPPORTED = Object.keys(DTYPE_SIZE).join(", ");
const FLOAT_DTYPES = "F32, F16, BF16, F64";

/** Same limit as the reference implementation; a larger header is corruption, not a model. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** Human-readable byte count for error messages. */
function fmtBytes(n: number): string {
  if (n < 1000) return `${n} bytes`;
  const units = ["kB", "MB", "GB", "TB", "PB", "EB"];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

/**
 * Element count of a shape, or a message saying why the shape is invalid. Checks every dim
 * even when an earlier one is 0, and refuses counts beyond 2^53 (they could not be addressed).
 */
function elementCount(shape: unknown): number | string {
  if (!Array.isArray(shape)) return `shape must be an array of non-negative integers, got ${describe(shape)}`;
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0)
      return `shape[${i}] must be a non-negative integer, got ${describe(d)}`;
    n *= d;
  }
  if (!Number.isSafeInteger(n)) return `shape [${shape.join(", ")}] has more than 2^53 elements`;
  return n;
}

interface RawEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Validates one header entry; `file` and `name` go into every message. */
function parseEntry(file: string, name: string, v: unknown, bufferLen: number): RawEntry {
  const bad = (problem: string) => new FileFormatError(file, `tensor ${JSON.stringify(name)}: ${problem}`);
  if (!isPlainObject(v)) throw bad(`header entry must be an object {dtype, shape, data_offsets}, got ${describe(v)}`);
  for (const key of ["dtype", "shape", "data_offsets"])
    if (!Object.prototype.hasOwnProperty.call(v, key)) throw bad(`header entry has no "${key}"`);
  const dtype = v.dtype;
  if (typeof dtype !== "string") throw bad(`dtype must be a string, got ${describe(dtype)}`);
  if (!isDtype(dtype)) throw bad(`unsupported dtype ${JSON.stringify(dtype)}; supported: ${SUPPORTED}`);
  const count = elementCount(v.shape);
  if (typeof count === "string") throw bad(count);
  const offs = v.data_offsets;
  if (
    !Array.isArray(offs) ||
    offs.length !== 2 ||
    !offs.every((o: unknown) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
  )
    throw bad(`data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offs)}`);
  const [begin, end] = offs as [number, number];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] have begin > end`);
  if (end > bufferLen)
    throw bad(`data_offsets [${begin}, ${end}] extend past the end of the data buffer (${fmtBytes(bufferLen)}; file truncated?)`);
  const need = count * DTYPE_SIZE[dtype];
  if (end - begin !== need)
    throw bad(
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} shape [${(v.shape as number[]).join(", ")}] needs ${need}`,
    );
  return { name, dtype, shape: (v.shape as number[]).slice(), begin, end };
}

/** Parses and fully validates a safetensors file held in memory. Tensor data are views into `bytes`. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  if (bytes.length < 8)
    throw new FileFormatError(file, `file is ${fmtBytes(bytes.length)}, shorter than the 8-byte header length (not a safetensors file, or truncated)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo; // may be inexact above 2^53, but then it is absurd either way
  if (n > MAX_HEADER_BYTES)
    throw new FileFormatError(
      file,
      `header length ${hi === 0 ? n : `≈${n.toExponential(3)}`} exceeds the ${fmtBytes(MAX_HEADER_BYTES)} limit (not a safetensors file, or corrupted)`,
    );
  if (8 + n > bytes.length)
    throw new FileFormatError(file, `header length ${n} exceeds file size ${fmtBytes(bytes.length)} (file truncated?)`);

  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text so that JSON.parse rejects it, as the reference does
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new FileFormatError(file, "header is not valid UTF-8 (not a safetensors file, or corrupted)");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(file, `header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(header)) throw new FileFormatError(file, `header must be a JSON object, got ${describe(header)}`);

  const dataStart = 8 + n;
  const bufferLen = bytes.length - dataStart;
  const metadata = parseMetadata(file, header[METADATA_KEY]);
  const entries: RawEntry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    entries.push(parseEntry(file, name, v, bufferLen));
  }

  // Stable sort: zero-size tensors sharing an offset keep their header order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let prev: RawEntry | undefined;
  for (const e of entries) {
    if (e.begin < covered)
      throw new FileFormatError(
        file,
        `tensor ${JSON.stringify(e.name)} data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(prev!.name)} [${prev!.begin}, ${prev!.end}]`,
      );
    if (e.begin > covered)
      throw new FileFormatError(
        file,
        `data buffer bytes [${covered}, ${e.begin}) belong to no tensor (before tensor ${JSON.stringify(e.name)}); the format allows no holes`,
      );
    covered = e.end;
    prev = e;
  }
  if (covered !== bufferLen)
    throw new FileFormatError(
      file,
      `data buffer is ${fmtBytes(bufferLen)} but the tensors cover only ${covered} bytes; the last ${bufferLen - covered} bytes belong to no tensor (extra data appended?)`,
    );

  const tensors = entries.map((e) => ({
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    data: new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin),
  }));
  return { tensors, metadata };
}

function parseMetadata(file: string, v: unknown): Record<string, string> {
  // The reference reads __metadata__ as Option<map>, so an explicit null means "none".
  if (v === undefined || v === null) return {};
  if (!isPlainObject(v)) throw new FileFormatError(file, `__metadata__ must be an object of strings, got ${describe(v)}`);
  const out: [string, string][] = [];
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== "string")
      throw new FileFormatError(file, `__metadata__[${JSON.stringify(k)}] must be a string, got ${describe(s)}`);
    out.push([k, s]);
  }
  // fromEntries defines own properties, so a key like "__proto__" stays a plain key
  return Object.fromEntries(out);
}


export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(readWholeFile(path, "save the checkpoint in smaller shards"), path);
}

/**
 * Validates tensors and metadata for writing and returns the space-padded header JSON bytes.
 * Errors are Fp4lmError (ShapeError when data and shape disagree), prefixed with `label`.
 */
function buildHeader(tensors: TensorEntry[], metadata: Record<string, string> | undefined, label: string): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new Fp4lmError(`${label}: metadata must be an object of strings, got ${describe(metadata)}`);
    const kv = Object.entries(metadata);
    for (const [k, s] of kv)
      if (typeof s !== "string")
        throw new Fp4lmError(`${label}: metadata[${JSON.stringify(k)}] must be a string, got ${describe(s)} (convert it with String() or JSON.stringify)`);
    if (kv.length > 0) parts.push(`${JSON.stringify(METADATA_KEY)}:{${kv.map(([k, s]) => `${JSON.stringify(k)}:${JSON.stringify(s)}`).join(",")}}`);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    const name = t.name;
    if (typeof name !== "string") throw new Fp4lmError(`${label}: tensor name must be a string, got ${describe(name)}`);
    const where = `${label}: tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) throw new Fp4lmError(`${where}: the name is reserved for metadata; rename the tensor`);
    if (seen.has(name)) throw new Fp4lmError(`${where}: duplicate name; each tensor needs a unique name`);
    seen.add(name);
    if (!isDtype(t.dtype)) throw new Fp4lmError(`${where}: unsupported dtype ${describe(t.dtype)}; supported: ${SUPPORTED}`);
    const count = elementCount(t.shape);
    if (typeof count === "string") throw new ShapeError(`${where}: ${count}`);
    if (!(t.data instanceof Uint8Array)) throw new Fp4lmError(`${where}: data must be a Uint8Array, got ${describe(t.data)}`);
    const need = count * DTYPE_SIZE[t.dtype];
    if (t.data.length !== need)
      throw new ShapeError(`${where}: data has ${t.data.length} bytes but ${t.dtype} shape [${t.shape.join(", ")}] needs ${need}`);
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + need] })}`);
    offset += need;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  // The header is padded so the data buffer starts 8-byte aligned, as the reference writer does.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES)
    throw new Fp4lmError(`${label}: header would be ${fmtBytes(padded)}, over the ${fmtBytes(MAX_HEADER_BYTES)} that readers accept; split the tensors over several files`);
  const header = new Uint8Array(padded).fill(0x20);
  header.set(json);
  return header;
}

function lengthPrefix(n: number): Uint8Array {
  const p = new Uint8Array(8);
  new DataView(p.buffer).setUint32(0, n, true); // n ≤ 100 MB, so the high word is 0
  return p;
}

export function serializeSafetensors(tensors: TensorEntry[], metadata?: Record<string, string>): Uint8Array {
  const header = buildHeader(tensors, metadata, "safetensors");
  let total = 8 + header.length;
  for (const t of tensors) total += t.data.length;
  const out = new Uint8Array(total);
  out.set(lengthPrefix(header.length), 0);
  out.set(header, 8);
  let pos = 8 + header.length;
  for (const t of tensors) {
    out.set(t.data, pos);
    pos += t.data.length;
  }
  return out;
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, Math.min(data.length - done, 1 << 30));
}

/**
 * Writes atomically: validates everything first (nothing is created when that fails), streams
 * into `${path}.tmp-<pid>` (no second in-memory copy of the tensors), fsyncs, then renames over
 * `path`, so readers see either the old file or the complete new one. The temp file is removed
 * on any failure.
 */
export function writeSafetensors(path: string, tensors: TensorEntry[], metadata?: Record<string, string>): void {
  const header = buildHeader(tensors, metadata, path);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "w");
    writeAll(fd, lengthPrefix(header.length));
    writeAll(fd, header);
    for (const t of tensors) writeAll(fd, t.data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // it may never have been created
    }
    throw e;
  }
  syncDir(dirname(path));
}

/** Makes the rename itself durable; best effort, since some platforms cannot fsync directories. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // not fatal: the file content is already synced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A float tensor's values as a new Float32Array (never a view of `t.data`). */
export function tensorToFloat32(t: TensorEntry, file: string): Float32Array {
  const where = `tensor ${JSON.stringify(t.name)}`;
  if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64")
    throw new FileFormatError(file, `${where} has dtype ${t.dtype}, not a float dtype (${FLOAT_DTYPES}); convert it explicitly`);
  const count = elementCount(t.shape);
  if (typeof count === "string") throw new FileFormatError(file, `${where}: ${count}`);
  const size = DTYPE_SIZE[t.dtype];
  if (t.data.length !== count * size)
    throw new FileFormatError(file, `${where} has ${t.data.length} data bytes but ${t.dtype} shape [${t.shape.join(", ")}] needs ${count * size}`);
  // Typed-array views need element alignment; data from a file can start at any byte offset.
  const src = (align: number) => (t.data.byteOffset % align === 0 ? t.data : new Uint8Array(t.data));
  switch (t.dtype) {
    case "F32": {
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(t.data);
      return out;
    }
    case "F64": {
      const b = src(8);
      const f64 = new Float64Array(b.buffer, b.byteOffset, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f64[i]; // the store rounds like Math.fround
      return out;
    }
    case "F16": {
      const b = src(2);
      return decodeF16(new Uint16Array(b.buffer, b.byteOffset, count));
    }
    case "BF16": {
      const b = src(2);
      const u16 = new Uint16Array(b.buffer, b.byteOffset, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = bf16BitsToF32(u16[i]);
      return out;
    }
  }
}
