/**
 * Finding and loading the CUDA pieces the backend needs: the driver (libcuda.so.1), NVRTC, cuBLASLt
 * and a CUDA include folder (one holding cuda_bf16.h, for NVRTC); and NCCL (libnccl.so.2), which
 * only data-parallel training loads. Also the backend's two error classes. Not a CUDA installer: it only looks, and when it finds nothing it says where it looked
 * and which environment variable to set.
 *
 * Search order for each piece (first hit wins):
 *   1. the override: FP4LM_LIBCUDA, FP4LM_NVRTC, FP4LM_CUBLASLT, FP4LM_NCCL_LIB (a file, or a folder
 *      to search), FP4LM_CUDA_INCLUDE (a folder); when set, nothing else is searched;
 *   2. $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, then /usr/local/cuda-X.Y newest first, each with
 *      lib64, lib, targets/x86_64-linux/lib (include, targets/x86_64-linux/include for headers);
 *   3. Python wheels: /opt/<env>/.venv/lib/python3.<n>/site-packages/nvidia/<pkg>/{lib,include}
 *      for pkg in cu13, cu12, cuda_nvrtc, cublas, cuda_runtime, nccl, and the same under
 *      /usr/local/lib/python3.<n> and /usr/lib/python3.<n> ({site,dist}-packages), newest first;
 *   4. LD_LIBRARY_PATH, the dynamic loader's cache (`ldconfig -p`), the system library folders.
 * The driver is not part of a toolkit: for libcuda only step 1, LD_LIBRARY_PATH, the loader's cache
 * and the system folders (/usr/lib/x86_64-linux-gnu, /usr/local/nvidia/lib64, …) are searched.
 * Driver stubs (…/stubs/libcuda.so) are never taken: cuInit fails on them.
 *
 * The file-system part (`findCuda`, `findCudaPiece`) loads nothing, so it runs and is tested on
 * machines without a GPU; `loadCudaLibrary` and `cudaAvailable` load with koffi.
 */
import koffi from "koffi";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Fp4lmError } from "../../errors.ts";

/** A CUDA call failed: names the call, the status number and the library's own text for it. */
export class CudaError extends Fp4lmError {
  override name = "CudaError";
  constructor(
    message: string,
    /** the failing call, e.g. "cuMemAlloc_v2" */
    readonly call = "",
    /** the status it returned (CUresult, nvrtcResult or cublasStatus_t); -1 when none */
    readonly status = -1,
  ) {
    super(message);
  }
}

/** One of the pieces, with the environment variable that overrides its search. */
export type CudaPiece = "libcuda" | "nvrtc" | "cublasLt" | "include" | "nccl";

export const PIECE_ENV: Record<CudaPiece, string> = {
  libcuda: "FP4LM_LIBCUDA",
  nvrtc: "FP4LM_NVRTC",
  cublasLt: "FP4LM_CUBLASLT",
  include: "FP4LM_CUDA_INCLUDE",
  nccl: "FP4LM_NCCL_LIB",
};

/** File names tried in each folder, in order of preference (newest major first). */
export const PIECE_NAMES: Record<CudaPiece, readonly string[]> = {
  libcuda: ["libcuda.so.1", "libcuda.so"],
  nvrtc: ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"],
  cublasLt: ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"],
  include: ["cuda_bf16.h"],
  nccl: ["libnccl.so.2", "libnccl.so"],
};

const PIECE_WHAT: Record<CudaPiece, string> = {
  libcuda: "the CUDA driver library (libcuda.so.1)",
  nvrtc: "NVRTC (libnvrtc.so.13 / .so.12 / .so)",
  cublasLt: "cuBLASLt (libcublasLt.so.13 / .so.12 / .so)",
  include: "a CUDA include folder (one holding cuda_bf16.h)",
  nccl: "NCCL (libnccl.so.2), needed for training on several GPUs",
};

