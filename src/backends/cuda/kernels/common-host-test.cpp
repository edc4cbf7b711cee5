/**
 * Host check of common.cuh against the TypeScript oracle, without a GPU: compiles the shared
 * device math as plain C++ and compares it bit for bit with the cases that
 * scripts/gen-common-cuh-cases.ts writes (random + targeted inputs with the TS outputs, and the
 * shared vectors with their files' outputs). Also runs a host emulation of quantize.cu's
 * decomposition (32x128 tiles, 16-element segments per thread, RHT butterflies split into
 * in-thread and cross-lane stages, the 16x16 tile amax over 16 rows, the MXFP4 lane pairs, Philox
 * per segment) over whole tensors, so the TS tensor semantics (transposition, tiles, RHT groups,
 * SR element indices) are checked against the way the kernels compute them.
 * What it cannot check: the CUDA code itself (indexing, shuffles, stores); that needs the GPU.
 *
 * Build and run: scripts/test-common-cuh.sh (g++ -O1 -std=c++17 -ffp-contract=off -fno-fast-math).
 * Usage: common-host-test CASEDIR  → prints one line per case file and exits 1 on any mismatch.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common.cuh"

using namespace fp4q;

#include "host-test-cases.h"

static long long g_total_cases = 0, g_total_bad = 0;


/** Mismatch counter for one case file; prints the first few mismatches. */
struct Report {
  const char* name;
  long long cases = 0, bad = 0;
  explicit Report(const char* n) : name(n) {}
  bool check(bool ok, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
  ~Report() {
    printf("%-22s %10lld cases  %lld mismatches\n", name, cases, bad);
    g_total_cases += cases;
    g_total_bad += bad;
  }
};
#include <cstdarg>
bool Report::check(bool ok, const char* fmt, ...) {
  if (!ok) {
    if (bad < 8) {
      va_list ap;
      va_start(ap, fmt);
      printf("  MISMATCH %s: ", name);
      vprintf(fmt, ap);
      printf("\n");
      va_end(ap);
    }
    bad++;
  }
  return ok;
}

static bool same_f32_bits(u32 got, u32 want) {
  const bool gn = (got & F32_ABS) > F32_INF, wn = (want & F32_ABS) > F32_INF;
  return (gn && wn) || got == want;
}
static u32 fb(float x) { return f32_bits(x); }

// ------------------------------------------------------------------ scalar files

static void test_e2m1_rn(const char* file) {
  File f = load(file);
  Report r(file);
  for (u32 i = 0; i < f.count; i++) {
    const u32 x = f.next(), want = f.next(), got = e2m1_rn(bits_f32(x));
    r.cases++;
    r.check(got == want, "x=0x%08x got %u want %u", x, got, want);
  }
}

static void test_e2m1_sr(const char* file) {
  File f = load(file);
  Report r(file);
  for (u32 i = 0; i < f.count; i++) {
    const u32 x = f.next(), r8 = f.next(), want = f.next(), got = e2m1_sr(bits_f32(x), r8);
    r.cases++;
    r.check(got == want, "x=0x%08x r8=%u got %u want %u", x, r8, got, want);
  }
}

static void test_fp8() {
  File f = load("fp8.bin");
  Report r("fp8.bin");
  for (u32 i = 0; i < f.count; i++) {
    const u32 x = f.next();
    const float v = bits_f32(x);
    const u32 w[4] = {f.next(), f.next(), f.next(), f.next()};
    const u32 g[4] = {e4m3_encode(v, true), e4m3_encode(v, false), e5m2_encode(v, true), e5m2_encode(v, false)};
    for (int k = 0; k < 4; k++) {
      r.cases++;
      r.check(g[k] == w[k], "x=0x%08x variant %d got 0x%02x want 0x%02x", x, k, g[k], w[k]);
    }
  }
  File v = load("vec_e4m3.bin");
  Report rv("vec_e4m3.bin");
  for (u32 i = 0; i < v.count; i++) {
    const u32 x = v.next(), want = v.next(), got = e4m3_encode(bits_f32(x));
    rv.cases++;
    rv.check(got == want, "x=0x%08x got 0x%02x want 0x%02x", x, got, want);
  }
  File d = load("fp8_decode.bin");
  Report rd("fp8_decode.bin");
  for (u32 i = 0; i < d.count; i++) {
    const u32 b = d.next(), w4 = d.next(), w5 = d.next();
    rd.cases += 2;
    rd.check(same_f32_bits(fb(e4m3_decode(b)), w4), "e4m3 byte 0x%02x got 0x%08x want 0x%08x", b, fb(e4m3_decode(b)), w4);
    rd.check(same_f32_bits(fb(e5m2_decode(b)), w5), "e5m2 byte 0x%02x got 0x%08x want 0x%08x", b, fb(e5m2_decode(b)), w5);
  }
}

static void test_bf16() {
  File f = load("bf16_f32.bin");
  Report r("bf16_f32.bin");
  for (u32 i = 0; i < f.count; i++) {
    const u32 x = f.next(), want = f.next(), got = bf16_from_f32(bits_f32(x));
    r.cases++;
    r.check(got == want, "x=0x%08x got 0x%04x want 0x%04x", x, got, want);
  }
  File g = load("bf16_f64.bin");
  Report r2("bf16_f64.bin");
  for (u32 i = 0; i < g.count; i++) {
    const u32 lo = g.next(), hi = g.next(), want = g.next();
    const u32 got = bf16_from_f64(bits_f64(((u64)hi << 32) | lo));
    const bool nan = (want & 0x7fffu) > 0x7f80u;
    r2.cases++;
    r2.check(nan ? (got & 0x7fffu) > 0x7f80u : got == want, "v=0x%08x%08x got 0x%04x want 0x%04x", hi, lo, got, want);
  }
}

static void test_philox() {
  File f = load("philox.bin");
  Report r("philox.bin");
  for (u32 i = 0; i < f.count; i++) {
    u32 c[6], w[4];
    for (auto& x : c) x = f.next();
    for (auto& x : w) x = f.next();
    const Philox4 p = philox4x32_10(c[0], c[1], c[2], c[3], c[4], c[5]);
    r.cases++;
    r.check(p.w0 == w[0] && p.w1 == w[1] && p.w2 == w[2] && p.w3 == w[3], "ctr %08x %08x %08x %08x key %08x %08x", c[0], c[1], c[2], c[3], c[4], c[5]);
  }
}

static void test_nvfp4_scalars() {
  {
    File f = load("nvfp4_scales.bin");
    Report r("nvfp4_scales.bin");
    for (u32 i = 0; i < f.count; i++) {
      const u32 a = f.next(), e = f.next(), d = f.next(), m = f.next();
      const Nvfp4TensorScales t = nvfp4_tensor_scales(bits_f32(a));
      r.cases++;
      r.check(fb(t.s_enc) == e && fb(t.s_dec) == d && fb(t.mult) == m, "amax=0x%08x got %08x %08x %08x want %08x %08x %08x", a, fb(t.s_enc),
              fb(t.s_dec), fb(t.mult), e, d, m);
    }
  }
  {
    File f = load("nvfp4_byte.bin");
    Report r("nvfp4_byte.bin");
    for (u32 i = 0; i < f.count; i++) {
      const u32 b = f.next(), m = f.next(), want = f.next(), got = nvfp4_block_scale_byte(bits_f32(b), bits_f32(m));
      r.cases++;
      r.check(got == want, "bamax=0x%08x mult=0x%08x got 0x%02x want 0x%02x", b, m, got, want);
    }
  }
  {
    File f = load("nvfp4_enc.bin");
    Report r("nvfp4_enc.bin");
    for (u32 i = 0; i < f.count; i++) {
      const u32 b = f.next(), d = f.next(), want = f.next(), got = fb(nvfp4_encode_scale(b, bits_f32(d)));
      r.cases++;
      r.check(same_f32_bits(got, want), "byte=0x%02x sdec=0x%08x got 0x%08x want 0x%08x", b, d, got, want);
    }
  }
}

static void test_scale_rules() {
  File f = load("mx_scale.bin");
  Report r("mx_scale.bin");
  for (u32 i = 0; i < f.count; i++) {
    const u32 a = f.next(), wf = f.next(), wr = f.next();
    const u32 gf = e8m0_floor_from_amax(bits_f32(a)), gr = e8m0_rceil_from_amax(bits_f32(a));
    r.cases += 2;
    r.check(gf == wf, "floor amax=0x%08x got %u want %u", a, gf, wf);
    r.check(gr == wr, "rceil amax=0x%08x got %u want %u", a, gr, wr);
  }
  File g = load("fp8_scale.bin");
  Report r2("fp8_scale.bin");
  for (u32 i = 0; i < g.count; i++) {
    const u32 a = g.next(), fm = g.next(), p2 = g.next(), want = g.next();
    const u32 got = fb(fp8_scale_from_amax(bits_f32(a), bits_f32(fm), p2 != 0));
    r2.cases++;
    r2.check(got == want, "amax=0x%08x fmax=0x%08x pow2=%u got 0x%08x want 0x%08x", a, fm, p2, got, want);
  }
}

// ------------------------------------------------------------------ block files

static void test_nvfp4_blocks() {
  File f = load("nvfp4_block.bin");
  Report r("nvfp4_block.bin");
  for (u32 i = 0; i < f.count; i++) {
    const u32 amax = f.next(), sr = f.next();
    float x[16];
    u8 r8[16];
    for (auto& v : x) v = bits_f32(f.next());
    for (int k = 0; k < 4; k++) { const u32 w = f.next(); for (int j = 0; j < 4; j++) r8[4 * k + j] = (u8)(w >> (8 * j)); }
    const u32 wbyte = f.next(), wlo = f.next(), whi = f.next();
    u32 wop[16];
    for (auto& v : wop) v = f.next();
    const Nvfp4TensorScales ts = nvfp4_tensor_scales(bits_f32(amax));
    u32 bam = 0;
    for (float v : x) { const u32 a = abs_bits_nonan(v); bam = a > bam ? a : bam; }
    const u32 byte = nvfp4_block_scale_byte(bits_f32(bam), ts.mult);
    const float enc = nvfp4_encode_scale(byte, ts.s_dec);
    u32 lo = 0, hi = 0;
    bool opok = true;
    for (int k = 0; k < 16; k++) {
      const float y = fmul_rn(x[k], enc);
      const u32 code = sr ? e2m1_sr(y, r8[k]) : e2m1_rn(y);
      if (k < 8) lo |= code << (4 * k); else hi |= code << (4 * (k - 8));
      opok = opok && same_f32_bits(fb(nvfp4_operand_value(code, byte)), wop[k]);
    }
    r.cases++;
    r.check(byte == wbyte && lo == wlo && hi == whi && opok, "record %u amax=0x%08x sr=%u: byte %02x/%02x codes %08x%08x/%08x%08x operand %s", i, amax,
            sr, byte, wbyte, hi, lo, whi, wlo, opok ? "ok" : "DIFF");
  }
}

static void test_mxfp4_blocks() {
  File f = load("mxfp4_block.bin");
  Report r("mxfp4_block.bin");
  for (u32 i = 0; i < f.count; i++) {
    const u32 rceil = f.next(), sr = f.next();
    float x[32];
    u8 r8[32];
    for (auto& v : x) v = bits_f32(f.next());
    for (int k = 0; k < 8; k++) { const u32 w = f.next(); for (int j = 0; j < 4; j++) r8[4 * k + j] = (u8)(w >> (8 * j)); }
    const u32 wbyte = f.next();
    u32 wp[4], wop[32];
    for (auto& v : wp) v = f.next();
    for (auto& v : wop) v = f.next();
    u32 bam = 0;
    bool nan = false;
    for (float v : x) { const u32 a = abs_bits_nonan(v); bam = a > bam ? a : bam; nan = nan || is_nan_f32(v); }
    const u32 byte = nan ? 0xffu : (rceil ? e8m0_rceil_from_amax(bits_f32(bam)) : e8m0_floor_from_amax(bits_f32(bam)));
    const float enc = mx_encode_multiplier(byte), dec = mx_scale_value(byte);
    u32 p[4] = {0, 0, 0, 0};
    bool opok = true;
    for (int k = 0; k < 32; k++) {
      const float y = fmul_rn(x[k], enc);
      const u32 code = sr ? e2m1_sr(y, r8[k]) : e2m1_rn(y);
      p[k / 8] |= code << (4 * (k % 8));
      opok = opok && same_f32_bits(fb(fmul_rn(e2m1_decode(code), dec)), wop[k]);
    }
    r.cases++;
    r.check(byte == wbyte && !memcmp(p, wp, sizeof p) && opok, "record %u rceil=%u sr=%u: byte %02x/%02x codes %s operand %s", i, rceil, sr, byte, wbyte,
            memcmp(p, wp, sizeof p) ? "DIFF" : "ok", opok ? "ok" : "DIFF");
  }
}

static void test_fp8_blocks() {
  File f = load("fp8_block.bin");
  Report r("fp8_block.bin");
  for (u32 i = 0; i < f.count; i++) {
    const u32 e5 = f.next(), p2 = f.next();
    float x[16];
    for (auto& v : x) v = bits_f32(f.next());
    const u32 wsinv = f.next();
    u32 wd[4], wop[16];
    for (auto& v : wd) v = f.next();
    for (auto& v : wop) v = f.next();
    u32 bam = 0;
    for (float v : x) { const u32 a = abs_bits_nonan(v); bam = a > bam ? a : bam; }
    const float scale = fp8_scale_from_amax(bits_f32(bam), e5 ? 57344.0f : 448.0f, p2 != 0);
    const float sinv = fdiv_rn(1.0f, scale);
    u32 d[4] = {0, 0, 0, 0};
    bool opok = true;
    for (int k = 0; k < 16; k++) {
      const float y = fmul_rn(x[k], scale);
      const u32 b = e5 ? e5m2_encode(y) : e4m3_encode(y);
      d[k / 4] |= b << (8 * (k % 4));
      opok = opok && same_f32_bits(fb(fmul_rn(e5 ? e5m2_decode(b) : e4m3_decode(b), sinv)), wop[k]);
    }
    r.cases++;
    r.check(fb(sinv) == wsinv && !memcmp(d, wd, sizeof d) && opok, "record %u e5m2=%u pow2=%u: scaleInv %08x/%08x data %s operand %s", i, e5, p2, fb(sinv), wsinv,
            memcmp(d, wd, sizeof d) ? "DIFF" : "ok", opok ? "ok" : "DIFF");
  }
}

// ------------------------------------------------------------------ RHT, as the kernels split it

/**
 * RHT of one group of n values (n a power of two, 2..128) the way quantize.cu computes it: n ≥ 16:
 * n/16 segments (lanes) of 16, in-segment stages, then cross-lane stages with partner j ^ m;
 * n < 16: within one segment. Outputs BF16 bits.
 */
static void rht_group_as_kernel(const float* x, int n, const u32 m[4], u16* out) {
  const int segs = n >= 16 ? n / 16 : 1;
  const int len = n >= 16 ? 16 : n;
  std::vector<double> d(segs * 16), nd(segs * 16);
  for (int j = 0; j < segs; j++) {
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = i < len ? x[16 * j + i] : 0.0f;
    rht_load_signed(v, &d[16 * j], 16 * j, n, m[0], m[1], m[2], m[3]);
    rht_local_stages(&d[16 * j], n);
  }
  for (int mm = 1; mm < 8; mm <<= 1) {
    if (16 * mm < n) {
      for (int j = 0; j < segs; j++)
        for (int i = 0; i < 16; i++) nd[16 * j + i] = rht_cross(d[16 * j + i], d[16 * (j ^ mm) + i], (j & mm) != 0);
      d.swap(nd);
    }
  }
  for (int j = 0; j < segs; j++)
    for (int i = 0; i < len; i++) out[16 * j + i] = rht_output_bf16(d[16 * j + i], n);
}

/** The scale constants against the host's correctly rounded sqrt (what Math.sqrt returns). */
static void test_rht_constants() {
  Report r("rht_constants");
  for (int lg = 1; lg <= 7; lg++) {
    const double s = __builtin_sqrt((double)(1 << lg));
    r.cases++;
    if (lg & 1) r.check(f64_bits(rht_sqrt_n(lg)) == f64_bits(s), "sqrt(2^%d)", lg);
    else r.check(f64_bits(rht_inv_sqrt_n(lg)) == f64_bits(1.0 / s), "1/sqrt(2^%d)", lg);
  }
}

static void test_rht(const char* file) {
  File f = load(file);
  Report r(file);
  for (u32 rec = 0; rec < f.count; rec++) {
    const int n = (int)f.next();
    u32 m[4] = {f.next(), f.next(), f.next(), f.next()};
    const u32 G = f.next();
    std::vector<float> x(G * n);
    std::vector<u32> want(G * n);
    for (auto& v : x) v = bits_f32(f.next());
    for (auto& v : want) v = f.next();
    std::vector<u16> y(n);
    for (u32 g = 0; g < G; g++) {
      rht_group_as_kernel(&x[g * n], n, m, y.data());
      for (int i = 0; i < n; i++) {
        const u32 w = want[g * n + i];
        const bool nan = (w & 0x7fffu) > 0x7f80u;
        r.cases++;
        r.check(nan ? (y[i] & 0x7fffu) > 0x7f80u : y[i] == w, "n=%d group %u elem %d got 0x%04x want 0x%04x", n, g, i, y[i], w);
      }
    }
  }
}

// ------------------------------------------------------------------ tensors, as the kernels split them


/** The quantized-orientation view of the input: element (r, c) of x' (zero outside). */
struct View {
  const Tensor& t;
  int R, C;
  explicit View(const Tensor& tt) : t(tt), R(tt.transpose ? tt.cols : tt.rows), C(tt.transpose ? tt.rows : tt.cols) {}
  float at(int r, int c) const {
    if (r >= R || c >= C) return 0.0f;
    return t.transpose ? t.x[(size_t)c * R + r] : t.x[(size_t)r * C + c];
  }
};

/** segment_values of quantize.cu for the segment at (r, c): c % 16 == 0, group = lanes of one row. */
static void segment_values_host(const View& v, int r, int c, int n, const u32 m[4], float out[16]) {
  if (n <= 0) {
    for (int i = 0; i < 16; i++) out[i] = v.at(r, c + i);
    return;
  }
  // the kernel's lanes of one tile row: segments lseg = 0..7 at columns c0 + 16·lseg
  const int c0 = c & ~127, lseg = (c - c0) / 16;
  double d[8][16], nd[8][16];
  for (int s = 0; s < 8; s++) {
    float vv[16];
    for (int i = 0; i < 16; i++) vv[i] = v.at(r, c0 + 16 * s + i);
    rht_load_signed(vv, d[s], 16 * s, n, m[0], m[1], m[2], m[3]);
    rht_local_stages(d[s], n);
  }
  for (int mm = 1; mm < 8; mm <<= 1) {
    if (16 * mm < n) {
      for (int s = 0; s < 8; s++)
        for (int i = 0; i < 16; i++) nd[s][i] = rht_cross(d[s][i], d[s ^ mm][i], (s & mm) != 0);
      memcpy(d, nd, sizeof d);
    }
  }
  for (int i = 0; i < 16; i++) out[i] = bf16_to_f32(rht_output_bf16(d[lseg][i], n));
}

static u32 seg_amax(const float v[16]) {
  u32 m = 0;
  for (int i = 0; i < 16; i++) { const u32 a = abs_bits_nonan(v[i]); m = a > m ? a : m; }
  return m;
}

static void test_tensors(const char* file) {
  File f = load(file);
  Report r(file);
  for (u32 rec = 0; rec < f.count; rec++) {
    const Tensor t = read_tensor(f);
    const View v(t);
    const int R = v.R, C = v.C;
    char tag[160];
    snprintf(tag, sizeof tag, "tensor %u kind %u (%u,%u) T=%u opt=%u rht=%u sr=%u", rec, t.kind, t.rows, t.cols, t.transpose, t.opt, t.rht, t.sr);
    // first non-finite index of the original input
    int fb_ = -1;
    for (size_t i = 0; i < t.x.size(); i++)
      if (!is_finite_bits(f32_bits(t.x[i]))) { fb_ = (int)i; break; }
    r.cases++;
    r.check(fb_ == t.first_bad, "%s first_bad %d want %d", tag, fb_, t.first_bad);
    if (t.kind == 2) {  // FP8
      const int scaling = (int)t.opt;
      const int nbc = scaling == 0 ? 1 : (C + 127) / 128;
      const int nbr = scaling == 0 ? 1 : scaling == 1 ? R : (R + 127) / 128;
      std::vector<u32> bam(nbr * nbc, 0);
      auto bidx = [&](int rr, int cc) { return scaling == 0 ? 0 : (scaling == 1 ? rr : rr / 128) * nbc + cc / 128; };
      for (int rr = 0; rr < R; rr++)
        for (int cc = 0; cc < C; cc++) { const u32 a = abs_bits_nonan(v.at(rr, cc)); u32& m = bam[bidx(rr, cc)]; m = a > m ? a : m; }
      bool ok = t.scale_inv.size() == bam.size();
      std::vector<float> sc(bam.size()), si(bam.size());
      for (size_t b = 0; b < bam.size(); b++) {
        sc[b] = fp8_scale_from_amax(bits_f32(bam[b]), t.e5m2 ? 57344.0f : 448.0f, t.pow2 != 0);
        si[b] = fdiv_rn(1.0f, sc[b]);
        ok = ok && fb(si[b]) == t.scale_inv[b];
      }
      r.cases++;
      r.check(ok, "%s scale_inv", tag);
      long long bad = 0;
      for (int rr = 0; rr < R; rr++)
        for (int cc = 0; cc < C; cc++) {
          const int b = bidx(rr, cc);
          const u32 q = t.e5m2 ? e5m2_encode(fmul_rn(v.at(rr, cc), sc[b])) : e4m3_encode(fmul_rn(v.at(rr, cc), sc[b]));
          const size_t e = (size_t)rr * C + cc;
          const u32 op = fb(fmul_rn(t.e5m2 ? e5m2_decode(q) : e4m3_decode(q), si[b]));
          if (q != t.packed[e] || !same_f32_bits(op, t.operand[e])) bad++;
        }
      r.cases++;
      r.check(bad == 0, "%s %lld element mismatches", tag, bad);
      continue;
    }
    const int n = (int)t.rht;
    // per-segment post-RHT values, computed once
    std::vector<float> xv((size_t)R * C);
    for (int rr = 0; rr < R; rr++)
      for (int cc = 0; cc < C; cc += 16) segment_values_host(v, rr, cc, n, t.m, &xv[(size_t)rr * C + cc]);
    auto rbyte = [&](long long e, int i) -> u32 {
      if (!t.r8.empty()) return t.r8[e + i];
      return philox_byte(philox_sr_block((u64)e, t.seed_lo, t.seed_hi, t.tensor_id), i);
    };
    long long bad = 0;
    if (t.kind == 0) {  // NVFP4
      u32 amax = 0;
      for (float a : xv) { const u32 b = abs_bits_nonan(a); amax = b > amax ? b : amax; }
      r.cases++;
      r.check(amax == t.amax, "%s amax 0x%08x want 0x%08x", tag, amax, t.amax);
      const Nvfp4TensorScales ts = nvfp4_tensor_scales(bits_f32(amax));
      for (int rr = 0; rr < R; rr++)
        for (int cc = 0; cc < C; cc += 16) {
          const long long e0 = (long long)rr * C + cc;
          u32 bam = seg_amax(&xv[e0]);
          if (t.opt) {
            const int base = rr & ~15;
            for (int k = 0; k < 16; k++) { const u32 a = seg_amax(&xv[(size_t)(base + k) * C + cc]); bam = a > bam ? a : bam; }
          }
          const u32 byte = nvfp4_block_scale_byte(bits_f32(bam), ts.mult);
          const float enc = nvfp4_encode_scale(byte, ts.s_dec);
          if (byte != t.scales[e0 / 16]) bad++;
          for (int i = 0; i < 16; i++) {
            const float y = fmul_rn(xv[e0 + i], enc);
            const u32 code = t.sr ? e2m1_sr(y, rbyte(e0, i)) : e2m1_rn(y);
            const u32 want = (t.packed[(e0 + i) / 2] >> (4 * ((e0 + i) & 1))) & 15u;
            if (code != want || !same_f32_bits(fb(nvfp4_operand_value(code, byte)), t.operand[e0 + i])) bad++;
          }
        }
    } else {  // MXFP4
      for (int rr = 0; rr < R; rr++)
        for (int cc = 0; cc < C; cc += 32) {
          const long long e0 = (long long)rr * C + cc;
          u32 bam = 0;
          bool nan = false;
          for (int i = 0; i < 32; i++) { const u32 a = abs_bits_nonan(xv[e0 + i]); bam = a > bam ? a : bam; nan = nan || is_nan_f32(xv[e0 + i]); }
          const u32 byte = nan ? 0xffu : (t.opt ? e8m0_rceil_from_amax(bits_f32(bam)) : e8m0_floor_from_amax(bits_f32(bam)));
          const float enc = mx_encode_multiplier(byte), dec = mx_scale_value(byte);
          if (byte != t.scales[e0 / 32]) bad++;
          for (int i = 0; i < 32; i++) {
            const float y = fmul_rn(xv[e0 + i], enc);
            const u32 code = t.sr ? e2m1_sr(y, rbyte(e0 + (i & 16), i & 15)) : e2m1_rn(y);
            const u32 want = (t.packed[(e0 + i) / 2] >> (4 * ((e0 + i) & 1))) & 15u;
            if (code != want || !same_f32_bits(fb(fmul_rn(e2m1_decode(code), dec)), t.operand[e0 + i])) bad++;
          }
        }
    }
    r.cases++;
    r.check(bad == 0, "%s %lld mismatching scales/codes/operands", tag, bad);
  }
}

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s CASEDIR\n", argv[0]); return 2; }
  g_dir = argv[1];
  test_e2m1_rn("vec_e2m1_rn.bin");
  test_e2m1_rn("e2m1_rn.bin");
  test_e2m1_sr("vec_e2m1_sr.bin");
  test_e2m1_sr("e2m1_sr.bin");
  test_fp8();
  test_bf16();
  test_philox();
  test_nvfp4_scalars();
  test_scale_rules();
  test_nvfp4_blocks();
  test_mxfp4_blocks();
  test_fp8_blocks();
  test_rht_constants();
  test_rht("vec_rht16.bin");
  test_rht("rht.bin");
  test_tensors("vec_tensors.bin");
  test_tensors("tensors.bin");
  printf("TOTAL %lld cases, %lld mismatches\n", g_total_cases, g_total_bad);
  printf("%lld passed, %lld failed\n", g_total_cases - g_total_bad, g_total_bad);
  return g_total_bad ? 1 : 0;
}
