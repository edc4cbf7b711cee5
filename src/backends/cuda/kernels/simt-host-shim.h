/**
 * The SIMT shim of the quantizer kernels' host runs (quantize-fast-host-test.cpp,
 * quantize-fp8-fast-host-test.cpp): common.cuh, the SIMT core (simt-host-core.h: threads, barriers,
 * shuffles, atomics, `launch`), and host versions of common.cuh's device-only block reductions.
 * Include it, then the .cu file under test, in a g++ -std=c++17 -pthread build.
 */
#pragma once
#include "common.cuh"
#include "simt-host-core.h"

/** one word per thread of the CTA for block_max_bits */
static unsigned g_reduce[1024];

namespace fp4q {
/** common.cuh's device block_max_bits: the max reaches thread 0 (here every thread gets it). */
inline u32 block_max_bits(u32 v, u32*) {
  __syncthreads();
  g_reduce[threadIdx.x] = v;
  __syncthreads();
  u32 m = 0;
  for (unsigned i = 0; i < blockDim.x; i++) m = g_reduce[i] > m ? g_reduce[i] : m;
  return m;
}
inline void atomic_max_nonneg_bits(unsigned* addr, u32 bits) {
  if (bits != 0u) atomicMax(addr, bits);
}
}  // namespace fp4q
