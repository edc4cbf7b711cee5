/**
 * Host run of quantize-fp8-fast.cu itself, without a GPU, under the SIMT shim (simt-host-shim.h):
 * the kernel file compiled unchanged with g++, run on the block-scaled FP8 tensor cases of
 * scripts/gen-common-cuh-cases.ts (fp8_fast_tensors.bin, plus the FP8 cases of tensors.bin in the
 * fast kernels' domain), compared byte for byte with the TS oracle (quant/fp8.ts quantizeFP8 +
 * dequantizeFP8): FP8 bytes, decode scales in the oracle's layout and in cuBLASLt's layout, the
 * BF16 operand (= the top half of the oracle's FP32 operand after RNE), the first non-finite
 * element; then fp8_dequantize of the kernel's own bytes and cuBLASLt-layout scales must give the
 * oracle's operand again (FP32 and BF16). What it checks: the kernels' index arithmetic, block
 * reductions (8-lane shuffles, per-column shared memory, whole-CTA tiles), partial blocks, the
 * two scale layouts. What it cannot: timing, the GPU's memory model, NVRTC.
 *
 * Build and run: scripts/test-quantize-fp8-fast.sh.
 */
#include <algorithm>

#include "simt-host-shim.h"
#include "quantize-fp8-fast.cu"

// ---------------------------------------------------------------- cases (gen-common-cuh-cases.ts format)

#include "host-test-cases.h"

static long long g_cases = 0, g_bad = 0, g_skipped = 0;

static bool same_f32(u32 got, u32 want) {
  const bool nan = (want & 0x7fffffffu) > 0x7f800000u;
  return nan ? (got & 0x7fffffffu) > 0x7f800000u : got == want;
}

