/**
 * MXFP4 quantizer (OCP Microscaling v1.0): blocks of 32 along the last dimension, one UE8M0
 * (power-of-two) scale per block, E2M1 elements, no tensor-level scale. The paper's MXFP4
 * baseline. Scale rules: "floor" = OCP spec (torchao FLOOR): b = clamp(exp(amax) − 127 − 2,
 * −127, 128) + 127 from the fp32 bits of the block amax (elements can exceed 6 after scaling
 * and saturate: MXFP4's known clipping); "rceil" (torchao RCEIL, NVIDIA's cuBLAS recipe):
 * b = exponent of fl(amax·fl(1/6)) rounded up. Elements: E2M1(fl(x · 2^(127−b))), RN or SR.
 * Reference path; source: docs/numerics.md §8.2, vector mxfp4.json.
 */
import { E2M1_DECODE } from "../formats/e2m1.ts";
import { f32ToBits } from "../formats/float-bits.ts";
import { ue8m0Decode, UE8M0_NAN } from "../formats/ue8m0.ts";
import { encodeE2M1Blocks, srBytes, type Rounding } from "./e2m1-blocks.ts";
import { resolveRht, rht as applyRht, type RhtOptions } from "./hadamard.ts";
import { assertFinite, checkMultiple, checkShape, transpose, type Shape2D } from "./tensor-checks.ts";

export type MxScaleRounding = "floor" | "rceil";

export interface MXFP4Options {
  /** "floor" (OCP, default) or "rceil" */
  scaleRounding?: MxScaleRounding;
  rounding?: Rounding;
  randomBytes?: Uint8Array;
  seed?: number;
  tensorId?: number;
  /** random Hadamard transform along the last dimension first (the mxfp4 recipe uses size 32) */
  rht?: boolean | RhtOptions;
  /** "error" (default) or "te": NaN/Inf blocks get scale 0xFF and code +6 (torchao behaviour) */
  nonFinite?: "error" | "te";
  name?: string;
}

export interface MXFP4Tensor {
  shape: [number, number];
  /** E2M1 codes, two per byte, element 2i in the low nibble */
  packed: Uint8Array;
  /** UE8M0 scale bytes, (rows, cols/32) row-major */
  scales: Uint8Array;
  scaleRounding: MxScaleRounding;
  rht?: { size: number; signs: number[] };
}

const INV6 = Math.fround(1 / 6);

/** OCP rule: floor(log2 amax) − 2 from the fp32 exponent field; non-finite → 0xFF. */
export function e8m0FloorFromAmax(amax: number): number {
  if (!Number.isFinite(amax)) return UE8M0_NAN;
  const e = (f32ToBits(amax) >>> 23) & 0xff;
  return Math.max(-127, Math.min(128, e - 127 - 2)) + 127;
}

/** RCEIL: round fl(amax·fl(1/6)) up to a power of two (`cvt.rp.satfinite.ue8m0x2.f32`). */
export function e8m0RceilFromAmax(amax: number): number {
  if (!Number.isFinite(amax)) return UE8M0_NAN;
  const bits = f32ToBits(Math.fround(amax * INV6));
  const e = (bits >>> 23) & 0xff, m = bits & 0x7fffff;
  const up = e === 0 ? (m > 0x400000 ? 1 : 0) : m !== 0 ? 1 : 0;
  return Math.min(e + up, 0xfe);
}

/** Quantize a (rows, cols) matrix to MXFP4; cols must be a multiple of 32. */
export function quantizeMXFP4(x: Float32Array, shape: Shape2D, opts: MXFP4Options = {}): MXFP4Tensor {
  const name = opts.name ?? "tensor";
  checkShape(x, shape, name);
  checkMultiple(name, "MXFP4", shape, 1, 32, "one UE8M0 scale per 32 consecutive values");
  if ((opts.nonFinite ?? "error") === "error") assertFinite(x, shape, name);
  const scaleRounding = opts.scaleRounding ?? "floor";
  if (scaleRounding !== "floor" && scaleRounding !== "rceil") {
    throw new RangeError(`${name}: scaleRounding must be "floor" or "rceil", got ${String(scaleRounding)}`);
  }
  let rhtInfo: MXFP4Tensor["rht"];
  if (opts.rht) {
    const r = resolveRht(opts.rht === true ? { size: 32 } : opts.rht);
    checkMultiple(name, `an RHT of size ${r.size}`, shape, 1, r.size, "the transform mixes groups along the last dimension");
    x = applyRht(x, shape, { ...r });
    rhtInfo = { size: r.size, signs: r.signs };
  }
  const rbytes = srBytes(opts, x.length, name);
  const [rows, cols] = shape;
  const nb = (rows * cols) / 32;
  const scales = new Uint8Array(nb);
  const encs = new Float32Array(nb);
  const rule = scaleRounding === "floor" ? e8m0FloorFromAmax : e8m0RceilFromAmax;
  for (let k = 0; k < nb; k++) {
    let bamax = 0;
    for (let i = k * 32; i < k * 32 + 32; i++) {
      const a = Math.abs(x[i]);
      if (a !== a) { bamax = NaN; break; }
      if (a > bamax) bamax = a;
    }
    const b = rule(bamax);
    scales[k] = b;
    encs[k] = b === UE8M0_NAN ? NaN : 2 ** (127 - b);
  }
  const packed = encodeE2M1Blocks(x, encs, 32, rbytes);
  const out: MXFP4Tensor = { shape: [rows, cols], packed, scales, scaleRounding };
  if (rhtInfo) out.rht = rhtInfo;
  return out;
}

/** The columnwise (transposed) copy, quantized from the source. */
export function quantizeMXFP4Columnwise(x: Float32Array, shape: Shape2D, opts: MXFP4Options = {}): MXFP4Tensor {
  checkShape(x, shape, opts.name ?? "tensor");
  return quantizeMXFP4(transpose(x, shape), [shape[1], shape[0]], opts);
}

/** Dequantize: e2m1 · 2^(b−127) (fp32, exact unless it underflows). */
export function dequantizeMXFP4(q: MXFP4Tensor): Float32Array {
  const out = new Float32Array(q.shape[0] * q.shape[1]);
  for (let i = 0; i < out.length; i++) {
    const byte = q.packed[i >>> 1];
    out[i] = Math.fround(E2M1_DECODE[i & 1 ? byte >>> 4 : byte & 15] * ue8m0Decode(q.scales[i >>> 5]));
  }
  return out;
}