/** The piece was not found anywhere; the message lists every place searched. */
export class CudaNotFoundError extends Fp4lmError {
  override name = "CudaNotFoundError";
  constructor(
    readonly piece: CudaPiece,
    readonly searched: readonly string[],
    detail = "",
  ) {
    const env = PIECE_ENV[piece];
    super(
      `could not find ${PIECE_WHAT[piece]}${detail ? ` (${detail})` : ""}. Searched, in order:\n` +
        searched.map((s) => `  ${s}`).join("\n") +
        (piece === "libcuda"
          ? `\nThe driver library comes with the NVIDIA driver: is there a GPU and a driver on this machine? Or set ${env} to the file.`
          : piece === "nccl"
          ? `\nInstall NCCL (the libnccl2 package, or the nvidia-nccl-cu13 wheel) or set ${env} to its file.`
          : `\nInstall the CUDA toolkit (or the NVIDIA wheels) or set ${env} to its ${piece === "include" ? "folder" : "file"}.`),
    );
  }
}

/** Where to look: injectable so tests can point the search at a fake tree. */
export interface SearchOptions {
  /** environment (default process.env) */
  env?: Record<string, string | undefined>;
  /** prefix for the fixed system paths (/usr/local/cuda, /opt, …); default "" (the real root) */
  root?: string;
  /** `ldconfig -p` output; default runs ldconfig (empty string if that fails) */
  ldconfig?: () => string;
}

export interface CudaPaths {
  libcuda: string;
  nvrtc: string;
  cublasLt: string;
  include: string;
  /** every candidate looked at, over all four pieces, in order */
  searched: string[];
}

/** Find the four pieces the backend needs (not NCCL); throws CudaNotFoundError for the first one missing. Loads nothing. */
export function findCuda(opts: SearchOptions = {}): CudaPaths {
  const searched: string[] = [];
  const out = {} as Record<CudaPiece, string>;
  for (const piece of ["libcuda", "nvrtc", "cublasLt", "include"] as const) {
    const r = findCudaPiece(piece, opts);
    searched.push(...r.searched);
    out[piece] = r.path;
  }
  return { ...out, searched };
}

/** Find one piece; throws CudaNotFoundError listing what was searched. Loads nothing. */
export function findCudaPiece(piece: CudaPiece, opts: SearchOptions = {}): { path: string; searched: string[] } {
  const env = opts.env ?? process.env;
  const names = PIECE_NAMES[piece];
  const searched: string[] = [];
  const override = env[PIECE_ENV[piece]];
  if (override) {
    const hit = piece === "include" ? matchInclude(override) : matchLibrary(override, names);
    searched.push(`${PIECE_ENV[piece]}=${override}`);
    if (hit) return { path: hit, searched };
    throw new CudaNotFoundError(piece, searched, `${PIECE_ENV[piece]} is set but ${override} ${existsSync(override) ? "does not hold it" : "does not exist"}`);
  }
  if (piece === "include") {
    for (const d of includeDirs(opts)) {
      searched.push(d);
      const hit = matchInclude(d);
      if (hit) return { path: hit, searched };
    }
    throw new CudaNotFoundError(piece, searched);
  }
  const inDirs = (dirs: string[]): string | undefined => {
    for (const d of dirs) {
      for (const n of names) {
        const f = join(d, n);
        searched.push(f);
        if (isFile(f) && !isStub(f)) return f;
      }
    }
    return undefined;
  };
  const ldconfig = (): string | undefined => {
    searched.push("ldconfig -p");
    return fromLdconfig(opts, names);
  };
  const hit = inDirs(libraryDirs(piece, opts)) ?? ldconfig() ?? inDirs(systemLibraryDirs(piece, opts));
  if (hit) return { path: hit, searched };
  throw new CudaNotFoundError(piece, searched);
}

/** Toolkit and wheel folders, then LD_LIBRARY_PATH (searched before the loader's cache). */
function libraryDirs(piece: CudaPiece, opts: SearchOptions): string[] {
  const env = opts.env ?? process.env;
  const dirs: string[] = [];
  if (piece !== "libcuda") {
    for (const home of cudaHomes(opts)) dirs.push(join(home, "lib64"), join(home, "lib"), join(home, "targets/x86_64-linux/lib"));
    for (const w of wheelDirs(opts)) dirs.push(join(w, "lib"));
  }
  for (const d of (env.LD_LIBRARY_PATH ?? "").split(":")) if (d) dirs.push(d);
  return unique(dirs);
}

