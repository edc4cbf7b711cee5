/**
 * Softmax cross-entropy, forward and backward fused (as llm.c's crossentropy_softmax_backward):
 * the twin of backends/cpu/ops/cross-entropy.ts. loss_n = logsumexp(logits_n) − logits_n[target],
 * dlogits_n = (softmax(logits_n) − onehot)·scale. One block per row reads the row twice: an online
 * (max, sum) pass (Milakov & Gimelshein 2018, arXiv 1805.02867), then the dlogits pass. Row
 * statistics are fp32, combined in a fixed tree; the mean loss is summed in float64 by a
 * deterministic two-kernel reduction. Not included: label smoothing, ignore-index, z-loss,
 * chunked-vocabulary variants, the LM head GEMM.
 *
 * cross_entropy_forward_backward_smem reads each row from memory once: the block copies it into
 * shared memory (cp.async, 16 bytes per request), then takes the max, the sum of exponentials and
 * the dlogits from there (V ≤ 58k: the row fits the 227 KB a block may have). Max, then Σ exp(x −
 * max), as the oracle; fp32 per thread and a fixed block tree.
 *
 * Gradient convention: dlogits is OVERWRITTEN. A target outside [0, V) sets *err to the first bad
 * row (atomicMin; host sets INT_MAX before) and writes loss NaN for that row, leaving its dlogits
 * row untouched; other rows are computed (the oracle writes nothing on a bad batch; the host
 * throws before anyone reads them).
 */
#include "ops-common.cuh"
#include "bf16-out.cuh"

/** (m, s) ⊕ (m2, s2): the online-softmax merge; an empty side (m = −inf) contributes nothing. */
__device__ __forceinline__ void softmax_merge(float& m, float& s, float m2, float s2) {
  if (m2 == neg_inf_f32()) return;
  if (m == neg_inf_f32()) {
    m = m2;
    s = s2;
    return;
  }
  const float M = fmaxf(m, m2);
  s = s * expf(m - M) + s2 * expf(m2 - M);
  m = M;
}

