/**
 * NVFP4 quantizer: E2M1 elements, one E4M3 scale per 1x16 block along the last dimension (or per
 * 16x16 tile for weights), one FP32 per-tensor scale derived from the tensor amax. Rounding to
 * nearest or stochastic (gradients), optional random Hadamard transform before the amax.
 * Reference path in plain TypeScript with Transformer Engine's exact FP32 operation order
 * (every op rounded with Math.fround); the CUDA kernel will be
 * backends/cuda/kernels/nvfp4-quantize.cu. Method: arXiv 2509.25149 §2 and App. B;
 * arithmetic order: docs/numerics.md §2–§5 (TE core_nvfp4.cuh).
 *
 * Layouts: codes (rows, cols), packed two per byte (element 2i in the low nibble) → packed has
 * rows·cols/2 bytes; scales (rows, cols/16) E4M3 bytes, row-major and unswizzled (a 16x16 tile's
 * byte repeated on its 16 rows); the tensor amax as an fp32 number (TE stores amax, not s_dec).
 */
import { E2M1_DECODE } from "../formats/e2m1.ts";
import { e4m3Encode, E4M3_DECODE } from "../formats/e4m3.ts";
import { FLT_MAX } from "../formats/float-bits.ts";
import { encodeE2M1Blocks, srBytes, type Rounding } from "./e2m1-blocks.ts";
import { resolveRht, rht as applyRht, type RhtOptions } from "./hadamard.ts";
import { assertFinite, checkMultiple, checkShape, transpose, type Shape2D } from "./tensor-checks.ts";

const fr = Math.fround;
/** fl(1/6), folded once per tensor into the block-scale multiplier. */
export const INV6 = fr(1 / 6);
/** fl(1/2688) = fl(1/(448·6)), used by TE's dequantize kernel. */
export const INV2688 = fr(1 / 2688);
/** fl(1/(6·6·448·448)), used by the GEMM alpha. */
const INV_ALPHA = fr(1 / (6 * 6 * 448 * 448));

export type { Rounding };

export interface NVFP4Options {
  /** 16x16 scale tiles (weights); default 1x16 blocks along the last dimension */
  tile2d?: boolean;
  /** "rtn" (default) or "sr" (stochastic rounding, trunc8 rule) */
  rounding?: Rounding;
  /** SR: one random byte per element, row-major (of the tensor after any RHT) */
  randomBytes?: Uint8Array;
  /** SR: seed of the built-in Philox stream when randomBytes is absent (default 0) */
  seed?: number;
  /** SR: Philox stream id (default 0); give each tensor and each copy its own */
  tensorId?: number;
  /** random Hadamard transform along the last dimension before the amax (true = 16-point, TE signs) */
  rht?: boolean | RhtOptions;
  /** use this tensor amax instead of max|x| (e.g. an amax reduced across ranks); must be ≥ 0 */
  amax?: number;
  /** "error" (default): NaN/Inf → NonFiniteError. "te": Transformer Engine's unfused-kernel policy */
  nonFinite?: "error" | "te";
  /** name used in error messages */
  name?: string;
}

/** An NVFP4-quantized matrix. */
export interface NVFP4Tensor {
  shape: [number, number];
  /** E2M1 codes, two per byte, element 2i in the low nibble; rows·cols/2 bytes */
  packed: Uint8Array;
  /** E4M3 block-scale bytes, (rows, cols/16) row-major */
  scales: Uint8Array;
  /** FP32 tensor amax (after the RHT when one was applied) */
  amax: number;
  /** true when the scales are 16x16 tiles */
  tile2d: boolean;
  /** the RHT that was applied along the last dimension, if any */
  rht?: { size: number; signs: number[] };
}

