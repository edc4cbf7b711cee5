/**
 * The killed-rank scenario of both data-parallel suites (CPU ranks in test/parallel.test.ts, GPU
 * ranks in test/gpu/nccl.gpu.test.ts): start `fp4lm train ARGS` (two ranks, run `dir/name`) as a
 * child, wait until the launcher printed the ranks' pids and the run has a checkpoint and at least
 * `minSteps` logged steps, SIGKILL rank 1, and wait for the launcher to exit. The callers assert on
 * what comes back. If the run is not ready within `waitMs`, nothing is killed but the launcher
 * (so no test leaves it behind) and `pids` says what was seen.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readMetrics } from "../src/train/metrics.ts";

const BIN = fileURLToPath(new URL("../bin/fp4lm.mjs", import.meta.url));

export interface KilledRank {
  /** the ranks' pids as the launcher printed them (empty if it did not) */
  pids: number[];
  /** the launcher's exit code (null: killed by the helper because the run was not ready) */
  code: number | null;
  /** ms from the kill to the launcher's exit */
  took: number;
  out: string;
  err: string;
  ckpt: string;
}

export async function killRankMidRun(dir: string, name: string, args: string[], minSteps: number, waitMs: number): Promise<KilledRank> {
  const child = spawn(process.execPath, [BIN, "train", `--outDir=${dir}`, `--name=${name}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d: Buffer) => (out += d));
  child.stderr.on("data", (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  const ckpt = join(dir, name, "checkpoint.safetensors");
  const metrics = join(dir, name, "metrics.jsonl");
  const steps = () => (existsSync(metrics) ? readMetrics(metrics).filter((l) => l.type === "step").length : 0);
  const t0 = performance.now();
  let pids: number[] = [], ready = false;
  while (!ready && performance.now() - t0 < waitMs) {
    const m = /\(pids (\d+), (\d+)\)/.exec(out);
    if (m) pids = [Number(m[1]), Number(m[2])];
    ready = pids.length === 2 && existsSync(ckpt) && steps() >= minSteps;
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready) {
    child.kill("SIGKILL");
    await exited;
    return { pids, code: null, took: 0, out, err, ckpt };
  }
  process.kill(pids[1], "SIGKILL");
  const killedAt = performance.now();
  const code = await exited;
  return { pids, code, took: performance.now() - killedAt, out, err, ckpt };
}
