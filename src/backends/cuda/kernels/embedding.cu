/**
 * Token embedding on the GPU: the twin of backends/cpu/ops/embedding.ts. Forward gathers rows of
 * the table (V,C) by int32 token id; backward scatter-adds dout rows into dtable (ACCUMULATE)
 * deterministically, with no float atomics: a counting sort groups positions by id (histogram,
 * exclusive scan, scatter), then one block per id adds that id's rows in ascending position order,
 * starting from dtable's value, so each element sees the oracle's exact sequence of fp32 adds
 * (dtable += dout[p0]; dtable += dout[p1]; ...) and the result is bit-identical to the CPU.
 * A bad token id never reads out of bounds: it sets an error flag to the first bad position
 * (atomicMin), which the host checks and turns into the oracle's RangeError.
 * Not fused with anything; no position embedding (RoPE is elsewhere).
 *
 * Backward sequence, on one stream (scratch the host allocates: counts (V) int32, offsets (V+1)
 * int32, sorted (BT) int32, err (1) int32):
 *   memset counts = 0, err = INT_MAX
 *   embedding_histogram(counts, tokens, BT, V, err)
 *   embedding_scan(offsets, counts, V)              // also resets counts to 0 (they become cursors)
 *   embedding_scatter(sorted, counts, offsets, tokens, BT, V)
 *   embedding_backward_rows(dtable, dout, sorted, offsets, tokens, BT, C, V)
 *   read err: INT_MAX means all ids were valid (rows of bad ids are skipped, not added).
 */
#include "ops-common.cuh"

/** Buckets up to this size are sorted in shared memory; larger ones are collected by a stable scan of the tokens. */
#define EMB_SORT_CAP 4096

template <typename T>
__device__ __forceinline__ void embedding_forward_impl(T* out, const int* tokens, const float* table, int BT, int C, int V, int* err) {
  const int t = blockIdx.x;
  if (t >= BT) return;
  const int id = tokens[t];
  T* orow = out + (long long)t * C;
  if (id < 0 || id >= V) {
    if (threadIdx.x == 0) atomicMin(err, t);
    for (int c = threadIdx.x; c < C; c += blockDim.x) act_store(orow + c, 0.0f);
    return;
  }
  const float* trow = table + (long long)id * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) act_store(orow + c, trow[c]);
}

/**
 * embedding_forward(float* out, const int* tokens, const float* table, int BT, int C, int V, int* err)
 *   out (BT,C) ← table (V,C) rows selected by tokens (BT). A token outside [0, V) writes a zero
 *   row and sets *err = min(*err, position); the host sets *err = INT_MAX (0x7fffffff) before.
 *   grid: BT; block: 256 (≤ 1024); shared: none.
 */
extern "C" __global__ void embedding_forward(float* out, const int* tokens, const float* table, int BT, int C, int V, int* err) {
  embedding_forward_impl<float>(out, tokens, table, BT, C, V, err);
}

/**
 * embedding_histogram(int* counts, const int* tokens, int BT, int V, int* err)
 *   counts (V) += number of positions holding each id (integer atomics: order-free, deterministic);
 *   bad ids set *err = min(*err, position) and are not counted. counts must be zero on entry.
 *   grid: ceil(BT / 256); block: 256; shared: none.
 */
extern "C" __global__ void embedding_histogram(int* counts, const int* tokens, int BT, int V, int* err) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= BT) return;
  const int id = tokens[t];
  if (id < 0 || id >= V) atomicMin(err, t);
  else atomicAdd(counts + id, 1);
}

/**
 * embedding_scan(int* offsets, int* counts, int V)
 *   offsets (V+1): exclusive prefix sum of counts, offsets[V] = total; then counts (V) = 0 so the
 *   scatter can use them as per-id cursors. One block does it all (V ≈ 50k: a few µs).
 *   grid: 1; block: 1024 (any multiple of 32 ≤ 1024); shared: none.
 */
extern "C" __global__ void embedding_scan(int* offsets, int* counts, int V) {
  __shared__ int warpTotals[32];
  __shared__ int total;
  const int tid = threadIdx.x, nt = blockDim.x, lane = tid & 31, warp = tid >> 5;
  const int per = (V + nt - 1) / nt;
  const int start = min(V, tid * per), end = min(V, start + per);
  int local = 0;
  for (int x = start; x < end; x++) local += counts[x];
  int incl = local;  // inclusive scan within the warp
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(FP4LM_FULL_MASK, incl, o);
    if (lane >= o) incl += y;
  }
  if (lane == 31) warpTotals[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    const int wt = lane < (nt >> 5) ? warpTotals[lane] : 0;
    int wi = wt;
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(FP4LM_FULL_MASK, wi, o);
      if (lane >= o) wi += y;
    }
    warpTotals[lane] = wi - wt;  // exclusive prefix of warp totals
    if (lane == 31) total = wi;
  }
  __syncthreads();
  int run = warpTotals[warp] + incl - local;
  for (int x = start; x < end; x++) {
    offsets[x] = run;
    run += counts[x];
    counts[x] = 0;
  }
  if (tid == 0) offsets[V] = total;
}

/**
 * embedding_scatter(int* sorted, int* cursor, const int* offsets, const int* tokens, int BT, int V)
 *   sorted (BT): positions grouped by id, id v's in sorted[offsets[v] .. offsets[v+1]); the order
 *   inside a group is arbitrary (atomic cursors) and fixed by embedding_backward_rows. cursor is
 *   the counts array zeroed by embedding_scan. Bad ids are skipped.
 *   grid: ceil(BT / 256); block: 256; shared: none.
 */
