/**
 * Quantization telemetry of one GEMM operand (issue 5, part 3): how far the operand a GEMM sees is
 * from the high-precision values it stands for. Measured in the operand's own domain: x, or xᵀ
 * for the columnwise copies, then the spec's random Hadamard transform computed in FP32 (both
 * Wgrad operands carry the same orthogonal transform, so errors there are errors of the GEMM's
 * inputs). Per operand:
 *   relErr     ||q(x) − x|| / ||x||, q(x) fully dequantized (NVFP4: TE's e2m1·fl(fl(sf·amax)/2688))
 *   flushed    share of the nonzero inputs that quantized to 0
 *   saturated  share of all values clipped at the top of their block's grid: the element got the
 *              format's largest code (E2M1 6, E4M3 448, E5M2 57344) and |x| exceeds its value
 *              (NVFP4: a block scale that E4M3 rounded down; MXFP4: floor scales leave (6, 8)·2^e)
 *   amax       max |x| of the operand (NVFP4: the amax its tensor scale comes from)
 * This is the CPU reference: it quantizes again with the quantizer functions (same options and
 * random stream as quantizeOperand, hence the same bytes). The CUDA twin is
 * backends/cuda/kernels/telemetry.cu (one reduction into the sums below).
 */
import { roundBf16InPlace } from "../formats/bf16.ts";
import { dequantizeFP8, quantizeFP8 } from "../quant/fp8.ts";
import { rht } from "../quant/hadamard.ts";
import { dequantizeMXFP4, quantizeMXFP4 } from "../quant/mxfp4.ts";
import { dequantizeNVFP4, nvfp4Codes, quantizeNVFP4 } from "../quant/nvfp4.ts";
import { transpose as transposeMatrix } from "../quant/tensor-checks.ts";
import type { OperandSpec } from "./operand.ts";
import { mixIds, rhtSigns, type OperandStream } from "./quantize-operand.ts";

export interface QuantStats {
  relErr: number;
  flushed: number;
  saturated: number;
  amax: number;
}

/** What one pass over an operand accumulates (the CUDA kernel writes exactly these). */
export interface QuantSums {
  /** Σ (q − x)², Σ x² */
  err2: number;
  ref2: number;
  /** elements; nonzero inputs; nonzero inputs that became 0; clipped elements */
  n: number;
  nonzero: number;
  flushed: number;
  saturated: number;
  amax: number;
}

export function statsFromSums(s: QuantSums): QuantStats {
  return {
    relErr: s.ref2 > 0 ? Math.sqrt(s.err2 / s.ref2) : 0,
    flushed: s.nonzero > 0 ? s.flushed / s.nonzero : 0,
    saturated: s.n > 0 ? s.saturated / s.n : 0,
    amax: s.amax,
  };
}

/** The values the operand approximates: x or xᵀ (R, C), then the spec's RHT along C in FP32. */
export function operandReference(x: Float32Array, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream): Float32Array {
  const src = transpose ? transposeMatrix(x, [rows, cols]) : x;
  const shape: [number, number] = transpose ? [cols, rows] : [rows, cols];
  return spec.rht ? rht(src, shape, { size: spec.rht.size, signs: rhtSigns(spec.rht, stream), output: "fp32" }) : Float32Array.from(src);
}

/** Sums of a reference, its dequantized values and a per-element "got the largest code" test. */
export function quantSums(ref: Float32Array, deq: Float32Array, atTop: (i: number) => boolean): QuantSums {
  const s: QuantSums = { err2: 0, ref2: 0, n: ref.length, nonzero: 0, flushed: 0, saturated: 0, amax: 0 };
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], q = deq[i], a = Math.abs(r);
    s.err2 += (q - r) * (q - r);
    s.ref2 += r * r;
    if (a > s.amax) s.amax = a;
    if (r !== 0) {
      s.nonzero++;
      if (q === 0) s.flushed++;
    }
    if (a > Math.abs(q) && atTop(i)) s.saturated++;
  }
  return s;
}

/**
 * Telemetry of the operand quantizeOperand(x, rows, cols, spec, transpose, stream) returns.
 * Costs a second quantization; run it on telemetry steps only.
 */
export function operandSums(x: Float32Array, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream): QuantSums {
  const ref = operandReference(x, rows, cols, spec, transpose, stream);
  const src = transpose ? transposeMatrix(x, [rows, cols]) : x;
  const shape: [number, number] = transpose ? [cols, rows] : [rows, cols];
  const tensorId = mixIds(stream.gemmId, stream.slot + 1);
  const rhtOpt = spec.rht ? { size: spec.rht.size, signs: rhtSigns(spec.rht, stream) } : undefined;
  const never = () => false;
  switch (spec.format) {
    case "fp32":
      return quantSums(ref, src, never);
    case "bf16":
      return quantSums(ref, roundBf16InPlace(Float32Array.from(src)), never);
    case "nvfp4": {
      const q = quantizeNVFP4(src, shape, { tile2d: spec.block === "16x16", rounding: spec.rounding, seed: stream.seed, tensorId, rht: rhtOpt });
      const codes = nvfp4Codes(q);
      return quantSums(ref, dequantizeNVFP4(q), (i) => (codes[i] & 7) === 7);
    }
    case "mxfp4": {
      const q = quantizeMXFP4(src, shape, { scaleRounding: spec.mxScale ?? "floor", rounding: spec.rounding, seed: stream.seed, tensorId, rht: rhtOpt });
      return quantSums(ref, dequantizeMXFP4(q), (i) => ((q.packed[i >>> 1] >>> (4 * (i & 1))) & 7) === 7);
    }
    case "fp8": {
      const scaling = spec.block === "128x128" ? "128x128" : spec.block === "tensor" ? "tensor" : "1x128";
      const format = spec.fp8 ?? "e4m3";
      const q = quantizeFP8(src, shape, { format, scaling });
      const top = format === "e4m3" ? 0x7e : 0x7b;
      return quantSums(ref, dequantizeFP8(q), (i) => (q.data[i] & 0x7f) === top);
    }
  }
}

export function operandStats(x: Float32Array, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream): QuantStats {
  return statsFromSums(operandSums(x, rows, cols, spec, transpose, stream));
}
