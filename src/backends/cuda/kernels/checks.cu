/**
 * Deferred non-finite checks: after `nonfinite_scan_f32` wrote the first bad flat index of a
 * tensor into a slot (INT_MAX when none), `record_bad_value` copies that element's value into a
 * parallel slot right away, before later kernels can overwrite the tensor. The host reads all
 * slots once per step (a single synchronisation) and raises the CPU oracle's NonFiniteError for
 * the first bad slot: same layer, same element, same value.
 */

/** record_bad_value(const float* x, const int* flag, float* value); launch 1 block of 32 threads. */
extern "C" __global__ void record_bad_value(const float* x, const int* flag, float* value) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    const int i = *flag;
    if (i != 0x7fffffff) *value = x[i];
  }
}
