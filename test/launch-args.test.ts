/**
 * Kernel arguments as cuLaunchKernel receives them: a LaunchArena (native slots and a pointer table,
 * written in place; the default) gives a C reader of `void **kernelParams` the bytes that
 * packLaunchArgs (a JS array of one-element typed arrays, FP4LM_LAUNCH_ARGS=arrays) gives, for
 * pointers, 64-bit, 32-bit signed/unsigned and float arguments, launch after launch; values that do
 * not fit their C type are refused by both. The reader is test/fake-launch.c, built with the system
 * C compiler (skipped without one).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import koffi from "koffi";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LaunchArena, packLaunchArgs, type KernelArg } from "../src/backends/cuda/driver.ts";

function reader(t: { skip: (why: string) => void }, dir: string) {
  const so = join(dir, "libfake-launch.so");
  try {
    execFileSync(process.env.CC ?? "cc", ["-shared", "-fPIC", "-O1", "-o", so, new URL("./fake-launch.c", import.meta.url).pathname], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    t.skip(`no C compiler to build test/fake-launch.c: ${(e as Error).message.split("\n")[0]}`);
    return null;
  }
  const lib = koffi.load(so);
  return {
    arrays: lib.func("int read_params(void **params, const int *sizes, int n, _Out_ uint64_t *out)"),
    table: lib.func("int read_params(void *params, const int *sizes, int n, _Out_ uint64_t *out)"),
  };
}

const size = (a: KernelArg) => (a.kind === "ptr" || a.kind === "u64" ? 8 : 4);

test("LaunchArena hands the driver the bytes packLaunchArgs does, launch after launch; bad values refused by both", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-launch-"));
  try {
    const r = reader(t, dir);
    if (!r) return;
    const arena = new LaunchArena(32);
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let launch = 0; launch < 200; launch++) {
      const n = 1 + Math.floor(rnd() * 32);
      const args: KernelArg[] = Array.from({ length: n }, (): KernelArg => {
        const k = Math.floor(rnd() * 5);
        if (k === 0) return { kind: "ptr", value: (BigInt(Math.floor(rnd() * 2 ** 32)) << 16n) | 0x7f0000000000n };
        if (k === 1) return { kind: "u64", value: launch % 2 ? BigInt(Math.floor(rnd() * 2 ** 53)) : Math.floor(rnd() * 2 ** 40) };
        if (k === 2) return { kind: "i32", value: Math.floor((rnd() - 0.5) * 2 ** 32) };
        if (k === 3) return { kind: "u32", value: Math.floor(rnd() * 2 ** 32) };
        return { kind: "f32", value: launch === 3 ? NaN : (rnd() - 0.5) * 1e6 };
      });
      const sizes = Int32Array.from(args, size);
      const a = new BigUint64Array(n), b = new BigUint64Array(n);
      r.arrays(packLaunchArgs(args), sizes, n, a);
      arena.write(args);
      r.table(arena.table, sizes, n, b);
      assert.deepEqual(Array.from(b), Array.from(a), `launch ${launch}: ${n} arguments`);
    }
    for (const bad of [{ kind: "i32", value: 2 ** 31 }, { kind: "u32", value: -1 }, { kind: "ptr", value: -1n }, { kind: "i32", value: 1.5 }] as KernelArg[]) {
      assert.throws(() => packLaunchArgs([bad]), RangeError);
      assert.throws(() => arena.write([bad]), RangeError);
    }
    assert.throws(() => arena.write(Array.from({ length: 33 }, (): KernelArg => ({ kind: "i32", value: 1 }))), /33 kernel arguments; the launch arena holds 32/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
