/**
 * Host run of the tensor-core attention kernels without a GPU: attention-mma.cu (v3) and
 * attention-mma-async.cu (v4) compiled unchanged with g++ under the SIMT core (simt-host-core.h:
 * every CUDA thread of a CTA is a host thread; __syncthreads and the warp collectives are barriers;
 * CTAs one after another), with host twins of what the files write in asm (FP4LM_SIMT_SHIM): mma.sync.m16n8k16
 * (each lane's fragments gathered per PTX's layout, products summed in float64 onto the fp32
 * accumulator), ldmatrix.x4 (.trans), cp.async (an immediate copy; zero-fill past the rows).
 * Checks: v4's out, lse, dq, dk, dv = v3's bit for bit (same mma sequence, operands fetched
 * another way), and both within 1e-2 of the largest magnitude of a float64 reference on the same
 * BF16-rounded inputs (the GPU test's tolerance). What it cannot check: timing, the real tensor
 * core's accumulation order, asynchronous copies racing (cp.async completes at once here).
 *
 * Build and run: scripts/test-attention-host.sh
 */
#include "simt-host-core.h"

// BF16 (round to nearest even; NaN stays NaN, quiet)
static inline unsigned short bf16_rne(float f) {
  const unsigned b = __float_as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((b >> 16) | 0x40);
  return (unsigned short)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
static inline float bf16_val(unsigned short h) { return __uint_as_float((unsigned)h << 16); }
struct __nv_bfloat16 { unsigned short x; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {bf16_rne(f)}; }
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {{bf16_rne(a)}, {bf16_rne(b)}}; }

/** D = A·B + C for m16n8k16, BF16 A (row) and B (col), fp32 C: fragments per PTX, gathered over the warp */
static void simt_mma_bf16(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
  unsigned long long* me = g_ex[warp_id()][lane_id()];
  for (int i = 0; i < 4; i++) me[i] = a[i];
  me[4] = b0;
  me[5] = b1;
  warp_sync();
  auto A = [&](int r, int k) {  // a0a1 = A[g][2c..], a2a3 = A[g+8][2c..], a4a5 = A[g][2c+8..], a6a7 = A[g+8][2c+8..]
    const int reg = (r >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0), lane = (r & 7) * 4 + ((k & 7) >> 1);
    const unsigned w = (unsigned)g_ex[warp_id()][lane][reg];
    return (double)bf16_val((unsigned short)(k & 1 ? w >> 16 : w & 0xffff));
  };
  auto B = [&](int k, int n) {  // b0b1 = B[2c..2c+1][g], b2b3 = B[2c+8..][g]
    const int reg = 4 + (k >= 8 ? 1 : 0), lane = n * 4 + ((k & 7) >> 1);
    const unsigned w = (unsigned)g_ex[warp_id()][lane][reg];
    return (double)bf16_val((unsigned short)(k & 1 ? w >> 16 : w & 0xffff));
  };
  const int g = lane_id() >> 2, cc = lane_id() & 3;
  float d[4];
  for (int e = 0; e < 4; e++) {
    const int r = g + (e >= 2 ? 8 : 0), n = 2 * cc + (e & 1);
    double s = 0;
    for (int k = 0; k < 16; k++) s += A(r, k) * B(k, n);
    d[e] = (float)((double)c[e] + s);
  }
  warp_sync();
  for (int e = 0; e < 4; e++) c[e] = d[e];
}

