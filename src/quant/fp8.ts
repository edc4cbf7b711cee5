/**
 * FP8 quantizers: the paper's FP8 baseline. E4M3 (or E5M2) elements with FP32 scales, either one
 * per tensor ("current scaling") or DeepSeek-V3-style blocks: 1x128 along the last dimension for
 * activations and gradients, 128x128 tiles for weights (TE `Float8BlockScaling`). Scale rule of
 * TE `compute_scale_from_amax`: scale = fl(fp8max / amax) (amax 0 or inf → 1, overflow →
 * FLT_MAX), optionally rounded down to a power of two (TE's default for block scaling; its
 * `NVTE_FP8_BLOCK_SCALING_FP32_SCALES=1` turns that off); element = fp8_satfinite(fl(x·scale));
 * stored decode scale = fl(1/scale). Edge blocks may be partial. Reference path.
 * Sources: TE common/recipe/recipe_common.cuh, docs fp8_blockwise_scaling.rst; paper §3.1.
 */
import { E4M3_DECODE, e4m3Encode } from "../formats/e4m3.ts";
import { E5M2_DECODE, e5m2Encode } from "../formats/e5m2.ts";
import { exponentOf, FLT_MAX } from "../formats/float-bits.ts";
import { assertFinite, checkShape, type Shape2D } from "./tensor-checks.ts";

export type Fp8Format = "e4m3" | "e5m2";
export type Fp8Scaling = "tensor" | "1x128" | "128x128";

export interface FP8Options {
  format?: Fp8Format;
  /** "tensor" (default), "1x128" (activations, gradients) or "128x128" (weights) */
  scaling?: Fp8Scaling;
  /** round scales down to powers of two (default: true for block scaling, false per tensor) */
  pow2Scales?: boolean;
  nonFinite?: "error" | "te";
  name?: string;
}

export interface FP8Tensor {
  shape: [number, number];
  format: Fp8Format;
  scaling: Fp8Scaling;
  /** one FP8 byte per element, row-major */
  data: Uint8Array;
  /** FP32 decode scales (x ≈ fp8 · scaleInv): 1 value, (rows, ⌈cols/128⌉) or (⌈rows/128⌉, ⌈cols/128⌉) */
  scaleInv: Float32Array;
}

const FP8_MAX = { e4m3: 448, e5m2: 57344 } as const;

/** TE's encode scale for a block amax. */
export function fp8ScaleFromAmax(amax: number, fp8Max: number, pow2: boolean): number {
  if (amax === 0 || amax === Infinity || amax !== amax) return 1;
  let scale = Math.fround(fp8Max / amax);
  if (scale === Infinity) scale = FLT_MAX;
  if (pow2) scale = 2 ** exponentOf(scale);
  return scale;
}

/** Quantize a (rows, cols) matrix to FP8 with per-tensor or block scales. */
export function quantizeFP8(x: Float32Array, shape: Shape2D, opts: FP8Options = {}): FP8Tensor {
  const name = opts.name ?? "tensor";
  checkShape(x, shape, name);
  if ((opts.nonFinite ?? "error") === "error") assertFinite(x, shape, name);
  const format = opts.format ?? "e4m3";
  const scaling = opts.scaling ?? "tensor";
  if (!(format in FP8_MAX)) throw new RangeError(`${name}: FP8 format must be "e4m3" or "e5m2", got ${String(format)}`);
  if (!["tensor", "1x128", "128x128"].includes(scaling)) {
    throw new RangeError(`${name}: FP8 scaling must be "tensor", "1x128" or "128x128", got ${String(scaling)}`);
  }
  const pow2 = opts.pow2Scales ?? scaling !== "tensor";
  const encode = format === "e4m3" ? e4m3Encode : e5m2Encode;
  const [rows, cols] = shape;
  const bh = scaling === "tensor" ? Math.max(rows, 1) : scaling === "1x128" ? 1 : 128;
  const bw = scaling === "tensor" ? Math.max(cols, 1) : 128;
  const gr = Math.ceil(rows / bh), gc = Math.ceil(cols / bw);
  const scaleInv = new Float32Array(Math.max(gr * gc, 1));
  const data = new Uint8Array(rows * cols);
  for (let br = 0; br < gr; br++) {
    for (let bc = 0; bc < gc; bc++) {
      const r1 = Math.min((br + 1) * bh, rows), c1 = Math.min((bc + 1) * bw, cols);
      let amax = 0;
      for (let r = br * bh; r < r1; r++) for (let c = bc * bw; c < c1; c++) {
        const a = Math.abs(x[r * cols + c]);
        if (a > amax) amax = a;
      }
      const scale = fp8ScaleFromAmax(amax, FP8_MAX[format], pow2);
      scaleInv[br * gc + bc] = Math.fround(1 / scale);
      for (let r = br * bh; r < r1; r++) for (let c = bc * bw; c < c1; c++) {
        data[r * cols + c] = encode(Math.fround(x[r * cols + c] * scale));
      }
    }
  }
  return { shape: [rows, cols], format, scaling, data, scaleInv };
}

/** Dequantize: fl(fp8 · scaleInv). */
export function dequantizeFP8(q: FP8Tensor): Float32Array {
  const [rows, cols] = q.shape;
  const table = q.format === "e4m3" ? E4M3_DECODE : E5M2_DECODE;
  const bh = q.scaling === "tensor" ? Math.max(rows, 1) : q.scaling === "1x128" ? 1 : 128;
  const bw = q.scaling === "tensor" ? Math.max(cols, 1) : 128;
  const gc = Math.ceil(cols / bw);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = Math.fround(table[q.data[r * cols + c]] * q.scaleInv[Math.floor(r / bh) * gc + Math.floor(c / bw)]);
    }
  }
  return out;
}
