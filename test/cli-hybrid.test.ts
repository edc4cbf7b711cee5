/**
 * `fp4lm train --model nemotronh-small --recipe nvfp4` from the command line (shortened: fewer
 * steps and tokens), then eval and sample on its checkpoint.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "./run-cli.ts";
import { readMetrics } from "../src/train/metrics.ts";

test("train --model nemotronh-small --recipe nvfp4: the hybrid's table, falling loss, a checkpoint that eval and sample read", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-cli-hybrid-"));
  try {
    const r = await runCli(["train", "--model", "nemotronh-small", "--recipe", "nvfp4", `--outDir=${dir}`, "--name=h", "--data.tokenizer=byte",
      "--model.seqLen=32", "--batchSize=4", "--steps=8", "--evalEvery=4", "--evalBatches=2", "--schedule.lr=0.01", "--schedule.warmupSteps=1",
      "--threads=1", "--log=plain", "--logEvery=1", "--device=cpu"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /model hybrid M-M-M\*-M-M-M- \(13 blocks\) d=64 .*mamba groups=2 state=16 head=8 expand=2 conv=4 chunk=16 T=32/);
    assert.match(r.out, /blocks\.0\.mamba\.in_proj\s+nvfp4 1x16 RTN × nvfp4 16x16 RTN/);
    assert.match(r.out, /blocks\.5\.attn\.qkv\s+nvfp4/);
    assert.match(r.out, /blocks\.11\.mamba\.out_proj\s+bf16\s+bf16\s+bf16\s+last 2 block\(s\) in BF16/);
    const steps = readMetrics(join(dir, "h", "metrics.jsonl")).filter((l) => l.type === "step").map((l) => l.loss as number);
    assert.equal(steps.length, 8);
    assert.ok(steps[7] < steps[0] - 0.5, `the loss falls: ${steps.map((l) => l.toFixed(3)).join(" ")}`);
    const ck = join(dir, "h", "checkpoint.safetensors");
    const e = await runCli(["eval", ck, "--batches", "2", "--json"]);
    assert.equal(e.code, 0, e.err);
    assert.ok(JSON.parse(e.out).val_loss < steps[0], e.out);
    const s = await runCli(["sample", ck, "--prompt", "Call me", "--tokens", "8", "--topk", "1"]);
    assert.equal(s.code, 0, s.err);
    assert.ok(s.out.startsWith("Call me"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
