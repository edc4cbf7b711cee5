/**
 * Runs experiment jobs on the GPU machine within one device call (≤ 10 minutes): several
 * `fp4lm experiment` processes share the GPU (small models leave it mostly idle, so P processes
 * give up to P× the throughput of one; CUDA MPS is used when `nvidia-cuda-mps-control` starts),
 * each job is one suite × horizon × seed (optionally a list of runs), and a job that is still
 * running at the deadline is stopped (SIGTERM, then SIGKILL) — the runs it finished are kept,
 * since the runner writes results.json after every run. What comes back is OUT/exp.tgz (the device
 * tool returns neither deep folders nor names with '+'): every job folder with results.json,
 * report.md, SVGs, and each run folder's metrics.jsonl, config.json and precision.json — never
 * checkpoints or token files. Merge them here with `fp4lm report ... --out experiments/SUITE-HORIZON`.
 *
 * Horizons (issue 5): short = `--model exp-short --tokens-per-param 20`, long = `--model exp-long
 * --tokens-per-param 200`. Every job passes `--reuse` with the folders of the jobs of the same
 * horizon (and experiments/*-HORIZON when present): a run another suite already trained with the
 * same recipe, length and seed is taken from there.
 *
 * Usage (in scripts/gpu-run.sh's environment, node and data set up):
 *   node --import tsx scripts/gpu-experiments.ts --data DIR --parallel 4 --deadline 540 \
 *        precision/short/0 precision/short/1 switch/long/0/forward,backward ... [-- --key=value ...]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

/** model, tokens per non-embedding parameter and batch (sequences of 1024) of each horizon */
export const HORIZONS: Record<string, { model: string; tokensPerParam: number; batchSize: number }> = {
  short: { model: "exp-short", tokensPerParam: 20, batchSize: 16 },
  long: { model: "exp-long", tokensPerParam: 200, batchSize: 32 },
  /** issue 8: the Nemotron-H hybrid at the short horizon */
  "hybrid-short": { model: "exp-hybrid-short", tokensPerParam: 20, batchSize: 16 },
};

/** Settings every GPU experiment job uses (evaluation cadence, device); the horizon picks model, tokens and batch. */
export const GPU_EXPERIMENT_SETTINGS = ["--evalEvery=100", "--evalBatches=16", "--device", "cuda"];

export interface Job {
  suite: string;
  horizon: string;
  seed: number;
  runs: string[];
  /** folder name under OUT/exp */
  id: string;
}

/** "suite/horizon/seedIndex[/run,run]" → a job. */
export function parseJob(spec: string): Job {
  const [suite, horizon, seed, runs] = spec.split("/");
  if (!suite || !HORIZONS[horizon] || !/^\d+$/.test(seed ?? "")) {
    throw new Error(`job '${spec}': expected SUITE/HORIZON/SEED[/RUN,RUN], horizon one of ${Object.keys(HORIZONS).join(", ")}, seed index 0, 1, ...`);
  }
  const list = runs ? runs.split(",").filter(Boolean) : [];
  return { suite, horizon, seed: Number(seed), runs: list, id: `${suite}-${horizon}/s${seed}${list.length ? `-${list.join("+")}` : ""}` };
}

