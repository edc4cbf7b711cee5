import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { compareVersions, cudaAvailable, CudaNotFoundError, findCuda, findCudaPiece, type SearchOptions } from "./libraries.ts";

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A fake file-system root holding the given files (empty files). */
function fakeRoot(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), "fp4lm-cuda-"));
  roots.push(root);
  for (const f of files) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), "");
  }
  return root;
}

const noLdconfig = () => "";
const opts = (root: string, extra: Partial<SearchOptions> = {}): SearchOptions => ({ root, env: {}, ldconfig: noLdconfig, ...extra });

test("the newest /usr/local/cuda-X.Y wins, in lib64 or targets/x86_64-linux/lib", () => {
  const root = fakeRoot([
    "usr/local/cuda-12.4/lib64/libnvrtc.so.12",
    "usr/local/cuda-12.4/lib64/libcublasLt.so.12",
    "usr/local/cuda-12.4/include/cuda_bf16.h",
    "usr/local/cuda-13.0/targets/x86_64-linux/lib/libnvrtc.so.13",
    "usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublasLt.so.13",
    "usr/local/cuda-13.0/targets/x86_64-linux/include/cuda_bf16.h",
    "usr/local/cuda-9.2/lib64/libnvrtc.so",
    "usr/lib/x86_64-linux-gnu/libcuda.so.1",
  ]);
  const found = findCuda(opts(root));
  assert.equal(found.nvrtc, `${root}/usr/local/cuda-13.0/targets/x86_64-linux/lib/libnvrtc.so.13`);
  assert.equal(found.cublasLt, `${root}/usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublasLt.so.13`);
  assert.equal(found.include, `${root}/usr/local/cuda-13.0/targets/x86_64-linux/include`);
  assert.equal(found.libcuda, `${root}/usr/lib/x86_64-linux-gnu/libcuda.so.1`);
  assert.ok(found.searched.includes(`${root}/usr/local/cuda/lib64/libnvrtc.so.13`), "looked at /usr/local/cuda first");
});

test("/usr/local/cuda comes before the versioned folders, and CUDA_HOME before both", () => {
  const root = fakeRoot(["usr/local/cuda-12.4/lib64/libnvrtc.so.12", "usr/local/cuda-13.0/lib64/libnvrtc.so.13", "elsewhere/cuda/lib64/libnvrtc.so.12"]);
  symlinkSync(`${root}/usr/local/cuda-12.4`, `${root}/usr/local/cuda`);
  assert.equal(findCudaPiece("nvrtc", opts(root)).path, `${root}/usr/local/cuda/lib64/libnvrtc.so.12`);
  const env = { CUDA_HOME: `${root}/elsewhere/cuda` };
  assert.equal(findCudaPiece("nvrtc", opts(root, { env })).path, `${root}/elsewhere/cuda/lib64/libnvrtc.so.12`);
});

test("within a folder .so.13 is preferred to .so.12 and .so", () => {
  const root = fakeRoot(["usr/local/cuda/lib64/libcublasLt.so", "usr/local/cuda/lib64/libcublasLt.so.12", "usr/local/cuda/lib64/libcublasLt.so.13"]);
  assert.equal(findCudaPiece("cublasLt", opts(root)).path, `${root}/usr/local/cuda/lib64/libcublasLt.so.13`);
});

test("environment overrides win and are not second-guessed", () => {
  const root = fakeRoot(["usr/local/cuda/lib64/libnvrtc.so.13", "custom/libnvrtc.so.12", "custom-dir/libcublasLt.so.12", "inc/cuda_bf16.h", "usr/local/cuda/include/cuda_bf16.h"]);
  const env = { FP4LM_NVRTC: `${root}/custom/libnvrtc.so.12`, FP4LM_CUBLASLT: `${root}/custom-dir`, FP4LM_CUDA_INCLUDE: `${root}/inc`, FP4LM_LIBCUDA: `${root}/custom/libnvrtc.so.12` };
  const o = opts(root, { env });
  assert.equal(findCudaPiece("nvrtc", o).path, `${root}/custom/libnvrtc.so.12`);
  assert.equal(findCudaPiece("cublasLt", o).path, `${root}/custom-dir/libcublasLt.so.12`);
  assert.equal(findCudaPiece("include", o).path, `${root}/inc`);
  // an override that points nowhere is an error naming it, not a silent fallback
  const bad = { FP4LM_NVRTC: `${root}/missing/libnvrtc.so.13` };
  assert.throws(
    () => findCudaPiece("nvrtc", opts(root, { env: bad })),
    (e: unknown) => e instanceof CudaNotFoundError && e.message.includes("FP4LM_NVRTC") && e.message.includes(`${root}/missing/libnvrtc.so.13`) && e.message.includes("does not exist"),
  );
});

