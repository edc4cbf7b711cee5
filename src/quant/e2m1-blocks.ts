/**
 * The element step shared by the FP4 block quantizers (NVFP4, MXFP4): multiply each value of a
 * block by the block's FP32 encode scale (one fp32 multiply) and round to E2M1 (RN or SR),
 * packing two codes per byte; plus the SR byte source (explicit bytes or a Philox stream).
 */
import { e2m1EncodeRN, e2m1EncodeSR } from "../formats/e2m1.ts";
import { philoxBytes } from "./philox.ts";

export type Rounding = "rtn" | "sr";

export interface SrSource {
  rounding?: Rounding;
  randomBytes?: Uint8Array;
  seed?: number;
  tensorId?: number;
}

/** The SR bytes to use (undefined for RTN), checking their count. */
export function srBytes(src: SrSource, n: number, name: string): Uint8Array | undefined {
  const rounding = src.rounding ?? "rtn";
  if (rounding === "rtn") return undefined;
  if (rounding !== "sr") throw new RangeError(`${name}: rounding must be "rtn" or "sr", got ${String(rounding)}`);
  if (src.randomBytes) {
    if (src.randomBytes.length !== n) {
      throw new RangeError(`${name}: randomBytes has ${src.randomBytes.length} bytes, need one per element (${n})`);
    }
    return src.randomBytes;
  }
  return philoxBytes(src.seed ?? 0, src.tensorId ?? 0, n);
}

/**
 * Encode x[i] · enc[floor(i / block)] for all i into packed E2M1 (element 2i in the low nibble).
 * `block` is even, x.length a multiple of it.
 */
export function encodeE2M1Blocks(x: Float32Array, encs: Float32Array, block: number, rbytes: Uint8Array | undefined): Uint8Array {
  const fr = Math.fround;
  const packed = new Uint8Array(x.length >>> 1);
  for (let k = 0; k < encs.length; k++) {
    const enc = encs[k];
    const end = (k + 1) * block;
    if (rbytes) {
      for (let i = k * block; i < end; i += 2) {
        packed[i >>> 1] = e2m1EncodeSR(fr(x[i] * enc), rbytes[i]) | (e2m1EncodeSR(fr(x[i + 1] * enc), rbytes[i + 1]) << 4);
      }
    } else {
      for (let i = k * block; i < end; i += 2) {
        packed[i >>> 1] = e2m1EncodeRN(fr(x[i] * enc)) | (e2m1EncodeRN(fr(x[i + 1] * enc)) << 4);
      }
    }
  }
  return packed;
}