typedef unsigned int aa_u32;
typedef unsigned short aa_bf16;
static inline aa_u32 aa_pack(float lo, float hi) { return (aa_u32)bf16_rne(lo) | ((aa_u32)bf16_rne(hi) << 16); }
static inline void aa_mma(float c[4], const aa_u32 a[4], aa_u32 b0, aa_u32 b1) { simt_mma_bf16(c, a, b0, b1); }
/** ldmatrix.x4: lane l gives row l%8 of matrix l/8; lane t receives (row t/4, cols 2(t%4), +1), or the transposed pair */
static void ldsm_x4(aa_u32 r[4], const aa_bf16* p, bool trans) {
  g_ex[warp_id()][lane_id()][8] = (unsigned long long)(uintptr_t)p;
  warp_sync();
  const int t = lane_id();
  for (int i = 0; i < 4; i++) {
    auto at = [&](int row, int col) { return ((const aa_bf16*)(uintptr_t)g_ex[warp_id()][i * 8 + row][8])[col]; };
    const aa_bf16 lo = trans ? at(2 * (t & 3), t >> 2) : at(t >> 2, 2 * (t & 3));
    const aa_bf16 hi = trans ? at(2 * (t & 3) + 1, t >> 2) : at(t >> 2, 2 * (t & 3) + 1);
    r[i] = (aa_u32)lo | ((aa_u32)hi << 16);
  }
  warp_sync();
}
static inline void aa_ldsm_x4(aa_u32 r[4], const aa_bf16* p) { ldsm_x4(r, p, false); }
static inline void aa_ldsm_x4_t(aa_u32 r[4], const aa_bf16* p) { ldsm_x4(r, p, true); }
static inline void aa_cp16(aa_bf16* dst, const aa_bf16* src, bool valid) {
  if (valid) memcpy(dst, src, 16);
  else memset(dst, 0, 16);
}
static inline void aa_cp_commit() {}
template <int N>
static inline void aa_cp_wait() {}

#define FP4LM_SIMT_SHIM 1
using std::min;
#include "attention-mma.cu"
#include "attention-mma-async.cu"

// ---------------------------------------------------------------- the cases

static std::vector<float> randn(size_t n, unsigned seed) {
  std::vector<float> v(n);
  unsigned s = seed * 2654435761u + 1;
  auto u = [&] { s = s * 1664525u + 1013904223u; return ((s >> 8) + 0.5) / 16777216.0; };
  for (auto& x : v) x = (float)(std::sqrt(-2 * std::log(u())) * std::cos(2 * M_PI * u()));
  return v;
}

static int failures = 0;
static void expect(bool ok, const char* what, const char* tag) {
  if (!ok) {
    failures++;
    printf("FAIL %s: %s\n", tag, what);
  }
}
static bool same_bits(const std::vector<float>& a, const std::vector<float>& b) { return memcmp(a.data(), b.data(), a.size() * 4) == 0; }
static double rel_err(const std::vector<float>& a, const std::vector<double>& ref) {
  double d = 0, m = 0;
  for (size_t i = 0; i < a.size(); i++) {
    d = std::max(d, std::fabs(a[i] - ref[i]));
    m = std::max(m, std::fabs(ref[i]));
  }
  return m > 0 ? d / m : d;
}

