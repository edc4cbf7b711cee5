/**
 * Token shards: llm.c's `.bin` files (dev/data/data_common.py `write_datafile`), a header of
 * 256 little-endian int32 followed by the token ids, so llm.c and fp4lm read each other's files.
 *   header[0] magic, header[1] version (together they fix the id type):
 *     20240520, 1 → uint16 ids (llm.c "gpt-2"; fp4lm uses it for any vocabulary ≤ 65535)
 *     20240801, 7 → uint32 ids (llm.c "llama-3"; fp4lm: vocabulary > 65535)
 *   header[2] number of tokens (< 2^31)
 *   header[3] vocabulary size: an fp4lm addition (llm.c writes 0 there = not recorded); when
 *             set, readers check every id is below it. header[4..255] are 0.
 * Not a streaming writer: a shard is built in memory and written in one go.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { FileFormatError, Fp4lmError } from "../errors.ts";

export const HEADER_INTS = 256;
export const HEADER_BYTES = HEADER_INTS * 4;
export const MAGIC_U16 = 20240520;
export const VERSION_U16 = 1;
export const MAGIC_U32 = 20240801;
export const VERSION_U32 = 7;
/** Largest vocabulary stored as uint16 (65535 stays free, as llm.c's eval files use it as a delimiter). */
export const MAX_U16_VOCAB = 65535;

export type TokenDtype = "uint16" | "uint32";

export interface ShardHeader {
  magic: number;
  version: number;
  dtype: TokenDtype;
  /** number of token ids after the header */
  tokens: number;
  /** vocabulary size recorded by the writer; 0 = not recorded (llm.c files) */
  vocabSize: number;
}

/** The id type a vocabulary needs. */
export function dtypeForVocab(vocabSize: number): TokenDtype {
  return vocabSize <= MAX_U16_VOCAB ? "uint16" : "uint32";
}

export function bytesPerToken(dtype: TokenDtype): number {
  return dtype === "uint16" ? 2 : 4;
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The bytes of a shard holding `tokens`, each checked to be an integer in [0, vocabSize). */
export function encodeShard(tokens: ArrayLike<number>, vocabSize: number): Uint8Array {
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 2 ** 31 - 1) throw new RangeError(`vocabSize must be an integer in [1, 2^31), got ${vocabSize}`);
  if (tokens.length >= 2 ** 31) throw new Fp4lmError(`a shard holds fewer than 2^31 tokens (llm.c's int32 count); got ${tokens.length}: split the data into several shards`);
  const dtype = dtypeForVocab(vocabSize);
  const size = bytesPerToken(dtype);
  const out = new Uint8Array(HEADER_BYTES + tokens.length * size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, dtype === "uint16" ? MAGIC_U16 : MAGIC_U32, true);
  dv.setInt32(4, dtype === "uint16" ? VERSION_U16 : VERSION_U32, true);
  dv.setInt32(8, tokens.length, true);
  dv.setInt32(12, vocabSize, true);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(Number.isInteger(t) && t >= 0 && t < vocabSize)) {
      throw new Fp4lmError(`token ${i} is ${t}, outside the vocabulary [0, ${vocabSize}); the ids and the vocabulary size do not belong together`);
    }
    if (size === 2) dv.setUint16(HEADER_BYTES + 2 * i, t, true);
    else dv.setUint32(HEADER_BYTES + 4 * i, t, true);
  }
  return out;
}

/** Write `tokens` to `file` as a shard (uint16 when vocabSize ≤ 65535, else uint32). */
export function writeShard(file: string, tokens: ArrayLike<number>, vocabSize: number): ShardHeader {
  const bytes = encodeShard(tokens, vocabSize);
  writeFileSync(file, bytes);
  return parseShardHeader(bytes.subarray(0, HEADER_BYTES), bytes.length, file);
}

/** Parse and check a header (first 1024 bytes) against the file's total size. */
export function parseShardHeader(head: Uint8Array, fileSize: number, file: string): ShardHeader {
  if (head.length < HEADER_BYTES || fileSize < HEADER_BYTES) {
    throw new FileFormatError(file, `is ${fileSize} bytes, shorter than the ${HEADER_BYTES}-byte token-shard header (truncated, or not a token shard)`);
  }
  const dv = new DataView(head.buffer, head.byteOffset, HEADER_BYTES);
  const magic = dv.getInt32(0, true), version = dv.getInt32(4, true), tokens = dv.getInt32(8, true), vocabSize = dv.getInt32(12, true);
  let dtype: TokenDtype;
  if (magic === MAGIC_U16) {
    if (version !== VERSION_U16) throw new FileFormatError(file, `token shard version ${version} with magic ${MAGIC_U16} is not supported (expected ${VERSION_U16}, uint16 ids)`);
    dtype = "uint16";
  } else if (magic === MAGIC_U32) {
    if (version !== VERSION_U32) throw new FileFormatError(file, `token shard version ${version} with magic ${MAGIC_U32} is not supported (expected ${VERSION_U32}, uint32 ids)`);
    dtype = "uint32";
  } else {
    throw new FileFormatError(file, `magic number ${magic} is not a token shard's (${MAGIC_U16} for uint16 ids or ${MAGIC_U32} for uint32); is this an llm.c/fp4lm .bin file? Re-create it with fp4lm prepare`);
  }
  if (tokens < 0) throw new FileFormatError(file, `header says ${tokens} tokens; the count must be ≥ 0 (corrupt header)`);
  if (vocabSize < 0) throw new FileFormatError(file, `header says vocabulary size ${vocabSize}; it must be ≥ 0 (corrupt header)`);
  if (dtype === "uint16" && vocabSize > MAX_U16_VOCAB + 1) throw new FileFormatError(file, `vocabulary size ${vocabSize} does not fit uint16 ids (corrupt header)`);
  const expected = HEADER_BYTES + tokens * bytesPerToken(dtype);
  if (fileSize !== expected) {
    const what = fileSize < expected ? "truncated" : "has trailing bytes";
    throw new FileFormatError(file, `is ${fileSize} bytes but its header announces ${tokens} ${dtype} tokens = ${expected} bytes (${what}); re-create it with fp4lm prepare`);
  }
  return { magic, version, dtype, tokens, vocabSize };
}

