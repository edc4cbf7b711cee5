/**
 * Host run of the SSD scan kernels without a GPU: mamba2.cu compiled unchanged with g++ under the
 * SIMT core (simt-host-core.h: every CUDA thread of a CTA is a host thread, __syncthreads a barrier,
 * CTAs one after another; FP4LM_SIMT_SHIM gives the kernels' dynamic shared memory static storage).
 * Checks: ssd_forward_staged = ssd_forward and ssd_backward_staged = ssd_backward bit for bit (y, the
 * chunk states, dx, ddtRaw, the per-head dB/dC parts and the per-(batch, head) parameter partials)
 * on shapes with several chunks, a short last chunk, P and N like Nemotron-H's and small ones. What
 * it cannot check: timing, and the GPU compiler's FMA contraction (the GPU test compares the bits there).
 *
 * Build and run: scripts/test-mamba2-host.sh
 */
#define FP4LM_SIMT_SHIM 1
#include "simt-host-core.h"
#include <math.h>
#include <cmath>
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
#include "mamba2.cu"

#include <cstdio>
#include <cstring>

static unsigned g_seed = 1;
static float rnd(float scale) {  // uniform in [−scale, scale)
  g_seed = g_seed * 1664525u + 1013904223u;
  return scale * ((float)(g_seed >> 8) / 8388608.0f - 1.0f);
}
static std::vector<float> randv(size_t n, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = rnd(scale);
  return v;
}
template <typename F>
static int same(const char* what, const char* tag, const F* a, const F* b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof(F)) != 0) {
      printf("FAIL %s %s: first difference at %zu: %.17g vs %.17g\n", tag, what, i, (double)a[i], (double)b[i]);
      return 1;
    }
  return 0;
}

int main() {
  struct Dims { int B, T, H, P, G, N, L; };
  const Dims dims[] = {{1, 130, 2, 64, 1, 128, 64}, {1, 100, 4, 24, 2, 32, 64}, {2, 37, 3, 8, 3, 16, 16}};
  int fails = 0;
  for (const Dims& d : dims) {
    char tag[96];
    snprintf(tag, sizeof tag, "B%d T%d H%d P%d G%d N%d L%d", d.B, d.T, d.H, d.P, d.G, d.N, d.L);
    const int nC = (d.T + d.L - 1) / d.L;
    const size_t nx = (size_t)d.B * d.T * d.H * d.P, ndt = (size_t)d.B * d.T * d.H, nbc = (size_t)d.B * d.T * d.G * d.N;
    const size_t nst = (size_t)d.B * nC * d.H * d.P * d.N, nbh = (size_t)d.B * d.T * d.H * d.N, nS = (size_t)d.B * d.H * d.P * d.N;
    auto x = randv(nx, 1), dt = randv(ndt, 1), Bm = randv(nbc, 0.7f), Cm = randv(nbc, 0.7f), dy = randv(nx, 1), D = randv(d.H, 1);
    std::vector<float> aLog(d.H), dtBias(d.H);
    for (int h = 0; h < d.H; h++) { aLog[h] = std::log(1.0f + 15.0f * h / d.H); dtBias[h] = -4.0f + 3.0f * h / d.H; }
    struct Out { std::vector<float> y, st, dx, ddt, dBh, dCh, dH; std::vector<double> hpart; };
    auto run = [&](bool staged) {
      Out o{std::vector<float>(nx), std::vector<float>(nst), std::vector<float>(nx), std::vector<float>(ndt), std::vector<float>(nbh), std::vector<float>(nbh),
            std::vector<float>(nS), std::vector<double>((size_t)d.B * d.H * 3)};
      launch(dim3{(unsigned)d.H, (unsigned)d.B, 1}, 256, [&] {
        if (staged) ssd_forward_staged(o.y.data(), o.st.data(), x.data(), dt.data(), aLog.data(), dtBias.data(), D.data(), Bm.data(), Cm.data(), d.B, d.T, d.H, d.P, d.G, d.N, d.L);
        else ssd_forward(o.y.data(), o.st.data(), x.data(), dt.data(), aLog.data(), dtBias.data(), D.data(), Bm.data(), Cm.data(), d.B, d.T, d.H, d.P, d.G, d.N, d.L);
      });
      launch(dim3{(unsigned)d.H, (unsigned)d.B, 1}, 256, [&] {
        if (staged)
          ssd_backward_staged(o.dx.data(), o.ddt.data(), o.dBh.data(), o.dCh.data(), o.hpart.data(), o.dH.data(), dy.data(), x.data(), dt.data(), aLog.data(), dtBias.data(),
                              D.data(), Bm.data(), Cm.data(), o.st.data(), d.B, d.T, d.H, d.P, d.G, d.N, d.L);
        else
          ssd_backward(o.dx.data(), o.ddt.data(), o.dBh.data(), o.dCh.data(), o.hpart.data(), o.dH.data(), dy.data(), x.data(), dt.data(), aLog.data(), dtBias.data(),
                       D.data(), Bm.data(), Cm.data(), o.st.data(), d.B, d.T, d.H, d.P, d.G, d.N, d.L);
      });
      return o;
    };
    const Out a = run(true), b = run(false);
    int f = same("y", tag, a.y.data(), b.y.data(), nx) + same("chunk states", tag, a.st.data(), b.st.data(), nst) + same("dx", tag, a.dx.data(), b.dx.data(), nx) +
            same("ddtRaw", tag, a.ddt.data(), b.ddt.data(), ndt) + same("dB per head", tag, a.dBh.data(), b.dBh.data(), nbh) +
            same("dC per head", tag, a.dCh.data(), b.dCh.data(), nbh) + same("parameter partials", tag, a.hpart.data(), b.hpart.data(), a.hpart.size());
    double ymax = 0;
    for (float v : a.y) ymax = std::fmax(ymax, std::fabs(v));
    if (!(ymax > 0) || !std::isfinite(ymax)) { printf("FAIL %s: y max |y| %g\n", tag, ymax); f++; }
    printf("%s %s: staged = plain bit for bit (y, states, dx, ddtRaw, dB/dC parts, partials); max |y| %.3g\n", f ? "FAIL" : "ok  ", tag, ymax);
    fails += f;
  }
  printf("%d failure(s)\n", fails);
  return fails ? 1 : 0;
}
