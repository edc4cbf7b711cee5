/**
 * Block-scale layouts. Our quantizers store scales compact: (rows, cols/blocksize) row-major.
 * cuBLAS block-scaled GEMMs (NVFP4 VEC16_UE4M3, MX VEC32_UE8M0) read a "swizzled" layout of
 * 128x4 base blocks of 512 bytes: pad to (⌈rows/128⌉·128, ⌈cols/4⌉·4) with zeros, then byte (r, c)
 * goes to ((r/128·⌈cols/4⌉ + c/4)·32 + r%32)·16 + ((r%128)/32)·4 + c%4.
 * Source: TE cast/nvfp4/swizzle.cuh, cuBLAS docs "block scaling factors layout";
 * docs/numerics.md §7; vector scale_swizzle.json.
 */

/** Padded shape of a swizzled scale buffer. */
export function swizzledShape(rows: number, cols: number): [number, number] {
  return [Math.ceil(rows / 128) * 128, Math.ceil(cols / 4) * 4];
}

/** Offset of compact scale (r, c) in the swizzled buffer. */
export function swizzledOffset(r: number, c: number, cols: number): number {
  const ncb = Math.ceil(cols / 4);
  return ((Math.floor(r / 128) * ncb + (c >>> 2)) * 32 + (r % 32)) * 16 + ((r % 128) >>> 5) * 4 + (c % 4);
}

/** Compact (rows, cols) scale bytes → swizzled, zero-padded bytes. */
export function swizzleScales(compact: Uint8Array, rows: number, cols: number): Uint8Array {
  if (compact.length !== rows * cols) throw new RangeError(`swizzleScales: ${compact.length} bytes for shape [${rows}, ${cols}]`);
  const [pr, pc] = swizzledShape(rows, cols);
  const out = new Uint8Array(pr * pc);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[swizzledOffset(r, c, cols)] = compact[r * cols + c];
  return out;
}

/** Swizzled bytes → compact (rows, cols) scale bytes (padding dropped). */
export function unswizzleScales(swizzled: Uint8Array, rows: number, cols: number): Uint8Array {
  const [pr, pc] = swizzledShape(rows, cols);
  if (swizzled.length !== pr * pc) throw new RangeError(`unswizzleScales: ${swizzled.length} bytes, expected ${pr * pc} for shape [${rows}, ${cols}]`);
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = swizzled[swizzledOffset(r, c, cols)];
  return out;
}
