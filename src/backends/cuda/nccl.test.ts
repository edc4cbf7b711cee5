import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeNccl } from "../../../test/fake-nccl.ts";
import { Fp4lmError } from "../../errors.ts";
import { CudaNotFoundError, findCudaPiece } from "./libraries.ts";
import {
  getNccl, ncclFloat32, ncclFloat64, ncclInt32, ncclMax, ncclResultName, ncclSum, NcclError, uniqueIdFromHex, uniqueIdToHex,
} from "./nccl.ts";

test("unique ids travel as 256 hex digits; anything else is refused with what it got", () => {
  const id = Uint8Array.from({ length: 128 }, (_, i) => (i * 37 + 5) & 0xff);
  const hex = uniqueIdToHex(id);
  assert.equal(hex.length, 256);
  assert.deepEqual(uniqueIdFromHex(hex), id);
  assert.deepEqual(uniqueIdFromHex(hex.toUpperCase()), id);
  assert.throws(() => uniqueIdFromHex(hex.slice(2)), (e: unknown) => e instanceof Fp4lmError && /256 hex digits, got 254/.test(e.message));
  assert.throws(() => uniqueIdFromHex("zz" + hex.slice(2)), Fp4lmError);
  assert.throws(() => uniqueIdToHex(new Uint8Array(127)), RangeError);
});

test("the NCCL search: FP4LM_NCCL_LIB wins; a wrong override and a miss name what was searched", () => {
  const root = mkdtempSync(join(tmpdir(), "fp4lm-nccl-search-"));
  try {
    assert.throws(() => findCudaPiece("nccl", { env: { FP4LM_NCCL_LIB: `${root}/nope` }, root, ldconfig: () => "" }),
      (e: unknown) => e instanceof CudaNotFoundError && /FP4LM_NCCL_LIB is set but .*nope does not exist/.test(e.message));
    assert.throws(() => findCudaPiece("nccl", { env: {}, root, ldconfig: () => "" }),
      (e: unknown) => e instanceof CudaNotFoundError && /libnccl\.so\.2/.test(e.message) && /nvidia-nccl-cu13/.test(e.message) && /FP4LM_NCCL_LIB/.test(e.message));
    const ld = "\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2\n";
    assert.equal(findCudaPiece("nccl", { env: {}, root, ldconfig: () => ld }).path, "/usr/lib/x86_64-linux-gnu/libnccl.so.2");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("bindings against a host-memory fake libnccl: by-value id, out-params, collectives, statuses into errors naming the call", (t) => {
  const fake = fakeNccl();
  if ("skip" in fake) return t.skip(fake.skip);
  process.env.FP4LM_NCCL_LIB = fake.path;
  const nccl = getNccl();
  assert.equal(nccl.libraryPath, fake.path);
  assert.equal(nccl.version(), 99999);
  const id = nccl.getUniqueId();
  assert.equal(id.length, 128);
  assert.equal(Buffer.from(id.subarray(0, 8)).toString(), "FAKENCCL");
  // the fake accepts only an id that arrives intact, so this checks the 128-byte struct passed by value
  const comm = nccl.commInitRank(2, uniqueIdFromHex(uniqueIdToHex(id)), 1);
  assert.equal(nccl.commCount(comm), 2);
  assert.equal(nccl.commUserRank(comm), 1);
  assert.equal(nccl.commGetAsyncError(comm), 0);

  const { ops } = fake;
  const n = 6, x = Float32Array.from({ length: n }, (_, i) => 1.5 - i * 0.75);
  const buf = ops.alloc(4 * n), out = ops.alloc(4 * 2 * n);
  ops.upload(buf, x);
  const read = (p: bigint, len: number) => { const a = new Float32Array(len); ops.download(a, p); return a; };
  nccl.allReduce(buf, buf, n, ncclFloat32, ncclSum, comm, null); // 2 mirrored ranks: 2x
  assert.deepEqual(read(buf, n), x.map((v) => 2 * v));
  nccl.allReduce(buf, out, n, ncclFloat32, ncclMax, comm, null);
  assert.deepEqual(read(out, n), x.map((v) => 2 * v));
  nccl.reduceScatter(buf, out, n / 2, ncclFloat32, ncclSum, comm, null); // rank 1's half of 2·(2x)
  assert.deepEqual(read(out, n / 2), x.subarray(n / 2).map((v) => 4 * v));
  nccl.allGather(buf, out, n, ncclFloat32, comm, null);
  assert.deepEqual(read(out, 2 * n), Float32Array.from([...x, ...x].map((v) => 2 * v)));
  ops.upload(buf, x);
  nccl.broadcast(buf, out, n, ncclFloat32, 0, comm, null);
  assert.deepEqual(read(out, n), x);
  const d = ops.alloc(16);
  ops.upload(d, Float64Array.of(0.1, -3));
  nccl.allReduce(d, d, 2, ncclFloat64, ncclSum, comm, null);
  const back = new Float64Array(2);
  ops.download(back, d);
  assert.deepEqual([...back], [0.2, -6]);
  nccl.groupStart();
  assert.equal(fake.groupDepth(), 1);
  nccl.groupEnd();
  assert.equal(fake.groupDepth(), 0);

  // statuses: the call, the result's name and number, NCCL's text, the communicator's last error
  assert.throws(() => nccl.allReduce(buf, buf, n, ncclInt32, ncclSum, comm, null), (e: unknown) =>
    e instanceof NcclError && e.call === "ncclAllReduce" && e.status === 4 &&
    /^ncclAllReduce \(6 elements\) failed with ncclInvalidArgument \(4\): invalid argument.*NCCL says: fake: data type 2 not supported/.test(e.message));
  assert.throws(() => nccl.groupEnd(), (e: unknown) => e instanceof NcclError && /ncclGroupEnd failed with ncclInvalidUsage \(5\)/.test(e.message));
  const bad = Uint8Array.from(id);
  bad[100] ^= 1;
  assert.throws(() => nccl.commInitRank(2, bad, 0), (e: unknown) => e instanceof NcclError && /ncclCommInitRank \(rank 0 of 2\) failed with ncclInvalidArgument/.test(e.message));
  assert.throws(() => nccl.commInitRank(2, id, 2), RangeError);
  assert.throws(() => nccl.allReduce(buf, buf, -1, ncclFloat32, ncclSum, comm, null), RangeError);
  fake.setAsyncError(comm, 6);
  assert.equal(nccl.commGetAsyncError(comm), 6);
  assert.equal(ncclResultName(6), "ncclRemoteError");
  assert.match(nccl.errorString(6), /remote process exited/);
  nccl.commAbort(comm);
  for (const p of [buf, out, d]) ops.free(p);
  const c2 = nccl.commInitRank(1, nccl.getUniqueId(), 0);
  nccl.commDestroy(c2);
});