extern "C" __global__ void embedding_scatter(int* sorted, int* cursor, const int* offsets, const int* tokens, int BT, int V) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= BT) return;
  const int id = tokens[t];
  if (id < 0 || id >= V) return;
  sorted[offsets[id] + atomicAdd(cursor + id, 1)] = t;
}

/**
 * drow[c] += dout[pos[k], c] for k = 0..n−1 in order. Each thread takes up to 4 of its columns at
 * once and loads 8 rows ahead of the adds (32 loads in flight), without changing the order of the
 * adds of any one element.
 */
template <typename T>
__device__ __forceinline__ void add_rows_in_order(float* drow, const T* dout, const int* pos, int n, int C) {
  const int nt = blockDim.x;
  for (int c0 = threadIdx.x; c0 < C; c0 += 4 * nt) {
    float a[4];
    bool on[4];
#pragma unroll
    for (int u = 0; u < 4; u++) {
      on[u] = c0 + u * nt < C;
      a[u] = on[u] ? drow[c0 + u * nt] : 0.0f;
    }
    int k = 0;
    for (; k + 8 <= n; k += 8) {
      float x[8][4];
#pragma unroll
      for (int r = 0; r < 8; r++) {
        const T* row = dout + (long long)pos[k + r] * C + c0;
#pragma unroll
        for (int u = 0; u < 4; u++) x[r][u] = on[u] ? act_load(row + u * nt) : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < 8; r++)
#pragma unroll
        for (int u = 0; u < 4; u++) a[u] += x[r][u];
    }
    for (; k < n; k++) {
      const T* row = dout + (long long)pos[k] * C + c0;
#pragma unroll
      for (int u = 0; u < 4; u++)
        if (on[u]) a[u] += act_load(row + u * nt);
    }
#pragma unroll
    for (int u = 0; u < 4; u++)
      if (on[u]) drow[c0 + u * nt] = a[u];
  }
}

template <typename T>
__device__ __forceinline__ void embedding_backward_rows_impl(float* dtable, const T* dout, const int* sorted, const int* offsets, const int* tokens, int BT, int C) {
  __shared__ int s[EMB_SORT_CAP];
  __shared__ int warpCounts[32];
  const int v = blockIdx.x;
  const int start = offsets[v], n = offsets[v + 1] - start;
  if (n == 0) return;  // uniform over the block
  const int tid = threadIdx.x, nt = blockDim.x;
  float* drow = dtable + (long long)v * C;
  if (n <= EMB_SORT_CAP) {
    int P = 1;
    while (P < n) P <<= 1;
    for (int x = tid; x < P; x += nt) s[x] = x < n ? sorted[start + x] : FP4LM_INT_MAX;
    __syncthreads();
    for (int kk = 2; kk <= P; kk <<= 1) {  // bitonic sort, ascending; positions are distinct
      for (int jj = kk >> 1; jj > 0; jj >>= 1) {
        for (int x = tid; x < P; x += nt) {
          const int y = x ^ jj;
          if (y > x) {
            const int a = s[x], b = s[y];
            if ((a > b) == ((x & kk) == 0)) {
              s[x] = b;
              s[y] = a;
            }
          }
        }
        __syncthreads();
      }
    }
    add_rows_in_order(drow, dout, s, n, C);
    return;
  }
  // A frequent id: walk all positions in order and compact the matches stably, a block-wide chunk
  // at a time (ballot + prefix over warps), flushing the collected positions whenever the list
  // could overflow. At most BT / EMB_SORT_CAP blocks take this path.
  const int lane = tid & 31, warp = tid >> 5, nwarps = nt >> 5;
  int have = 0;  // positions collected in s[], the same in every thread
  for (int base = 0; base < BT; base += nt) {
    const int t = base + tid;
    const bool match = t < BT && tokens[t] == v;
    const unsigned ballot = __ballot_sync(FP4LM_FULL_MASK, match);
    if (lane == 0) warpCounts[warp] = __popc(ballot);
    __syncthreads();
    int off = 0, total = 0;
    for (int w = 0; w < nwarps; w++) {
      if (w < warp) off += warpCounts[w];
      total += warpCounts[w];
    }
    if (match) s[have + off + __popc(ballot & ((1u << lane) - 1u))] = t;
    __syncthreads();
    have += total;
    if (have > EMB_SORT_CAP - nt || base + nt >= BT) {
      if (have > 0) add_rows_in_order(drow, dout, s, have, C);
      have = 0;
      __syncthreads();
    }
  }
}

/**
 * embedding_backward_rows(float* dtable, const float* dout, const int* sorted, const int* offsets,
 *                         const int* tokens, int BT, int C, int V)
 *   dtable (V,C) += dout (BT,C) rows, grouped by id (ACCUMULATED). Block v adds id v's rows in
 *   ascending position order (bitonic sort of its group in shared memory, or for a group larger
 *   than 4096 a stable scan of tokens); empty ids return at once.
 *   grid: V; block: 256 (multiple of 32, ≤ 1024 ≤ EMB_SORT_CAP); shared: 16.1 KB static.
 */
extern "C" __global__ void embedding_backward_rows(float* dtable, const float* dout, const int* sorted, const int* offsets, const int* tokens, int BT, int C, int V) {
  if ((int)blockIdx.x >= V) return;
  embedding_backward_rows_impl<float>(dtable, dout, sorted, offsets, tokens, BT, C);
}
