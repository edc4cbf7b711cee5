/**
 * NVRTC: CUDA C++ source → cubin for the GPU in use, with an on-disk cache. Kernels live in
 * kernels/ (next to this file) and include its .cuh headers; NVRTC gets `-I` to that folder and to
 * the CUDA include folder (cuda_bf16.h etc.). Not a build system: one source string per module.
 *
 * Cache: `${FP4LM_CACHE ?? ~/.cache/fp4lm}/cubin/<sha256>.cubin`, the hash over the source, every
 * header it includes that resolves in kernels/ or the caller's include folders (recursively), every
 * .cuh of kernels/, the full option list (architecture and include paths in it) and the NVRTC
 * version. Written to a temporary name and renamed, so a reader never sees half a file.
 * FP4LM_DEBUG=3 prints each compiled source's name, options and NVRTC log to stderr.
 *
 * Signatures and values from nvrtc.h of CUDA 13.0 (lines cited).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getDriver, type CuModule } from "./driver.ts";
import { binder, CudaError, cudaIncludeDir, loadCudaLibrary, type LibraryHandle } from "./libraries.ts";

const NVRTC_SUCCESS = 0; // nvrtc.h:42
const NVRTC_ERROR_COMPILATION = 6; // nvrtc.h:48

type Fn = (...args: unknown[]) => number;

function bind(lib: LibraryHandle) {
  const { f } = binder<Fn>(lib);
  return {
    nvrtcGetErrorString: lib.func("const char *nvrtcGetErrorString(int result)") as unknown as (r: number) => string, // nvrtc.h:74
    nvrtcVersion: f("int nvrtcVersion(_Out_ int *major, _Out_ int *minor)"), // nvrtc.h:98
    nvrtcCreateProgram: f("int nvrtcCreateProgram(_Out_ void **prog, const char *src, const char *name, int numHeaders, void *headers, void *includeNames)"), // nvrtc.h:186
    nvrtcDestroyProgram: f("int nvrtcDestroyProgram(_Inout_ void **prog)"), // nvrtc.h:205
    nvrtcCompileProgram: f("int nvrtcCompileProgram(void *prog, int numOptions, const char **options)"), // nvrtc.h:230
    nvrtcGetCUBINSize: f("int nvrtcGetCUBINSize(void *prog, _Out_ size_t *size)"), // nvrtc.h:286
    nvrtcGetCUBIN: f("int nvrtcGetCUBIN(void *prog, _Out_ uint8_t *cubin)"), // nvrtc.h:305
    nvrtcGetProgramLogSize: f("int nvrtcGetProgramLogSize(void *prog, _Out_ size_t *size)"), // nvrtc.h:399
    nvrtcGetProgramLog: f("int nvrtcGetProgramLog(void *prog, _Out_ uint8_t *log)"), // nvrtc.h:416
  };
}

let api: ReturnType<typeof bind> | undefined;
function nvrtc(): ReturnType<typeof bind> {
  api ??= bind(loadCudaLibrary("nvrtc").lib);
  return api;
}

function check(call: string, status: number, context = ""): void {
  if (status === NVRTC_SUCCESS) return;
  throw new CudaError(`${call}${context ? ` (${context})` : ""} failed with ${nvrtc().nvrtcGetErrorString(status)} (${status})`, call, status);
}

/** NVRTC's version, e.g. { major: 13, minor: 0 }. */
export function nvrtcVersion(): { major: number; minor: number } {
  const major = [0];
  const minor = [0];
  check("nvrtcVersion", nvrtc().nvrtcVersion(major, minor));
  return { major: major[0], minor: minor[0] };
}

/** Absolute path of the kernels folder (src/backends/cuda/kernels), no trailing slash. */
export function kernelsDir(): string {
  return fileURLToPath(new URL("./kernels", import.meta.url));
}

/**
 * `--gpu-architecture` value for a compute capability. The arch-specific `a` targets (wgmma,
 * setmaxnreg on 9.0; tcgen05 on 10.x) are used where they exist; they run only on that exact chip,
 * which is the chip we compile for.
 */
