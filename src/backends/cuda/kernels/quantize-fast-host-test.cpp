/**
 * Host run of quantize-fast.cu itself, without a GPU: a small SIMT shim (every CUDA thread of a
 * CTA is a host thread; __syncthreads and __shfl_xor_sync are barriers over the CTA or the warp;
 * atomics under a mutex; CTAs one after another) compiles the kernel file unchanged with g++ and
 * runs its kernels on the tensor cases of scripts/gen-common-cuh-cases.ts (fast_tensors.bin: the
 * TS oracle's amax, codes, scales and operand values; tensors.bin / vec_tensors.bin: the cases in
 * the fast kernels' domain), comparing every byte, and the first non-finite element the amax
 * kernels report. What it checks that common-host-test.cpp cannot: the kernels' index arithmetic,
 * tile/warp decomposition, edge tiles, 16x16 tile reductions and stores. What it cannot: timing,
 * the GPU's memory model, NVRTC.
 *
 * Build and run: scripts/test-quantize-fast.sh (g++ -O1 -std=c++17 -ffp-contract=off -pthread).
 */
#include "simt-host-shim.h"
#include "quantize-fast.cu"

// ---------------------------------------------------------------- cases (gen-common-cuh-cases.ts format)

#include "host-test-cases.h"

static long long g_cases = 0, g_bad = 0, g_skipped = 0;

/** One tensor through the host's fast sequence (cuda-backend.ts quantizeBytes, nvfp4, fast path). */
static void run_case(const Tensor& t, const char* file, u32 rec) {
  const int rows = (int)t.rows, cols = (int)t.cols, n = (int)t.rht;
  const bool tr = t.transpose != 0;
  const int R = tr ? cols : rows, C = tr ? rows : cols;
  // the host's choice (nvfp4KernelPath): RHT ≤ 16; Philox SR only
  if (t.kind != 0 || n > 16 || !t.r8.empty() || C % 16 != 0) { g_skipped++; return; }
  const long long N = (long long)R * C;
  std::vector<float> x(t.x);
  unsigned amax = 0;
  unsigned long long slot = ~0ull;
  const int s0 = (int)t.m[0], s1 = (int)t.m[1], s2 = (int)t.m[2], s3 = (int)t.m[3];
  const unsigned rowGrid = (unsigned)(((R + 15) / 16) * ((C + 255) / 256));
  const unsigned colGrid = (unsigned)(((rows + 63) / 64) * ((cols + 63) / 64));
  if (n > 0) {
    if (tr) launch(colGrid, 256, [&] { nvfp4_rht_amax_cols_f32(x.data(), rows, cols, n, s0, s1, s2, s3, &amax, &slot); });
    else launch(rowGrid, 256, [&] { nvfp4_rht_amax_rows_f32(x.data(), rows, cols, n, s0, s1, s2, s3, &amax, &slot); });
  } else {
    const long long n4 = N / 4;
    const unsigned g = (unsigned)std::max(1LL, std::min((n4 + 1023) / 1024, 3LL));  // a small grid: the grid-stride tails run too
    launch(g, 256, [&] { amax_v4_f32(reinterpret_cast<const float4*>(x.data()), n4, &amax, &slot); });
  }
  std::vector<u8> packed(N / 2, 0xAA), scales(N / 16, 0xAA);
  std::vector<float> op32(N, -1.0f);
  std::vector<unsigned short> op16(N, 0xAAAA);
  auto q = [&] {
    if (tr) nvfp4_quantize_cols_f32(x.data(), rows, cols, (int)t.opt, n, s0, s1, s2, s3, (int)t.sr, t.seed_lo, t.seed_hi, t.tensor_id, &amax, packed.data(), scales.data(), op32.data(), op16.data());
    else nvfp4_quantize_rows_f32(x.data(), rows, cols, (int)t.opt, n, s0, s1, s2, s3, (int)t.sr, t.seed_lo, t.seed_hi, t.tensor_id, &amax, packed.data(), scales.data(), op32.data(), op16.data());
  };
  launch(tr ? colGrid : rowGrid, 256, q);
  long long bad = 0;
  char first[200] = "";
  auto miss = [&](const char* what, long long i, unsigned got, unsigned want) {
    if (!bad++) snprintf(first, sizeof first, "%s[%lld] got 0x%x want 0x%x", what, i, got, want);
  };
  if (amax != t.amax) miss("amax", 0, amax, t.amax);
  const int fb = slot == ~0ull ? -1 : (int)(slot >> 32);
  if (fb != t.first_bad) miss("first_bad", 0, (unsigned)fb, (unsigned)t.first_bad);
  if (fb >= 0 && (u32)slot != f32_bits(t.x[fb])) miss("first_bad value", fb, (u32)slot, f32_bits(t.x[fb]));
  for (long long i = 0; i < N / 2; i++) if (packed[i] != t.packed[i]) miss("packed", i, packed[i], t.packed[i]);
  for (long long i = 0; i < N / 16; i++) if (scales[i] != t.scales[i]) miss("scales", i, scales[i], t.scales[i]);
  for (long long i = 0; i < N; i++) {
    const u32 want = t.operand[i], got = f32_bits(op32[i]);
    const bool nan = (want & 0x7fffffffu) > 0x7f800000u;
    if (nan ? (got & 0x7fffffffu) <= 0x7f800000u : got != want) miss("operand", i, got, want);
    if (!nan && op16[i] != (want >> 16)) miss("operand bf16", i, op16[i], want >> 16);
  }
  // training's call: no codes, no scales (null pointers), the same operand bits
  std::vector<float> op32b(N, -2.0f);
  std::vector<unsigned short> op16b(N, 0x5555);
  launch(tr ? colGrid : rowGrid, 256, [&] {
    if (tr) nvfp4_quantize_cols_f32(x.data(), rows, cols, (int)t.opt, n, s0, s1, s2, s3, (int)t.sr, t.seed_lo, t.seed_hi, t.tensor_id, &amax, nullptr, nullptr, op32b.data(), op16b.data());
    else nvfp4_quantize_rows_f32(x.data(), rows, cols, (int)t.opt, n, s0, s1, s2, s3, (int)t.sr, t.seed_lo, t.seed_hi, t.tensor_id, &amax, nullptr, nullptr, op32b.data(), op16b.data());
  });
  for (long long i = 0; i < N; i++) {
    if (f32_bits(op32b[i]) != f32_bits(op32[i])) miss("operand (no codes/scales)", i, f32_bits(op32b[i]), f32_bits(op32[i]));
    if (op16b[i] != op16[i]) miss("operand bf16 (no codes/scales)", i, op16b[i], op16[i]);
  }
  g_cases++;
  if (bad) {
    g_bad++;
    if (g_bad <= 20)
      printf("FAIL %s #%u (%d,%d)%s tile2d=%u rht=%d sr=%u: %lld mismatches, first %s\n", file, rec, rows, cols, tr ? "T" : "", t.opt, n, t.sr, bad, first);
  }
}

