import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend } from "../backends/cpu/cpu-backend.ts";
import type { Tensor } from "../backends/backend.ts";
import { RunContext } from "../nn/context.ts";
import { createModel } from "../nn/create-model.ts";
import { buildConfig } from "../train/config.ts";
import type { Communicator } from "./communicator.ts";
import { DataParallel } from "./data-parallel.ts";
import { Zero1Optimizer } from "./zero1.ts";

/** A rank 0 of 2 whose communicator only records what it is asked, in order. */
function spy(log: string[], names: Map<Tensor, string>): Communicator {
  const which = (ts: readonly Tensor[]) => ts.map((t) => names.get(t)).join(" ");
  return {
    rank: 0, size: 2, description: "spy",
    allReduceSumAsync: (b) => void log.push(`sum ${which(b)}`),
    reduceScatterSumAsync: (b) => void log.push(`scatter ${which(b)}`),
    flush: () => void log.push("flush"),
    allGatherShards: (b) => void log.push(`gather ${which(b)}`),
    allReduceSum: (ts) => void log.push(`allReduceSum ${which(ts)}`),
    allReduceMax: () => {},
    broadcast: () => {},
    allGather: (v) => { log.push("losses"); return Float64Array.from([...v, ...v]); },
    barrier: () => {},
    close: () => {},
  };
}

test("overlap: on the last micro-batch the backward pass hands each bucket over as soon as its gradients are final, in backward order", () => {
  const cfg = buildConfig(["data.tokenizer=byte", "model.dModel=32", "model.nLayers=3", "model.nHeads=2", "model.nKvHeads=1", "model.dFF=64", "model.seqLen=16", "batchSize=2", "recipe=bf16"]);
  cfg.model.vocabSize = 256;
  const be = new CpuBackend({ threads: 1 });
  try {
    const model = createModel(new RunContext(be, cfg.recipe, cfg.seed), cfg.model, 2, 16);
    const names = new Map<Tensor, string>(model.params.map((p) => [p.grad, p.name]));
    const ids = Int32Array.from({ length: 32 }, (_, i) => (i * 37) % 256);
    const micro = (dp: DataParallel, m: number, log: string[]) => {
      const hook = dp.gradsReady(m, 2);
      model.step(be.tokens(ids, [2, 16]), be.tokens(ids, [2, 16]), true, 0.25, hook && ((ps) => { log.push(`ready ${ps.map((p) => p.name).join(" ")}`); hook(ps); }));
    };
    // one block's parameters per bucket (a block is ~37 KiB): 0.04 MiB ≈ 42 KB
    for (const zero1 of [false, true]) {
      const log: string[] = [];
      const dp = new DataParallel(0, 2, undefined, () => spy(log, names), { overlap: true, zero1, bucketMB: 0.04 });
      dp.attach(be, () => {});
      const opt = dp.optimizer(be, model.params, cfg.optim);
      assert.equal(opt instanceof Zero1Optimizer, zero1);
      micro(dp, 0, log);
      assert.equal(log.length, 0, "the first micro-batch's gradients are not final");
      micro(dp, 1, log);
      const sent = log.filter((l) => !l.startsWith("ready"));
      const kind = zero1 ? "scatter" : "sum";
      assert.ok(sent.length >= 4 && sent.every((l) => l.startsWith(kind)), log.join("\n"));
      // every parameter once, in the reverse of model order
      assert.deepEqual(sent.flatMap((l) => l.split(" ").slice(1)), model.params.map((p) => p.name).reverse());
      // the first bucket (head, final norm, part of the last block) goes out before the middle block's backward; the embedding's comes last
      assert.ok(log.indexOf(sent[0]) < log.findIndex((l) => l.startsWith("ready blocks.1.")), log.join("\n"));
      assert.equal(log[log.length - 1], `${kind} embed.weight`);
      assert.equal(dp.reduce(model.params, [1, 3]), 2);
      assert.deepEqual(log.slice(-2), ["flush", "losses"]);
    }
    // the plain twin: nothing during the backward pass, one bucketed all-reduce after it
    const log: string[] = [];
    const dp = new DataParallel(0, 2, undefined, () => spy(log, names), { overlap: false });
    dp.attach(be, () => {});
    dp.optimizer(be, model.params, cfg.optim);
    micro(dp, 1, log);
    assert.equal(log.length, 0);
    dp.reduce(model.params, [1, 3]);
    // the gradients first (the norm is taken from them before the losses are read), then the losses
    assert.deepEqual(log, [`allReduceSum ${model.params.map((p) => p.name).reverse().join(" ")}`, "losses"]);
  } finally {
    be.close();
  }
});