/** System library folders (searched after the loader's cache). */
function systemLibraryDirs(piece: CudaPiece, opts: SearchOptions): string[] {
  const r = opts.root ?? "";
  const dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64"];
  if (piece === "libcuda") dirs.push("/usr/local/nvidia/lib64", "/usr/lib/wsl/lib", "/lib/x86_64-linux-gnu", "/usr/lib");
  return dirs.map((d) => r + d);
}

function includeDirs(opts: SearchOptions): string[] {
  const r = opts.root ?? "";
  const dirs: string[] = [];
  for (const home of cudaHomes(opts)) dirs.push(join(home, "include"), join(home, "targets/x86_64-linux/include"));
  for (const w of wheelDirs(opts)) dirs.push(join(w, "include"));
  dirs.push(r + "/usr/include");
  return unique(dirs);
}

/** $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, then /usr/local/cuda-X.Y newest first. */
function cudaHomes(opts: SearchOptions): string[] {
  const env = opts.env ?? process.env;
  const r = opts.root ?? "";
  const homes: string[] = [];
  if (env.CUDA_HOME) homes.push(env.CUDA_HOME);
  if (env.CUDA_PATH) homes.push(env.CUDA_PATH);
  homes.push(r + "/usr/local/cuda");
  const versioned = listDir(r + "/usr/local")
    .filter((n) => /^cuda-\d+(\.\d+)*$/.test(n))
    .sort((a, b) => compareVersions(versionOf(b), versionOf(a)));
  for (const n of versioned) homes.push(`${r}/usr/local/${n}`);
  return unique(homes);
}

const WHEEL_PACKAGES = ["cu13", "cu12", "cuda_nvrtc", "cublas", "cuda_runtime", "nccl"];

/** nvidia/<pkg> folders of Python environments, newest Python first. */
function wheelDirs(opts: SearchOptions): string[] {
  const r = opts.root ?? "";
  const sitePackages: string[] = [];
  for (const env of listDir(r + "/opt").sort()) {
    const lib = `${r}/opt/${env}/.venv/lib`;
    for (const py of pythonDirs(lib)) sitePackages.push(`${lib}/${py}/site-packages`);
  }
  for (const lib of [r + "/usr/local/lib", r + "/usr/lib"]) {
    for (const py of pythonDirs(lib)) sitePackages.push(`${lib}/${py}/site-packages`, `${lib}/${py}/dist-packages`);
  }
  const out: string[] = [];
  for (const sp of sitePackages) for (const p of WHEEL_PACKAGES) out.push(`${sp}/nvidia/${p}`);
  return out.filter((d) => isDir(d));
}

function pythonDirs(lib: string): string[] {
  return listDir(lib)
    .filter((n) => /^python3(\.\d+)?$/.test(n))
    .sort((a, b) => compareVersions(versionOf(b), versionOf(a)));
}

function fromLdconfig(opts: SearchOptions, names: readonly string[]): string | undefined {
  const text = (opts.ldconfig ?? runLdconfig)();
  const entries = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/.exec(line);
    if (!m || !m[2].includes("x86-64") || isStub(m[3])) continue;
    if (!entries.has(m[1])) entries.set(m[1], m[3]);
  }
  for (const n of names) {
    const p = entries.get(n);
    if (p) return p;
  }
  return undefined;
}

