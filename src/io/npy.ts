/**
 * Reader and writer for NumPy .npy files, format versions 1.0, 2.0 and 3.0: magic "\x93NUMPY",
 * version bytes, header length (u16 in 1.0, u32 in 2.0/3.0), a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and a
 * newline, then the raw C-order array data.
 * The header is read by a small strict parser for exactly that literal grammar (strings, ints,
 * True/False/None, tuples, lists), never by evaluating anything. Only plain numeric dtypes are
 * accepted, little-endian; everything else is refused with a message saying how to re-save.
 * Not a reader for .npz (zip archives of .npy files) nor for pickled object arrays.
 * Assumes a little-endian host (every machine Node runs on in practice).
 * Spec: numpy/lib/format.py module docstring (NEP 1). Written here because no maintained npm
 * package covers it.
 */
import { readWholeFile } from "./read-whole-file.ts";
import { FileFormatError, Fp4lmError, ShapeError } from "../errors.ts";
import { decodeF16 } from "../formats/f16.ts";

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
  throw new Error("src/io/npy.ts assumes a little-endian host; this machine is big-endian");

export type NpyDtype = "f2" | "f4" | "f8" | "i1" | "i2" | "i4" | "i8" | "u1" | "u2" | "u4" | "u8" | "b1";

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** exactly product(shape) * itemsize bytes, C order; from the parser, a view into the file's bytes */
  data: Uint8Array;
  /** always false: Fortran-order files are refused unless their layout equals C order */
  fortranOrder: false;
}

const ITEMSIZE: Record<NpyDtype, number> = {
  f2: 2, f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1,
};
/** numpy writes '|' for one-byte types and '<' (on little-endian machines) for the rest */
const descrOf = (d: NpyDtype) => (ITEMSIZE[d] === 1 ? "|" : "<") + d;
const SUPPORTED = (Object.keys(ITEMSIZE) as NpyDtype[]).map(descrOf).join(", ");

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ARRAY_ALIGN = 64;
/** numpy leaves room after the header so the first axis can grow in place (format.py) */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Deeper nesting than this is not a numpy header, and unbounded recursion could overflow the stack. */
const MAX_DEPTH = 16;

function isNpyDtype(s: unknown): s is NpyDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(ITEMSIZE, s);
}

// ---------------------------------------------------------------------------------------------
// Python literal parser

type PyValue =
  | { kind: "str"; value: string }
  | { kind: "int"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "none" }
  | { kind: "tuple"; items: PyValue[] }
  | { kind: "list"; items: PyValue[] }
  | { kind: "dict"; entries: [string, PyValue][] };

/** Thrown inside the parser, turned into a FileFormatError by the caller. */
class LiteralError extends Error {}

