/**
 * Builds test/fake-nccl.c (a host-memory stand-in for libnccl.so.2) with the system C compiler,
 * once per source version, into the OS temp folder, and binds its test helpers: "device" memory
 * in host RAM, a collective counter, injected asynchronous errors. Tests skip with the reason
 * when no C compiler is there. Point nccl.ts at the result with FP4LM_NCCL_LIB before first use.
 */
import koffi from "koffi";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DeviceOps } from "../src/parallel/nccl-communicator.ts";

const SOURCE = new URL("./fake-nccl.c", import.meta.url);

export interface FakeNccl {
  path: string;
  /** host-memory DeviceOps for the NCCL communicator */
  ops: DeviceOps;
  collectives(): number;
  /** stream-ordering points (DeviceOps.order) so far */
  orders(): number;
  groupDepth(): number;
  setAsyncError(comm: unknown, status: number): void;
}

let built: FakeNccl | { skip: string } | undefined;

/** The fake library (built on first call), or why it cannot be built here. */
export function fakeNccl(): FakeNccl | { skip: string } {
  if (built) return built;
  const src = readFileSync(SOURCE);
  const dir = join(tmpdir(), "fp4lm-fake-nccl");
  const path = join(dir, `libnccl-fake-${createHash("sha256").update(src).digest("hex").slice(0, 12)}.so`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      execFileSync(process.env.CC ?? "cc", ["-shared", "-fPIC", "-O1", "-o", tmp, SOURCE.pathname, "-lm"], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      built = { skip: `no C compiler to build the fake NCCL (${(e as Error).message.split("\n")[0]})` };
      return built;
    }
    renameSync(tmp, path);
  }
  const lib = koffi.load(path);
  const malloc = lib.func("uint64_t fake_malloc(size_t bytes)") as (n: number) => bigint | number;
  const free = lib.func("void fake_free(uint64_t p)");
  const memcpy = lib.func("void fake_memcpy(uint64_t dst, uint64_t src, size_t n)");
  const memset = lib.func("void fake_memset(uint64_t dst, int value, size_t n)");
  const orders: number[] = [];
  const upload = lib.func("void fake_upload(uint64_t dst, const void *src, size_t n)");
  const download = lib.func("void fake_download(_Out_ void *dst, uint64_t src, size_t n)");
  const collectives = lib.func("long fake_collectives()") as () => number;
  const groupDepth = lib.func("int fake_group_depth()") as () => number;
  const setAsyncError = lib.func("void fake_set_async_error(void *comm, int e)");
  built = {
    path,
    ops: {
      stream: null,
      alloc: (bytes) => BigInt(malloc(bytes)),
      free: (p) => void free(p),
      sideStream: () => null,
      order: () => void orders.push(1),
      copyAsync: (dst, src, bytes) => void memcpy(dst, src, bytes),
      zeroAsync: (dst, bytes) => void memset(dst, 0, bytes),
      upload: (dst, src) => void upload(dst, src, src.byteLength),
      download: (dst, src) => void download(dst, src, dst.byteLength),
      streamDone: () => true,
      close: () => {},
    },
    orders: () => orders.length,
    collectives: () => Number(collectives()),
    groupDepth,
    setAsyncError: (comm, status) => void setAsyncError(comm, status),
  };
  return built;
}
