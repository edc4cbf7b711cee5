/**
 * The case files of scripts/gen-common-cuh-cases.ts as the host kernel tests read them
 * (common-host-test.cpp, quantize-fast-host-test.cpp, quantize-fp8-fast-host-test.cpp): a header
 * (magic "FUCH", version 1, words per case or 0, case count), then u32 words; `arr` and `bytes` read
 * length-prefixed runs; `read_tensor` one tensor case (input, SR bytes, and the TS oracle's amax,
 * codes, scales and operand). Include after common.cuh with its names in scope; `g_dir` is the
 * folder `load` reads from.
 */
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static std::string g_dir;

struct File {
  std::vector<u32> w;
  u32 per = 0, count = 0;
  size_t pos = 4;
  u32 next() { return w.at(pos++); }
  std::vector<u32> arr() { u32 n = next(); std::vector<u32> a(w.begin() + pos, w.begin() + pos + n); pos += n; return a; }
  std::vector<u8> bytes() {
    u32 n = next();
    std::vector<u8> b(n);
    for (u32 i = 0; i < n; i++) b[i] = (u8)(w.at(pos + i / 4) >> (8 * (i % 4)));
    pos += (n + 3) / 4;
    return b;
  }
};

static File load(const char* name) {
  File f;
  std::string path = g_dir + "/" + name;
  FILE* fp = fopen(path.c_str(), "rb");
  if (!fp) { fprintf(stderr, "cannot open %s\n", path.c_str()); exit(2); }
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  f.w.resize(n / 4);
  if (fread(f.w.data(), 4, f.w.size(), fp) != f.w.size()) { fprintf(stderr, "short read %s\n", path.c_str()); exit(2); }
  fclose(fp);
  if (f.w.size() < 4 || f.w[0] != 0x48435546u || f.w[1] != 1) { fprintf(stderr, "%s: bad header\n", name); exit(2); }
  f.per = f.w[2];
  f.count = f.w[3];
  if (f.per && f.w.size() != 4 + (size_t)f.per * f.count) { fprintf(stderr, "%s: size mismatch\n", name); exit(2); }
  return f;
}

struct Tensor {
  u32 kind, rows, cols, transpose, opt, rht, m[4], sr, seed_lo, seed_hi, tensor_id, e5m2, pow2, bf16_exact;
  int first_bad;
  std::vector<float> x;
  std::vector<u8> r8;
  u32 amax;
  std::vector<u8> packed, scales;
  std::vector<u32> scale_inv, operand;
};

static Tensor read_tensor(File& f) {
  Tensor t;
  t.kind = f.next(); t.rows = f.next(); t.cols = f.next(); t.transpose = f.next(); t.opt = f.next(); t.rht = f.next();
  for (auto& v : t.m) v = f.next();
  t.sr = f.next(); t.seed_lo = f.next(); t.seed_hi = f.next(); t.tensor_id = f.next(); t.e5m2 = f.next(); t.pow2 = f.next();
  t.bf16_exact = f.next();
  t.first_bad = (int)f.next();
  for (u32 b : f.arr()) t.x.push_back(bits_f32(b));
  t.r8 = f.bytes();
  t.amax = f.next();
  t.packed = f.bytes();
  t.scales = f.bytes();
  t.scale_inv = f.arr();
  t.operand = f.arr();
  return t;
}
