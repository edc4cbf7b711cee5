/**
 * CPU cost of handing kernel arguments to cuLaunchKernel through koffi (no GPU needed): the JS array
 * of one-element typed arrays that koffi marshals as `void **` (packLaunchArgs, FP4LM_LAUNCH_ARGS=arrays)
 * against the LaunchArena's native slots written in place (the default), calling a C function with
 * cuLaunchKernel's signature that reads every argument as the driver does (test/fake-launch.c's
 * reader, built with the system C compiler). Per call µs for 4, 8, 16 and 24 arguments (the fast
 * NVFP4 quantize kernels take 18–24). Writes bench/results/launch-args.json.
 * Usage: npx tsx bench/launch-args.bench.ts [--calls 50000]
 */
import koffi from "koffi";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LaunchArena, packLaunchArgs, type KernelArg } from "../src/backends/cuda/driver.ts";
import { textTable } from "../src/cli/text-table.ts";

const { values } = parseArgs({ options: { calls: { type: "string" } } });
const N = Number(values.calls ?? 50000);
const dir = mkdtempSync(join(tmpdir(), "fp4lm-launch-bench-"));
const so = join(dir, "libfake-launch.so");
execFileSync(process.env.CC ?? "cc", ["-shared", "-fPIC", "-O2", "-o", so, new URL("../test/fake-launch.c", import.meta.url).pathname]);
const lib = koffi.load(so);
const arrays = lib.func("int read_params(void **params, const int *sizes, int n, _Out_ uint64_t *out)");
const table = lib.func("int read_params(void *params, const int *sizes, int n, _Out_ uint64_t *out)");
const arena = new LaunchArena();
const rows: string[][] = [];
const results: { args: number; arraysUs: number; arenaUs: number }[] = [];
for (const n of [4, 8, 16, 24]) {
  const args: KernelArg[] = Array.from({ length: n }, (_, i): KernelArg => (i % 3 === 0 ? { kind: "ptr", value: 0x7f0000001000n + BigInt(i) } : i % 3 === 1 ? { kind: "i32", value: i } : { kind: "f32", value: 1.5 }));
  const sizes = Int32Array.from(args, (a) => (a.kind === "ptr" ? 8 : 4)), out = new BigUint64Array(n);
  const time = (f: () => void) => {
    for (let i = 0; i < 2000; i++) f();
    const t0 = performance.now();
    for (let i = 0; i < N; i++) f();
    return ((performance.now() - t0) * 1000) / N;
  };
  const a = time(() => arrays(packLaunchArgs(args), sizes, n, out));
  const b = time(() => { arena.write(args); table(arena.table, sizes, n, out); });
  results.push({ args: n, arraysUs: a, arenaUs: b });
  rows.push([String(n), a.toFixed(2), b.toFixed(2), `${(a / b).toFixed(0)}x`]);
}
console.log(`kernel-argument marshalling through koffi ${koffi.version}, ${N} calls each (a C reader with cuLaunchKernel's argument passing; no GPU)`);
console.log(textTable([["arguments", "JS array µs/call", "launch arena µs/call", "speed-up"], ...rows], [true, true, true, true]));
writeFileSync(new URL("./results/launch-args.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), calls: N, results }, null, 1) + "\n");
rmSync(dir, { recursive: true, force: true });
