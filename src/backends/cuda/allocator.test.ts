import { test } from "node:test";
import assert from "node:assert/strict";
import { CachingAllocator, sizeClass, type RawAllocator } from "./allocator.ts";
import { CudaError } from "./libraries.ts";

/** A fake driver: hands out distinct fake addresses, tracks live blocks, fails past `capacity`. */
function fakeDriver(capacity = Infinity) {
  let next = 0x7f0000000000n;
  const live = new Map<bigint, number>();
  const log: string[] = [];
  const raw: RawAllocator = {
    alloc(bytes) {
      const used = [...live.values()].reduce((a, b) => a + b, 0);
      if (used + bytes > capacity) {
        log.push(`oom ${bytes}`);
        throw new CudaError(`cuMemAlloc_v2 (${bytes} bytes) failed with CUDA_ERROR_OUT_OF_MEMORY (2)`, "cuMemAlloc_v2", 2);
      }
      const p = next;
      next += BigInt(Math.max(bytes, 256));
      live.set(p, bytes);
      log.push(`alloc ${bytes}`);
      return p;
    },
    free(ptr) {
      assert.ok(live.has(ptr), "fake driver: free of an unknown pointer");
      log.push(`free ${live.get(ptr)}`);
      live.delete(ptr);
    },
  };
  return { raw, live, log };
}

test("size classes: powers of two from 512 B to 1 MiB, then multiples of 2 MiB", () => {
  const cases: [number, number][] = [
    [0, 512], [1, 512], [512, 512], [513, 1024], [1000, 1024], [1024, 1024], [1025, 2048],
    [65535, 65536], [65537, 131072], [(1 << 20) - 1, 1 << 20], [1 << 20, 1 << 20],
    [(1 << 20) + 1, 2 << 20], [2 << 20, 2 << 20], [(2 << 20) + 1, 4 << 20], [5 * 2 ** 20, 6 * 2 ** 20], [3 * 2 ** 30 + 1, 3 * 2 ** 30 + 2 ** 21],
  ];
  for (const [req, want] of cases) assert.equal(sizeClass(req), want, `sizeClass(${req})`);
  assert.throws(() => sizeClass(-1), RangeError);
  assert.throws(() => sizeClass(1.5), RangeError);
});

test("freed blocks are reused for the same class, not for another", () => {
  const { raw, live } = fakeDriver();
  const a = new CachingAllocator(raw);
  const p1 = a.alloc(3000); // class 4096
  const p2 = a.alloc(700); // class 1024
  assert.notEqual(p1, p2);
  assert.equal(a.sizeOf(p1), 4096);
  a.free(p1);
  assert.deepEqual(a.stats(), { bytesInUse: 1024, bytesCached: 4096, peakBytesInUse: 5120, driverAllocs: 2, driverFrees: 0 });
  const p3 = a.alloc(2100); // class 4096 again: the cached block
  assert.equal(p3, p1);
  assert.equal(a.stats().driverAllocs, 2);
  const p4 = a.alloc(1500); // class 2048: nothing cached, a new block
  assert.ok(p4 !== p1 && p4 !== p2);
  assert.equal(a.stats().driverAllocs, 3);
  assert.equal(live.size, 3);
  const big = a.alloc(3 * 2 ** 20 + 5); // class 4 MiB
  assert.equal(live.get(big), 4 * 2 ** 20);
  a.free(big);
  assert.equal(a.alloc(4 * 2 ** 20), big, "same 2 MiB-multiple class");
});

test("stats track in-use, cached and peak bytes; trim releases the cache to the driver", () => {
  const { raw, live, log } = fakeDriver();
  const a = new CachingAllocator(raw);
  const ps = [100, 600, 5000, 2 ** 21].map((b) => a.alloc(b));
  const total = 512 + 1024 + 8192 + 2 ** 21;
  assert.equal(a.stats().bytesInUse, total);
  ps.slice(0, 3).forEach((p) => a.free(p));
  assert.deepEqual(a.stats(), { bytesInUse: 2 ** 21, bytesCached: 512 + 1024 + 8192, peakBytesInUse: total, driverAllocs: 4, driverFrees: 0 });
  a.trim();
  assert.deepEqual(a.stats(), { bytesInUse: 2 ** 21, bytesCached: 0, peakBytesInUse: total, driverAllocs: 4, driverFrees: 3 });
  assert.equal(live.size, 1);
  assert.deepEqual(log.filter((l) => l.startsWith("free")).sort(), ["free 1024", "free 512", "free 8192"]);
  assert.throws(() => a.free(ps[0]), /freed twice/);
  assert.throws(() => a.free(0x1234n), /not allocated here/);
});

test("out of memory: the cache is released and the allocation retried once", () => {
  const { raw, log } = fakeDriver(8 << 20);
  const a = new CachingAllocator(raw);
  const x = a.alloc(4 << 20);
  const y = a.alloc(2 << 20);
  a.free(x); // 4 MiB cached, 2 MiB in use: the driver has 2 MiB left
  const z = a.alloc(6 << 20); // fails, trims the 4 MiB, succeeds
  assert.ok(z !== x && z !== y);
  assert.deepEqual(log.slice(-3), ["oom 6291456", "free 4194304", "alloc 6291456"]);
  assert.deepEqual(a.stats(), { bytesInUse: 8 << 20, bytesCached: 0, peakBytesInUse: 8 << 20, driverAllocs: 3, driverFrees: 1 });
});

test("out of memory with nothing to release: CudaError saying what was asked, in use and cached", () => {
  const { raw } = fakeDriver(8 << 20);
  const a = new CachingAllocator(raw);
  a.alloc(6 << 20);
  const small = a.alloc(1000);
  a.free(small); // 1 KiB cached, not enough to help
  assert.throws(
    () => a.alloc(4 << 20),
    (e: unknown) => {
      assert.ok(e instanceof CudaError);
      assert.equal(e.status, 2);
      assert.match(e.message, /requested 4194304 bytes/);
      assert.match(e.message, /6\.0 MiB in use and 0\.0 MiB cached \(after releasing the cache\)/);
      return true;
    },
  );
  assert.equal(a.stats().bytesInUse, 6 << 20, "a failed allocation changes nothing in use");
});

test("errors other than out-of-memory pass through untouched", () => {
  const raw: RawAllocator = {
    alloc() {
      throw new CudaError("cuMemAlloc_v2 failed with CUDA_ERROR_INVALID_CONTEXT (201)", "cuMemAlloc_v2", 201);
    },
    free() {},
  };
  assert.throws(() => new CachingAllocator(raw).alloc(10), /INVALID_CONTEXT/);
});