static void run_file(const char* name) {
  File f = load(name);
  const long long before = g_cases, badBefore = g_bad, skipBefore = g_skipped;
  for (u32 rec = 0; rec < f.count; rec++) run_case(read_tensor(f), name, rec);
  printf("%-20s %lld tensors, %lld failed, %lld outside the fast kernels' domain\n", name, g_cases - before, g_bad - badBefore, g_skipped - skipBefore);
}

/**
 * The two-orientation kernels (nvfp4_dual_amax_f32 + nvfp4_dual_quantize_f32) against the single
 * ones they replace (amax_v4_f32 + nvfp4_quantize_rows_f32 for x; nvfp4_rht_amax_cols_f32 or
 * amax_v4_f32 + nvfp4_quantize_cols_f32 for xᵀ), whose bytes the cases above tie to the CPU oracle:
 * every amax, code, scale and operand byte of both orientations, and the first non-finite element.
 */
static void run_dual() {
  const int shapes[][2] = {{16, 16}, {48, 80}, {64, 64}, {80, 144}, {128, 48}, {32, 272}, {192, 64}};
  u32 seed = 12345;
  auto rnd = [&] { seed = seed * 1664525u + 1013904223u; return (float)((seed >> 8) * (1.0 / 16777216.0)); };
  long long before = g_cases, badBefore = g_bad;
  for (auto& sh : shapes) {
    const int rows = sh[0], cols = sh[1];
    const long long N = (long long)rows * cols;
    for (int rht : {0, 4, 16}) for (int srr = 0; srr < 2; srr++) for (int src = 0; src < 2; src++) for (int poison = 0; poison < 2; poison++) {
      std::vector<float> x(N);
      for (auto& v : x) v = (rnd() - 0.5f) * std::ldexp(1.0f, (int)(rnd() * 8) - 4);
      if (poison) { x[N / 3] = NAN; x[N / 2] = INFINITY; }
      const int s0 = 0x5a5a1234, s1 = 0, s2 = 0, s3 = 0;
      const u32 rlo = 11, rhi = 0, rid = 0x1234567u + rows, clo = 22, chi = 1, cid = 0x7654321u + cols;
      const unsigned grid = (unsigned)(((rows + 63) / 64) * ((cols + 63) / 64));
      const unsigned rowGrid = (unsigned)(((rows + 15) / 16) * ((cols + 255) / 256));
      // the single kernels
      unsigned ar = 0, ac = 0;
      unsigned long long slotR = ~0ull, slotC = ~0ull;
      launch(1, 256, [&] { amax_v4_f32(reinterpret_cast<const float4*>(x.data()), N / 4, &ar, &slotR); });
      if (rht) launch(grid, 256, [&] { nvfp4_rht_amax_cols_f32(x.data(), rows, cols, rht, s0, s1, s2, s3, &ac, &slotC); });
      else launch(1, 256, [&] { amax_v4_f32(reinterpret_cast<const float4*>(x.data()), N / 4, &ac, &slotC); });
      std::vector<u8> pr(N / 2, 0xAA), sr(N / 16, 0xAA), pc(N / 2, 0xAA), sc(N / 16, 0xAA);
      std::vector<unsigned short> or16(N, 0xAAAA), oc16(N, 0xAAAA);
      launch(rowGrid, 256, [&] { nvfp4_quantize_rows_f32(x.data(), rows, cols, 0, 0, 0, 0, 0, 0, srr, rlo, rhi, rid, &ar, pr.data(), sr.data(), nullptr, or16.data()); });
      launch(grid, 256, [&] { nvfp4_quantize_cols_f32(x.data(), rows, cols, 0, rht, s0, s1, s2, s3, src, clo, chi, cid, &ac, pc.data(), sc.data(), nullptr, oc16.data()); });
      // the dual ones
      unsigned dr = 0, dc = 0;
      unsigned long long slotD = ~0ull;
      launch(grid, 256, [&] { nvfp4_dual_amax_f32(x.data(), rows, cols, rht, s0, s1, s2, s3, &dr, &dc, &slotD); });
      std::vector<u8> dpr(N / 2, 0x55), dsr(N / 16, 0x55), dpc(N / 2, 0x55), dsc(N / 16, 0x55);
      std::vector<unsigned short> dor(N, 0x5555), doc(N, 0x5555);
      launch(grid, 256, [&] { nvfp4_dual_quantize_f32(x.data(), rows, cols, rht, s0, s1, s2, s3, srr, rlo, rhi, rid, src, clo, chi, cid, &dr, &dc,
                                                      dpr.data(), dsr.data(), dor.data(), dpc.data(), dsc.data(), doc.data()); });
      long long bad = 0;
      char first[200] = "";
      auto miss = [&](const char* what, long long i, unsigned got, unsigned want) {
        if (!bad++) snprintf(first, sizeof first, "%s[%lld] got 0x%x want 0x%x", what, i, got, want);
      };
      if (dr != ar) miss("amax rows", 0, dr, ar);
      if (dc != ac) miss("amax cols", 0, dc, ac);
      if (slotD != slotR) miss("first non-finite", 0, (unsigned)(slotD >> 32), (unsigned)(slotR >> 32));
      if (!poison) {
        for (long long i = 0; i < N / 2; i++) { if (dpr[i] != pr[i]) miss("packed rows", i, dpr[i], pr[i]); if (dpc[i] != pc[i]) miss("packed cols", i, dpc[i], pc[i]); }
        for (long long i = 0; i < N / 16; i++) { if (dsr[i] != sr[i]) miss("scales rows", i, dsr[i], sr[i]); if (dsc[i] != sc[i]) miss("scales cols", i, dsc[i], sc[i]); }
        for (long long i = 0; i < N; i++) { if (dor[i] != or16[i]) miss("operand rows", i, dor[i], or16[i]); if (doc[i] != oc16[i]) miss("operand cols", i, doc[i], oc16[i]); }
      }
      g_cases++;
      if (bad) {
        g_bad++;
        if (g_bad <= 20) printf("FAIL dual (%d,%d) rht=%d sr=%d/%d poison=%d: %lld mismatches, first %s\n", rows, cols, rht, srr, src, poison, bad, first);
      }
    }
  }
  printf("%-20s %lld tensors, %lld failed\n", "dual (rows + cols)", g_cases - before, g_bad - badBefore);
}

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s CASEDIR [files...]\n", argv[0]); return 2; }
  g_dir = argv[1];
  const bool dualOnly = argc > 2 && std::string(argv[2]) == "--dual-only";
  if (dualOnly) {
  } else if (argc > 2) for (int i = 2; i < argc; i++) run_file(argv[i]);
  else for (const char* n : {"fast_tensors.bin", "vec_tensors.bin", "tensors.bin"}) run_file(n);
  run_dual();
  printf("%lld tensors, %lld failed\n", g_cases, g_bad);
  return g_bad || g_cases == 0 ? 1 : 0;
}
