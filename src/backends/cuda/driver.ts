/**
 * Typed facade over the CUDA driver API (libcuda) through koffi: device queries, the primary
 * context, streams, events, memory, modules and kernel launches. Device pointers are `bigint`
 * everywhere in the public API; streams, events, modules and functions are opaque handles.
 * Every call's status goes through `check`, which throws CudaError naming the call, the status
 * and the driver's own name and text for it (cuGetErrorName / cuGetErrorString).
 * Not a runtime: no implicit context, no allocator (allocator.ts), no compilation (nvrtc.ts).
 *
 * Signatures and enum values are from cuda.h of CUDA 13.0 (line numbers cited there). The `_v2`
 * names are what cuda.h's macros (lines 89-172) map the plain names to; koffi binds the real
 * symbols, so it must use them. Model: tinygrad's ops_cuda.py and /work/shared/tools/cuda-probe.mjs.
 */
import { binder, CudaError, loadCudaLibrary, nativeArena, type LibraryHandle, type SearchOptions } from "./libraries.ts";

export { CudaError };

/** Opaque driver handles (koffi externals); `null` stream = the legacy default stream. */
export type CuContext = { readonly __cuContext: unique symbol };
export type CuStream = { readonly __cuStream: unique symbol };
export type CuEvent = { readonly __cuEvent: unique symbol };
export type CuModule = { readonly __cuModule: unique symbol };
export type CuFunction = { readonly __cuFunction: unique symbol };
export type Stream = CuStream | null;

// CUdevice_attribute values, cuda.h:724-825
export const CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1; // cuda.h:724
export const CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8; // cuda.h:731
export const CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13; // cuda.h:738 (kHz)
export const CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16; // cuda.h:741
export const CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36; // cuda.h:764 (kHz)
export const CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37; // cuda.h:765 (bits)
export const CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38; // cuda.h:766
export const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75; // cuda.h:803
export const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76; // cuda.h:804
export const CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97; // cuda.h:825
// CUfunction_attribute, cuda.h:994
export const CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
// CUstream_flags, cuda.h:428-429; CUevent_flags, cuda.h:456-457
export const CU_STREAM_DEFAULT = 0;
export const CU_STREAM_NON_BLOCKING = 1;
export const CU_EVENT_DEFAULT = 0;
export const CU_EVENT_DISABLE_TIMING = 2;
// CUresult, cuda.h:2517, 2529, 2597
export const CUDA_SUCCESS = 0;
export const CUDA_ERROR_OUT_OF_MEMORY = 2;
export const CUDA_ERROR_NO_DEVICE = 100;
export const CUDA_ERROR_NOT_READY = 600;

/** One kernel argument, by the C type of the kernel's parameter. */
export type KernelArg =
  | { kind: "ptr"; value: bigint }
  | { kind: "u64"; value: bigint | number }
  | { kind: "i32"; value: number }
  | { kind: "u32"; value: number }
  | { kind: "f32"; value: number };

/**
 * Pack kernel arguments for cuLaunchKernel's `void **kernelParams`: one one-element typed array
 * per argument (koffi passes a JS array of them as an array of pointers to their data, as seen
 * working in cuda-probe.mjs). Checks ranges: a value that does not fit its C type is a bug.
 */
export function packLaunchArgs(args: readonly KernelArg[]): (BigUint64Array | Int32Array | Uint32Array | Float32Array)[] {
  return args.map((a, i) => {
    const v = argValue(a, i);
    switch (a.kind) {
      case "ptr":
      case "u64":
        return new BigUint64Array([v as bigint]);
      case "i32":
        return new Int32Array([v as number]);
      case "u32":
        return new Uint32Array([v as number]);
      case "f32":
        return new Float32Array([v as number]);
    }
  });
}

