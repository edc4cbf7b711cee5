/**
 * Standalone non-finite scans for operands whose quantizer has no pass to fuse the check into
 * (MXFP4, FP32 copies; the NVFP4, FP8 and BF16 paths check inside their amax or cast kernel):
 * nonfinite.cuh's packed first-bad slot, filled in one read of the tensor.
 */
#include "nonfinite.cuh"

/**
 * nonfinite_slot_f32(const float* x, long long n, unsigned long long* slot)
 *   slot ← min(slot, (i << 32) | bits(x[i])) over non-finite x[i], i < n < 2^31. Grid-stride,
 *   any grid; block 256.
 */
extern "C" __global__ void nonfinite_slot_f32(const float* x, long long n, unsigned long long* slot) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = x[i];
    if ((__float_as_uint(v) & 0x7f800000u) == 0x7f800000u) { note_nonfinite(slot, i, v); break; }  // later i are larger
  }
}
