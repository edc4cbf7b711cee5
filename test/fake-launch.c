/*
 * What cuLaunchKernel reads from kernelParams, for test/launch-args.test.ts: argument i is
 * params[i], a pointer to sizes[i] bytes (8 for pointers and 64-bit integers, 4 for int, unsigned
 * and float); copies each into out[i] (zero-extended), as the driver copies them at launch.
 */
#include <stdint.h>
#include <string.h>

int read_params(void **params, const int *sizes, int n, uint64_t *out) {
  for (int i = 0; i < n; i++) {
    out[i] = 0;
    memcpy(&out[i], params[i], (size_t)sizes[i]);
  }
  return n;
}