template <typename T>
__device__ __forceinline__ void cross_entropy_impl(float* losses, T* dlogits, const T* logits, const int* targets, int N, int V, float scale, int* err) {
  __shared__ float redM[32], redS[32];
  const int n = blockIdx.x;
  if (n >= N) return;
  const int tid = threadIdx.x, nt = blockDim.x, lane = tid & 31, warp = tid >> 5;
  const int tgt = targets[n];
  if (tgt < 0 || tgt >= V) {  // uniform over the block
    if (tid == 0) {
      atomicMin(err, n);
      losses[n] = __int_as_float(0x7fc00000);
    }
    return;
  }
  const T* row = logits + (long long)n * V;
  const float xt = act_load(row + tgt);  // read before any thread writes dlogits (may alias logits)
  float m = neg_inf_f32(), s = 0.0f;
  for (int i = tid; i < V; i += nt) {
    const float x = act_load(row + i);
    if (x > m) {
      s = s * expf(m - x) + 1.0f;  // expf(−inf) = 0 on the first element
      m = x;
    } else {
      s += expf(x - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(FP4LM_FULL_MASK, m, o), s2 = __shfl_xor_sync(FP4LM_FULL_MASK, s, o);
    softmax_merge(m, s, m2, s2);
  }
  if (lane == 0) {
    redM[warp] = m;
    redS[warp] = s;
  }
  __syncthreads();
  m = neg_inf_f32();
  s = 0.0f;
  const int nwarps = nt >> 5;
  for (int w = 0; w < nwarps; w++) softmax_merge(m, s, redM[w], redS[w]);  // same order in every thread
  if (tid == 0) losses[n] = m + logf(s) - xt;
  if (dlogits == nullptr) return;
  const float inv = 1.0f / s;
  T* drow = dlogits + (long long)n * V;
  for (int i = tid; i < V; i += nt) {
    const float p = expf(act_load(row + i) - m) * inv;
    act_store(drow + i, (p - (i == tgt ? 1.0f : 0.0f)) * scale);
  }
}

/**
 * cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int* targets,
 *                                int N, int V, float scale, int* err)
 *   losses (N) and, unless dlogits is null, dlogits (N,V) ← logits (N,V), targets (N).
 *   scale = d(objective)/d(loss_n) (1/N, or lossScale/N with accumulation). dlogits may alias logits.
 *   grid: N; block: 1024 (multiple of 32 ≤ 1024); shared: 256 bytes static.
 *   Then cross_entropy_mean_partials + cross_entropy_mean_final for the mean loss.
 */
extern "C" __global__ void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int* targets, int N, int V, float scale, int* err) {
  cross_entropy_impl<float>(losses, dlogits, logits, targets, N, V, scale, err);
}

/**
 * cross_entropy_mean_partials(double* partials, const float* losses, int N)
 *   partials[b] = Σ of losses[b·R .. min(N, (b+1)·R)) in float64, R = ceil(N / gridDim.x).
 *   grid: P (host's choice, a function of N alone, e.g. min(ceil(N/1024), 256)); block: 256;
 *   shared: 256 bytes static. Scratch the host allocates: partials, P float64.
 */
extern "C" __global__ void cross_entropy_mean_partials(double* partials, const float* losses, int N) {
  __shared__ double red[32];
  const int R = (N + gridDim.x - 1) / gridDim.x;
  const int r0 = blockIdx.x * R, r1 = min(N, r0 + R);
  double s = 0.0;
  for (int i = r0 + threadIdx.x; i < r1; i += blockDim.x) s += (double)losses[i];
  s = block_sum_f64(s, red);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

/**
 * cross_entropy_mean_final(double* mean, const double* partials, int P, int N)
 *   *mean = (Σ_b partials[b]) / N (0 when N = 0), float64; the host reads 8 bytes.
 *   grid: 1; block: 256; shared: 256 bytes static.
 */
extern "C" __global__ void cross_entropy_mean_final(double* mean, const double* partials, int P, int N) {
  __shared__ double red[32];
  double s = 0.0;
  for (int b = threadIdx.x; b < P; b += blockDim.x) s += partials[b];
  s = block_sum_f64(s, red);
  if (threadIdx.x == 0) *mean = N > 0 ? s / (double)N : 0.0;
}

/**
 * cross_entropy_forward_backward_smem(float* losses, float* dlogits, const float* logits, const int* targets,
 *                                     int N, int V, float scale, int* err)
 *   As cross_entropy_forward_backward (same arguments, outputs, error flag and aliasing), one read
 *   of the row. V % 4 == 0 and logits/dlogits 16-byte aligned. grid: any G ≤ N (block b takes rows
 *   b, b + G, ...: the host launches as many blocks as fit on the GPU at once, a persistent grid;
 *   G = N is one row per block); block: 1024; shared: dynamic V·4 bytes (set the function's max
 *   dynamic shared size above 48 KB) + 128 B static.
 *   The next row's copy into shared memory is queued during this row's dlogits pass: each thread
 *   copies exactly the float4 slots it reads (i = tid + 1024·k), after its last read of the slot
 *   (the store of the slot's dlogits depends on that read), so the copy of row n + G overlaps the
 *   compute and the stores of row n. Every row's arithmetic, and so every bit, is the same for any G.
 *   The sum pass keeps each exp(x − max) in its slot, so the dlogits pass computes no exponential.
 */
__device__ __forceinline__ void cp_async16(float4* dst_sh, const float4* src) {
  const unsigned dst = (unsigned)__cvta_generic_to_shared(dst_sh);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}

__device__ __forceinline__ void cross_entropy_smem_impl(float* losses, float* dlogits, const float* logits, const int* targets, int N, int V, float scale, int* err,
                                                        unsigned short* dlogits16, unsigned long long* bad) {
  extern __shared__ float4 row_sh[];  // (V/4)
  __shared__ float red[32];
  const int tid = threadIdx.x, nt = blockDim.x, V4 = V >> 2;
  bool queued = false;  // this row's copy was queued by the previous row's dlogits pass
  for (int n = blockIdx.x; n < N; n += gridDim.x) {
    const int tgt = targets[n];
    if (tgt < 0 || tgt >= V) {  // uniform over the block
      if (tid == 0) {
        atomicMin(err, n);
        losses[n] = __int_as_float(0x7fc00000);
      }
      // a queued copy of this row must land before the next row's copy targets the same slots
      asm volatile("cp.async.wait_all;\n" ::: "memory");
      queued = false;
      continue;
    }
    const float4* row = reinterpret_cast<const float4*>(logits + (long long)n * V);
    if (!queued)
      for (int i = tid; i < V4; i += nt) cp_async16(row_sh + i, row + i);
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    __syncthreads();
    // read before block_max's barriers: after them the sum pass overwrites the row with its exponentials
    const float xt = tid == 0 ? reinterpret_cast<const float*>(row_sh)[tgt] : 0.0f;
    float m = neg_inf_f32();
    for (int i = tid; i < V4; i += nt) {
      const float4 x = row_sh[i];
      m = fmaxf(m, fmaxf(fmaxf(x.x, x.y), fmaxf(x.z, x.w)));
    }
    m = block_max(m, red);
    float s = 0.0f;
    for (int i = tid; i < V4; i += nt) {  // each exponential computed once: kept in the slot for the dlogits pass
      const float4 x = row_sh[i];
      const float4 e = make_float4(expf(x.x - m), expf(x.y - m), expf(x.z - m), expf(x.w - m));
      s += e.x;
      s += e.y;
      s += e.z;
      s += e.w;
      row_sh[i] = e;
    }
    s = block_sum(s, red);
    if (tid == 0) losses[n] = m + logf(s) - xt;
    queued = false;
    if (dlogits == nullptr && dlogits16 == nullptr) continue;
    const float inv = 1.0f / s;
    float4* drow = dlogits == nullptr ? nullptr : reinterpret_cast<float4*>(dlogits + (long long)n * V);
    const int next = n + gridDim.x;
    const float4* nrow = next < N ? reinterpret_cast<const float4*>(logits + (long long)next * V) : nullptr;
    for (int i = tid; i < V4; i += nt) {
      const float4 e = row_sh[i];  // exp(x − max), from the sum pass
      const int j = 4 * i;
      const float4 d = make_float4((e.x * inv - (j == tgt ? 1.0f : 0.0f)) * scale, (e.y * inv - (j + 1 == tgt ? 1.0f : 0.0f)) * scale,
                                   (e.z * inv - (j + 2 == tgt ? 1.0f : 0.0f)) * scale, (e.w * inv - (j + 3 == tgt ? 1.0f : 0.0f)) * scale);
      if (drow != nullptr) drow[i] = d;
      if (dlogits16 != nullptr) bf16_out4(dlogits16, bad, (long long)n * V + j, d);
      if (nrow != nullptr) cp_async16(row_sh + i, nrow + i);  // after the stores that used slot i
    }
    queued = nrow != nullptr;
  }
}

extern "C" __global__ void __launch_bounds__(1024) cross_entropy_forward_backward_smem(float* losses, float* dlogits, const float* logits, const int* targets, int N, int V,
                                                                                       float scale, int* err) {
  cross_entropy_smem_impl(losses, dlogits, logits, targets, N, V, scale, err, nullptr, nullptr);
}

/**
 * cross_entropy_forward_backward_smem_bf16(float* losses, float* dlogits, const float* logits, const int* targets,
 *                                          int N, int V, float scale, int* err, unsigned short* dlogits16, unsigned long long* bad)
 *   cross_entropy_forward_backward_smem (same launch and bits; a null dlogits writes only dlogits16,
 *   Operand.fp32Unused) and dlogits16 (N, V)
 *   = BF16(dlogits) with dlogits' non-finite check into `bad` (bf16-out.cuh): the head's Dgrad/Wgrad
 *   operand without a cast (the largest of a step: B·T·V). A bad target's row is left as the FP32 one.
 */
extern "C" __global__ void __launch_bounds__(1024) cross_entropy_forward_backward_smem_bf16(float* losses, float* dlogits, const float* logits, const int* targets, int N,
                                                                                            int V, float scale, int* err, unsigned short* dlogits16,
                                                                                            unsigned long long* bad) {
  cross_entropy_smem_impl(losses, dlogits, logits, targets, N, V, scale, err, dlogits16, bad);
}
