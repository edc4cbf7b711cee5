import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archFor, buildOptions, cacheDir, cacheKey, kernelHeaders, kernelsDir, resolveIncludes } from "./nvrtc.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "fp4lm-nvrtc-"));
  dirs.push(d);
  return d;
}

test("architecture: 9.0 takes the arch-specific sm_90a, others their plain target", () => {
  assert.equal(archFor({ major: 9, minor: 0 }), "sm_90a");
  assert.equal(archFor({ major: 10, minor: 0 }), "sm_100a");
  assert.equal(archFor({ major: 8, minor: 9 }), "sm_89");
  assert.equal(archFor({ major: 8, minor: 0 }), "sm_80");
  assert.equal(archFor({ major: 12, minor: 0 }), "sm_120");
});

test("options: architecture, C++17, kernels/ then caller then CUDA includes, fmad, defines", () => {
  const o = buildOptions({ includeDirs: ["/extra"], fmad: false, defines: { BLOCK: 256, FP4LM_BF16: true, NAME: "x" }, extra: ["-G"] }, "sm_90a", "/cuda/include");
  assert.deepEqual(o, ["--gpu-architecture=sm_90a", "-std=c++17", `-I${kernelsDir()}`, "-I/extra", "-I/cuda/include", "--fmad=false", "-DBLOCK=256", "-DFP4LM_BF16", "-DNAME=x", "-G"]);
  assert.ok(!buildOptions({}, "sm_80", "/i").includes("--fmad=false"), "FMA contraction stays on unless asked");
  assert.ok(kernelsDir().endsWith("/src/backends/cuda/kernels"));
});

test("includes resolve recursively, relative to the including file first, each once", () => {
  const d = tempDir();
  mkdirSync(join(d, "sub"));
  writeFileSync(join(d, "a.cuh"), '#pragma once\n#include "sub/b.cuh"\n#include <cuda_bf16.h>\n');
  writeFileSync(join(d, "sub", "b.cuh"), '  #  include "c.cuh"\n');
  writeFileSync(join(d, "sub", "c.cuh"), "// c, next to b\n");
  writeFileSync(join(d, "c.cuh"), "// the other c, not the one b means\n");
  const got = resolveIncludes('#include "a.cuh"\n#include "a.cuh"\n__global__ void k() {}\n', [d]);
  assert.deepEqual(got.map((h) => h.path), [join(d, "a.cuh"), join(d, "sub", "b.cuh"), join(d, "sub", "c.cuh")]);
  assert.equal(got[2].text, "// c, next to b\n");
});

test("the cache key changes with every part and is stable otherwise", () => {
  const parts = ["src", "hdr", "--gpu-architecture=sm_90a", "sm_90a", "nvrtc 13.0"];
  const k = cacheKey(parts);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(cacheKey([...parts]), k);
  for (let i = 0; i < parts.length; i++) {
    const changed = parts.slice();
    changed[i] += " ";
    assert.notEqual(cacheKey(changed), k, `part ${i}`);
  }
  assert.notEqual(cacheKey(["ab", "c"]), cacheKey(["a", "bc"]), "parts are delimited");
});

test("kernel headers: every .cuh of the folder, sorted; cache folder from FP4LM_CACHE", () => {
  const d = tempDir();
  writeFileSync(join(d, "z.cuh"), "z");
  writeFileSync(join(d, "a.cuh"), "a");
  writeFileSync(join(d, "k.cu"), "not a header");
  assert.deepEqual(kernelHeaders(d), [{ path: join(d, "a.cuh"), text: "a" }, { path: join(d, "z.cuh"), text: "z" }]);
  assert.deepEqual(kernelHeaders(join(d, "missing")), []);
  assert.equal(cacheDir({ FP4LM_CACHE: "/c" }), "/c/cubin");
  assert.match(cacheDir({}), /\.cache\/fp4lm\/cubin$/);
});