class LiteralParser {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly allowLongSuffix: boolean,
  ) {}

  parseDocument(): PyValue {
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.s.length) this.fail("unexpected text after the closing brace");
    return v;
  }

  private fail(what: string): never {
    const near = JSON.stringify(this.s.slice(this.pos, this.pos + 20));
    throw new LiteralError(`${what} at character ${this.pos} (near ${near})`);
  }

  private ws(): void {
    while (this.pos < this.s.length && " \t\n\r\f\v".includes(this.s[this.pos])) this.pos++;
  }

  private value(depth: number): PyValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    this.ws();
    const c = this.s[this.pos];
    if (c === undefined) this.fail("unexpected end of header");
    if (c === "'" || c === '"') return { kind: "str", value: this.str() };
    if (c === "{") return this.dict(depth);
    if (c === "(" || c === "[") return this.sequence(depth);
    if (c === "-" || (c >= "0" && c <= "9")) return this.int();
    for (const [word, v] of [
      ["True", { kind: "bool", value: true }],
      ["False", { kind: "bool", value: false }],
      ["None", { kind: "none" }],
    ] as const) {
      if (this.s.startsWith(word, this.pos) && !/[A-Za-z0-9_]/.test(this.s[this.pos + word.length] ?? "")) {
        this.pos += word.length;
        return v;
      }
    }
    this.fail("expected a Python literal (string, int, True/False/None, tuple, list or dict)");
  }

  private str(): string {
    const quote = this.s[this.pos++];
    const start = this.pos;
    while (this.pos < this.s.length && this.s[this.pos] !== quote) {
      const ch = this.s[this.pos];
      if (ch === "\\") this.fail("escape sequences in strings are not supported");
      if (ch === "\n") this.fail("newline inside a string");
      this.pos++;
    }
    if (this.pos >= this.s.length) this.fail("unterminated string");
    return this.s.slice(start, this.pos++);
  }

  private int(): PyValue {
    const m = /^-?[0-9]+/.exec(this.s.slice(this.pos, this.pos + 40));
    if (!m) this.fail("expected an integer");
    this.pos += m[0].length;
    // Python 2 wrote longs as 3L; numpy still reads those in version 1.0/2.0 files.
    if (this.allowLongSuffix && (this.s[this.pos] === "L" || this.s[this.pos] === "l")) this.pos++;
    if (/[0-9A-Za-z_.]/.test(this.s[this.pos] ?? "")) this.fail("malformed integer");
    const value = Number(m[0]);
    if (!Number.isSafeInteger(value)) this.fail(`integer ${m[0]} is too large`);
    return { kind: "int", value };
  }

  private sequence(depth: number): PyValue {
    const open = this.s[this.pos++];
    const close = open === "(" ? ")" : "]";
    const items: PyValue[] = [];
    let sawComma = false;
    for (;;) {
      this.ws();
      if (this.s[this.pos] === close) break;
      items.push(this.value(depth + 1));
      this.ws();
      if (this.s[this.pos] === ",") {
        this.pos++;
        sawComma = true;
      } else if (this.s[this.pos] !== close) this.fail(`expected ',' or '${close}'`);
    }
    this.pos++;
    // Python: "(3)" is just the int 3, not a tuple; only a comma (or "()") makes a tuple.
    if (open === "(" && items.length === 1 && !sawComma) return items[0];
    return open === "(" ? { kind: "tuple", items } : { kind: "list", items };
  }

  private dict(depth: number): PyValue {
    this.pos++;
    const entries: [string, PyValue][] = [];
    for (;;) {
      this.ws();
      if (this.s[this.pos] === "}") break;
      const k = this.value(depth + 1);
      if (k.kind !== "str") this.fail("dict keys must be strings");
      this.ws();
      if (this.s[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      if (entries.some(([e]) => e === k.value)) this.fail(`duplicate key '${k.value}'`);
      entries.push([k.value, this.value(depth + 1)]);
      this.ws();
      if (this.s[this.pos] === ",") this.pos++;
      else if (this.s[this.pos] !== "}") this.fail("expected ',' or '}'");
    }
    this.pos++;
    return { kind: "dict", entries };
  }
}

function pyRepr(v: PyValue): string {
  switch (v.kind) {
    case "str":
      return `'${v.value}'`;
    case "int":
      return String(v.value);
    case "bool":
      return v.value ? "True" : "False";
    case "none":
      return "None";
    case "tuple":
      return `(${v.items.map(pyRepr).join(", ")}${v.items.length === 1 ? "," : ""})`;
    case "list":
      return `[${v.items.map(pyRepr).join(", ")}]`;
    case "dict":
      return `{${v.entries.map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(", ")}}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Header fields

/** Maps a descr string to a supported dtype, or explains how to re-save the array. */
function parseDescr(file: string, v: PyValue): NpyDtype {
  const bad = (problem: string) => new FileFormatError(file, problem);
  if (v.kind === "list") throw bad("structured (record) dtypes are not supported; save each field as its own array");
  if (v.kind !== "str") throw bad(`'descr' must be a dtype string like '<f4', got ${pyRepr(v)}`);
  const descr = v.value;
  const m = /^([<>|=]?)([a-zA-Z])(\d*)(.*)$/.exec(descr);
  if (!m) throw bad(`unsupported dtype descr '${descr}'; supported: ${SUPPORTED}`);
  const [, order, kind, size, rest] = m;
  if (kind === "O")
    throw bad(`object arrays (descr '${descr}') hold pickled Python objects and cannot be read; save a numeric array instead`);
  if (kind === "V" && size === "2" && rest === "")
    throw bad(
      `descr '${descr}' is raw 2-byte void data: ml_dtypes bfloat16 is saved this way, but so is anything else 2 bytes wide, so it cannot be decoded unambiguously; save with a.astype(np.float32) instead`,
    );
  const code = kind + size;
  if (!isNpyDtype(code) || rest !== "") throw bad(`unsupported dtype descr '${descr}'; supported: ${SUPPORTED}`);
  if (ITEMSIZE[code] > 1) {
    if (order === ">")
      throw bad(`descr '${descr}' is big-endian; re-save with a.astype('<${code}') (little-endian is required)`);
    if (order === "=" || order === "")
      throw bad(`descr '${descr}' has native byte order, which depends on the machine that wrote it; re-save with a.astype('<${code}')`);
  }
  return code;
}

function parseShape(file: string, v: PyValue): number[] {
  if (v.kind !== "tuple" || !v.items.every((x) => x.kind === "int"))
    throw new FileFormatError(file, `'shape' must be a tuple of ints like (3, 4), got ${pyRepr(v)}`);
  const shape = v.items.map((x) => (x as { value: number }).value);
  shape.forEach((d, i) => {
    if (d < 0) throw new FileFormatError(file, `shape ${pyRepr(v)} has negative dimension ${d} at axis ${i}`);
  });
  return shape;
}

/** Element count, refusing counts (or byte counts) past 2^53, which no buffer can hold. */
function elementCount(shape: number[], itemsize: number): number | undefined {
  let n = 1;
  for (const d of shape) n *= d;
  return Number.isSafeInteger(n * itemsize) ? n : undefined;
}

/** Fortran-order data is laid out like C-order data when at most one axis is longer than 1. */
function sameLayoutInBothOrders(shape: number[]): boolean {
  return shape.filter((d) => d > 1).length <= 1 || shape.includes(0);
}

const fmtShape = (shape: number[]) => `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;

// ---------------------------------------------------------------------------------------------

/** Parses and fully validates an .npy file held in memory. `data` is a view into `bytes`. */
export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4)
    throw new FileFormatError(file, "this is a zip archive (an .npz?), not an .npy file; unzip it and read the .npy files inside");
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new FileFormatError(file, `not an .npy file: it does not start with the magic "\\x93NUMPY"${bytes.length < 8 ? ` (only ${bytes.length} bytes)` : ""}`);
  const major = bytes[6];
  const minor = bytes[7];
  if (minor !== 0 || major < 1 || major > 3)
    throw new FileFormatError(file, `unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0); re-save it with np.save`);
  const lenBytes = major === 1 ? 2 : 4;
  const prefix = 8 + lenBytes;
  if (bytes.length < prefix)
    throw new FileFormatError(file, `file is ${bytes.length} bytes, too short to hold the header length (file truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, prefix);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (prefix + hlen > bytes.length)
    throw new FileFormatError(file, `header length ${hlen} runs past the end of the ${bytes.length}-byte file (file truncated?)`);
  const raw = bytes.subarray(prefix, prefix + hlen);

  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
    } catch {
      throw new FileFormatError(file, "header is not valid UTF-8 (required by format version 3.0)");
    }
  } else {
    // latin-1 byte by byte (TextDecoder's "latin1" is really windows-1252)
    let s = "";
    for (let i = 0; i < raw.length; i += 8192) s += String.fromCharCode(...raw.subarray(i, i + 8192));
    text = s;
  }

  let header: PyValue;
  try {
    header = new LiteralParser(text, major < 3).parseDocument();
  } catch (e) {
    if (e instanceof LiteralError) throw new FileFormatError(file, `cannot parse the header dict: ${e.message}`);
    throw e;
  }
  if (header.kind !== "dict") throw new FileFormatError(file, `header must be a dict literal, got ${pyRepr(header).slice(0, 60)}`);
  const fields = new Map(header.entries);
  for (const key of fields.keys())
    if (key !== "descr" && key !== "fortran_order" && key !== "shape")
      throw new FileFormatError(file, `header has unexpected key '${key}' (expected exactly 'descr', 'fortran_order', 'shape')`);
  for (const key of ["descr", "fortran_order", "shape"])
    if (!fields.has(key)) throw new FileFormatError(file, `header has no '${key}' key`);

  const dtype = parseDescr(file, fields.get("descr")!);
  const shape = parseShape(file, fields.get("shape")!);
  const fo = fields.get("fortran_order")!;
  if (fo.kind !== "bool") throw new FileFormatError(file, `'fortran_order' must be True or False, got ${pyRepr(fo)}`);
  if (fo.value && !sameLayoutInBothOrders(shape))
    throw new FileFormatError(
      file,
      `array of shape ${fmtShape(shape)} is stored in Fortran order; re-save it with np.save(path, np.ascontiguousarray(a))`,
    );

  const count = elementCount(shape, ITEMSIZE[dtype]);
  if (count === undefined) throw new FileFormatError(file, `shape ${fmtShape(shape)} has more elements than can be addressed`);
  const need = count * ITEMSIZE[dtype];
  const start = prefix + hlen;
  const have = bytes.length - start;
  if (have < need)
    throw new FileFormatError(
      file,
      `data is ${have} bytes but shape ${fmtShape(shape)} of '${descrOf(dtype)}' needs ${need} (file truncated?)`,
    );
  if (have > need)
    throw new FileFormatError(
      file,
      `${have - need} bytes follow the array data (several arrays saved into one file? use one file per array, or np.savez)`,
    );
  return { dtype, shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + start, need), fortranOrder: false };
}


export function readNpy(path: string): NpyArray {
  return parseNpy(readWholeFile(path, "split the array over several files"), path);
}

/**
 * An .npy file (version 1.0, or 2.0 when the header needs it) with the same bytes np.save
 * writes for the same array: same key order, padding and growth space.
 */
export function serializeNpy(arr: { dtype: NpyDtype; shape: number[]; data: Uint8Array }): Uint8Array {
  if (!isNpyDtype(arr.dtype)) throw new Fp4lmError(`npy: unsupported dtype ${JSON.stringify(arr.dtype)}; supported: ${Object.keys(ITEMSIZE).join(", ")}`);
  if (!Array.isArray(arr.shape)) throw new ShapeError(`npy: shape must be an array of non-negative integers`);
  arr.shape.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`npy: shape[${i}] must be a non-negative integer, got ${d}`);
  });
  const count = elementCount(arr.shape, ITEMSIZE[arr.dtype]);
  if (count === undefined) throw new ShapeError(`npy: shape ${fmtShape(arr.shape)} has more elements than can be addressed`);
  const need = count * ITEMSIZE[arr.dtype];
  if (arr.data.length !== need)
    throw new ShapeError(`npy: data has ${arr.data.length} bytes but '${descrOf(arr.dtype)}' shape ${fmtShape(arr.shape)} needs ${need}`);

  let dict = `{'descr': '${descrOf(arr.dtype)}', 'fortran_order': False, 'shape': ${fmtShape(arr.shape)}, }`;
  if (arr.shape.length > 0) dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(arr.shape[0]).length));
  const hlen = dict.length + 1; // + the final newline
  let lenBytes = 2;
  let pad = ARRAY_ALIGN - ((8 + lenBytes + hlen) % ARRAY_ALIGN);
  if (hlen + pad > 0xffff) {
    lenBytes = 4;
    pad = ARRAY_ALIGN - ((8 + lenBytes + hlen) % ARRAY_ALIGN);
  }
  const headerBytes = hlen + pad;
  const out = new Uint8Array(8 + lenBytes + headerBytes + arr.data.length);
  out.set(MAGIC, 0);
  out[6] = lenBytes === 2 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (lenBytes === 2) dv.setUint16(8, headerBytes, true);
  else dv.setUint32(8, headerBytes, true);
  const start = 8 + lenBytes;
  for (let i = 0; i < dict.length; i++) out[start + i] = dict.charCodeAt(i);
  out.fill(0x20, start + dict.length, start + headerBytes - 1);
  out[start + headerBytes - 1] = 0x0a;
  out.set(arr.data, start + headerBytes);
  return out;
}

/** A float array's values as a new Float32Array (never a view of `a.data`); f8 rounds to nearest. */
export function npyToFloat32(a: NpyArray, file: string): Float32Array {
  if (a.dtype !== "f4" && a.dtype !== "f2" && a.dtype !== "f8")
    throw new FileFormatError(
      file,
      `array has dtype '${descrOf(a.dtype)}', not a float dtype ('<f2', '<f4', '<f8'); save it with a.astype(np.float32)`,
    );
  const count = elementCount(a.shape, ITEMSIZE[a.dtype]);
  if (count === undefined || a.data.length !== count * ITEMSIZE[a.dtype])
    throw new FileFormatError(file, `array data is ${a.data.length} bytes, which does not match shape ${fmtShape(a.shape)} of '${descrOf(a.dtype)}'`);
  // Typed-array views need element alignment; a header of odd length leaves the data unaligned.
  const src = (align: number) => (a.data.byteOffset % align === 0 ? a.data : new Uint8Array(a.data));
  switch (a.dtype) {
    case "f4": {
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(a.data);
      return out;
    }
    case "f2": {
      const b = src(2);
      return decodeF16(new Uint16Array(b.buffer, b.byteOffset, count));
    }
    case "f8": {
      const b = src(8);
      const f64 = new Float64Array(b.buffer, b.byteOffset, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f64[i]; // the store rounds like Math.fround
      return out;
    }
  }
}
