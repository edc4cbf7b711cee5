/**
 * `fp4lm train --gpus N` (or `--ranks N --device=cpu`): the launcher. It checks the run folder
 * and prepares the data once, makes the job's rendezvous (an NCCL unique id, made here and handed
 * to the ranks as hex; for CPU ranks a shared folder for the file communicator, under /dev/shm
 * unless FP4LM_COMM_DIR names another place, e.g. when /dev/shm is small), starts one
 * process per rank (rank-entry.mjs; CUDA device = rank, NCCL_NVLS_ENABLE=0), shows rank 0's
 * output and every rank's errors, and watches them: when one rank dies (killed, crashed, an NCCL
 * error) it stops the others at once (SIGTERM, SIGKILL after a grace period) and fails with a
 * message naming the rank, its last error line and the state of the last checkpoint (written
 * atomically by rank 0, so it is the previous complete one). Not a multi-host launcher: one
 * machine, like torchrun --standalone.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fp4lmError } from "../errors.ts";
import { cudaAvailable } from "../backends/cuda/libraries.ts";
import { getDriver } from "../backends/cuda/driver.ts";
import { getNccl, uniqueIdToHex } from "../backends/cuda/nccl.ts";
import type { TrainConfig } from "../train/config.ts";
import { preparedDir } from "../train/data-setup.ts";
import { readMetrics } from "../train/metrics.ts";
import { RunDir } from "../train/run-dir.ts";
import { PEER_FAILED_EXIT } from "./communicator.ts";

export interface LaunchOptions {
  /** the launcher's own lines (default: stdout) */
  log?: (s: string) => void;
  /** between SIGTERM and SIGKILL for the ranks still running after a failure (default 3000) */
  killGraceMs?: number;
  /** every rank stops (as if killed) after this many steps; train.ts's hook, for tests */
  stopAfter?: number;
}

export interface LaunchResult {
  runDir: string;
  finalValLoss: number | undefined;
  tokensPerS: number | undefined;
  /** the ranks' pids, in rank order */
  pids: number[];
}

interface Rank {
  rank: number;
  child: ChildProcess;
  /** the last lines it wrote to stderr */
  tail: string[];
  exit?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  stoppedByUs: boolean;
}

/** The device the ranks run on: cpu, or cuda with enough GPUs. */
function resolveDevice(cfg: TrainConfig, log: (s: string) => void): "cpu" | "cuda" {
  if (cfg.device === "cpu") return "cpu";
  const a = cudaAvailable();
  if (!a.ok) {
    if (cfg.device === "cuda") throw new Fp4lmError(`--gpus ${cfg.ranks}: no usable GPU (${a.reason.split("\n")[0]}); use --ranks N --device=cpu for CPU ranks`);
    log(`device=auto: no usable GPU, ${cfg.ranks} ranks on the CPU`);
    return "cpu";
  }
  const n = getDriver().deviceCount();
  if (n < cfg.ranks) throw new Fp4lmError(`${cfg.ranks} ranks need ${cfg.ranks} GPUs (one each), this machine has ${n}; use --gpus ${n} (and --gradAccum ×${Math.ceil(cfg.ranks / n)} for the same global batch)`);
  return "cuda";
}

