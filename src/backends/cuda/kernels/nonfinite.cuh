/**
 * The deferred non-finite check, fused into kernels that read a tensor anyway (amax, casts): a
 * NaN/±Inf element at flat row-major index i (of the tensor as stored, before any transposition)
 * with fp32 bits v lowers the 64-bit slot to (i << 32) | v by atomicMin, so the slot ends holding
 * the FIRST bad element and its value (the CPU oracle's NonFiniteError.index and value). The host
 * sets every slot to all ones (none) and reads them once per step (cuda-backend.ts flushChecks).
 * A null slot pointer turns the check off. Indices must be < 2^31.
 */
#pragma once

__device__ __forceinline__ void note_nonfinite(unsigned long long* slot, long long i, float v) {
  const unsigned b = __float_as_uint(v);
  if (slot != nullptr && (b & 0x7f800000u) == 0x7f800000u) atomicMin(slot, ((unsigned long long)i << 32) | b);
}