/** An argument's value, checked against its C type (a value that does not fit is a bug). */
function argValue(a: KernelArg, i: number): bigint | number {
  switch (a.kind) {
    case "ptr":
    case "u64": {
      const v = typeof a.value === "bigint" ? a.value : BigInt(a.value);
      if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`kernel argument ${i} (${a.kind}) = ${v} is outside uint64`);
      return v;
    }
    case "i32":
      if (!Number.isInteger(a.value) || a.value < -0x80000000 || a.value > 0x7fffffff) throw new RangeError(`kernel argument ${i} (i32) = ${a.value} is not a 32-bit signed integer`);
      return a.value;
    case "u32":
      if (!Number.isInteger(a.value) || a.value < 0 || a.value > 0xffffffff) throw new RangeError(`kernel argument ${i} (u32) = ${a.value} is not a 32-bit unsigned integer`);
      return a.value;
    case "f32":
      if (typeof a.value !== "number") throw new RangeError(`kernel argument ${i} (f32) is not a number`);
      return a.value;
  }
}

/**
 * Kernel arguments packed for cuLaunchKernel's `void **kernelParams` in native memory written in
 * place: one 8-byte value slot per argument and a fixed table of pointers to the slots (`table`,
 * passed as `void *`). Marshalling a JS array of typed arrays costs koffi ~1.1 µs per argument
 * (28 µs for a 24-argument quantize kernel, measured on this project's CPU); writing the slots
 * costs ~0.4 µs per launch. The driver copies the values during cuLaunchKernel, so one arena
 * serves every launch. packLaunchArgs is its plain twin (FP4LM_LAUNCH_ARGS=arrays).
 */
export class LaunchArena {
  readonly slots: number;
  /** address of the pointer table (void *kernelParams[slots]) */
  readonly table: bigint;
  private readonly u64: BigUint64Array;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly f32: Float32Array;
  /** the native allocation (kept referenced: koffi frees it with its handle) */
  readonly memory: unknown;

  constructor(slots = 64) {
    const mem = nativeArena(16 * slots);
    this.slots = slots;
    this.memory = mem.handle;
    this.u64 = new BigUint64Array(mem.buffer, 0, 2 * slots);
    this.i32 = new Int32Array(mem.buffer, 0, 2 * slots);
    this.u32 = new Uint32Array(mem.buffer, 0, 2 * slots);
    this.f32 = new Float32Array(mem.buffer, 0, 2 * slots);
    for (let i = 0; i < slots; i++) this.u64[slots + i] = mem.address + 8n * BigInt(i);
    this.table = mem.address + 8n * BigInt(slots);
  }

  /** Write args into the slots (checked as packLaunchArgs checks them); `table` then points at them. */
  write(args: readonly KernelArg[]): void {
    if (args.length > this.slots) throw new RangeError(`${args.length} kernel arguments; the launch arena holds ${this.slots}`);
    for (let i = 0; i < args.length; i++) {
      const a = args[i], v = argValue(a, i);
      if (a.kind === "ptr" || a.kind === "u64") this.u64[i] = v as bigint;
      else if (a.kind === "i32") this.i32[2 * i] = v as number;
      else if (a.kind === "u32") this.u32[2 * i] = v as number;
      else this.f32[2 * i] = v as number;
    }
  }
}

export type Dim3 = readonly [number, number, number];

export interface DeviceInfo {
  ordinal: number;
  name: string;
  major: number;
  minor: number;
  multiprocessors: number;
  totalBytes: number;
  /** opt-in maximum of dynamic shared memory per block, bytes */
  maxSharedPerBlockOptin: number;
  driverVersion: number;
}

type Fn = (...args: unknown[]) => number;