export function archFor(cc: { major: number; minor: number }): string {
  const a = (cc.major === 9 && cc.minor === 0) || (cc.major === 10 && (cc.minor === 0 || cc.minor === 3)) ? "a" : "";
  return `sm_${cc.major}${cc.minor}${a}`;
}

export interface CompileOptions {
  /** extra include folders (after kernels/, before the CUDA include folder) */
  includeDirs?: readonly string[];
  /** `-D name=value` (`true` → `-D name`) */
  defines?: Readonly<Record<string, string | number | true>>;
  /** false → `--fmad=false` (no contraction of a*b+c into an FMA: bit-exact to a two-step CPU twin) */
  fmad?: boolean;
  /** `-lineinfo` (for profilers) */
  lineinfo?: boolean;
  /** target, e.g. "sm_90a"; default from the current context's device */
  arch?: string;
  /** further raw NVRTC options */
  extra?: readonly string[];
}

/** The full NVRTC option list (pure: no library needed). */
export function buildOptions(opts: CompileOptions, arch: string, cudaInclude: string): string[] {
  const o = [`--gpu-architecture=${arch}`, "-std=c++17", `-I${kernelsDir()}`];
  for (const d of opts.includeDirs ?? []) o.push(`-I${resolve(d)}`);
  o.push(`-I${cudaInclude}`);
  if (opts.fmad === false) o.push("--fmad=false");
  if (opts.lineinfo) o.push("-lineinfo");
  for (const [k, v] of Object.entries(opts.defines ?? {})) o.push(v === true ? `-D${k}` : `-D${k}=${v}`);
  o.push(...(opts.extra ?? []));
  return o;
}

const INCLUDE_RE = /^[ \t]*#[ \t]*include[ \t]*[<"]([^>"]+)[>"]/gm;

/**
 * Contents of every header the source includes that resolves in `dirs` (the including file's own
 * folder first for files), recursively, each once, in first-include order. CUDA's own headers do
 * not resolve here; the NVRTC version and include path in the options stand for them.
 */
export function resolveIncludes(source: string, dirs: readonly string[]): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const seen = new Set<string>();
  const visit = (text: string, from: string | undefined) => {
    for (const m of text.matchAll(INCLUDE_RE)) {
      const candidates = [...(from ? [join(dirname(from), m[1])] : []), ...dirs.map((d) => join(d, m[1]))];
      for (const c of candidates) {
        const p = resolve(c);
        let body: string;
        try {
          body = readFileSync(p, "utf8");
        } catch {
          continue;
        }
        if (!seen.has(p)) {
          seen.add(p);
          out.push({ path: p, text: body });
          visit(body, p);
        }
        break;
      }
    }
  };
  visit(source, undefined);
  return out;
}

/** Every .cuh in `dir`, sorted by name, with its contents (none if the folder is missing). */
export function kernelHeaders(dir = kernelsDir()): { path: string; text: string }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".cuh")).sort();
  } catch {
    return [];
  }
  return names.map((n) => ({ path: join(dir, n), text: readFileSync(join(dir, n), "utf8") }));
}

/** sha256 (hex) over the parts, each length-prefixed so no two part lists collide. */
export function cacheKey(parts: readonly string[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    const b = Buffer.from(p, "utf8");
    h.update(`${b.length}:`);
    h.update(b);
  }
  return h.digest("hex");
}

export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  return join(env.FP4LM_CACHE ?? join(homedir(), ".cache", "fp4lm"), "cubin");
}

function debugLevel(): number {
  return Number(process.env.FP4LM_DEBUG ?? 0) || 0;
}

/** The architecture of the current context's device (a context must be current: driver.useDevice). */
export function currentArch(): string {
  const d = getDriver();
  return archFor(d.computeCapability(d.currentDevice()));
}

