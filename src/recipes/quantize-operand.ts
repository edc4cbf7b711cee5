/**
 * Quantize-dequantize one GEMM operand as an OperandSpec says, on the CPU: the operand values
 * an emulated low-precision GEMM feeds to a BF16-exact GEMM with FP32 accumulation, plus the
 * per-tensor factor that goes into the GEMM's alpha. For NVFP4 the values are e2m1·sf (exact in
 * BF16) and alpha = nvfp4GemmAlpha(amaxA, amaxB), Blackwell's arithmetic up to summation order;
 * MXFP4 and FP8 values are fully dequantized (exact: power-of-two or FP32 scales); BF16 operands
 * are rounded to BF16. The operand is returned K-contiguous: `transpose` quantizes xᵀ (the
 * columnwise copy) from the high-precision source. Reference path for the CUDA kernels.
 */
import { roundBf16InPlace } from "../formats/bf16.ts";
import { dequantizeFP8, quantizeFP8 } from "../quant/fp8.ts";
import { randomSigns, TE_SIGN_VECTOR, type RhtOptions } from "../quant/hadamard.ts";
import { dequantizeMXFP4, quantizeMXFP4 } from "../quant/mxfp4.ts";
import { nvfp4GemmAlpha, nvfp4Operand, quantizeNVFP4, INV2688 } from "../quant/nvfp4.ts";
import { assertFinite, transpose as transposeMatrix } from "../quant/tensor-checks.ts";
import type { OperandSpec, RhtSpec } from "./operand.ts";

/** Where an operand's random bits come from: the run seed and per-GEMM / per-operand ids. */
export interface OperandStream {
  seed: number;
  /** identifies the GEMM instance (layer, gemm, step, micro-batch); per-tensor RHT signs use it */
  gemmId: number;
  /** 0 for operand A, 1 for operand B */
  slot: 0 | 1;
}

export interface QuantizedOperand {
  /** (rows, cols) K-contiguous operand values, exact in BF16 for the FP4 formats */
  values: Float32Array;
  rows: number;
  cols: number;
  spec: OperandSpec;
  /** NVFP4 tensor amax (folded into the GEMM alpha); undefined for other formats */
  amax?: number;
}

/** 32-bit mix of two integers (murmur3 finaliser), for Philox stream ids. */
export function mixIds(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ (b >>> 0)) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The sign vector of an RHT spec (both operands of a GEMM get the same one). */
export function rhtSigns(rht: RhtSpec, stream: OperandStream): number[] {
  if (rht.signs === "none") return new Array(rht.size).fill(1);
  if (rht.signs === "per-tensor") return randomSigns(rht.size, mixIds(stream.seed, stream.gemmId));
  return rht.size === 16 ? [...TE_SIGN_VECTOR] : randomSigns(rht.size, 0x5eed);
}

/**
 * Quantize-dequantize x (rows, cols) — or xᵀ (cols, rows) when `transpose` — per `spec`.
 * Non-finite input throws NonFiniteError naming `name` and the element.
 */
export function quantizeOperand(
  x: Float32Array, rows: number, cols: number, spec: OperandSpec, transpose: boolean, stream: OperandStream, name: string,
): QuantizedOperand {
  assertFinite(x, [rows, cols], name);
  const src = transpose ? transposeMatrix(x, [rows, cols]) : x;
  const [r, c] = transpose ? [cols, rows] : [rows, cols];
  const shape: [number, number] = [r, c];
  const tensorId = mixIds(stream.gemmId, stream.slot + 1);
  const rht: RhtOptions | undefined = spec.rht ? { size: spec.rht.size, signs: rhtSigns(spec.rht, stream) } : undefined;
  switch (spec.format) {
    case "fp32":
      return { values: transpose ? src : Float32Array.from(src), rows: r, cols: c, spec };
    case "bf16": {
      const values = transpose ? src : Float32Array.from(src);
      return { values: roundBf16InPlace(values), rows: r, cols: c, spec };
    }
    case "nvfp4": {
      const q = quantizeNVFP4(src, shape, { tile2d: spec.block === "16x16", rounding: spec.rounding, seed: stream.seed, tensorId, rht, name });
      return { values: nvfp4Operand(q), rows: r, cols: c, spec, amax: q.amax };
    }
    case "mxfp4": {
      const q = quantizeMXFP4(src, shape, { scaleRounding: spec.mxScale ?? "floor", rounding: spec.rounding, seed: stream.seed, tensorId, rht, name });
      return { values: dequantizeMXFP4(q), rows: r, cols: c, spec };
    }
    case "fp8": {
      const scaling = spec.block === "128x128" ? "128x128" : spec.block === "tensor" ? "tensor" : "1x128";
      const q = quantizeFP8(src, shape, { format: spec.fp8 ?? "e4m3", scaling, name });
      return { values: dequantizeFP8(q), rows: r, cols: c, spec };
    }
  }
}

/** The GEMM alpha for two quantized operands (TE's NVFP4 alpha; 1 when neither carries a tensor scale). */
export function operandAlpha(a: QuantizedOperand, b: QuantizedOperand): number {
  if (a.amax !== undefined && b.amax !== undefined) return nvfp4GemmAlpha(a.amax, b.amax);
  const one = (o: QuantizedOperand) => (o.amax === undefined ? 1 : Math.fround(o.amax * INV2688));
  return Math.fround(one(a) * one(b));
}
