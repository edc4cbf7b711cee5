/**
 * GPU smoke test of the CUDA backend's foundations, run by hand on a CUDA machine:
 *     npx tsx src/backends/cuda/smoke.gpu.ts
 * Exercises, for real: device info; allocation and copies (sync, async, device to device, memset);
 * NVRTC compile + launch of saxpy (bit-exact against the CPU with --fmad=false); the cubin cache
 * (second compile is a hit); cuBLASLt row-major A·Bᵀ in BF16 (Frobenius relative error against a
 * float64 CPU reference < 1e-2), in FP8 E4M3 with per-tensor scales (< 6e-2 against the unquantised
 * product, < 1e-2 against the dequantised one) and block scaled (1x128 · 128x128, 128x128 · 1x128,
 * 1x128 · 1x128, on a shape that pads the scale arrays too) when cuBLASLt offers it (same bounds); event timing of an 8192³ BF16 GEMM (TFLOP/s) and a 2 GiB
 * device-to-device copy (GB/s, read + write counted). Prints a table; exits 1 on any failure.
 * Not a unit test (needs a GPU) and not a benchmark (one configuration, few repetitions).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { e4m3Decode, e4m3Encode, E4M3_MAX } from "../../formats/e4m3.ts";
import { roundBf16 } from "../../formats/bf16.ts";
import { philoxUniform } from "../../quant/philox.ts";
import { deviceAllocator } from "./allocator.ts";
import {
  blockScaleLayout,
  blockScaleModesAvailable,
  CublasLt,
  cublasLtVersion,
  CUDA_R_16BF,
  CUDA_R_8F_E4M3,
  gemmRowMajorTN,
  type BlockScaleKind,
} from "./cublaslt.ts";
import { DeviceBuffer } from "./device-tensor.ts";
import { CudaError, getDriver, type CuStream } from "./driver.ts";
import { cudaAvailable, cudaIncludeDir, findCudaPiece } from "./libraries.ts";
import { compileCached, currentArch, nvrtcVersion } from "./nvrtc.ts";

type Row = { step: string; status: "ok" | "FAIL" | "skip"; detail: string };
const rows: Row[] = [];

function step(name: string, fn: () => string | { skip: string }): void {
  const t0 = performance.now();
  try {
    const r = fn();
    const ms = `${(performance.now() - t0).toFixed(0)} ms`;
    if (typeof r === "string") rows.push({ step: name, status: "ok", detail: `${r} [${ms}]` });
    else rows.push({ step: name, status: "skip", detail: r.skip });
  } catch (e) {
    rows.push({ step: name, status: "FAIL", detail: (e as Error).stack ?? String(e) });
  }
  const last = rows[rows.length - 1];
  console.log(`${last.status.padEnd(4)} ${name}: ${last.detail}`);
}

function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Uniform values in [-1, 1) from Philox (seeded, different per tensor id). */
function uniforms(tensorId: number, n: number): Float32Array {
  const u = philoxUniform(20260301, tensorId, n);
  return Float32Array.from(u, (v) => 2 * v - 1);
}

/** Row-major (M,K)·(N,K)ᵀ in float64. */
function refABt(M: number, N: number, K: number, A: ArrayLike<number>, B: ArrayLike<number>): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let p = 0; p < K; p++) s += A[i * K + p] * B[j * K + p];
      C[i * N + j] = s;
    }
  }
  return C;
}

/** ‖got − want‖_F / ‖want‖_F */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const SAXPY = `
#include <cuda_bf16.h>
extern "C" __global__ void saxpy(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
extern "C" __global__ void fill_bf16(__nv_bfloat16* y, unsigned long long n, unsigned int seed) {
  unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned int h = (unsigned int)(i * 2654435761ull) ^ seed;
    h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
    y[i] = __float2bfloat16(((h & 0xffffu) / 65536.0f - 0.5f) * 0.125f);
  }
}`;