/** One tensor through the host's fast sequence (cuda-backend.ts → fp8.ts, fast path). */
static void run_case(const Tensor& t, const char* file, u32 rec) {
  const int rows = (int)t.rows, cols = (int)t.cols, scaling = (int)t.opt;
  const bool tr = t.transpose != 0;
  const int R = tr ? cols : rows, C = tr ? rows : cols;
  if (t.kind != 2 || scaling < 1 || scaling > 2 || C % 16 != 0) { g_skipped++; return; }
  const long long N = (long long)R * C;
  const int nbc = (C + 127) / 128, nbr = (R + 127) / 128;
  const long long nBlocks = scaling == 1 ? (long long)R * nbc : (long long)nbr * nbc;
  const long long gemmLen = scaling == 1 ? (long long)nbc * ((R + 3) & ~3) : (long long)nbr * ((nbc + 3) & ~3);
  std::vector<float> x(t.x);
  unsigned long long slot = ~0ull;
  std::vector<u8> data(N, 0xAA);
  std::vector<float> sinv(nBlocks, -1.0f), sgemm(gemmLen, -1.0f);
  std::vector<unsigned short> op16(N, 0xAAAA);
  const int e5m2 = (int)t.e5m2, pow2 = (int)t.pow2;
  if (!tr) {
    if (scaling == 1) launch((unsigned)((R * (long long)nbc + 31) / 32), 256, [&] { fp8_quantize_rows_1x128_f32(x.data(), R, C, e5m2, pow2, 0, data.data(), sinv.data(), sgemm.data(), op16.data(), &slot); });
    else launch((unsigned)(nbr * nbc), 256, [&] { fp8_quantize_rows_128x128_f32(x.data(), R, C, e5m2, pow2, 0, data.data(), sinv.data(), sgemm.data(), op16.data(), &slot); });
  } else {
    const unsigned bands = (unsigned)((rows + 127) / 128);
    if (scaling == 1) launch(bands * (unsigned)((cols + 63) / 64), 256, [&] { fp8_quantize_cols_1x128_f32(x.data(), rows, cols, e5m2, pow2, 0, data.data(), sinv.data(), sgemm.data(), op16.data(), &slot); });
    else launch(bands * (unsigned)((cols + 127) / 128), 256, [&] { fp8_quantize_cols_128x128_f32(x.data(), rows, cols, e5m2, pow2, 0, data.data(), sinv.data(), sgemm.data(), op16.data(), &slot); });
  }
  // and back: the tensor-core operand (bytes + cuBLASLt-layout scales) read as values
  std::vector<unsigned short> back16(N, 0xAAAA);
  std::vector<float> back32(N, -1.0f);
  launch(3, 256, [&] { fp8_dequantize(data.data(), R, C, scaling, e5m2, sgemm.data(), back16.data(), back32.data()); });

  long long bad = 0;
  char first[200] = "";
  auto miss = [&](const char* what, long long i, unsigned got, unsigned want) {
    if (!bad++) snprintf(first, sizeof first, "%s[%lld] got 0x%x want 0x%x", what, i, got, want);
  };
  const int fb = slot == ~0ull ? -1 : (int)(slot >> 32);
  if (fb != t.first_bad) miss("first_bad", 0, (unsigned)fb, (unsigned)t.first_bad);
  if (fb >= 0 && (u32)slot != f32_bits(t.x[fb])) miss("first_bad value", fb, (u32)slot, f32_bits(t.x[fb]));
  for (long long i = 0; i < N; i++) if (data[i] != t.packed[i]) miss("data", i, data[i], t.packed[i]);
  if ((long long)t.scale_inv.size() != nBlocks) miss("scale_inv length", 0, (unsigned)nBlocks, (unsigned)t.scale_inv.size());
  for (long long b = 0; b < nBlocks && b < (long long)t.scale_inv.size(); b++) {
    if (!same_f32(f32_bits(sinv[b]), t.scale_inv[b])) miss("scale_inv", b, f32_bits(sinv[b]), t.scale_inv[b]);
    const long long br = b / nbc, bc = b % nbc;  // scaling 1: (row, column block); 2: (row block, column block)
    const long long g = scaling == 1 ? bc * ((R + 3) & ~3) + br : br * ((nbc + 3) & ~3) + bc;
    if (!same_f32(f32_bits(sgemm[g]), t.scale_inv[b])) miss("scale_gemm", g, f32_bits(sgemm[g]), t.scale_inv[b]);
  }
  for (long long i = 0; i < N; i++) {
    const u32 want = t.operand[i];
    const u32 want16 = bf16_from_f32(bits_f32(want));
    if (op16[i] != want16) miss("operand bf16", i, op16[i], want16);
    if (back16[i] != want16) miss("dequantize bf16", i, back16[i], want16);
    if (!same_f32(f32_bits(back32[i]), want)) miss("dequantize f32", i, f32_bits(back32[i]), want);
  }
  g_cases++;
  if (bad) {
    g_bad++;
    if (g_bad <= 20)
      printf("FAIL %s #%u (%d,%d)%s scaling=%d e5m2=%d pow2=%d: %lld mismatches, first %s\n", file, rec, rows, cols, tr ? "T" : "", scaling, e5m2, pow2, bad, first);
  }
}

static void run_file(const char* name) {
  File f = load(name);
  const long long before = g_cases, badBefore = g_bad, skipBefore = g_skipped;
  for (u32 rec = 0; rec < f.count; rec++) run_case(read_tensor(f), name, rec);
  printf("%-22s %lld tensors, %lld failed, %lld outside the fast FP8 kernels' domain\n", name, g_cases - before, g_bad - badBefore, g_skipped - skipBefore);
}

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s CASEDIR [files...]\n", argv[0]); return 2; }
  g_dir = argv[1];
  if (argc > 2) for (int i = 2; i < argc; i++) run_file(argv[i]);
  else for (const char* n : {"fp8_fast_tensors.bin", "tensors.bin"}) run_file(n);
  printf("%lld tensors, %lld failed\n", g_cases, g_bad);
  return g_bad || g_cases == 0 ? 1 : 0;
}