test("Python wheels are searched after the toolkits, newest Python first", () => {
  const root = fakeRoot([
    "opt/torch/.venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcublasLt.so.13",
    "opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13",
    "opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/include/cuda_bf16.h",
    "usr/local/lib/python3.10/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
  ]);
  const o = opts(root);
  assert.equal(findCudaPiece("cublasLt", o).path, `${root}/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13`);
  assert.equal(findCudaPiece("include", o).path, `${root}/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/include`);
  assert.equal(findCudaPiece("nvrtc", o).path, `${root}/usr/local/lib/python3.10/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12`);
});

test("the loader cache is read, x86-64 entries only, never a stub", () => {
  const root = fakeRoot(["real/libcuda.so.1"]);
  const ldconfig = () =>
    [
      "3 libs found in cache `/etc/ld.so.cache'",
      "\tlibcuda.so.1 (libc6) => /lib32/libcuda.so.1",
      `\tlibcuda.so.1 (libc6,x86-64) => ${root}/cuda/lib64/stubs/libcuda.so.1`,
      `\tlibcuda.so.1 (libc6,x86-64) => ${root}/real/libcuda.so.1`,
      `\tlibnvrtc.so.13 (libc6,x86-64) => ${root}/real/libnvrtc.so.13`,
    ].join("\n");
  assert.equal(findCudaPiece("libcuda", opts(root, { ldconfig })).path, `${root}/real/libcuda.so.1`);
  assert.equal(findCudaPiece("nvrtc", opts(root, { ldconfig })).path, `${root}/real/libnvrtc.so.13`);
  // LD_LIBRARY_PATH is searched before the cache
  const root2 = fakeRoot(["ld/libcuda.so.1"]);
  assert.equal(findCudaPiece("libcuda", opts(root2, { ldconfig, env: { LD_LIBRARY_PATH: `/nonexistent:${root2}/ld` } })).path, `${root2}/ld/libcuda.so.1`);
});

test("nothing found: the error lists every place searched and the variable to set", () => {
  const root = fakeRoot(["usr/local/cuda-12.1/lib64/libcudart.so.12"]);
  const env = { CUDA_HOME: `${root}/home-cuda` };
  assert.throws(
    () => findCuda(opts(root, { env, ldconfig: () => "" })),
    (e: unknown) => {
      assert.ok(e instanceof CudaNotFoundError);
      assert.equal(e.piece, "libcuda");
      assert.ok(e.message.includes("FP4LM_LIBCUDA"));
      assert.ok(e.message.includes("ldconfig -p"));
      assert.ok(e.message.includes(`${root}/usr/local/nvidia/lib64/libcuda.so.1`));
      return true;
    },
  );
  const err = (() => {
    try {
      findCudaPiece("nvrtc", opts(root, { env }));
    } catch (e) {
      return e as CudaNotFoundError;
    }
    throw new Error("expected a CudaNotFoundError");
  })();
  for (const place of [
    `${root}/home-cuda/lib64/libnvrtc.so.13`,
    `${root}/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so`,
    `${root}/usr/local/cuda-12.1/lib64/libnvrtc.so.12`,
    "ldconfig -p",
    `${root}/usr/lib64/libnvrtc.so.13`,
  ]) {
    assert.ok(err.searched.includes(place), `searched ${place}`);
    assert.ok(err.message.includes(place), `message names ${place}`);
  }
  assert.match(err.message, /FP4LM_NVRTC/);
  assert.throws(() => findCudaPiece("include", opts(root, { env })), (e: unknown) => e instanceof CudaNotFoundError && e.message.includes(`${root}/usr/local/cuda-12.1/include`) && e.message.includes("FP4LM_CUDA_INCLUDE"));
});

test("versions compare numerically, 13.0 above 13 above 12.10 above 12.9", () => {
  const sorted = [[12, 9], [13], [12, 10], [13, 0], [9, 2]].sort((a, b) => compareVersions(b, a));
  assert.deepEqual(sorted, [[13, 0], [13], [12, 10], [12, 9], [9, 2]]);
});

test("cudaAvailable never throws and gives a reason when there is no usable GPU", () => {
  const r = cudaAvailable();
  let driverFound = true;
  try {
    findCudaPiece("libcuda");
  } catch {
    driverFound = false;
  }
  if (!driverFound) assert.equal(r.ok, false, "no libcuda on this machine, so no GPU");
  if (!r.ok) {
    assert.equal(typeof r.reason, "string");
    assert.ok(r.reason.length > 10, `reason: ${r.reason}`);
  }
  assert.deepEqual(cudaAvailable(), r, "cached");
});
