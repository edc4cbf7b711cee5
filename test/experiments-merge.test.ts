/**
 * scripts/experiments-merge.ts: job folders as the GPU machine leaves them (SUITE-HORIZON/JOB/SUITE/)
 * merge into one report per suite and horizon, run folders are kept small (config, precision,
 * metrics as brotli), a reused seed points at the suite that trained it, and a second merge adds
 * to what is there.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { brotliDecompressSync } from "node:zlib";
import { runSuite, type SuiteResult } from "../src/experiments/runner.ts";

const TINY = [
  "data.tokenizer=byte", "model.dModel=32", "model.nLayers=2", "model.nHeads=2", "model.nKvHeads=1", "model.dFF=64", "model.seqLen=16",
  "batchSize=2", "evalEvery=2", "evalBatches=2", "schedule.warmupSteps=1", "threads=1",
];

test("experiments-merge: job folders → one report per suite and horizon, small run folders, reused seeds point home", () => {
  const root = mkdtempSync(join(tmpdir(), "fp4lm-merge-"));
  try {
    const jobs = join(root, "jobs"), out = join(root, "experiments");
    const run = (suite: string, job: string, seed: number, only: string[], reuse: string[] = []) =>
      runSuite(suite, { steps: 3, seeds: 1, outDir: join(jobs, `${suite}-short`, job), device: "cpu", extra: [...TINY, `seed=${seed}`], only, reuse });
    run("precision", "s0", 1, ["bf16", "nvfp4"]);
    run("precision", "s1", 2, ["bf16", "nvfp4"]);
    run("switch", "s0-forward", 1, ["forward"]);
    run("switch", "s0-bf16+nvfp4", 1, ["bf16", "nvfp4"], [join(jobs, "precision-short", "s0")]);
    const merge = (...roots: string[]) => spawnSync(process.execPath, ["--import", "tsx", "scripts/experiments-merge.ts", "--out", out, ...roots], { encoding: "utf8", cwd: resolve(import.meta.dirname, "..") });
    const m = merge(jobs);
    assert.equal(m.status, 0, m.stderr);
    assert.match(m.stdout, /precision-short: 2 runs with results \(2 job folders merged\)/);
    const p = JSON.parse(readFileSync(join(out, "precision-short", "results.json"), "utf8")) as SuiteResult;
    assert.deepEqual(p.runs.map((r) => r.seeds.map((s) => s.seed)), [[1, 2], [1, 2]]);
    const bf16 = p.runs[0].seeds[0];
    assert.equal(bf16.dir, join("runs", "bf16-seed1"));
    const dir = join(out, "precision-short", bf16.dir);
    assert.ok(existsSync(join(dir, "config.json")) && existsSync(join(dir, "precision.json")) && !existsSync(join(dir, "checkpoint.safetensors")));
    const metrics = brotliDecompressSync(readFileSync(join(dir, "metrics.jsonl.br"))).toString();
    assert.equal(metrics, readFileSync(join(jobs, "precision-short", "s0", "precision", "bf16-seed1", "metrics.jsonl"), "utf8"));
    // switch: its own forward run, and the baselines it took from precision
    const sw = JSON.parse(readFileSync(join(out, "switch-short", "results.json"), "utf8")) as SuiteResult;
    const seedOf = (n: string) => sw.runs.find((r) => r.name === n)!.seeds[0];
    assert.equal(seedOf("nvfp4").reusedFrom, "precision/nvfp4");
    assert.equal(seedOf("nvfp4").dir, join("..", "precision-short", "runs", "nvfp4-seed1"));
    assert.equal(seedOf("forward").dir, join("runs", "forward-seed1"));
    assert.ok(existsSync(join(out, "switch-short", "report.md")));
    // a later merge adds seeds to what is committed
    run("precision", "s2", 3, ["bf16"]);
    rmSync(join(jobs, "precision-short", "s0"), { recursive: true });
    rmSync(join(jobs, "precision-short", "s1"), { recursive: true });
    assert.equal(merge(jobs).status, 0);
    const p2 = JSON.parse(readFileSync(join(out, "precision-short", "results.json"), "utf8")) as SuiteResult;
    assert.deepEqual(p2.runs.find((r) => r.name === "bf16")!.seeds.map((s) => s.seed), [1, 2, 3]);
    assert.ok(existsSync(join(out, "precision-short", "runs", "bf16-seed3", "metrics.jsonl.br")));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
