/**
 * The training commands from the command line: train → eval → sample on a tiny model, a config
 * file, bad settings reported all at once, an existing run not overwritten by accident, and the
 * token picker of `fp4lm sample`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "./run-cli.ts";
import { pickToken } from "../src/cli/sample-command.ts";
import { readMetrics } from "../src/train/metrics.ts";

const run = runCli;

const TINY = ["--data.tokenizer=byte", "--model.dModel=32", "--model.nLayers=2", "--model.nHeads=2", "--model.nKvHeads=1", "--model.dFF=64",
  "--model.seqLen=16", "--batchSize=2", "--evalEvery=3", "--evalBatches=2", "--threads=1", "--log=plain", "--device=cpu"];

test("train (config file + overrides) → eval → sample; metrics, precision.json and checkpoint written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-cli-train-"));
  try {
    const cfgFile = join(dir, "cfg.json");
    writeFileSync(cfgFile, JSON.stringify({ recipe: "nvfp4", steps: 6, schedule: { lr: 0.01, warmupSteps: 1 }, recipe_ignored: undefined }));
    const r = await run(["train", "--config", cfgFile, `--outDir=${dir}`, "--name=a", "--recipe.bf16Last=0", ...TINY]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /blocks\.1\.mlp\.fc2\s+nvfp4 1x16 RTN × nvfp4 16x16 RTN/, "bf16Last=0 quantizes the last block");
    assert.match(r.out, /done: .*final val_loss \d+\.\d{4}/);
    const m = readMetrics(join(dir, "a", "metrics.jsonl"));
    assert.equal(m[0].type, "run");
    assert.equal((m[0].recipe as { name: string }).name, "nvfp4");
    assert.equal((m[0].config as { schedule: { lr: number } }).schedule.lr, 0.01);
    assert.deepEqual(m.filter((l) => l.type === "eval").map((l) => l.step), [3, 6]);
    assert.equal(m.filter((l) => l.type === "step").length, 6);
    const prec = JSON.parse(readFileSync(join(dir, "a", "precision.json"), "utf8"));
    assert.equal(prec.layers.find((l: { layer: string }) => l.layer === "head").why, "output head (never quantized)");

    const ck = join(dir, "a", "checkpoint.safetensors");
    const e = await run(["eval", ck, "--batches", "2", "--json"]);
    assert.equal(e.code, 0, e.err);
    const ev = JSON.parse(e.out);
    assert.equal(ev.step, 6);
    assert.ok(ev.val_loss > 1 && ev.val_loss < Math.log(257) + 0.5, `val_loss ${ev.val_loss}`);
    const s1 = await run(["sample", ck, "--prompt", "The whale", "--tokens", "12", "--topk", "1"]);
    const s2 = await run(["sample", ck, "--prompt", "The whale", "--tokens", "12", "--topk", "1"]);
    assert.equal(s1.code, 0, s1.err);
    assert.ok(s1.out.startsWith("The whale"));
    assert.equal(s1.out, s2.out, "greedy decoding is deterministic");

    // the same name again without --resume/--overwrite is refused, and the run is left alone
    const again = await run(["train", `--outDir=${dir}`, "--name=a", "--steps=2", ...TINY]);
    assert.equal(again.code, 2);
    assert.match(again.err, /already holds a run; pass --resume to continue it, --overwrite to replace it/);
    assert.ok(existsSync(ck));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad settings: one error listing all of them, exit 2, nothing written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-cli-bad-"));
  try {
    const r = await run(["train", `--outDir=${dir}`, "--model.nHeads=5", "--recipe.rht.size=12", "--stepz=3"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /bad training config/);
    assert.match(r.err, /unknown setting 'stepz'/);
    assert.match(r.err, /rht\.size must be a power of two/);
    assert.match(r.err, /nHeads \(5\) must divide model\.dModel/);
    assert.ok(!existsSync(join(dir, "run")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pickToken: greedy = argmax; top-k samples only among the k best, in proportion to exp(logit/T)", () => {
  const logits = Float32Array.from([0.1, 2.0, -1.0, 1.5, 0.3]);
  assert.equal(pickToken(logits, 1, 1, 0.99), 1);
  assert.equal(pickToken(logits, 5, 0, 0.5), 1);
  const counts = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const t = pickToken(logits, 2, 1, (i + 0.5) / 1000);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), [1, 3]);
  const p1 = Math.exp(2.0) / (Math.exp(2.0) + Math.exp(1.5));
  assert.ok(Math.abs(counts.get(1)! / 1000 - p1) < 0.002, `P(1) ${counts.get(1)! / 1000} vs ${p1}`);
});