/** Compile `source` (program name `name`) to a cubin. Throws CudaError with the NVRTC log on failure. */
export function compile(source: string, name: string, opts: CompileOptions = {}): Buffer {
  const options = buildOptions(opts, opts.arch ?? currentArch(), cudaIncludeDir());
  return compileWithOptions(source, name, options);
}

function compileWithOptions(source: string, name: string, options: string[]): Buffer {
  const n = nvrtc();
  const prog = [null as unknown];
  check("nvrtcCreateProgram", n.nvrtcCreateProgram(prog, source, `${name}.cu`, 0, null, null), name);
  try {
    const status = n.nvrtcCompileProgram(prog[0], options.length, options);
    const log = programLog(prog[0]);
    if (debugLevel() >= 3) process.stderr.write(`[nvrtc] ${name}.cu ${options.join(" ")}\n${log}\n`);
    if (status !== NVRTC_SUCCESS) {
      const what = status === NVRTC_ERROR_COMPILATION ? "the source did not compile" : "NVRTC could not run";
      throw new CudaError(
        `nvrtcCompileProgram(${name}.cu) failed with ${n.nvrtcGetErrorString(status)} (${status}): ${what}.\n` +
          `options: ${options.join(" ")}\nlog:\n${log.trim() || "(empty)"}`,
        "nvrtcCompileProgram",
        status,
      );
    }
    const size = [0];
    check("nvrtcGetCUBINSize", n.nvrtcGetCUBINSize(prog[0], size), name);
    const cubin = Buffer.alloc(Number(size[0]));
    check("nvrtcGetCUBIN", n.nvrtcGetCUBIN(prog[0], cubin), name);
    return cubin;
  } finally {
    n.nvrtcDestroyProgram(prog);
  }
}

function programLog(prog: unknown): string {
  const n = nvrtc();
  const size = [0];
  if (n.nvrtcGetProgramLogSize(prog, size) !== NVRTC_SUCCESS || Number(size[0]) <= 1) return "";
  const buf = Buffer.alloc(Number(size[0]));
  if (n.nvrtcGetProgramLog(prog, buf) !== NVRTC_SUCCESS) return "";
  const end = buf.indexOf(0);
  return buf.toString("utf8", 0, end < 0 ? buf.length : end);
}

/** Compile through the on-disk cache. `ms`: wall time of this call (compile, or cache read). */
export function compileCached(source: string, name: string, opts: CompileOptions = {}): { cubin: Buffer; cached: boolean; ms: number } {
  const t0 = performance.now();
  const arch = opts.arch ?? currentArch();
  const options = buildOptions(opts, arch, cudaIncludeDir());
  const v = nvrtcVersion();
  const dirs = [kernelsDir(), ...(opts.includeDirs ?? []).map((d) => resolve(d))];
  const parts = [
    "fp4lm-cubin-v1",
    source,
    ...resolveIncludes(source, dirs).flatMap((h) => [h.path, h.text]),
    ...kernelHeaders().flatMap((h) => [h.path, h.text]),
    ...options,
    arch,
    `nvrtc ${v.major}.${v.minor}`,
  ];
  const dir = cacheDir();
  const file = join(dir, `${cacheKey(parts)}.cubin`);
  try {
    const cubin = readFileSync(file);
    if (cubin.length > 0) return { cubin, cached: true, ms: performance.now() - t0 };
  } catch {
    // not cached yet
  }
  const cubin = compileWithOptions(source, name, options);
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, cubin);
    renameSync(tmp, file);
  } catch (e) {
    // a read-only or full cache costs a recompile next time, not a failure now
    if (debugLevel() >= 1) process.stderr.write(`[nvrtc] could not write cubin cache ${file}: ${(e as Error).message}\n`);
  }
  return { cubin, cached: false, ms: performance.now() - t0 };
}

/** compileCached + cuModuleLoadData. */
export function loadModule(source: string, name: string, opts: CompileOptions = {}): { module: CuModule; cached: boolean; ms: number } {
  const { cubin, cached, ms } = compileCached(source, name, opts);
  return { module: getDriver().moduleLoad(cubin), cached, ms };
}
