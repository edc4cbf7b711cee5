/**
 * DeviceBuffer: a typed span of device memory (pointer, bytes, dtype) with synchronous upload and
 * download, including FP32 → BF16 on upload (rounded on the host, RNE, by formats/bf16.ts, so the
 * device holds exactly what the CPU oracle computes with) and BF16 → FP32 on download (exact).
 * Not a tensor library: no shape, no strides, no ops. Memory comes from the caching allocator
 * (allocator.ts) unless another `DeviceMemory` is given (tests use a host-memory fake).
 */
import { fromBf16Bits, toBf16Bits } from "../../formats/bf16.ts";
import { deviceAllocator } from "./allocator.ts";
import { getDriver } from "./driver.ts";

export type DeviceDtype = "f32" | "bf16" | "u8" | "i32";

export const DTYPE_BYTES: Record<DeviceDtype, number> = { f32: 4, bf16: 2, u8: 1, i32: 4 };

/** Where a DeviceBuffer's memory comes from and how bytes cross to it. */
export interface DeviceMemory {
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
  upload(dst: bigint, src: ArrayBufferView): void;
  download(dst: ArrayBufferView, src: bigint): void;
}

let defaultMemory: DeviceMemory | undefined;

/** The caching allocator and the driver's synchronous copies (needs a current context). */
export function cudaMemory(): DeviceMemory {
  if (!defaultMemory) {
    const alloc = deviceAllocator();
    const d = getDriver();
    defaultMemory = {
      alloc: (b) => alloc.alloc(b),
      free: (p) => alloc.free(p),
      upload: (dst, src) => d.memcpyHtoD(dst, src),
      download: (dst, src) => d.memcpyDtoH(dst, src),
    };
  }
  return defaultMemory;
}

export class DeviceBuffer {
  private freed = false;

  constructor(
    readonly ptr: bigint,
    readonly bytes: number,
    readonly dtype: DeviceDtype,
    private readonly memory: DeviceMemory = cudaMemory(),
  ) {}

  /** Number of elements. */
  get length(): number {
    return this.bytes / DTYPE_BYTES[this.dtype];
  }

  /** Uninitialised buffer of `length` elements. */
  static alloc(dtype: DeviceDtype, length: number, memory: DeviceMemory = cudaMemory()): DeviceBuffer {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`DeviceBuffer.alloc: length ${length} is not a non-negative integer`);
    const bytes = length * DTYPE_BYTES[dtype];
    return new DeviceBuffer(memory.alloc(bytes), bytes, dtype, memory);
  }

  static fromF32(data: Float32Array, memory?: DeviceMemory): DeviceBuffer {
    return DeviceBuffer.upload("f32", data, memory);
  }

  /** FP32 values rounded to BF16 on the host (RNE), stored as BF16. */
  static fromF32AsBf16(data: Float32Array, memory?: DeviceMemory): DeviceBuffer {
    return DeviceBuffer.upload("bf16", toBf16Bits(data), memory);
  }

  /** Raw BF16 bit patterns. */
  static fromBf16Bits(bits: Uint16Array, memory?: DeviceMemory): DeviceBuffer {
    return DeviceBuffer.upload("bf16", bits, memory);
  }

  static fromU8(data: Uint8Array, memory?: DeviceMemory): DeviceBuffer {
    return DeviceBuffer.upload("u8", data, memory);
  }

  static fromI32(data: Int32Array, memory?: DeviceMemory): DeviceBuffer {
    return DeviceBuffer.upload("i32", data, memory);
  }

  private static upload(dtype: DeviceDtype, data: ArrayBufferView, memory = cudaMemory()): DeviceBuffer {
    const b = DeviceBuffer.alloc(dtype, data.byteLength / DTYPE_BYTES[dtype], memory);
    memory.upload(b.ptr, data);
    return b;
  }

  /** Overwrite the whole buffer from the host (same element count; FP32 → BF16 when this is bf16). */
  write(data: Float32Array | Uint16Array | Uint8Array | Int32Array): void {
    this.assertLive();
    const src = this.dtype === "bf16" && data instanceof Float32Array ? toBf16Bits(data) : data;
    const want = { f32: Float32Array, bf16: Uint16Array, u8: Uint8Array, i32: Int32Array }[this.dtype];
    if (!(src instanceof want)) throw new TypeError(`DeviceBuffer.write: a ${this.dtype} buffer takes ${want.name}${this.dtype === "bf16" ? " or Float32Array" : ""}, not ${data.constructor.name}`);
    if (src.byteLength !== this.bytes) throw new RangeError(`DeviceBuffer.write: ${src.length} elements for a ${this.length}-element ${this.dtype} buffer`);
    this.memory.upload(this.ptr, src);
  }

  /** Download as FP32 (f32 as is, bf16 widened exactly). */
  toF32(): Float32Array {
    if (this.dtype === "bf16") return fromBf16Bits(this.toBf16Bits());
    this.expect("f32");
    return this.download(new Float32Array(this.length));
  }

  toBf16Bits(): Uint16Array {
    this.expect("bf16");
    return this.download(new Uint16Array(this.length));
  }

  toU8(): Uint8Array {
    this.expect("u8");
    return this.download(new Uint8Array(this.length));
  }

  toI32(): Int32Array {
    this.expect("i32");
    return this.download(new Int32Array(this.length));
  }

  /** Return the memory to its allocator; the buffer is unusable afterwards. */
  free(): void {
    this.assertLive();
    this.memory.free(this.ptr);
    this.freed = true;
  }

  private download<T extends ArrayBufferView>(out: T): T {
    this.assertLive();
    this.memory.download(out, this.ptr);
    return out;
  }

  private expect(dtype: DeviceDtype): void {
    if (this.dtype !== dtype) throw new TypeError(`DeviceBuffer holds ${this.dtype}, not ${dtype}`);
  }

  private assertLive(): void {
    if (this.freed) throw new Error(`DeviceBuffer 0x${this.ptr.toString(16)} used after free()`);
  }
}