function main(): void {
  const avail = cudaAvailable();
  if (!avail.ok) {
    console.error(`no usable GPU: ${avail.reason}`);
    process.exit(1);
  }
  const d = getDriver();
  const cacheRoot = mkdtempSync(join(tmpdir(), "fp4lm-smoke-cache-"));
  process.env.FP4LM_CACHE = cacheRoot;
  let stream: CuStream | undefined;
  let lt: CublasLt | undefined;
  const alloc = deviceAllocator();
  const workspaceBytes = 32 << 20;
  let workspace = 0n;
  let saxpyFn: ReturnType<typeof d.getFunction> | undefined;
  let fillFn: ReturnType<typeof d.getFunction> | undefined;

  step("device", () => {
    const info = d.useDevice(0);
    stream = d.streamCreate();
    const mem = d.memInfo();
    const nv = nvrtcVersion();
    return (
      `${info.name}, cc ${info.major}.${info.minor} (${currentArch()}), ${info.multiprocessors} SMs, ${(info.totalBytes / 2 ** 30).toFixed(1)} GiB ` +
      `(${(mem.free / 2 ** 30).toFixed(1)} free), smem opt-in ${info.maxSharedPerBlockOptin} B, driver ${info.driverVersion}, NVRTC ${nv.major}.${nv.minor}, ` +
      `cuBLASLt ${cublasLtVersion()}; ${d.libraryPath}, ${findCudaPiece("nvrtc").path}, ${findCudaPiece("cublasLt").path}, include ${cudaIncludeDir()}`
    );
  });
  if (!stream) return finish(cacheRoot);

  step("alloc + copies", () => {
    const n = 1 << 20;
    const host = uniforms(1, n);
    const x = DeviceBuffer.fromF32(host);
    const y = DeviceBuffer.alloc("f32", n);
    d.memcpyDtoD(y.ptr, x.ptr, x.bytes);
    const back = y.toF32();
    for (let i = 0; i < n; i++) assert(Object.is(back[i], host[i]), `HtoD→DtoD→DtoH element ${i}: ${back[i]} vs ${host[i]}`);
    d.memsetD32(y.ptr, 0x3fc00000, n, stream!); // 1.5f
    const z = DeviceBuffer.alloc("f32", n);
    d.memcpyDtoDAsync(z.ptr, y.ptr, z.bytes, stream!);
    const out = new Float32Array(n);
    d.memcpyDtoHAsync(out, z.ptr, z.bytes, stream!);
    d.streamSynchronize(stream!);
    for (let i = 0; i < n; i++) assert(out[i] === 1.5, `memsetD32 + async copies element ${i}: ${out[i]}`);
    d.memcpyHtoDAsync(z.ptr, host, undefined, stream!);
    d.streamSynchronize(stream!);
    assert(z.toF32()[n - 1] === host[n - 1], "memcpyHtoDAsync");
    const u = DeviceBuffer.alloc("u8", 1000);
    d.memsetD8(u.ptr, 0xa7, 1000);
    assert(u.toU8().every((v) => v === 0xa7), "memsetD8");
    const bf = DeviceBuffer.fromF32AsBf16(host.subarray(0, 4096));
    const bfBack = bf.toF32();
    for (let i = 0; i < 4096; i++) assert(bfBack[i] === roundBf16(host[i]), `bf16 round trip element ${i}`);
    [x, y, z, u, bf].forEach((b) => b.free());
    workspace = alloc.alloc(workspaceBytes);
    return `${n} floats round-tripped bit-exact (sync, async, DtoD, memset D8/D32, bf16 upload); allocator ${JSON.stringify(alloc.stats())}`;
  });

  let firstCubin: Buffer | undefined;
  step("nvrtc compile", () => {
    const r = compileCached(SAXPY, "smoke_saxpy", { fmad: false });
    assert(!r.cached, `expected a cache miss in the fresh cache ${cacheRoot}`);
    firstCubin = r.cubin;
    const mod = d.moduleLoad(r.cubin);
    saxpyFn = d.getFunction(mod, "saxpy");
    fillFn = d.getFunction(mod, "fill_bf16");
    return `saxpy.cu → ${r.cubin.length}-byte cubin in ${r.ms.toFixed(1)} ms`;
  });

  step("saxpy launch", () => {
    assert(saxpyFn !== undefined, "no saxpy function (compile failed)");
    const n = (1 << 20) + 3;
    const hx = uniforms(2, n);
    const hy = uniforms(3, n);
    const a = 2.5;
    const x = DeviceBuffer.fromF32(hx);
    const y = DeviceBuffer.fromF32(hy);
    d.launch(saxpyFn, [Math.ceil(n / 256), 1, 1], [256, 1, 1], 0, stream!, [
      { kind: "f32", value: a },
      { kind: "ptr", value: x.ptr },
      { kind: "ptr", value: y.ptr },
      { kind: "i32", value: n },
    ]);
    d.streamSynchronize(stream!);
    const got = y.toF32();
    let bad = 0;
    for (let i = 0; i < n; i++) if (got[i] !== Math.fround(Math.fround(a * hx[i]) + hy[i])) bad++;
    assert(bad === 0, `${bad} of ${n} elements differ from fl(fl(a·x) + y)`);
    const ev0 = d.eventCreate();
    const ev1 = d.eventCreate();
    const reps = 200;
    d.eventRecord(ev0, stream!);
    for (let i = 0; i < reps; i++) {
      d.launch(saxpyFn, [Math.ceil(n / 256), 1, 1], [256, 1, 1], 0, stream!, [
        { kind: "f32", value: a },
        { kind: "ptr", value: x.ptr },
        { kind: "ptr", value: y.ptr },
        { kind: "i32", value: n },
      ]);
    }
    d.eventRecord(ev1, stream!);
    d.eventSynchronize(ev1);
    const us = (d.eventElapsedMs(ev0, ev1) * 1000) / reps;
    d.eventDestroy(ev0);
    d.eventDestroy(ev1);
    x.free();
    y.free();
    return `${n} elements bit-exact; ${us.toFixed(2)} µs per launch (GPU time, ${reps} back to back)`;
  });

  step("cubin cache", () => {
    const r = compileCached(SAXPY, "smoke_saxpy", { fmad: false });
    assert(r.cached, "second compile of the same source was not a cache hit");
    assert(firstCubin !== undefined && r.cubin.equals(firstCubin), "cached cubin differs from the compiled one");
    const other = compileCached(SAXPY, "smoke_saxpy", { fmad: true });
    assert(!other.cached, "different options must not hit the same cache entry");
    return `hit in ${r.ms.toFixed(2)} ms (${r.cubin.length} bytes); --fmad=true is a separate entry`;
  });

  step("cublasLt create", () => {
    lt = CublasLt.create();
    const b = blockScaleModesAvailable();
    return `handle ok; block-scale modes: ${b.available ? "available" : "unavailable"} (${b.reason})`;
  });

  const [M, N, K] = [256, 384, 512];
  step("bf16 gemm 256x384x512", () => {
    assert(lt !== undefined, "no cuBLASLt handle");
    const hA = Float32Array.from(uniforms(4, M * K), roundBf16);
    const hB = Float32Array.from(uniforms(5, N * K), roundBf16);
    const A = DeviceBuffer.fromF32AsBf16(hA);
    const B = DeviceBuffer.fromF32AsBf16(hB);
    const D = DeviceBuffer.alloc("bf16", M * N);
    const args = { M, N, K, A: A.ptr, B: B.ptr, D: D.ptr, typeA: CUDA_R_16BF, typeD: CUDA_R_16BF, workspace, workspaceBytes, stream: stream! };
    gemmRowMajorTN(lt, args);
    gemmRowMajorTN(lt, args);
    d.streamSynchronize(stream!);
    const err = relErr(D.toF32(), refABt(M, N, K, hA, hB));
    const plans = lt.planCount;
    [A, B, D].forEach((b) => b.free());
    assert(plans === 1, `plan cache holds ${plans} plans after two identical calls`);
    assert(err < 1e-2, `relative error ${err.toExponential(3)} ≥ 1e-2`);
    return `relative error ${err.toExponential(3)} (< 1e-2), 1 cached plan`;
  });

  step("fp8 e4m3 per-tensor gemm", () => {
    assert(lt !== undefined, "no cuBLASLt handle");
    const hA = uniforms(6, M * K);
    const hB = uniforms(7, N * K);
    const q = (x: Float32Array) => {
      let amax = 0;
      for (const v of x) amax = Math.max(amax, Math.abs(v));
      const s = amax / E4M3_MAX;
      const codes = Uint8Array.from(x, (v) => e4m3Encode(v / s));
      return { s, codes, deq: Float64Array.from(codes, (c) => e4m3Decode(c) * s) };
    };
    const qa = q(hA);
    const qb = q(hB);
    const A = DeviceBuffer.fromU8(qa.codes);
    const B = DeviceBuffer.fromU8(qb.codes);
    const sA = DeviceBuffer.fromF32(new Float32Array([qa.s]));
    const sB = DeviceBuffer.fromF32(new Float32Array([qb.s]));
    const D = DeviceBuffer.alloc("bf16", M * N);
    gemmRowMajorTN(lt, { M, N, K, A: A.ptr, B: B.ptr, D: D.ptr, typeA: CUDA_R_8F_E4M3, typeD: CUDA_R_16BF, aScale: sA.ptr, bScale: sB.ptr, workspace, workspaceBytes, stream: stream! });
    d.streamSynchronize(stream!);
    const got = D.toF32();
    const errTrue = relErr(got, refABt(M, N, K, hA, hB));
    const errDeq = relErr(got, refABt(M, N, K, qa.deq, qb.deq));
    [A, B, sA, sB, D].forEach((b) => b.free());
    assert(errDeq < 1e-2, `error against the dequantised product ${errDeq.toExponential(3)} ≥ 1e-2 (scales mishandled?)`);
    assert(errTrue < 6e-2, `error against the unquantised product ${errTrue.toExponential(3)} ≥ 6e-2`);
    return `relative error ${errTrue.toExponential(3)} vs unquantised (< 6e-2), ${errDeq.toExponential(3)} vs dequantised (< 1e-2)`;
  });

  // the second shape has partial row blocks and pads the 128x128 scale array (3 K-blocks → ld 4)
  for (const [bm, bn, bk] of [[M, N, K], [132, 264, 384]]) {
    for (const [ka, kb] of [["1x128", "128x128"], ["128x128", "1x128"], ["1x128", "1x128"]] as [BlockScaleKind, BlockScaleKind][]) {
      step(`fp8 block-scaled ${bm}x${bn}x${bk} A ${ka}, B ${kb}`, () => {
        const avail = blockScaleModesAvailable();
        if (!avail.available) return { skip: avail.reason };
        assert(lt !== undefined, "no cuBLASLt handle");
        return blockScaledGemm(lt, ka, kb, bm, bn, bk, workspace, workspaceBytes, stream!);
      });
    }
  }

  step("fp8 block-scaled 128x128 · 128x128", () => {
    // TransformerEngine documents this pairing as unsupported: either cuBLASLt refuses it with our
    // "fall back explicitly" error, or it runs and must then be right
    const avail = blockScaleModesAvailable();
    if (!avail.available) return { skip: avail.reason };
    assert(lt !== undefined, "no cuBLASLt handle");
    try {
      return `runs: ${blockScaledGemm(lt, "128x128", "128x128", M, N, K, workspace, workspaceBytes, stream!)}`;
    } catch (e) {
      if (e instanceof CudaError && /fall back/.test(e.message)) return `refused as expected: ${e.message.slice(0, 160)}…`;
      throw e;
    }
  });

  step("bf16 gemm 8192³ timing", () => {
    assert(lt !== undefined && fillFn !== undefined, "needs cuBLASLt and the fill kernel");
    const S = 8192;
    const bytes = S * S * 2;
    const [A, B, D] = [alloc.alloc(bytes), alloc.alloc(bytes), alloc.alloc(bytes)];
    [A, B].forEach((p, i) =>
      d.launch(fillFn!, [(S * S) / 256, 1, 1], [256, 1, 1], 0, stream!, [
        { kind: "ptr", value: p },
        { kind: "u64", value: S * S },
        { kind: "u32", value: 0x9e3779b9 + i },
      ]),
    );
    const args = { M: S, N: S, K: S, A, B, D, typeA: CUDA_R_16BF, typeD: CUDA_R_16BF, workspace, workspaceBytes, stream: stream! };
    for (let i = 0; i < 3; i++) gemmRowMajorTN(lt, args);
    const ev0 = d.eventCreate();
    const ev1 = d.eventCreate();
    const reps = 10;
    d.eventRecord(ev0, stream!);
    for (let i = 0; i < reps; i++) gemmRowMajorTN(lt, args);
    d.eventRecord(ev1, stream!);
    d.eventSynchronize(ev1);
    const ms = d.eventElapsedMs(ev0, ev1) / reps;
    const probe = new Uint16Array(4);
    d.memcpyDtoH(probe, D);
    [A, B, D].forEach((p) => alloc.free(p));
    d.eventDestroy(ev0);
    d.eventDestroy(ev1);
    assert(probe.some((v) => v !== 0), "the GEMM wrote zeros");
    return `${ms.toFixed(3)} ms per GEMM, ${((2 * S ** 3) / (ms / 1e3) / 1e12).toFixed(1)} TFLOP/s`;
  });

  step("dtod copy 2 GiB", () => {
    const bytes = 2 ** 31;
    const src = alloc.alloc(bytes);
    const dst = alloc.alloc(bytes);
    d.memsetD32(src, 0x12345678, bytes / 4, stream!);
    d.memcpyDtoDAsync(dst, src, bytes, stream!);
    const ev0 = d.eventCreate();
    const ev1 = d.eventCreate();
    const reps = 5;
    d.eventRecord(ev0, stream!);
    for (let i = 0; i < reps; i++) d.memcpyDtoDAsync(dst, src, bytes, stream!);
    d.eventRecord(ev1, stream!);
    d.eventSynchronize(ev1);
    const ms = d.eventElapsedMs(ev0, ev1) / reps;
    const tail = new Uint32Array(4);
    d.memcpyDtoH(tail, dst + BigInt(bytes - 16));
    alloc.free(src);
    alloc.free(dst);
    d.eventDestroy(ev0);
    d.eventDestroy(ev1);
    assert(tail.every((v) => v === 0x12345678), "copied data wrong at the end of the buffer");
    return `${ms.toFixed(3)} ms per copy, ${((2 * bytes) / (ms / 1e3) / 1e9).toFixed(0)} GB/s (read + write)`;
  });

  step("allocator", () => {
    alloc.free(workspace);
    const before = alloc.stats();
    const p = alloc.alloc(workspaceBytes - 1000);
    const reused = alloc.stats().driverAllocs === before.driverAllocs;
    alloc.free(p);
    alloc.trim();
    const after = alloc.stats();
    assert(reused, "a freed block of the same class was not reused");
    assert(after.bytesInUse === 0 && after.bytesCached === 0, `after trim: ${JSON.stringify(after)}`);
    return `reuse ok, trimmed; ${JSON.stringify(after)}`;
  });

  lt?.destroy();
  if (stream) d.streamDestroy(stream);
  finish(cacheRoot);
}