/** The bound entry points; built once from libcuda. */
function bind(lib: LibraryHandle) {
  const { f, optional } = binder<Fn>(lib);
  return {
    cuGetErrorName: f("int cuGetErrorName(int error, _Out_ const char **pStr)"), // cuda.h:5170
    cuGetErrorString: f("int cuGetErrorString(int error, _Out_ const char **pStr)"), // cuda.h:5149
    cuInit: f("int cuInit(unsigned int flags)"), // cuda.h:5207
    cuDriverGetVersion: f("int cuDriverGetVersion(_Out_ int *version)"), // cuda.h:5245
    cuDeviceGet: f("int cuDeviceGet(_Out_ int *device, int ordinal)"), // cuda.h:5288
    cuDeviceGetCount: f("int cuDeviceGetCount(_Out_ int *count)"), // cuda.h:5317
    cuDeviceGetName: f("int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)"), // cuda.h:5349
    cuDeviceTotalMem: f("int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int dev)"), // cuda.h:5436, :89
    cuDeviceGetAttribute: f("int cuDeviceGetAttribute(_Out_ int *pi, int attrib, int dev)"), // cuda.h:5498
    cuDevicePrimaryCtxRetain: f("int cuDevicePrimaryCtxRetain(_Out_ void **pctx, int dev)"), // cuda.h:5896
    cuDevicePrimaryCtxRelease: f("int cuDevicePrimaryCtxRelease_v2(int dev)"), // cuda.h:5937, :149
    cuCtxSetCurrent: f("int cuCtxSetCurrent(void *ctx)"), // cuda.h:6423
    cuCtxGetDevice: f("int cuCtxGetDevice(_Out_ int *device)"), // cuda.h:6476
    cuCtxSynchronize: f("int cuCtxSynchronize()"), // cuda.h:6621
    cuMemGetInfo: f("int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)"), // cuda.h:8575, :92
    cuMemAlloc: f("int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytesize)"), // cuda.h:8609, :93
    cuMemFree: f("int cuMemFree_v2(uint64_t dptr)"), // cuda.h:8708, :95
    cuMemcpyHtoD: f("int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t n)"), // cuda.h:9673
    cuMemcpyDtoH: f("int cuMemcpyDtoH_v2(_Out_ void *dst, uint64_t src, size_t n)"), // cuda.h:9709
    cuMemcpyDtoD: f("int cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t n)"), // cuda.h:9745
    cuMemcpyHtoDAsync: f("int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t n, void *stream)"), // cuda.h:10571
    cuMemcpyDtoHAsync: f("int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t n, void *stream)"), // cuda.h:10612
    cuMemcpyDtoDAsync: f("int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t n, void *stream)"), // cuda.h:10653
    cuMemsetD8: f("int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t n)"), // cuda.h:11278
    cuMemsetD16: f("int cuMemsetD16_v2(uint64_t dst, uint16_t value, size_t n)"), // cuda.h:11313
    cuMemsetD32: f("int cuMemsetD32_v2(uint64_t dst, uint32_t value, size_t n)"), // cuda.h:11348
    cuMemsetD8Async: f("int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t n, void *stream)"), // cuda.h:11507
    cuMemsetD32Async: f("int cuMemsetD32Async(uint64_t dst, uint32_t value, size_t n, void *stream)"), // cuda.h:11580
    cuModuleLoadData: f("int cuModuleLoadData(_Out_ void **module, const void *image)"), // cuda.h:7365
    cuModuleUnload: f("int cuModuleUnload(void *module)"), // cuda.h:7476
    cuModuleGetFunction: f("int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)"), // cuda.h:7532
    cuFuncSetAttribute: f("int cuFuncSetAttribute(void *fn, int attrib, int value)"), // cuda.h:17257
    cuOccupancyMaxActiveBlocksPerMultiprocessor: f("int cuOccupancyMaxActiveBlocksPerMultiprocessor(_Out_ int *numBlocks, void *fn, int blockSize, size_t dynamicSMemSize)"), // cuda.h:21626
    cuLaunchKernel: f(
      "int cuLaunchKernel(void *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, void *stream, void **params, void **extra)",
    ), // cuda.h:17537
    // the same entry point with kernelParams as a plain pointer (a LaunchArena's table)
    cuLaunchKernelPacked: f(
      "int cuLaunchKernel(void *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, void *stream, void *params, void **extra)",
    ),
    cuStreamCreate: f("int cuStreamCreate(_Out_ void **stream, unsigned int flags)"), // cuda.h:14949
    cuStreamSynchronize: f("int cuStreamSynchronize(void *stream)"), // cuda.h:15795
    cuStreamQuery: f("int cuStreamQuery(void *stream)"),
    cuStreamWaitEvent: f("int cuStreamWaitEvent(void *stream, void *event, unsigned int flags)"),
    cuStreamDestroy: f("int cuStreamDestroy_v2(void *stream)"), // cuda.h:15825, :140
    cuEventCreate: f("int cuEventCreate(_Out_ void **event, unsigned int flags)"), // cuda.h:15946
    cuEventRecord: f("int cuEventRecord(void *event, void *stream)"), // cuda.h:15989
    cuEventSynchronize: f("int cuEventSynchronize(void *event)"), // cuda.h:16102
    cuEventDestroy: f("int cuEventDestroy_v2(void *event)"), // cuda.h:16131, :141
    // cuda.h:172 maps cuEventElapsedTime to _v2 (CUDA 12.8+); drivers before that have only v1
    cuEventElapsedTime:
      optional("int cuEventElapsedTime_v2(_Out_ float *ms, void *start, void *end)") ?? f("int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)"), // cuda.h:16179
  };
}

