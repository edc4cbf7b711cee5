/**
 * Caching device allocator: cuMemAlloc is slow and synchronising, so freed blocks are kept per
 * size class and handed out again. Size classes: powers of two from 512 B to 1 MiB, then
 * multiples of 2 MiB. Out of memory: release the cache and retry once, then throw CudaError with
 * the request, the bytes in use and the bytes cached.
 * Not stream-aware (as llm.c, one stream): a block freed while a kernel on another stream still
 * uses it could be handed out too early; synchronise before freeing across streams.
 * The driver is injected (`RawAllocator`), so the logic is tested without a GPU.
 */
import { CudaError } from "./libraries.ts";
import { CUDA_ERROR_OUT_OF_MEMORY, getDriver } from "./driver.ts";

/** The two driver calls the allocator needs. */
export interface RawAllocator {
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
}

export const MIN_CLASS = 512;
export const SMALL_LIMIT = 1 << 20;
export const LARGE_STEP = 2 << 20;

/** The size class (bytes actually reserved) for a request. */
export function sizeClass(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`device allocation of ${bytes} bytes: not a non-negative integer`);
  if (bytes <= MIN_CLASS) return MIN_CLASS;
  if (bytes <= SMALL_LIMIT) return 2 ** Math.ceil(Math.log2(bytes));
  return Math.ceil(bytes / LARGE_STEP) * LARGE_STEP;
}

export interface AllocatorStats {
  /** bytes of the size classes handed out and not freed */
  bytesInUse: number;
  /** bytes held in the cache, free for reuse */
  bytesCached: number;
  peakBytesInUse: number;
  /** cuMemAlloc calls (successful) */
  driverAllocs: number;
  /** cuMemFree calls */
  driverFrees: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export class CachingAllocator {
  private readonly free_ = new Map<number, bigint[]>();
  private readonly live = new Map<bigint, number>();
  private s: AllocatorStats = { bytesInUse: 0, bytesCached: 0, peakBytesInUse: 0, driverAllocs: 0, driverFrees: 0 };

  constructor(private readonly raw: RawAllocator) {}

  /** A device pointer to at least `bytes` bytes (256-byte aligned: the driver's alignment). */
  alloc(bytes: number): bigint {
    const size = sizeClass(bytes);
    const cached = this.free_.get(size);
    let ptr = cached?.pop();
    if (ptr !== undefined) this.s.bytesCached -= size;
    else ptr = this.allocFromDriver(bytes, size);
    this.live.set(ptr, size);
    this.s.bytesInUse += size;
    this.s.peakBytesInUse = Math.max(this.s.peakBytesInUse, this.s.bytesInUse);
    return ptr;
  }

  private allocFromDriver(bytes: number, size: number): bigint {
    for (let attempt = 0; ; attempt++) {
      try {
        const p = this.raw.alloc(size);
        this.s.driverAllocs++;
        return p;
      } catch (e) {
        if (!(e instanceof CudaError) || e.status !== CUDA_ERROR_OUT_OF_MEMORY) throw e;
        if (attempt === 0 && this.s.bytesCached > 0) {
          this.trim();
          continue;
        }
        throw new CudaError(
          `out of device memory: requested ${bytes} bytes (size class ${mib(size)}) with ${mib(this.s.bytesInUse)} in use and ${mib(this.s.bytesCached)} cached` +
            `${attempt > 0 ? " (after releasing the cache)" : ""}; peak in use ${mib(this.s.peakBytesInUse)}. Use a smaller batch or model. (${e.message})`,
          e.call,
          e.status,
        );
      }
    }
  }

  /** Return a block to the cache. */
  free(ptr: bigint): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new Error(`CachingAllocator.free(0x${ptr.toString(16)}): not allocated here, or freed twice`);
    this.live.delete(ptr);
    this.s.bytesInUse -= size;
    let list = this.free_.get(size);
    if (!list) this.free_.set(size, (list = []));
    list.push(ptr);
    this.s.bytesCached += size;
  }

  /** Release every cached block to the driver. */
  trim(): void {
    for (const [size, list] of this.free_) {
      while (list.length > 0) {
        this.raw.free(list.pop()!);
        this.s.driverFrees++;
        this.s.bytesCached -= size;
      }
    }
    this.free_.clear();
  }

  stats(): AllocatorStats {
    return { ...this.s };
  }

  /** The size class of a live pointer, or undefined. */
  sizeOf(ptr: bigint): number | undefined {
    return this.live.get(ptr);
  }
}

let device: CachingAllocator | undefined;

/** The process's allocator over the real driver (the current context's device). */
export function deviceAllocator(): CachingAllocator {
  if (!device) {
    const d = getDriver();
    device = new CachingAllocator({ alloc: (b) => d.memAlloc(b), free: (p) => d.memFree(p) });
  }
  return device;
}
