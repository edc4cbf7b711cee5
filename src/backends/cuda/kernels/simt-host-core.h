/**
 * The SIMT core of the host kernel runs (simt-host-shim.h for the quantizer kernels,
 * attention-host-test.cpp for the attention kernels): CUDA's built-in names for g++ — every CUDA
 * thread of a CTA is a host thread; __syncthreads is a barrier over the CTA and __shfl_xor_sync one
 * over the warp (values of up to 8 bytes through `g_ex`, which the attention twins of mma.sync and
 * ldmatrix use too); atomics under a mutex; CTAs of a 1-D or 3-D grid one after another (`launch`).
 * What it cannot check: timing, the GPU's memory model, NVRTC.
 */
#pragma once
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
static inline float2 make_float2(float a, float b) { return {a, b}; }
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }

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
static Barrier* g_warps = nullptr;
/** per warp, per lane: 16 words of exchange (at most 1024 threads per CTA) */
static unsigned long long g_ex[32][32][16];
static inline int lane_id() { return threadIdx.x & 31; }
static inline int warp_id() { return threadIdx.x >> 5; }
static inline void warp_sync() { g_warps[warp_id()].wait(); }

static inline void __syncthreads() { g_cta->wait(); }

template <typename T>
static inline T __shfl_xor_sync(unsigned, T v, int o) {
  static_assert(sizeof(T) <= 8, "shfl of at most 8 bytes");
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof(T));
  g_ex[warp_id()][lane_id()][0] = bits;
  warp_sync();
  bits = g_ex[warp_id()][lane_id() ^ o][0];
  warp_sync();
  T r;
  memcpy(&r, &bits, sizeof(T));
  return r;
}

static std::mutex g_atomic;
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

/** Run f as every thread of every CTA of a 3-D grid (CTAs in order). */
static void launch(dim3 grid, unsigned block, const std::function<void()>& f) {
  gridDim = grid;
  blockDim = {block, 1, 1};
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        Barrier cta;
        cta.n = (int)block;
        std::vector<Barrier> warps(block / 32);
        for (auto& w : warps) w.n = 32;
        g_cta = &cta;
        g_warps = warps.data();
        std::vector<std::thread> th;
        for (unsigned t = 0; t < block; t++)
          th.emplace_back([&, t, x, y, z] {
            threadIdx = {t, 0, 0};
            blockIdx = {x, y, z};
            f();
          });
        for (auto& t : th) t.join();
      }
}

/** The same over a 1-D grid. */
static void launch(unsigned grid, unsigned block, const std::function<void()>& f) { launch(dim3{grid, 1, 1}, block, f); }