type Bindings = ReturnType<typeof bind>;

/** Bytes of a host view, checked against an explicit count. */
function hostBytes(view: ArrayBufferView, bytes: number | undefined, what: string): number {
  const n = bytes ?? view.byteLength;
  if (!Number.isInteger(n) || n < 0 || n > view.byteLength) throw new RangeError(`${what}: ${n} bytes requested but the host buffer holds ${view.byteLength}`);
  return n;
}

function checkBytes(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what}: byte count ${n} is not a non-negative integer`);
}

/** The driver. One per process (`getDriver()`); all methods act on the calling thread's context. */
export class Driver {
  private initialised = false;

  constructor(
    private readonly api: Bindings,
    readonly libraryPath: string,
  ) {}

  /** Throw CudaError unless `status` is CUDA_SUCCESS. */
  check(call: string, status: number, context = ""): void {
    if (status === CUDA_SUCCESS) return;
    const name = [null as string | null];
    const text = [null as string | null];
    const nameOk = this.api.cuGetErrorName(status, name) === CUDA_SUCCESS;
    const textOk = this.api.cuGetErrorString(status, text) === CUDA_SUCCESS;
    const label = nameOk && name[0] ? name[0] : "unknown CUresult";
    const desc = textOk && text[0] ? `: ${text[0]}` : "";
    throw new CudaError(`${call}${context ? ` (${context})` : ""} failed with ${label} (${status})${desc}`, call, status);
  }

  /** cuInit(0), once. */
  init(): void {
    if (this.initialised) return;
    this.check("cuInit", this.api.cuInit(0), `driver ${this.libraryPath}`);
    this.initialised = true;
  }

  driverVersion(): number {
    const v = [0];
    this.check("cuDriverGetVersion", this.api.cuDriverGetVersion(v));
    return v[0];
  }

  deviceCount(): number {
    this.init();
    const n = [0];
    this.check("cuDeviceGetCount", this.api.cuDeviceGetCount(n));
    return n[0];
  }

  /** CUdevice handle of an ordinal. */
  device(ordinal = 0): number {
    this.init();
    const d = [0];
    this.check("cuDeviceGet", this.api.cuDeviceGet(d, ordinal), `ordinal ${ordinal} of ${this.deviceCount()}`);
    return d[0];
  }

  deviceName(dev: number): string {
    const buf = Buffer.alloc(256);
    this.check("cuDeviceGetName", this.api.cuDeviceGetName(buf, buf.length, dev));
    const end = buf.indexOf(0);
    return buf.toString("utf8", 0, end < 0 ? buf.length : end);
  }

  deviceAttribute(dev: number, attribute: number): number {
    const v = [0];
    this.check("cuDeviceGetAttribute", this.api.cuDeviceGetAttribute(v, attribute, dev), `attribute ${attribute}`);
    return v[0];
  }

  computeCapability(dev: number): { major: number; minor: number } {
    return {
      major: this.deviceAttribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
      minor: this.deviceAttribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
    };
  }

  multiprocessorCount(dev: number): number {
    return this.deviceAttribute(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  }

  totalMemory(dev: number): number {
    const v = [0];
    this.check("cuDeviceTotalMem_v2", this.api.cuDeviceTotalMem(v, dev));
    return Number(v[0]);
  }

  deviceInfo(ordinal = 0): DeviceInfo {
    const dev = this.device(ordinal);
    const { major, minor } = this.computeCapability(dev);
    return {
      ordinal,
      name: this.deviceName(dev),
      major,
      minor,
      multiprocessors: this.multiprocessorCount(dev),
      totalBytes: this.totalMemory(dev),
      maxSharedPerBlockOptin: this.deviceAttribute(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
      driverVersion: this.driverVersion(),
    };
  }

  retainPrimaryContext(dev: number): CuContext {
    const ctx = [null as unknown];
    this.check("cuDevicePrimaryCtxRetain", this.api.cuDevicePrimaryCtxRetain(ctx, dev));
    return ctx[0] as CuContext;
  }

  releasePrimaryContext(dev: number): void {
    this.check("cuDevicePrimaryCtxRelease_v2", this.api.cuDevicePrimaryCtxRelease(dev));
  }

  setCurrent(ctx: CuContext | null): void {
    this.check("cuCtxSetCurrent", this.api.cuCtxSetCurrent(ctx));
  }

  /** The device of the current context (throws if there is none). */
  currentDevice(): number {
    const d = [0];
    this.check("cuCtxGetDevice", this.api.cuCtxGetDevice(d), "is a context current? call useDevice() first");
    return d[0];
  }

  private current: { ordinal: number; ctx: CuContext } | undefined;

  /** init + retain the device's primary context + make it current (once per ordinal). */
  useDevice(ordinal = 0): DeviceInfo {
    this.init();
    if (this.current?.ordinal !== ordinal) {
      const dev = this.device(ordinal);
      const ctx = this.retainPrimaryContext(dev);
      this.setCurrent(ctx);
      this.current = { ordinal, ctx };
    }
    return this.deviceInfo(ordinal);
  }

  ctxSynchronize(): void {
    this.check("cuCtxSynchronize", this.api.cuCtxSynchronize());
  }

  memInfo(): { free: number; total: number } {
    const free = [0];
    const total = [0];
    this.check("cuMemGetInfo_v2", this.api.cuMemGetInfo(free, total));
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  // ---- streams and events ----

  streamCreate(nonBlocking = true): CuStream {
    const s = [null as unknown];
    this.check("cuStreamCreate", this.api.cuStreamCreate(s, nonBlocking ? CU_STREAM_NON_BLOCKING : CU_STREAM_DEFAULT));
    return s[0] as CuStream;
  }

  streamSynchronize(stream: Stream): void {
    this.check("cuStreamSynchronize", this.api.cuStreamSynchronize(stream));
  }

  streamDestroy(stream: CuStream): void {
    this.check("cuStreamDestroy_v2", this.api.cuStreamDestroy(stream));
  }

  /** true when all work queued on `stream` has finished (cuStreamQuery: CUDA_ERROR_NOT_READY = false); throws on a device error */
  streamQuery(stream: Stream): boolean {
    const rc = this.api.cuStreamQuery(stream) as number;
    if (rc === CUDA_ERROR_NOT_READY) return false;
    this.check("cuStreamQuery", rc);
    return true;
  }

  /** Work queued on `stream` after this call waits until `event` (as last recorded) has completed; the host does not wait. */
  streamWaitEvent(stream: Stream, event: CuEvent): void {
    this.check("cuStreamWaitEvent", this.api.cuStreamWaitEvent(stream, event, 0));
  }

  /** `timing: false` (CU_EVENT_DISABLE_TIMING) makes an event cheaper when it only orders streams. */
  eventCreate(timing = true): CuEvent {
    const e = [null as unknown];
    this.check("cuEventCreate", this.api.cuEventCreate(e, timing ? CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING));
    return e[0] as CuEvent;
  }

  eventRecord(event: CuEvent, stream: Stream): void {
    this.check("cuEventRecord", this.api.cuEventRecord(event, stream));
  }

  eventSynchronize(event: CuEvent): void {
    this.check("cuEventSynchronize", this.api.cuEventSynchronize(event));
  }

  /** Milliseconds between two recorded, completed events. */
  eventElapsedMs(start: CuEvent, end: CuEvent): number {
    const ms = [0];
    this.check("cuEventElapsedTime", this.api.cuEventElapsedTime(ms, start, end));
    return ms[0];
  }

  eventDestroy(event: CuEvent): void {
    this.check("cuEventDestroy_v2", this.api.cuEventDestroy(event));
  }

  // ---- memory ----

  /** cuMemAlloc; the pointer is 256-byte aligned (CUDA guarantees at least that). */
  memAlloc(bytes: number): bigint {
    checkBytes(bytes, "memAlloc");
    const p = [0n as bigint | number];
    this.check("cuMemAlloc_v2", this.api.cuMemAlloc(p, bytes), `${bytes} bytes`);
    return BigInt(p[0]);
  }

  memFree(ptr: bigint): void {
    this.check("cuMemFree_v2", this.api.cuMemFree(ptr));
  }

  memcpyHtoD(dst: bigint, src: ArrayBufferView, bytes?: number): void {
    const n = hostBytes(src, bytes, "memcpyHtoD");
    this.check("cuMemcpyHtoD_v2", this.api.cuMemcpyHtoD(dst, src, n), `${n} bytes`);
  }

  memcpyDtoH(dst: ArrayBufferView, src: bigint, bytes?: number): void {
    const n = hostBytes(dst, bytes, "memcpyDtoH");
    this.check("cuMemcpyDtoH_v2", this.api.cuMemcpyDtoH(dst, src, n), `${n} bytes`);
  }

  memcpyDtoD(dst: bigint, src: bigint, bytes: number): void {
    checkBytes(bytes, "memcpyDtoD");
    this.check("cuMemcpyDtoD_v2", this.api.cuMemcpyDtoD(dst, src, bytes), `${bytes} bytes`);
  }

  /**
   * Asynchronous host→device copy. The host memory must stay alive and unchanged until the stream
   * has passed the copy (pageable memory: the driver stages it, so in practice it returns after
   * the staging, but do not rely on that).
   */
  memcpyHtoDAsync(dst: bigint, src: ArrayBufferView, bytes: number | undefined, stream: Stream): void {
    const n = hostBytes(src, bytes, "memcpyHtoDAsync");
    this.check("cuMemcpyHtoDAsync_v2", this.api.cuMemcpyHtoDAsync(dst, src, n, stream), `${n} bytes`);
  }

  /** Asynchronous device→host copy into `dst`; valid after the stream is synchronised. */
  memcpyDtoHAsync(dst: ArrayBufferView, src: bigint, bytes: number | undefined, stream: Stream): void {
    const n = hostBytes(dst, bytes, "memcpyDtoHAsync");
    // a plain pointer, not _Out_: koffi must not copy back at return, before the stream wrote it
    this.check("cuMemcpyDtoHAsync_v2", this.api.cuMemcpyDtoHAsync(dst, src, n, stream), `${n} bytes`);
  }

  memcpyDtoDAsync(dst: bigint, src: bigint, bytes: number, stream: Stream): void {
    checkBytes(bytes, "memcpyDtoDAsync");
    this.check("cuMemcpyDtoDAsync_v2", this.api.cuMemcpyDtoDAsync(dst, src, bytes, stream), `${bytes} bytes`);
  }

  /** Set `count` bytes to `value`; asynchronous on `stream` when one is given. */
  memsetD8(ptr: bigint, value: number, count: number, stream?: Stream): void {
    checkBytes(count, "memsetD8");
    if (stream !== undefined) this.check("cuMemsetD8Async", this.api.cuMemsetD8Async(ptr, value & 0xff, count, stream));
    else this.check("cuMemsetD8_v2", this.api.cuMemsetD8(ptr, value & 0xff, count));
  }

  /** Set `count` 16-bit words (ptr 2-byte aligned), e.g. a BF16 bit pattern. */
  memsetD16(ptr: bigint, value: number, count: number): void {
    checkBytes(count, "memsetD16");
    this.check("cuMemsetD16_v2", this.api.cuMemsetD16(ptr, value & 0xffff, count));
  }

  /** Set `count` 32-bit words (ptr 4-byte aligned); asynchronous on `stream` when one is given. */
  memsetD32(ptr: bigint, value: number, count: number, stream?: Stream): void {
    checkBytes(count, "memsetD32");
    if (stream !== undefined) this.check("cuMemsetD32Async", this.api.cuMemsetD32Async(ptr, value >>> 0, count, stream));
    else this.check("cuMemsetD32_v2", this.api.cuMemsetD32(ptr, value >>> 0, count));
  }

  // ---- modules and launches ----

  moduleLoad(cubin: Buffer): CuModule {
    const m = [null as unknown];
    this.check("cuModuleLoadData", this.api.cuModuleLoadData(m, cubin), `${cubin.length}-byte image`);
    return m[0] as CuModule;
  }

  moduleUnload(mod: CuModule): void {
    this.check("cuModuleUnload", this.api.cuModuleUnload(mod));
  }

  getFunction(mod: CuModule, name: string): CuFunction {
    const fn = [null as unknown];
    this.check("cuModuleGetFunction", this.api.cuModuleGetFunction(fn, mod, name), `"${name}" (declared extern "C"?)`);
    return fn[0] as CuFunction;
  }

  /** Allow up to `bytes` of dynamic shared memory (needed above 48 KiB). */
  setMaxDynamicSharedMemory(fn: CuFunction, bytes: number): void {
    this.check("cuFuncSetAttribute", this.api.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes), `max dynamic shared memory ${bytes} bytes`);
  }

  /** How many blocks of `blockSize` threads and `dynamicShared` bytes of dynamic shared memory fit on one SM at once (a persistent grid's size). */
  maxActiveBlocksPerSM(fn: CuFunction, blockSize: number, dynamicShared: number): number {
    const n = [0];
    this.check("cuOccupancyMaxActiveBlocksPerMultiprocessor", this.api.cuOccupancyMaxActiveBlocksPerMultiprocessor(n, fn, blockSize, dynamicShared), `block ${blockSize}, ${dynamicShared} B shared`);
    return n[0];
  }

  /** where launch packs arguments (null: FP4LM_LAUNCH_ARGS=arrays, a JS array per launch as before) */
  private arena: LaunchArena | null | undefined;

  /** Pack kernel arguments in the LaunchArena (true, the default) or as a JS array per launch (false: the plain twin). */
  useLaunchArena(on: boolean): void {
    this.arena = on ? (this.arena ?? new LaunchArena()) : null;
  }

  launch(fn: CuFunction, grid: Dim3, block: Dim3, sharedBytes: number, stream: Stream, args: readonly KernelArg[]): void {
    if (this.arena === undefined) this.arena = process.env.FP4LM_LAUNCH_ARGS === "arrays" ? null : new LaunchArena();
    let status: number;
    if (this.arena && args.length <= this.arena.slots) {
      this.arena.write(args);
      status = this.api.cuLaunchKernelPacked(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes, stream, this.arena.table, null);
    } else {
      status = this.api.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes, stream, packLaunchArgs(args), null);
    }
    if (status !== CUDA_SUCCESS) this.check("cuLaunchKernel", status, `grid [${grid}] block [${block}] shared ${sharedBytes} B, ${args.length} args`);
  }
}

let driver: Driver | undefined;

/** The process's driver facade (loads libcuda on first use; does not call cuInit yet). */
export function getDriver(opts: SearchOptions = {}): Driver {
  if (!driver) {
    const { lib, path } = loadCudaLibrary("libcuda", opts);
    driver = new Driver(bind(lib), path);
  }
  return driver;
}