/**
 * FP8 with block scales: A (M,K) and B (N,K) get block magnitudes spread over 2^±4 so that a scale
 * read from the wrong slot shows as a large error. On a mismatch the other plausible scale layouts
 * are tried on the CPU and the closest is named, to say what cuBLASLt actually read.
 */
function blockScaledGemm(lt: CublasLt, ka: BlockScaleKind, kb: BlockScaleKind, M: number, N: number, K: number, workspace: bigint, workspaceBytes: number, stream: CuStream): string {
  const d = getDriver();
  const make = (id: number, rows: number, kind: BlockScaleKind) => {
    const x = uniforms(id, rows * K);
    const mags = philoxUniform(99, id, rows * K);
    const blockOf = (r: number, k: number) => (kind === "1x128" ? r * 1000 + Math.floor(k / 128) : Math.floor(r / 128) * 1000 + Math.floor(k / 128));
    const exp = new Map<number, number>();
    for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) {
      const b = blockOf(r, k);
      if (!exp.has(b)) exp.set(b, Math.floor(mags[r * K + k] * 9) - 4);
      x[r * K + k] *= 2 ** exp.get(b)!;
    }
    const L = blockScaleLayout(kind, rows, K);
    const amax = new Float64Array(L.length);
    for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) amax[L.offset(r, k)] = Math.max(amax[L.offset(r, k)], Math.abs(x[r * K + k]));
    const scales = Float32Array.from(amax, (a) => (a > 0 ? a / E4M3_MAX : 1));
    const codes = new Uint8Array(rows * K);
    for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) codes[r * K + k] = e4m3Encode(x[r * K + k] / scales[L.offset(r, k)]);
    const deqWith = (offset: (r: number, k: number) => number) => {
      const out = new Float64Array(rows * K);
      for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) out[r * K + k] = e4m3Decode(codes[r * K + k]) * (scales[offset(r, k)] ?? NaN);
      return out;
    };
    // alternatives: 1x128 as row-major (rows, K/128); 128x128 as column-major over row blocks
    const kBlocks = Math.ceil(K / 128);
    const rBlocks = Math.ceil(rows / 128);
    const alt = kind === "1x128" ? (r: number, k: number) => r * kBlocks + Math.floor(k / 128) : (r: number, k: number) => Math.floor(k / 128) * rBlocks + Math.floor(r / 128);
    return { x, codes, scales, deq: deqWith(L.offset), deqAlt: deqWith(alt) };
  };
  const a = make(8, M, ka);
  const b = make(9, N, kb);
  const A = DeviceBuffer.fromU8(a.codes);
  const B = DeviceBuffer.fromU8(b.codes);
  const sA = DeviceBuffer.fromF32(a.scales);
  const sB = DeviceBuffer.fromF32(b.scales);
  const D = DeviceBuffer.alloc("bf16", M * N);
  try {
    gemmRowMajorTN(lt, {
      M, N, K, A: A.ptr, B: B.ptr, D: D.ptr, typeA: CUDA_R_8F_E4M3, typeD: CUDA_R_16BF, aScale: sA.ptr, bScale: sB.ptr,
      blockScaling: { a: ka, b: kb }, workspace, workspaceBytes, stream,
    });
    d.streamSynchronize(stream);
    const got = D.toF32();
    const errTrue = relErr(got, refABt(M, N, K, a.x, b.x));
    const errDeq = relErr(got, refABt(M, N, K, a.deq, b.deq));
    if (errDeq >= 1e-2) {
      const combos = [
        ["documented, documented", a.deq, b.deq],
        ["alternative A, documented B", a.deqAlt, b.deq],
        ["documented A, alternative B", a.deq, b.deqAlt],
        ["alternative A, alternative B", a.deqAlt, b.deqAlt],
      ] as const;
      const errs = combos.map(([name, x, y]) => `${name}: ${relErr(got, refABt(M, N, K, x, y)).toExponential(2)}`);
      throw new Error(`error against the dequantised product ${errDeq.toExponential(3)} ≥ 1e-2; scale layouts tried: ${errs.join("; ")}`);
    }
    if (errTrue >= 6e-2) throw new Error(`error against the unquantised product ${errTrue.toExponential(3)} ≥ 6e-2`);
    return `relative error ${errTrue.toExponential(3)} vs unquantised (< 6e-2), ${errDeq.toExponential(3)} vs dequantised (< 1e-2)`;
  } finally {
    [A, B, sA, sB, D].forEach((x) => x.free());
  }
}

function finish(cacheRoot: string): void {
  rmSync(cacheRoot, { recursive: true, force: true });
  const w = Math.max(...rows.map((r) => r.step.length));
  console.log(`\n${"step".padEnd(w)}  status  detail`);
  for (const r of rows) console.log(`${r.step.padEnd(w)}  ${r.status.padEnd(6)}  ${r.detail.split("\n")[0]}`);
  const failed = rows.filter((r) => r.status === "FAIL").length;
  const skipped = rows.filter((r) => r.status === "skip").length;
  console.log(`\n${rows.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed > 0 ? 1 : 0);
}

main();