/** Start cfg.ranks training processes and wait for them; throws Fp4lmError naming the rank that failed. */
export async function launchDataParallel(cfg: TrainConfig, opts: LaunchOptions = {}): Promise<LaunchResult> {
  const log = opts.log ?? ((s: string) => void process.stdout.write(s + "\n"));
  const N = cfg.ranks;
  const device = resolveDevice(cfg, log);
  // checks (existing run, --resume without a checkpoint), --overwrite and the bundled data, once, here
  const run = RunDir.open(cfg);
  preparedDir(cfg, log);

  let ncclId: string | undefined;
  if (device === "cuda") {
    process.env.NCCL_NVLS_ENABLE = "0";
    ncclId = uniqueIdToHex(getNccl().getUniqueId());
  }
  // the ranks' config and, for CPU ranks, the exchange folder: in memory where possible
  const job = mkdtempSync(join(process.env.FP4LM_COMM_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir()), "fp4lm-ranks-"));
  const rankCfg: TrainConfig = { ...cfg, device, threads: device === "cpu" && cfg.threads === 0 ? Math.max(1, Math.floor(availableParallelism() / N)) : cfg.threads };
  writeFileSync(join(job, "config.json"), JSON.stringify(rankCfg));
  const args = ["--job", job, "--size", String(N)];
  if (opts.stopAfter !== undefined) args.push("--stop-after", String(opts.stopAfter));
  if (ncclId) args.push("--nccl-id", ncclId);
  else mkdirSync(join(job, "comm"));

  const entry = fileURLToPath(new URL("./rank-entry.mjs", import.meta.url));
  const ranks: Rank[] = [];
  const stop = (why: string) => {
    for (const r of ranks) {
      if (r.exit) continue;
      r.stoppedByUs = true;
      r.child.kill("SIGTERM");
    }
    const grace = setTimeout(() => { for (const r of ranks) if (!r.exit) r.child.kill("SIGKILL"); }, opts.killGraceMs ?? 3000);
    grace.unref();
    if (why) log(why);
  };
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
    stop(`fp4lm train: ${sig}, stopping all ranks`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let failed: Rank | undefined;
  try {
    const exits = Array.from({ length: N }, (_, rank) => {
      const child = spawn(process.execPath, [entry, ...args, "--rank", String(rank)], {
        env: { ...process.env, NCCL_NVLS_ENABLE: "0" },
        stdio: ["ignore", rank === 0 ? "inherit" : "ignore", "pipe"],
      });
      const r: Rank = { rank, child, tail: [], stoppedByUs: false };
      ranks.push(r);
      let partial = "";
      child.stderr!.on("data", (d: Buffer) => {
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop()!;
        for (const l of lines) {
          process.stderr.write(`[rank ${rank}] ${l}\n`);
          r.tail.push(l);
          if (r.tail.length > 20) r.tail.shift();
        }
      });
      return new Promise<void>((resolve) => {
        child.on("exit", (code, signal) => {
          if (partial) { process.stderr.write(`[rank ${rank}] ${partial}\n`); r.tail.push(partial); partial = ""; }
          r.exit = { code, signal, at: performance.now() };
          if ((code !== 0 || signal) && !r.stoppedByUs && !failed) {
            failed = r;
            stop(`fp4lm train: rank ${rank} ${howItEnded(r)}; stopping the other ranks`);
          }
          resolve();
        });
        child.on("error", (e) => {
          r.tail.push(`could not start: ${e.message}`);
          r.exit = { code: 1, signal: null, at: performance.now() };
          if (!failed) { failed = r; stop(""); }
          resolve();
        });
      });
    });
    log(`fp4lm train: ${N} rank${N > 1 ? "s" : ""} on ${device === "cuda" ? `GPUs 0-${N - 1}` : "the CPU"} (pids ${ranks.map((r) => r.child.pid).join(", ")})`);
    await Promise.all(exits);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(job, { recursive: true, force: true });
  }
  const pids = ranks.map((r) => r.child.pid ?? -1);
  const ckpt = () => existsSync(run.checkpointPath)
    ? `the last checkpoint, ${run.checkpointPath}, is intact (written atomically); continue with --resume`
    : "no checkpoint had been written";
  if (interrupted && !failed) throw new Fp4lmError(`interrupted by ${interrupted}; stopped all ${N} ranks; ${ckpt()}`);
  if (failed) {
    // a rank that stopped because a peer failed is not the cause when the peer also failed
    const culprit = ranks.filter((r) => r.exit && (r.exit.code !== 0 || r.exit.signal) && !r.stoppedByUs)
      .sort((a, b) => Number(a.exit!.code === PEER_FAILED_EXIT) - Number(b.exit!.code === PEER_FAILED_EXIT) || a.exit!.at - b.exit!.at)[0] ?? failed;
    // its error: from its last "fp4lm rank R:" line on, else its last line
    const lines = culprit.tail.filter((l) => l.trim());
    let from = lines.length - 1;
    for (let i = lines.length - 1; i >= 0; i--) if (lines[i].startsWith("fp4lm rank")) { from = i; break; }
    const why = lines.slice(Math.max(0, from)).join("\n");
    throw new Fp4lmError(`rank ${culprit.rank} ${howItEnded(culprit)}${why ? ` (${why.replace(/^fp4lm( rank \d+)?: /, "")})` : ""}; stopped all ${N} ranks; ${ckpt()}`);
  }
  const m = readMetrics(join(run.dir, "metrics.jsonl"));
  const evals = m.filter((l) => l.type === "eval");
  return {
    runDir: run.dir,
    finalValLoss: evals.length ? (evals[evals.length - 1].val_loss as number) : undefined,
    tokensPerS: m.find((l) => l.type === "end")?.tokens_per_s as number | undefined,
    pids,
  };
}

function howItEnded(r: Rank): string {
  const e = r.exit!;
  if (e.signal) return `(pid ${r.child.pid}) was killed by ${e.signal}`;
  return `(pid ${r.child.pid}) exited with code ${e.code}${e.code === PEER_FAILED_EXIT ? " (a peer failed)" : ""}`;
}
