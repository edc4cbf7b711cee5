/**
 * Data-parallel training on CPU ranks (separate processes, the file communicator), end to end:
 * N ranks × A accumulation steps against 1 rank × N·A, the overlapped exchange and ZeRO-1 against
 * the plain all-reduce (bit for bit), resume across rank counts (ZeRO-1 included), and a rank
 * killed mid-run (the launcher stops the others within seconds, names the rank, and the last
 * checkpoint loads). The GPU twin (NCCL, --gpus 1) is test/gpu/nccl.gpu.test.ts.
 *
 * Tolerance: the first step's loss is bit-identical (same weights, same tokens, losses summed in
 * the same order) and every loss within 1e-5 relative. N ranks differ from 1 rank only in that
 * each rank's summed weight gradient is rounded to FP32 before the ranks' sums are added, where
 * the 1-rank GEMM adds each micro-batch's product onto the running sum in double and rounds
 * once. With NVFP4/BF16 operands and 32-token reductions those partial sums are nearly always
 * exact in FP32, so most steps are bit-identical (printed: 7 of 8 steps for A = 1, 8 of 8 for
 * A = 2 when this was written; the fp32 recipe differs by ~4e-9 from step 2 on).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { Fp4lmError } from "../src/errors.ts";
import { parallelOverrides } from "../src/cli/train-command.ts";
import { launchDataParallel } from "../src/parallel/launch.ts";
import { buildConfig } from "../src/train/config.ts";
import { readMetrics } from "../src/train/metrics.ts";
import { readTelemetry } from "../src/nn/telemetry.ts";
import { train } from "../src/train/train.ts";
import { killRankMidRun } from "./kill-rank.ts";


const TINY = [
  "log=quiet", "data.tokenizer=byte", "model.dModel=32", "model.nLayers=2", "model.nHeads=2", "model.nKvHeads=1", "model.dFF=64",
  "model.seqLen=16", "batchSize=2", "steps=8", "evalEvery=4", "evalBatches=2", "schedule.warmupSteps=2", "device=cpu", "threads=1",
];
const cfgOf = (dir: string, extra: string[]) => buildConfig([`outDir=${dir}`, ...TINY, ...extra]);
const stepLosses = (dir: string, name: string) => readMetrics(join(dir, name, "metrics.jsonl")).filter((l) => l.type === "step").map((l) => l.loss as number);
const quiet = { log: () => {} };

function assertClose(got: number[], want: number[], what: string): number {
  assert.equal(got.length, want.length, `${what}: ${got.length} steps, expected ${want.length}`);
  assert.equal(got[0], want[0], `${what}: the first step's loss (same weights, same tokens) must be bit-identical`);
  const rel = Math.max(...got.map((g, i) => Math.abs(g - want[i]) / Math.abs(want[i])));
  assert.ok(rel <= 1e-5, `${what}: max relative loss difference ${rel}; got ${got} want ${want}`);
  return got.filter((g, i) => g === want[i]).length;
}

test("--gpus N becomes N CUDA ranks; --ranks N keeps the device; conflicting flags are refused", () => {
  assert.deepEqual(parallelOverrides(["steps=3", "gpus=4"]), [["steps=3", "ranks=4", "device=cuda"], true]);
  assert.deepEqual(parallelOverrides(["ranks=2", "device=cpu"]), [["ranks=2", "device=cpu"], true]);
  assert.deepEqual(parallelOverrides(["steps=3"]), [["steps=3"], false]);
  assert.throws(() => parallelOverrides(["gpus=2", "device=cpu"]), (e: unknown) => e instanceof Fp4lmError && /--ranks N --device=cpu/.test(e.message));
  assert.throws(() => parallelOverrides(["gpus=2", "ranks=2"]), Fp4lmError);
  assert.throws(() => buildConfig(["ranks=0"]), /ranks must be a positive integer/);
});

test("2 CPU ranks × A accumulation steps train like 1 rank × 2A (A = 1, 2); only rank 0 writes, telemetry included", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-dp-"));
  try {
    for (const A of [1, 2]) {
      const one = train(cfgOf(dir, [`name=one-${A}`, `gradAccum=${2 * A}`, "telemetryEvery=4"]));
      const r = await launchDataParallel(cfgOf(dir, [`name=two-${A}`, "ranks=2", `gradAccum=${A}`, "telemetryEvery=4"]), quiet);
      assert.equal(r.pids.length, 2);
      const two = stepLosses(dir, `two-${A}`);
      const same = assertClose(two, one.losses, `2 ranks × ${A} vs 1 rank × ${2 * A}`);
      const evals = readMetrics(join(dir, `two-${A}`, "metrics.jsonl")).filter((l) => l.type === "eval").map((l) => l.val_loss as number);
      assertClose(evals, one.evals.map((e) => e.valLoss), `val_loss, A = ${A}`);
      assert.equal(r.finalValLoss, evals[evals.length - 1]);
      assert.equal(readMetrics(join(dir, `two-${A}`, "metrics.jsonl")).filter((l) => l.type === "run").length, 1, "one writer");
      const ck = loadCheckpoint(join(dir, `two-${A}`, "checkpoint.safetensors"));
      assert.deepEqual(ck.state.loader, loadCheckpoint(join(dir, `one-${A}`, "checkpoint.safetensors")).state.loader, "the loader position does not depend on the rank count");
      // telemetry measures the step's global micro-batch 0, which is rank 0's first: the same lines, written once
      const tel = (name: string) => readTelemetry(join(dir, name, "telemetry.jsonl")).filter((l) => l.step === 0);
      assert.ok(tel(`one-${A}`).length > 0);
      assert.deepEqual(tel(`two-${A}`), tel(`one-${A}`));
      assert.equal(readTelemetry(join(dir, `two-${A}`, "telemetry.jsonl")).length, readTelemetry(join(dir, `one-${A}`, "telemetry.jsonl")).length);
      console.log(`# 2 ranks × ${A} vs 1 × ${2 * A}: ${same}/${two.length} step losses bit-identical`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("2 CPU ranks: the overlapped exchange (buckets sent during the backward pass) and ZeRO-1 give the plain all-reduce's losses and weights bit for bit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-dp-overlap-"));
  try {
    const runs: [string, string[]][] = [
      ["plain", ["parallel.overlap=false"]],
      ["overlap", []],
      // 4 KiB buckets: the tiny model's 12 parameters go out in several buckets during the backward pass
      ["overlap-small", ["parallel.bucketMB=0.004"]],
      ["zero1", ["parallel.zero1=true", "parallel.bucketMB=0.004"]],
      ["zero1-after", ["parallel.zero1=true", "parallel.overlap=false"]],
    ];
    for (const [name, extra] of runs) await launchDataParallel(cfgOf(dir, [`name=${name}`, "ranks=2", "gradAccum=2", "checkpointEvery=4", ...extra]), quiet);
    const steps = (name: string) => readMetrics(join(dir, name, "metrics.jsonl")).filter((l) => l.type === "step");
    const ckpt = (name: string) => loadCheckpoint(join(dir, name, "checkpoint.safetensors"));
    const plain = steps("plain"), plainCk = ckpt("plain");
    for (const [name] of runs.slice(1)) {
      const got = steps(name);
      assert.deepEqual(got.map((l) => l.loss), plain.map((l) => l.loss), `${name}: losses`);
      // ZeRO-1's norm sums each rank's shards, then the ranks: another order of the same double sums
      const rel = Math.max(...got.map((l, i) => Math.abs((l.grad_norm as number) / (plain[i].grad_norm as number) - 1)));
      assert.ok(name.startsWith("zero1") ? rel <= 1e-12 : rel === 0, `${name}: grad norms differ by ${rel} relative`);
      const ck = ckpt(name);
      for (const k of ["params", "m", "v"] as const) ck[k].forEach((t, i) => assert.deepEqual(t.data, plainCk[k][i].data, `${name}: checkpoint ${k} ${t.name}`));
      console.log(`# 2 ranks × 2, ${name} vs the plain all-reduce: ${got.length} losses, final weights and moments bit-identical; grad norms within ${rel.toExponential(1)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ZeRO-1 resumes across rank counts and to and from the plain optimizer: 2 ranks ZeRO-1 → 1 rank, 1 rank → 3 ranks ZeRO-1", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-dp-zero1-"));
  try {
    const full = train(cfgOf(dir, ["name=full", "gradAccum=6", "steps=6", "evalEvery=3"]));
    await launchDataParallel(cfgOf(dir, ["name=a", "ranks=2", "gradAccum=3", "steps=6", "evalEvery=3", "checkpointEvery=3", "parallel.zero1=true"]), { ...quiet, stopAfter: 3 });
    const rest = train(cfgOf(dir, ["name=a", "gradAccum=6", "steps=6", "evalEvery=3", "checkpointEvery=3", "resume"]));
    assertClose(rest.losses, full.losses.slice(3), "2 ranks ZeRO-1, then 1 rank");
    train(cfgOf(dir, ["name=b", "gradAccum=6", "steps=6", "evalEvery=3", "checkpointEvery=3"]), { stopAfter: 3 });
    await launchDataParallel(cfgOf(dir, ["name=b", "ranks=3", "gradAccum=2", "steps=6", "evalEvery=3", "checkpointEvery=3", "parallel.zero1=true", "resume"]), quiet);
    assertClose(stepLosses(dir, "b"), full.losses, "1 rank, then 3 ranks ZeRO-1");
    // the checkpoint 3 ZeRO-1 ranks wrote holds the full moments: the same as 1 rank's to rounding
    const [got, want] = [loadCheckpoint(join(dir, "b", "checkpoint.safetensors")), loadCheckpoint(join(dir, "full", "checkpoint.safetensors"))];
    got.m.forEach((t, i) => {
      const w = want.m[i].data;
      const err = Math.max(...t.data.map((x, j) => Math.abs(x - w[j]) / (Math.abs(w[j]) + 1e-6)));
      assert.ok(err <= 1e-3, `${t.name}: moments differ by ${err} relative`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("resume across rank counts: 1 rank → 2 ranks and 2 ranks → 1 rank continue the run; another global batch is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-dp-resume-"));
  try {
    const full = train(cfgOf(dir, ["name=full", "gradAccum=2"]));
    // 1 rank × 2 stops after 4 steps; 2 ranks × 1 continue from its checkpoint
    train(cfgOf(dir, ["name=a", "gradAccum=2", "checkpointEvery=4"]), { stopAfter: 4 });
    await launchDataParallel(cfgOf(dir, ["name=a", "ranks=2", "gradAccum=1", "checkpointEvery=4", "resume"]), quiet);
    assertClose(stepLosses(dir, "a"), full.losses, "1 rank, then 2 ranks");
    // 2 ranks × 1 stop after 4 steps; 1 rank × 2 continues
    await launchDataParallel(cfgOf(dir, ["name=b", "ranks=2", "gradAccum=1", "checkpointEvery=4"]), { ...quiet, stopAfter: 4 });
    assert.equal(loadCheckpoint(join(dir, "b", "checkpoint.safetensors")).state.step, 4);
    const rest = train(cfgOf(dir, ["name=b", "gradAccum=2", "checkpointEvery=4", "resume"]));
    assertClose(rest.losses, full.losses.slice(4), "2 ranks, then 1 rank");
    // 2 ranks × 2 would be a global batch of 4 micro-batches, not 2
    await assert.rejects(launchDataParallel(cfgOf(dir, ["name=b", "ranks=2", "gradAccum=2", "resume", "steps=8"]), quiet),
      (e: unknown) => e instanceof Fp4lmError && /rank [01] .*exited with code 2.*global batch \(gradAccum × ranks: saved 2, now 4/s.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a rank killed mid-run: the launcher stops the others within seconds, names the rank, and the last checkpoint loads", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-dp-kill-"));
  try {
    const { pids, code, took, out, err, ckpt } = await killRankMidRun(dir, "k",
      ["--ranks=2", ...TINY.map((s) => `--${s}`), "--log=plain", "--steps=100000", "--checkpointEvery=2", "--evalEvery=100000"], 5, 60_000);
    assert.equal(pids.length, 2, `the launcher prints the ranks' pids: ${out}${err}`);
    assert.ok(existsSync(ckpt), `a checkpoint within 60 s: ${err}`);
    assert.equal(code, 2, err);
    assert.ok(took < 5000, `the launcher took ${took.toFixed(0)} ms to stop`);
    assert.match(err, new RegExp(`fp4lm: rank 1 \\(pid ${pids[1]}\\) was killed by SIGKILL; stopped all 2 ranks; the last checkpoint, .*checkpoint\\.safetensors, is intact`));
    assert.throws(() => process.kill(pids[0], 0), /ESRCH/, "rank 0 is gone too");
    const c = loadCheckpoint(ckpt);
    assert.ok(c.state.step >= 2 && c.state.step % 2 === 0, `checkpoint at step ${c.state.step}`);
    console.log(`# launcher exited ${took.toFixed(0)} ms after the kill; checkpoint at step ${c.state.step} loads`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
