/**
 * Load the float tensors of a .safetensors or .npy file as Float32Array, with their names,
 * original dtypes and shapes. Non-float tensors (integer buffers of a checkpoint) are listed
 * apart so that callers can say what they skipped. Not a checkpoint loader (see checkpoint/).
 */
import { extname, basename } from "node:path";
import { FileFormatError } from "../errors.ts";
import { readNpy, npyToFloat32 } from "./npy.ts";
import { readSafetensors, tensorToFloat32 } from "./safetensors.ts";

export interface FloatTensor {
  name: string;
  /** original dtype as the file named it (F32, BF16, F16, F64, or numpy f4/f2/f8) */
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export interface LoadedTensors {
  tensors: FloatTensor[];
  /** tensors left out because they are not floating point: name and dtype */
  skipped: { name: string; dtype: string }[];
}

const FLOAT_DTYPES = new Set(["F64", "F32", "F16", "BF16"]);

/** Read every float tensor of `path` (.safetensors or .npy). */
export function loadFloatTensors(path: string): LoadedTensors {
  const ext = extname(path).toLowerCase();
  if (ext === ".safetensors") {
    const f = readSafetensors(path);
    const out: LoadedTensors = { tensors: [], skipped: [] };
    for (const t of f.tensors) {
      if (FLOAT_DTYPES.has(t.dtype)) out.tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: tensorToFloat32(t, path) });
      else out.skipped.push({ name: t.name, dtype: t.dtype });
    }
    return out;
  }
  if (ext === ".npy") {
    const a = readNpy(path);
    return { tensors: [{ name: basename(path, ext), dtype: a.dtype, shape: a.shape, data: npyToFloat32(a, path) }], skipped: [] };
  }
  throw new FileFormatError(path, `unknown file type '${ext || "(none)"}'; fp4lm reads .safetensors and .npy`);
}

/**
 * The 2D view a quantizer sees: [product of leading dims, last dim]; a vector is one row.
 * Returns undefined for scalars and empty tensors.
 */
export function matrixShape(shape: readonly number[]): [number, number] | undefined {
  if (shape.length === 0) return undefined;
  const cols = shape[shape.length - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return rows * cols === 0 ? undefined : [rows, cols];
}