/** The per-tensor scale chain of TE (`compute_global_encode_scaling_factor_FP4`). */
export function nvfp4TensorScales(amax: number): { sEnc: number; sDec: number; mult: number } {
  let sEnc = fr(2688 / amax);
  sEnc = Math.min(sEnc, FLT_MAX);
  if (amax === 0 || sEnc === 0 || sEnc !== sEnc) sEnc = 1;
  const sDec = fr(1 / sEnc);
  return { sEnc, sDec, mult: fr(sEnc * INV6) };
}

/** E4M3 scale byte of a block with amax `bamax` (TE: e4m3_satfinite(min(fl(bamax·mult), FLT_MAX))). */
export function nvfp4BlockScaleByte(bamax: number, mult: number): number {
  const v = fr(bamax * mult);
  return e4m3Encode(v !== v ? v : Math.min(v, FLT_MAX));
}

/** FP32 encode scale of each scale byte for a tensor: min(fl(1/fl(fp32(sf)·s_dec)), FLT_MAX). */
export function nvfp4EncodeScales(sDec: number): Float32Array {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const enc = fr(1 / fr(E4M3_DECODE[b] * sDec));
    t[b] = enc !== enc ? enc : Math.min(enc, FLT_MAX);
  }
  return t;
}

/** max|x| ignoring NaN (TE kernels: fmaxf from 0). */
function amaxIgnoreNaN(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (a > m) m = a;
  }
  return m;
}

function resolveRhtOption(o: NVFP4Options["rht"]): RhtOptions | undefined {
  if (o === undefined || o === false) return undefined;
  return o === true ? {} : o;
}

/**
 * Quantize a (rows, cols) matrix to NVFP4. cols must be a multiple of 16 (and rows too for
 * 16x16 tiles). Throws NonFiniteError on NaN/Inf unless nonFinite is "te".
 */
export function quantizeNVFP4(x: Float32Array, shape: Shape2D, opts: NVFP4Options = {}): NVFP4Tensor {
  const name = opts.name ?? "tensor";
  checkShape(x, shape, name);
  const [rows, cols] = shape;
  const tile2d = opts.tile2d ?? false;
  checkMultiple(name, "NVFP4", shape, 1, 16, "one E4M3 scale per 16 consecutive values");
  if (tile2d) checkMultiple(name, "NVFP4 with 16x16 tiles", shape, 0, 16, "one scale per 16x16 tile");
  if ((opts.nonFinite ?? "error") === "error") assertFinite(x, shape, name);
  const rhtOpts = resolveRhtOption(opts.rht);
  let rhtInfo: NVFP4Tensor["rht"];
  if (rhtOpts) {
    const size = rhtOpts.size ?? 16;
    checkMultiple(name, `an RHT of size ${size}`, shape, 1, size, "the transform mixes groups along the last dimension");
    x = applyRht(x, shape, rhtOpts);
    const r = resolveRht(rhtOpts);
    rhtInfo = { size: r.size, signs: r.signs };
  }
  const rbytes = srBytes(opts, x.length, name);

  let amax: number;
  if (opts.amax !== undefined) {
    if (!(opts.amax >= 0)) throw new RangeError(`${name}: amax must be a non-negative number, got ${opts.amax}`);
    amax = fr(opts.amax);
  } else amax = amaxIgnoreNaN(x);
  const { sDec, mult } = nvfp4TensorScales(amax);
  const encOf = nvfp4EncodeScales(sDec);

  const nb = cols / 16;
  const scales = new Uint8Array(rows * nb);
  const encs = new Float32Array(rows * nb);
  if (tile2d) {
    for (let tr = 0; tr < rows; tr += 16) {
      for (let b = 0; b < nb; b++) {
        let bamax = 0;
        for (let r = tr; r < tr + 16; r++) {
          const o = r * cols + b * 16;
          for (let i = o; i < o + 16; i++) { const a = Math.abs(x[i]); if (a > bamax) bamax = a; }
        }
        const byte = nvfp4BlockScaleByte(bamax, mult);
        for (let r = tr; r < tr + 16; r++) { scales[r * nb + b] = byte; encs[r * nb + b] = encOf[byte]; }
      }
    }
  } else {
    for (let k = 0; k < rows * nb; k++) {
      let bamax = 0;
      for (let i = k * 16; i < k * 16 + 16; i++) { const a = Math.abs(x[i]); if (a > bamax) bamax = a; }
      const byte = nvfp4BlockScaleByte(bamax, mult);
      scales[k] = byte;
      encs[k] = encOf[byte];
    }
  }

  const packed = encodeE2M1Blocks(x, encs, 16, rbytes);
  const out: NVFP4Tensor = { shape: [rows, cols], packed, scales, amax, tile2d };
  if (rhtInfo) out.rht = rhtInfo;
  return out;
}