/** Read and check only the header of a shard file. */
export function readShardHeader(file: string): ShardHeader {
  const fd = openFile(file);
  try {
    const head = new Uint8Array(HEADER_BYTES);
    const n = readSync(fd, head, 0, HEADER_BYTES, 0);
    return parseShardHeader(head.subarray(0, n), fstatSync(fd).size, file);
  } finally {
    closeSync(fd);
  }
}

export interface Shard {
  header: ShardHeader;
  /** the ids; Uint16Array or Uint32Array per the header */
  tokens: Uint16Array | Uint32Array;
}

/** Check ids against the recorded vocabulary size (if any). */
function checkVocab(tokens: Uint16Array | Uint32Array, vocabSize: number, file: string): void {
  if (vocabSize === 0) return;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= vocabSize) throw new FileFormatError(file, `token ${i} is ${tokens[i]}, not below the vocabulary size ${vocabSize} in the header (corrupt file)`);
  }
}

/** Parse a whole shard held in memory (`file` names it in errors). */
export function parseShard(bytes: Uint8Array, file: string): Shard {
  const header = parseShardHeader(bytes.subarray(0, HEADER_BYTES), bytes.length, file);
  const start = bytes.byteOffset + HEADER_BYTES;
  const n = header.tokens;
  let tokens: Uint16Array | Uint32Array;
  const aligned = start % bytesPerToken(header.dtype) === 0;
  if (LITTLE_ENDIAN && aligned) {
    tokens = header.dtype === "uint16" ? new Uint16Array(bytes.buffer, start, n) : new Uint32Array(bytes.buffer, start, n);
  } else {
    const dv = new DataView(bytes.buffer, start, n * bytesPerToken(header.dtype));
    tokens = header.dtype === "uint16" ? new Uint16Array(n) : new Uint32Array(n);
    for (let i = 0; i < n; i++) tokens[i] = header.dtype === "uint16" ? dv.getUint16(2 * i, true) : dv.getUint32(4 * i, true);
  }
  checkVocab(tokens, header.vocabSize, file);
  return { header, tokens };
}

/** Read a whole shard file into memory. */
export function readShard(file: string): Shard {
  let bytes: Buffer;
  try { bytes = readFileSync(file); } catch (e) {
    throw new Fp4lmError(`cannot read token shard ${file}: ${(e as Error).message}`);
  }
  return parseShard(bytes, file);
}

function openFile(file: string): number {
  try { return openSync(file, "r"); } catch (e) {
    throw new Fp4lmError(`cannot open token shard ${file}: ${(e as Error).message}`);
  }
}

/**
 * A shard read in pieces from disk (for shards too large to hold): `read(start, n)` returns
 * ids [start, start + n). Close it when done.
 */
export class ShardFile {
  readonly header: ShardHeader;
  private fd: number;

  constructor(readonly file: string) {
    this.header = readShardHeader(file);
    this.fd = openFile(file);
  }

  read(start: number, n: number, out: Uint32Array = new Uint32Array(n)): Uint32Array {
    if (start < 0 || n < 0 || start + n > this.header.tokens) throw new RangeError(`tokens [${start}, ${start + n}) are outside ${this.file} (${this.header.tokens} tokens)`);
    const size = bytesPerToken(this.header.dtype);
    const buf = Buffer.alloc(n * size);
    const got = readSync(this.fd, buf, 0, buf.length, HEADER_BYTES + start * size);
    if (got !== buf.length) throw new FileFormatError(this.file, `short read at token ${start} (file changed while reading?)`);
    for (let i = 0; i < n; i++) {
      const t = size === 2 ? buf.readUInt16LE(2 * i) : buf.readUInt32LE(4 * i);
      if (this.header.vocabSize !== 0 && t >= this.header.vocabSize) {
        throw new FileFormatError(this.file, `token ${start + i} is ${t}, not below the vocabulary size ${this.header.vocabSize} in the header (corrupt file)`);
      }
      out[i] = t;
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; }
  }
}
