/**
 * scripts/gpu-experiments.ts, the GPU machine's experiment job runner: job specs parse into the
 * `fp4lm experiment` arguments of their suite, horizon and seed, and bad specs say what is expected.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { HORIZONS, jobArgs, parseJob } from "../scripts/gpu-experiments.ts";

test("job specs: SUITE/HORIZON/SEED[/RUNS] → the experiment command of that horizon's preset and token budget", () => {
  const j = parseJob("switch/long/1/forward,backward");
  assert.deepEqual([j.suite, j.horizon, j.seed, j.runs], ["switch", "long", 1, ["forward", "backward"]]);
  assert.equal(j.id, "switch-long/s1-forward+backward");
  const args = jobArgs(j, "/o", "/d", ["--schedule.lr=1e-3"]);
  const after = (k: string) => args[args.indexOf(k) + 1];
  assert.equal(after("--model"), HORIZONS.long.model);
  assert.equal(after("--tokens-per-param"), "200");
  assert.equal(after("--only"), "forward,backward");
  assert.ok(args.includes("--seed=1338") && args.includes("--data.dir=/d") && args.at(-1) === "--schedule.lr=1e-3");
  assert.equal(parseJob("precision/short/0").runs.length, 0);
  assert.ok(!jobArgs(parseJob("precision/short/0"), "/o", "/d", []).includes("--only"));
  for (const bad of ["precision", "precision/medium/0", "precision/short/x"]) assert.throws(() => parseJob(bad), /expected SUITE\/HORIZON\/SEED/);
});
