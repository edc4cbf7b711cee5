/**
 * Loader for the shared test vectors (test/vectors/*.json, copied from shared/vectors, made by
 * shared/reference/gen_vectors.py). Decodes their conventions: exact float32 JSON numbers,
 * "NaN"/"Infinity"/"-Infinity"/"-0" strings, hex byte strings, one-hex-digit-per-code strings.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const dir = join(dirname(fileURLToPath(import.meta.url)), "vectors");

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function loadVector(name: string): Json {
  return JSON.parse(readFileSync(join(dir, name), "utf8"));
}

export function num(v: number | string): number {
  if (typeof v === "number") return v;
  switch (v) {
    case "NaN": return NaN;
    case "Infinity": return Infinity;
    case "-Infinity": return -Infinity;
    case "-0": return -0;
  }
  throw new Error(`not a vector number: ${v}`);
}

export function f32s(a: (number | string)[]): Float32Array {
  return Float32Array.from(a.map(num));
}

export function hexBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function codesHex(codes: Uint8Array): string {
  return Array.from(codes, (c) => c.toString(16)).join("");
}

/**
 * Bit patterns of fp32 values, for exact comparisons that see -0. Every NaN maps to one
 * pattern: the vectors write NaN as a string without sign or payload.
 */
export function bitsOf(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length), (b, i) => (a[i] !== a[i] ? 0x7fc00000 : b));
}