function runLdconfig(): string {
  for (const bin of ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
    try {
      return execFileSync(bin, ["-p"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      // try the next location
    }
  }
  return "";
}

function matchLibrary(path: string, names: readonly string[]): string | undefined {
  if (isFile(path)) return path;
  if (isDir(path)) for (const n of names) if (isFile(join(path, n))) return join(path, n);
  return undefined;
}

function matchInclude(dir: string): string | undefined {
  return isFile(join(dir, "cuda_bf16.h")) ? dir : undefined;
}

function isStub(path: string): boolean {
  return basename(dirname(path)) === "stubs";
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

function versionOf(name: string): number[] {
  return (name.match(/\d+/g) ?? []).map(Number);
}

/** Numeric, part by part; a missing part counts as -1 so "cuda-13.0" > "cuda-13". */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

// ---- loading ------------------------------------------------------------------------------

export type LibraryHandle = ReturnType<typeof koffi.load>;

/**
 * Native memory of `bytes` bytes for the life of the process, written from JS through `buffer`
 * (an ArrayBuffer over it, no copies) and handed to C by `address` (koffi accepts a bigint for a
 * `void *` parameter). What driver.ts's LaunchArena packs kernel arguments into.
 */
export function nativeArena(bytes: number): { address: bigint; buffer: ArrayBuffer; handle: unknown } {
  const handle = koffi.alloc("uint8_t", bytes);
  return { address: BigInt(koffi.address(handle)), buffer: koffi.view(handle, bytes), handle };
}

/**
 * Bind functions of `lib` by their C declarations (koffi), typed F: `f` throws where the library
 * lacks the symbol, `optional` gives undefined (entry points of newer versions only).
 */
export function binder<F>(lib: LibraryHandle): { f: (decl: string) => F; optional: (decl: string) => F | undefined } {
  const f = (decl: string) => lib.func(decl) as unknown as F;
  const optional = (decl: string): F | undefined => {
    try {
      return f(decl);
    } catch {
      return undefined;
    }
  };
  return { f, optional };
}
const loaded = new Map<CudaPiece, { path: string; lib: LibraryHandle }>();

/**
 * Load a library piece once (cached). NVRTC's builtins library is loaded first from the same folder
 * when present there, so NVRTC finds it by soname even where that folder is not on the loader path
 * (Python wheels).
 */
export function loadCudaLibrary(piece: Exclude<CudaPiece, "include">, opts: SearchOptions = {}): { path: string; lib: LibraryHandle } {
  const hit = loaded.get(piece);
  if (hit) return hit;
  const { path } = findCudaPiece(piece, opts);
  if (piece === "nvrtc") {
    const dir = dirname(path);
    const builtins = listDir(dir)
      .filter((n) => /^libnvrtc-builtins\.so\.\d+\.\d+$/.test(n))
      .sort((a, b) => compareVersions(versionOf(b), versionOf(a)));
    if (builtins.length > 0) {
      try {
        koffi.load(join(dir, builtins[0]));
      } catch {
        // NVRTC reports a missing builtins library itself, with its own message
      }
    }
  }
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (e) {
    throw new CudaError(`could not load ${path}: ${(e as Error).message}. Check it is an x86-64 library matching the driver, or set ${PIECE_ENV[piece]}.`, "dlopen");
  }
  const entry = { path, lib };
  loaded.set(piece, entry);
  return entry;
}

/** The CUDA include folder (cached). */
let includeCache: string | undefined;
export function cudaIncludeDir(opts: SearchOptions = {}): string {
  includeCache ??= findCudaPiece("include", opts).path;
  return includeCache;
}

let availability: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Whether a usable GPU is here: libcuda found and loadable, cuInit(0) succeeds, at least one
 * device. Never throws; the answer is cached. Used to skip GPU tests elsewhere.
 */
export function cudaAvailable(opts: SearchOptions = {}): { ok: true } | { ok: false; reason: string } {
  if (availability) return availability;
  try {
    const { lib, path } = loadCudaLibrary("libcuda", opts);
    const cuInit = lib.func("int cuInit(unsigned int flags)");
    const cuDeviceGetCount = lib.func("int cuDeviceGetCount(_Out_ int *count)");
    const rc = cuInit(0) as number;
    if (rc !== 0) availability = { ok: false, reason: `cuInit(0) returned ${rc} with ${path} (100 = no CUDA device, 34 = stub library, 999 = unknown)` };
    else {
      const count = [0];
      const rc2 = cuDeviceGetCount(count) as number;
      if (rc2 !== 0) availability = { ok: false, reason: `cuDeviceGetCount returned ${rc2}` };
      else if (count[0] < 1) availability = { ok: false, reason: "the CUDA driver sees no device" };
      else availability = { ok: true };
    }
  } catch (e) {
    availability = { ok: false, reason: (e as Error).message };
  }
  return availability;
}
