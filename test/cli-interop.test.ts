/**
 * Export and import from the command line, end to end: a trained checkpoint exported to a
 * Hugging Face folder (FP32) and imported back evaluates to the same validation loss; the NVFP4
 * export lists what it quantized; `fp4lm train --init` continues from the imported weights. The
 * same for the hybrid (NemotronHForCausalLM).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "./run-cli.ts";

const TINY = ["--data.tokenizer=byte", "--model.dModel=32", "--model.nLayers=2", "--model.nHeads=2", "--model.nKvHeads=1", "--model.dFF=64",
  "--model.seqLen=16", "--batchSize=2", "--evalEvery=3", "--evalBatches=2", "--threads=1", "--log=quiet", "--device=cpu"];

test("train → export hf → import → eval gives the same loss; export nvfp4; train --init", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-cli-interop-"));
  try {
    assert.equal((await runCli(["train", `--outDir=${dir}`, "--name=a", "--steps=3", ...TINY])).code, 0);
    const ck = join(dir, "a", "checkpoint.safetensors");
    const ex = await runCli(["export", ck, "--format", "hf", "--dtype", "f32", "--out", join(dir, "hf")]);
    assert.equal(ex.code, 0, ex.err);
    assert.ok(existsSync(join(dir, "hf", "config.json")) && existsSync(join(dir, "hf", "model.safetensors")));
    assert.equal(JSON.parse(readFileSync(join(dir, "hf", "config.json"), "utf8")).architectures[0], "ArceeForCausalLM");
    const im = await runCli(["import", join(dir, "hf"), "--out", join(dir, "imported.safetensors"), "--seq-len", "16"]);
    assert.equal(im.code, 0, im.err);
    const e1 = await runCli(["eval", ck, "--batches", "3", "--json", "--recipe", "fp32"]);
    const e2 = await runCli(["eval", join(dir, "imported.safetensors"), "--batches", "3", "--json", "--recipe", "fp32"]);
    assert.equal(e1.code, 0, e1.err);
    assert.equal(e2.code, 0, e2.err);
    assert.equal(JSON.parse(e2.out).val_loss, JSON.parse(e1.out).val_loss, "the imported weights are the trained weights");
    const nv = await runCli(["export", ck, "--format", "nvfp4", "--out", join(dir, "nvfp4"), "--calib-batches", "1"]);
    assert.equal(nv.code, 0, nv.err);
    assert.match(nv.out, /6 NVFP4 linear layers, \d+ kept in BF16/);
    const q = JSON.parse(readFileSync(join(dir, "nvfp4", "hf_quant_config.json"), "utf8"));
    assert.equal(q.quantization.quant_algo, "NVFP4");
    assert.ok(q.quantization.exclude_modules.includes("lm_head"));
    const again = await runCli(["export", ck, "--format", "hf", "--out", join(dir, "hf")]);
    assert.equal(again.code, 2, "an existing export is not overwritten without --overwrite");
    const tr = await runCli(["train", `--outDir=${dir}`, "--name=b", "--steps=2", `--init=${join(dir, "a", "checkpoint.safetensors")}`, ...TINY.filter((a) => !a.startsWith("--model."))]);
    assert.equal(tr.code, 0, tr.err);
    assert.ok(existsSync(join(dir, "b", "checkpoint.safetensors")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("hybrid: train --model nemotronh-small → export hf (NemotronHForCausalLM) → import → eval gives the same loss; train --init continues", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-cli-interop-hybrid-"));
  const args = ["--data.tokenizer=byte", "--model.seqLen=16", "--batchSize=2", "--evalEvery=2", "--evalBatches=2", "--threads=1", "--log=quiet", "--device=cpu"];
  try {
    const tr = await runCli(["train", "--model", "nemotronh-small", `--outDir=${dir}`, "--name=h", "--steps=2", ...args]);
    assert.equal(tr.code, 0, tr.err);
    const ck = join(dir, "h", "checkpoint.safetensors");
    const ex = await runCli(["export", ck, "--format", "hf", "--dtype", "f32", "--out", join(dir, "hf")]);
    assert.equal(ex.code, 0, ex.err);
    const cfg = JSON.parse(readFileSync(join(dir, "hf", "config.json"), "utf8"));
    assert.deepEqual([cfg.architectures[0], cfg.model_type, cfg.hybrid_override_pattern], ["NemotronHForCausalLM", "nemotron_h", "M-M-M*-M-M-M-"]);
    const im = await runCli(["import", join(dir, "hf"), "--out", join(dir, "imported.safetensors")]);
    assert.equal(im.code, 0, im.err);
    const e1 = await runCli(["eval", ck, "--batches", "2", "--json", "--recipe", "fp32"]);
    const e2 = await runCli(["eval", join(dir, "imported.safetensors"), "--batches", "2", "--json", "--recipe", "fp32"]);
    assert.equal(e1.code, 0, e1.err);
    assert.equal(e2.code, 0, e2.err);
    assert.equal(JSON.parse(e2.out).val_loss, JSON.parse(e1.out).val_loss, "the imported weights are the trained weights");
    const nv = await runCli(["export", ck, "--format", "nvfp4", "--out", join(dir, "nvfp4")]);
    assert.equal(nv.code, 2);
    assert.match(nv.err, /is a hybrid .*--format hf/);
    const tr2 = await runCli(["train", `--outDir=${dir}`, "--name=h2", "--steps=1", `--init=${join(dir, "imported.safetensors")}`, ...args]);
    assert.equal(tr2.code, 0, tr2.err);
    assert.ok(existsSync(join(dir, "h2", "checkpoint.safetensors")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
