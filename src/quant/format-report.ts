/**
 * Quantization error report for one tensor in several formats: relative RMS error, SNR (dB),
 * the share of non-zero elements that underflow to zero, the share that saturate (land beyond
 * the top of their block's grid), and the histogram of block scales by power of two. Errors
 * are measured in the tensor's own domain (an RHT'd tensor is transformed back first).
 * Used by `fp4lm quantize`; what the numbers mean is in README.md.
 */
import { E2M1_MAX } from "../formats/e2m1.ts";
import { E4M3_DECODE, E4M3_MAX } from "../formats/e4m3.ts";
import { E5M2_MAX } from "../formats/e5m2.ts";
import { exponentOf } from "../formats/float-bits.ts";
import { ue8m0Decode } from "../formats/ue8m0.ts";
import { dequantizeFP8, quantizeFP8, type FP8Tensor } from "./fp8.ts";
import { inverseRht, rht } from "./hadamard.ts";
import { dequantizeMXFP4, quantizeMXFP4, type MXFP4Tensor } from "./mxfp4.ts";
import { dequantizeNVFP4, INV2688, quantizeNVFP4, type NVFP4Tensor } from "./nvfp4.ts";
import type { Shape2D } from "./tensor-checks.ts";

/** The formats `fp4lm quantize` compares, by name. */
export const REPORT_FORMATS = [
  "nvfp4-1x16", "nvfp4-16x16", "nvfp4-rht16", "mxfp4", "mxfp4-rceil", "fp8-tensor", "fp8-1x128",
] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export type Quantized =
  | { kind: "nvfp4"; q: NVFP4Tensor }
  | { kind: "mxfp4"; q: MXFP4Tensor }
  | { kind: "fp8"; q: FP8Tensor };

export interface FormatStats {
  format: ReportFormat;
  relRmsError: number;
  snrDb: number;
  /** share of non-zero elements that dequantize to exactly zero */
  underflow: number;
  /** share of elements clipped: beyond their block's largest value by more than half a step */
  saturated: number;
  /** block-scale histogram: floor(log2(scale)) → count; "zero" for zero scales */
  scaleHistogram: Record<string, number>;
  bitsPerElement: number;
}

export interface QuantizeChoice {
  nonFinite?: "error" | "te";
  name?: string;
}

/** Quantize x in one of the report formats. */
export function quantizeAs(format: ReportFormat, x: Float32Array, shape: Shape2D, o: QuantizeChoice = {}): Quantized {
  switch (format) {
    case "nvfp4-1x16": return { kind: "nvfp4", q: quantizeNVFP4(x, shape, o) };
    case "nvfp4-16x16": return { kind: "nvfp4", q: quantizeNVFP4(x, shape, { ...o, tile2d: true }) };
    case "nvfp4-rht16": return { kind: "nvfp4", q: quantizeNVFP4(x, shape, { ...o, rht: true }) };
    case "mxfp4": return { kind: "mxfp4", q: quantizeMXFP4(x, shape, { ...o, scaleRounding: "floor" }) };
    case "mxfp4-rceil": return { kind: "mxfp4", q: quantizeMXFP4(x, shape, { ...o, scaleRounding: "rceil" }) };
    case "fp8-tensor": return { kind: "fp8", q: quantizeFP8(x, shape, { ...o, scaling: "tensor" }) };
    case "fp8-1x128": return { kind: "fp8", q: quantizeFP8(x, shape, { ...o, scaling: "1x128" }) };
  }
}

/** Dequantized values in the quantized domain (RHT applied, if any). */
export function dequantizeAs(r: Quantized): Float32Array {
  if (r.kind === "nvfp4") return dequantizeNVFP4(r.q);
  return r.kind === "mxfp4" ? dequantizeMXFP4(r.q) : dequantizeFP8(r.q);
}

/**
 * Clipping threshold of each element's block, by flat index: the largest grid value plus half
 * the step below it (E2M1: 6 + 1; E4M3: 448 + 16; E5M2: 57344 + 4096), times the block's decode
 * scale. Beyond it an element loses more than rounding to nearest would: it saturated.
 */
function clipThreshold(r: Quantized): (i: number) => number {
  const e2m1Top = E2M1_MAX + 1;
  if (r.kind === "nvfp4") {
    const amax = r.q.amax;
    return (i) => e2m1Top * Math.fround(Math.fround(E4M3_DECODE[r.q.scales[i >>> 4]] * amax) * INV2688);
  }
  if (r.kind === "mxfp4") return (i) => e2m1Top * ue8m0Decode(r.q.scales[i >>> 5]);
  const q = r.q;
  const [rows, cols] = q.shape;
  const fmax = q.format === "e4m3" ? E4M3_MAX + 16 : E5M2_MAX + 4096;
  const bh = q.scaling === "tensor" ? Math.max(rows, 1) : q.scaling === "1x128" ? 1 : 128;
  const bw = q.scaling === "tensor" ? Math.max(cols, 1) : 128;
  const gc = Math.ceil(cols / bw);
  return (i) => fmax * q.scaleInv[Math.floor(Math.floor(i / cols) / bh) * gc + Math.floor((i % cols) / bw)];
}

function scaleValues(r: Quantized): Float64Array {
  if (r.kind === "nvfp4") return Float64Array.from(r.q.scales, (b) => E4M3_DECODE[b]);
  if (r.kind === "mxfp4") return Float64Array.from(r.q.scales, (b) => ue8m0Decode(b));
  return Float64Array.from(r.q.scaleInv);
}

const BITS: Record<ReportFormat, number> = {
  "nvfp4-1x16": 4 + 8 / 16, "nvfp4-16x16": 4 + 8 / 256, "nvfp4-rht16": 4 + 8 / 16,
  mxfp4: 4 + 8 / 32, "mxfp4-rceil": 4 + 8 / 32, "fp8-tensor": 8, "fp8-1x128": 8 + 32 / 128,
};

/** Error statistics of x quantized as `r` (non-finite elements of x are left out). */
export function formatStats(format: ReportFormat, x: Float32Array, r: Quantized): FormatStats {
  // error in the tensor's own domain; underflow and saturation where quantization happens
  const yq = dequantizeAs(r);
  const t = r.kind === "nvfp4" ? r.q.rht : undefined;
  const y = t ? inverseRht(yq, r.q.shape, t) : yq;
  const xq = t ? rht(x, r.q.shape, { ...t, output: "fp32" }) : x;
  const top = clipThreshold(r);
  let sig = 0, err = 0, nonzero = 0, under = 0, sat = 0, n = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) continue;
    n++;
    sig += v * v;
    const d = v - y[i];
    err += d * d;
    if (xq[i] !== 0) {
      nonzero++;
      if (yq[i] === 0) under++;
    }
    if (Math.abs(xq[i]) > top(i)) sat++;
  }
  const hist: Record<string, number> = {};
  for (const s of scaleValues(r)) {
    const key = s === 0 ? "zero" : Number.isFinite(s) ? String(exponentOf(s)) : "nan";
    hist[key] = (hist[key] ?? 0) + 1;
  }
  return {
    format,
    relRmsError: sig > 0 ? Math.sqrt(err / sig) : err > 0 ? Infinity : 0,
    snrDb: err > 0 ? 10 * Math.log10(sig / err) : Infinity,
    underflow: nonzero > 0 ? under / nonzero : 0,
    saturated: n > 0 ? sat / n : 0,
    scaleHistogram: hist,
    bitsPerElement: BITS[format],
  };
}