/**
 * The columnwise copy of a matrix that the weight-gradient GEMM (and Dgrad for weights) uses:
 * xᵀ (cols, rows) quantized from the high-precision source, with blocks along the original first
 * dimension. Pass `rht` for the Wgrad operands (transform along the original rows = tokens).
 */
export function quantizeNVFP4Columnwise(x: Float32Array, shape: Shape2D, opts: NVFP4Options = {}): NVFP4Tensor {
  checkShape(x, shape, opts.name ?? "tensor");
  return quantizeNVFP4(transpose(x, shape), [shape[1], shape[0]], opts);
}

export interface DequantizeOptions {
  /** "te" (default): e2m1·fl(fl(sf·amax)·fl(1/2688)), TE's dequantize kernel. "sdec": fl(e2m1·sf)·s_dec */
  formula?: "te" | "sdec";
}

/** Dequantize to fp32 (values in the RHT domain when an RHT was applied). */
export function dequantizeNVFP4(q: NVFP4Tensor, opts: DequantizeOptions = {}): Float32Array {
  const [rows, cols] = q.shape;
  const nb = cols / 16;
  const out = new Float32Array(rows * cols);
  const sdec = opts.formula === "sdec";
  const { sDec } = nvfp4TensorScales(q.amax);
  for (let k = 0; k < rows * nb; k++) {
    const sf = E4M3_DECODE[q.scales[k]];
    const fs = fr(fr(sf * q.amax) * INV2688);
    for (let i = k * 16; i < k * 16 + 16; i++) {
      const byte = q.packed[i >>> 1];
      const e = E2M1_DECODE[i & 1 ? byte >>> 4 : byte & 15];
      out[i] = sdec ? fr(fr(e * sf) * sDec) : fr(e * fs);
    }
  }
  return out;
}

/**
 * The operand an emulated NVFP4 GEMM feeds to a BF16 tensor-core GEMM: e2m1 · sf per element,
 * exact in BF16; the two per-tensor scales go into the GEMM's alpha (nvfp4GemmAlpha).
 */
export function nvfp4Operand(q: NVFP4Tensor): Float32Array {
  const [rows, cols] = q.shape;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    const byte = q.packed[i >>> 1];
    out[i] = E2M1_DECODE[i & 1 ? byte >>> 4 : byte & 15] * E4M3_DECODE[q.scales[i >>> 4]];
  }
  return out;
}

/** GEMM alpha of TE (`compute_nvfp4_per_tensor_scale_kernel`): fl(fl(amaxA·amaxB)·fl(1/(36·448²))). */
export function nvfp4GemmAlpha(amaxA: number, amaxB: number): number {
  return fr(fr(fr(1 * amaxA) * amaxB) * INV_ALPHA);
}

/** Unpacked E2M1 codes (rows·cols nibbles) of a quantized tensor. */
export function nvfp4Codes(q: NVFP4Tensor): Uint8Array {
  const out = new Uint8Array(q.shape[0] * q.shape[1]);
  for (let i = 0; i < out.length; i++) out[i] = i & 1 ? q.packed[i >>> 1] >>> 4 : q.packed[i >>> 1] & 15;
  return out;
}