static void run_case(int B, int T, int NH, int NKV) {
  const int HS = 64, rep = NH / NKV;
  char tag[96];
  snprintf(tag, sizeof tag, "B%d T%d heads %d/%d", B, T, NH, NKV);
  const size_t nq = (size_t)B * T * NH * HS, nkv = (size_t)B * T * NKV * HS;
  auto q = randn(nq, 1 + T), k = randn(nkv, 2 + T), v = randn(nkv, 3 + T), dout = randn(nq, 4 + T);
  auto rounded = [](std::vector<float> x) { for (auto& e : x) e = bf16_val(bf16_rne(e)); return x; };
  const auto qr = rounded(q), kr = rounded(k), vr = rounded(v), dr = rounded(dout);
  // v3 on FP32 inputs
  std::vector<float> out3(nq), lse3((size_t)B * NH * T), dq3(nq), dk3(nkv), dv3(nkv);
  const dim3 gq = {(unsigned)((T + 63) / 64), (unsigned)NH, (unsigned)B}, gkv = {(unsigned)((T + 63) / 64), (unsigned)NKV, (unsigned)B};
  launch(gq, 128, [&] { attention_mma_forward_hs64(out3.data(), lse3.data(), q.data(), k.data(), v.data(), B, T, NH, NKV); });
  // D = rowsum(BF16(dout)∘out), as attention_flash_backward_prep with round_dout
  std::vector<float> D((size_t)B * NH * T);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < NH; h++) {
        float s = 0;
        for (int d = 0; d < HS; d++) s += dr[(((size_t)b * T + t) * NH + h) * HS + d] * out3[(((size_t)b * T + t) * NH + h) * HS + d];
        D[((size_t)b * NH + h) * T + t] = s;
      }
  launch(gq, 128, [&] { attention_mma_backward_dq_hs64(dq3.data(), dout.data(), q.data(), k.data(), v.data(), lse3.data(), D.data(), B, T, NH, NKV); });
  launch(gkv, 128, [&] { attention_mma_backward_dkv_hs64(dk3.data(), dv3.data(), dout.data(), q.data(), k.data(), v.data(), lse3.data(), D.data(), B, T, NH, NKV); });
  // v4 on BF16 copies made by its cast kernel
  auto cast = [&](const std::vector<float>& x) {
    std::vector<unsigned short> o(x.size());
    launch({(unsigned)((x.size() / 4 + 255) / 256), 1, 1}, 256, [&] {
      attention_bf16_cast(reinterpret_cast<const float4*>(x.data()), (long long)x.size() / 4, reinterpret_cast<uint2*>(o.data()));
    });
    return o;
  };
  const auto q16 = cast(q), k16 = cast(k), v16 = cast(v), d16 = cast(dout);
  for (size_t i = 0; i < nq; i++) expect(bf16_val(q16[i]) == qr[i], "cast = RNE", tag);
  std::vector<float> out4(nq), lse4(lse3.size()), dq4(nq), dk4(nkv), dv4(nkv);
  launch(gq, 128, [&] { attention_mma_async_forward_hs64(out4.data(), lse4.data(), q16.data(), k16.data(), v16.data(), B, T, NH, NKV); });
  launch(gq, 128, [&] { attention_mma_async_backward_dq_hs64(dq4.data(), d16.data(), q16.data(), k16.data(), v16.data(), lse3.data(), D.data(), B, T, NH, NKV); });
  launch(gkv, 128, [&] { attention_mma_async_backward_dkv_hs64(dk4.data(), dv4.data(), d16.data(), q16.data(), k16.data(), v16.data(), lse3.data(), D.data(), B, T, NH, NKV); });
  // the variant that also writes the output projection's BF16 operand and its non-finite check
  std::vector<float> out5(nq), lse5(lse3.size());
  std::vector<unsigned short> o16(nq);
  unsigned long long bad = ~0ull;
  launch(gq, 128, [&] { attention_mma_async_forward_out16_hs64(out5.data(), lse5.data(), q16.data(), k16.data(), v16.data(), B, T, NH, NKV, o16.data(), &bad); });
  expect(same_bits(out5, out4) && same_bits(lse5, lse4), "out16 variant: out, lse = the plain forward's", tag);
  bool rne = true;
  for (size_t i = 0; i < nq; i++) rne = rne && o16[i] == bf16_rne(out4[i]);
  expect(rne, "out16 = RNE(out)", tag);
  expect(bad == ~0ull, "no non-finite value reported", tag);
  {
    // a NaN in v (key 5, column 3 of KV head 0) turns part of out NaN: the slot holds the first such element and its bits, as the cast's check
    auto vbad = v16;
    vbad[(size_t)5 * NKV * HS + 3] = 0x7fc0;
    launch(gq, 128, [&] { attention_mma_async_forward_out16_hs64(out5.data(), lse5.data(), q16.data(), k16.data(), vbad.data(), B, T, NH, NKV, o16.data(), &bad); });
    size_t first = 0;
    while (first < nq && std::isfinite(out5[first])) first++;
    expect(first < nq && bad == (((unsigned long long)first << 32) | __float_as_uint(out5[first])), "the first NaN of out reported", tag);
  }
  expect(same_bits(out4, out3), "out v4 = v3", tag);
  expect(same_bits(lse4, lse3), "lse v4 = v3", tag);
  expect(same_bits(dq4, dq3), "dq v4 = v3", tag);
  expect(same_bits(dk4, dk3), "dk v4 = v3", tag);
  expect(same_bits(dv4, dv3), "dv v4 = v3", tag);
  // float64 reference on the rounded inputs
  std::vector<double> O(nq, 0), dQ(nq, 0), dK(nkv, 0), dV(nkv, 0);
  const double sc = 1.0 / std::sqrt((double)HS);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      const int kh = h / rep;
      auto Q = [&](int t, int d) { return (double)qr[(((size_t)b * T + t) * NH + h) * HS + d]; };
      auto dO = [&](int t, int d) { return (double)dr[(((size_t)b * T + t) * NH + h) * HS + d]; };
      auto K = [&](int t, int d) { return (double)kr[(((size_t)b * T + t) * NKV + kh) * HS + d]; };
      auto V = [&](int t, int d) { return (double)vr[(((size_t)b * T + t) * NKV + kh) * HS + d]; };
      for (int i = 0; i < T; i++) {
        std::vector<double> p(i + 1), dp(i + 1);
        double mx = -1e300, sum = 0, Di = 0;
        for (int j = 0; j <= i; j++) {
          double s = 0;
          for (int d = 0; d < HS; d++) s += Q(i, d) * K(j, d);
          p[j] = s * sc;
          mx = std::max(mx, p[j]);
        }
        for (int j = 0; j <= i; j++) sum += (p[j] = std::exp(p[j] - mx));
        for (int j = 0; j <= i; j++) p[j] /= sum;
        for (int d = 0; d < HS; d++) {
          double o = 0;
          for (int j = 0; j <= i; j++) o += p[j] * V(j, d);
          O[(((size_t)b * T + i) * NH + h) * HS + d] = o;
          Di += dO(i, d) * o;
        }
        for (int j = 0; j <= i; j++) {
          double s = 0;
          for (int d = 0; d < HS; d++) s += dO(i, d) * V(j, d);
          dp[j] = p[j] * (s - Di);
        }
        for (int j = 0; j <= i; j++)
          for (int d = 0; d < HS; d++) {
            dQ[(((size_t)b * T + i) * NH + h) * HS + d] += dp[j] * K(j, d) * sc;
            dK[(((size_t)b * T + j) * NKV + kh) * HS + d] += dp[j] * Q(i, d) * sc;
            dV[(((size_t)b * T + j) * NKV + kh) * HS + d] += p[j] * dO(i, d);
          }
      }
    }
  const double e[5] = {rel_err(out4, O), rel_err(dq4, dQ), rel_err(dk4, dK), rel_err(dv4, dV), rel_err(dq3, dQ)};
  printf("%-24s vs float64: out %.2e dq %.2e dk %.2e dv %.2e\n", tag, e[0], e[1], e[2], e[3]);
  for (int i = 0; i < 4; i++) expect(e[i] <= 1e-2, "within 1e-2 of the float64 reference", tag);
}

int main() {
  run_case(1, 64, 2, 1);    // one tile
  run_case(1, 80, 3, 1);    // partial second tile, GQA 3:1
  run_case(2, 150, 4, 2);   // three tiles, the last partial; batch 2
  run_case(1, 200, 2, 2);   // MHA, four tiles
  if (failures) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("attention host run: v4 = v3 bit for bit on every case (its BF16-output variant too, out16 = RNE(out), the first NaN reported), both within 1e-2 of float64\n");
  return 0;
}
