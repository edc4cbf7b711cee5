/**
 * The SIMT shim of the host kernel runs (quantize-fast-host-test.cpp, quantize-fp8-fast-host-test.cpp):
 * every CUDA thread of a CTA is a host thread; __syncthreads and
 * __shfl_xor_sync are barriers over the CTA or the warp; atomics under a mutex; CTAs one after
 * another (`launch`). Include it, then the .cu file under test, in a g++ -std=c++17 -pthread
 * build (see quantize-fp8-fast-host-test.cpp). What it cannot check: timing, the GPU's memory
 * model, NVRTC.
 */
#pragma once
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.cuh"


struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;
static thread_local int t_lane = 0, t_warp = 0;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static

struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }

struct Barrier {
  std::mutex m;
  std::condition_variable cv;
  int n = 0, count = 0;
  long gen = 0;
  void wait() {
    std::unique_lock<std::mutex> l(m);
    const long g = gen;
    if (++count == n) { count = 0; gen++; cv.notify_all(); }
    else cv.wait(l, [&] { return gen != g; });
  }
};
static Barrier* g_cta = nullptr;
static std::vector<Barrier>* g_warps = nullptr;
static std::vector<unsigned> g_shfl;
static std::vector<unsigned> g_reduce;
static std::mutex g_atomic;

static inline void __syncthreads() { g_cta->wait(); }
static inline unsigned __shfl_xor_sync(unsigned, unsigned v, int o) {
  Barrier& b = (*g_warps)[t_warp];
  g_shfl[t_warp * 32 + t_lane] = v;
  b.wait();
  const unsigned r = g_shfl[t_warp * 32 + (t_lane ^ o)];
  b.wait();
  return r;
}
static inline unsigned atomicMax(unsigned* a, unsigned v) {
  std::lock_guard<std::mutex> l(g_atomic);
  const unsigned old = *a;
  if (v > old) *a = v;
  return old;
}
static inline unsigned long long atomicMin(unsigned long long* a, unsigned long long v) {
  std::lock_guard<std::mutex> l(g_atomic);
  const unsigned long long old = *a;
  if (v < old) *a = v;
  return old;
}

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

/** Run f as every thread of every CTA of a 1-D grid (CTAs in order). */
static void launch(unsigned grid, unsigned block, const std::function<void()>& f) {
  gridDim = {grid, 1, 1};
  blockDim = {block, 1, 1};
  for (unsigned b = 0; b < grid; b++) {
    Barrier cta;
    cta.n = (int)block;
    std::vector<Barrier> warps(block / 32);
    for (auto& w : warps) w.n = 32;
    g_cta = &cta;
    g_warps = &warps;
    g_shfl.assign(block, 0);
    g_reduce.assign(block, 0);
    std::vector<std::thread> th;
    for (unsigned t = 0; t < block; t++)
      th.emplace_back([&, t] {
        threadIdx = {t, 0, 0};
        blockIdx = {b, 0, 0};
        t_lane = (int)(t & 31);
        t_warp = (int)(t >> 5);
        f();
      });
    for (auto& t : th) t.join();
  }
}