/** The fp4lm experiment arguments of a job (without --reuse). */
export function jobArgs(job: Job, out: string, data: string, extra: string[]): string[] {
  const h = HORIZONS[job.horizon];
  return [
    "experiment", job.suite, "--model", h.model, "--tokens-per-param", String(h.tokensPerParam), `--batchSize=${h.batchSize}`, "--seeds", "1", `--seed=${1337 + job.seed}`,
    ...(job.runs.length ? ["--only", job.runs.join(",")] : []), "--out", out, `--data.dir=${data}`, ...GPU_EXPERIMENT_SETTINGS, ...extra,
  ];
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { data: { type: "string" }, parallel: { type: "string", default: "4" }, deadline: { type: "string", default: "540" }, out: { type: "string" }, reuse: { type: "string", multiple: true } },
  });
  const dd = positionals.indexOf("--");
  const specs = dd < 0 ? positionals : positionals.slice(0, dd);
  const extra = dd < 0 ? [] : positionals.slice(dd + 1);
  if (!values.data || !specs.length) throw new Error("usage: gpu-experiments.ts --data DIR [--parallel P] [--deadline S] [--out DIR] JOB... (JOB = SUITE/HORIZON/SEED[/RUN,RUN])");
  const out = resolve(values.out ?? process.env.OUT ?? "/tmp/fp4lm-exp");
  const work = "/tmp/fp4lm-exp-work";
  rmSync(work, { recursive: true, force: true });
  const jobs = specs.map(parseJob);
  const P = Number(values.parallel), deadline = Date.now() + Number(values.deadline) * 1000;
  const t0 = Date.now();
  const mps = startMps();
  console.log(`${jobs.length} jobs, ${P} at a time, deadline ${values.deadline} s; MPS: ${mps}`);

  const status = new Map<string, string>();
  const running = new Map<ChildProcess, Job>();
  const queue = [...jobs];
  const reuseFor = (h: string) => [
    ...(values.reuse ?? []).filter((d) => d.endsWith(`-${h}`) && existsSync(d)),
    // job folders hold suite folders; those of jobs not started yet do not exist
    ...jobs.filter((j) => j.horizon === h).map((j) => join(work, j.id)).filter((d) => existsSync(d)),
  ];
  const startNext = () => {
    while (running.size < P && queue.length && Date.now() < deadline - 30_000) {
      const job = queue.shift()!;
      const dir = join(work, job.id);
      mkdirSync(dir, { recursive: true });
      const reuse = reuseFor(job.horizon).filter((d) => d !== dir);
      const args = [...jobArgs(job, dir, values.data!, extra), ...(reuse.length ? ["--reuse", ...reuse] : [])];
      const child = spawn(process.execPath, ["bin/fp4lm.mjs", ...args], { stdio: ["ignore", "pipe", "pipe"] });
      const log: Buffer[] = [];
      child.stdout!.on("data", (b: Buffer) => { log.push(b); process.stdout.write(b.toString().split("\n").filter((l) => l.startsWith("[")).map((l) => `${job.id} ${l}\n`).join("")); });
      child.stderr!.on("data", (b: Buffer) => log.push(b));
      child.on("exit", (code, sig) => {
        writeFileSync(join(dir, "job.log"), Buffer.concat(log));
        status.set(job.id, sig ? `stopped (${sig})` : code === 0 ? "done" : `exit ${code}`);
        running.delete(child);
        startNext();
        if (!running.size) finish();
      });
      running.set(child, job);
      status.set(job.id, "running");
    }
  };
  const finish = () => {
    for (const j of queue) status.set(j.id, "not started (deadline)");
    stopMps(mps);
    mkdirSync(out, { recursive: true });
    const tar = spawnSync("tar", ["--exclude=*.safetensors", "--exclude=*.bin", "-czf", join(out, "exp.tgz"), "-C", work, "."], { encoding: "utf8" });
    console.log(tar.status === 0 ? `results in ${join(out, "exp.tgz")}` : `tar failed: ${tar.stderr}`);
    console.log(`\njobs after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (const j of jobs) console.log(`${j.id.padEnd(48)} ${status.get(j.id)}`);
    process.exit(0);
  };
  const timer = setInterval(() => {
    if (Date.now() < deadline) return;
    clearInterval(timer);
    queue.length = 0;
    for (const c of running.keys()) c.kill("SIGTERM");
    setTimeout(() => { for (const c of running.keys()) c.kill("SIGKILL"); }, 10_000).unref();
  }, 1000);
  startNext();
  if (!running.size) finish();
}

/** Start the CUDA MPS daemon when the driver ships it; says what happened. */
function startMps(): string {
  if (process.env.FP4LM_MPS === "0") return "off (FP4LM_MPS=0)";
  const dir = "/tmp/fp4lm-mps";
  mkdirSync(dir, { recursive: true });
  process.env.CUDA_MPS_PIPE_DIRECTORY = dir;
  process.env.CUDA_MPS_LOG_DIRECTORY = dir;
  const r = spawnSync("nvidia-cuda-mps-control", ["-d"], { env: process.env, encoding: "utf8" });
  if (r.error || r.status !== 0) {
    delete process.env.CUDA_MPS_PIPE_DIRECTORY;
    delete process.env.CUDA_MPS_LOG_DIRECTORY;
    return `not available (${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim()})`;
  }
  return "on";
}

function stopMps(state: string): void {
  if (state !== "on") return;
  spawnSync("sh", ["-c", "echo quit | nvidia-cuda-mps-control"], { env: process.env });
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename ?? "")) main();
