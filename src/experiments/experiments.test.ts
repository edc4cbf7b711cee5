/**
 * The experiment suites end to end on a tiny CPU model (2 blocks of d 32, bytes, 4 steps): every
 * suite's run list builds, every suite runs and writes a complete report (results.json, report.md
 * with the table and the claim line, report.html with inline SVG, SVG files), a diverging run is
 * recorded and the suite goes on, and `--only` halves merge into the full suite's results.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { experimentCommand } from "../cli/experiment-command.ts";
import { reportCommand } from "../cli/report-command.ts";
import { readMetrics } from "../train/metrics.ts";
import { mergeResults, summarize, verdict, writeReport } from "./report.ts";
import { lossSpike, planSuite, runSuite, type SuiteOptions, type SuiteResult } from "./runner.ts";
import { SUITES, getSuite } from "./suites.ts";

/** 2 blocks of d 32 on bytes, B·T = 32 tokens a step: every format's block rule holds, RHT 64/128 do not fit. */
const TINY = [
  "data.tokenizer=byte", "model.dModel=32", "model.nLayers=2", "model.nHeads=2", "model.nKvHeads=1", "model.dFF=64", "model.seqLen=16",
  "batchSize=2", "evalEvery=2", "evalBatches=2", "schedule.warmupSteps=1", "threads=1",
];
const TINY_CLI = TINY.map((kv) => `--${kv}`);
let root = "";
const quiet = (t: { mock: { method: (o: object, m: string, f: () => void) => unknown } }) => t.mock.method(console, "log", () => {});
const opts = (out: string, more: Partial<SuiteOptions> = {}): SuiteOptions => ({ steps: 4, seeds: 1, outDir: join(root, out), device: "cpu", extra: TINY, ...more });

before(() => { root = mkdtempSync(join(tmpdir(), "fp4lm-exp-")); });
after(() => rmSync(root, { recursive: true, force: true }));

/** The report files of a suite folder are complete and consistent with results.json. */
function checkReport(dir: string, runNames: string[]): SuiteResult {
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as SuiteResult;
  assert.deepEqual(results.runs.map((r) => r.name), runNames);
  const suite = getSuite(results.suite);
  const md = readFileSync(join(dir, "report.md"), "utf8");
  assert.ok(md.includes(`**The paper:** ${suite.claim}`), "claim line");
  const v = verdict(results);
  assert.match(v, /: (agrees|disagrees|partly agrees|inconclusive|agrees where|disagrees where)/);
  assert.ok(md.includes(`**This run:** ${v}.`), "verdict line");
  assert.ok(md.includes("| run | what | val loss | gap vs bf16 | diverged | tokens | params (non-emb.) | tokens/param |"), "table header");
  for (const n of runNames) assert.ok(md.includes(`| ${n}`), `table row ${n}`);
  const html = readFileSync(join(dir, "report.html"), "utf8");
  assert.ok(html.startsWith("<!doctype html>") && html.includes("<svg") && html.includes("</table>"));
  const svgs = readdirSync(dir).filter((f) => f.endsWith(".svg"));
  assert.ok(svgs.some((f) => f.startsWith("val-loss")) && svgs.some((f) => f.startsWith("gap")), svgs.join());
  for (const f of svgs) {
    const s = readFileSync(join(dir, f), "utf8").trim();
    assert.ok(s.startsWith("<svg") && s.endsWith("</svg>") && s.includes("<path"), f);
    assert.equal(s.match(/<svg/g)!.length, s.match(/<\/svg>/g)!.length, f);
    assert.ok(md.includes(`](${f})`), `report.md links ${f}`);
  }
  return results;
}

test("every suite's runs build and validate, on the tiny test model and on the tiny preset", () => {
  for (const suite of Object.values(SUITES)) {
    for (const extra of [TINY, []]) {
      const plan = planSuite(suite, { steps: 100, seeds: 2, outDir: root, extra });
      assert.deepEqual(plan.runs.map((p) => p.run.name), suite.runs.map((r) => r.name));
      assert.equal(plan.runs.filter((p) => p.result.baseline).length, 1, `${suite.name}: one baseline`);
      for (const p of plan.runs) {
        const r = p.result;
        assert.equal(p.configs.length, r.skipped || r.sameAs ? 0 : 2, `${suite.name}/${r.name}`);
        assert.deepEqual(p.configs.map((c) => c.seed), p.configs.length ? [1337, 1338] : []);
        assert.equal(r.steps, Math.round(100 * r.tokensFactor));
      }
    }
  }
  const tiny = (s: string) => new Map(planSuite(s, { steps: 4, outDir: root, extra: TINY }).runs.map((p) => [p.run.name, p.result]));
  // 2 blocks: 'last 4' is clamped, and it keeps the same blocks in BF16 as 'first 4'
  const layers = tiny("layers");
  assert.match(layers.get("last-4")!.notes.join(), /first 0 \+ last 4 .* has 2: clamped to first 0 \+ last 2/);
  assert.deepEqual(layers.get("first-4")!.bf16Blocks, [0, 1]);
  assert.deepEqual(layers.get("last-1")!.bf16Blocks, [1]);
  const rht = tiny("rht");
  assert.match(rht.get("size-64")!.skipped!, /size 64 does not divide wgrad B·T = 32/);
  assert.equal(rht.get("size-16")!.sameAs, "wgrad");
  assert.equal(rht.get("size-4")!.skipped, undefined);
  assert.equal(tiny("sr").get("all-backward")!.sameAs, "gradients");
  // the switch starts where WSD starts decaying: round(4 · (1 − 0.2)) = 3
  assert.ok(tiny("switch").get("forward")!.overrides.includes("recipe.precisionSwitch.atStep=3"));
  // the tiny preset (4 blocks, B·T = 512) fits every RHT size of the suite
  const preset = new Map(planSuite("rht", { outDir: root }).runs.map((p) => [p.run.name, p.result]));
  assert.equal(preset.get("size-128")!.skipped, undefined);
});

test("unknown suites and runs are usage errors that list the valid names", () => {
  assert.throws(() => getSuite("nope"), (e: unknown) => e instanceof UsageError && /precision, ablation, layers, sr, rht, switch, mxfp4-tokens/.test(e.message));
  assert.throws(() => planSuite("rht", { only: ["wgrad", "size-3"], extra: TINY }), (e: unknown) => e instanceof UsageError && /no run 'size-3'.*size-128/.test(e.message));
  assert.throws(() => experimentCommand(["nope"]), UsageError);
  assert.throws(() => experimentCommand(["precision", "--only", "fp16"]), /no run 'fp16'; its runs are bf16, fp8, nvfp4, mxfp4/);
  assert.throws(() => runSuite("precision", opts("bad", { extra: [...TINY, "outDir=x"] })), UsageError);
});

test("lossSpike: the first step above factor × the running minimum, after warmup", () => {
  const l = [5, 4, 3, 2.5, 5.5, 3];
  assert.deepEqual(lossSpike(l, 1, 2), { step: 4, loss: 5.5, min: 2.5 });
  assert.equal(lossSpike(l, 1, 2.5), undefined);
  assert.equal(lossSpike(l, 5, 2), undefined, "before `from` nothing counts");
  assert.equal(lossSpike(l, 0, 0), undefined, "factor 0 = off");
});

test("precision, layers, sr (2 seeds) and mxfp4-tokens run tiny and write complete reports", () => {
  const all = opts("all");
  const precision = runSuite("precision", all);
  checkReport(join(root, "all", "precision"), ["bf16", "fp8", "nvfp4", "mxfp4"]);
  // the gap in the report is (nvfp4 − bf16) / bf16 of the final validation losses
  const fin = (n: string) => precision.runs.find((r) => r.name === n)!.seeds[0].finalValLoss!;
  const nv = summarize(precision).find((s) => s.name === "nvfp4")!;
  assert.ok(Math.abs(nv.gap! - (100 * (fin("nvfp4") - fin("bf16"))) / fin("bf16")) < 1e-9);
  assert.match(verdict(precision), /^NVFP4 gap [+-]\d+\.\d\d% [<>≈] MXFP4 gap/);
  assert.equal(precision.runs[0].seeds[0].evals.length, 2);
  assert.equal(precision.setup.model.vocabSize, 257);

  const layers = runSuite("layers", all);
  checkReport(join(root, "all", "layers"), getSuite("layers").runs.map((r) => r.name));
  assert.match(verdict(layers), /both keep blocks 0, 1 in BF16.*inconclusive/);
  assert.match(readFileSync(join(root, "all", "layers", "report.md"), "utf8"), /`last-4`: asks for first 0 \+ last 4 blocks/);

  const sr = runSuite("sr", { ...all, seeds: 2 });
  checkReport(join(root, "all", "sr"), getSuite("sr").runs.map((r) => r.name));
  assert.deepEqual(sr.runs[1].seeds.map((s) => s.seed), [1337, 1338]);
  assert.notEqual(sr.runs[1].seeds[0].finalValLoss, sr.runs[1].seeds[1].finalValLoss, "seeds differ");
  assert.match(readFileSync(join(root, "all", "sr", "report.md"), "utf8"), /\| \+?-?\d\.\d\d% ± \d\.\d\d \|/);

  const mx = runSuite("mxfp4-tokens", all);
  checkReport(join(root, "all", "mxfp4-tokens"), getSuite("mxfp4-tokens").runs.map((r) => r.name));
  const x15 = mx.runs.find((r) => r.name === "mxfp4-x1.50")!;
  assert.equal(x15.seeds[0].steps, 6);
  assert.equal(x15.tokens, 6 * 32);
  assert.equal(mx.runs.find((r) => r.name === "mxfp4-x1.36")!.sameAs, "mxfp4-x1.25", "both round to 5 steps");
});

test("ablation, rht (--only) and switch run through the CLI", (t) => {
  quiet(t);
  const out = join(root, "all");
  const common = ["--steps", "4", "--seeds", "1", "--out", out, "--device", "cpu", ...TINY_CLI];
  assert.equal(experimentCommand(["ablation", ...common]), 0);
  const ab = checkReport(join(out, "ablation"), getSuite("ablation").runs.map((r) => r.name));
  assert.match(verdict(ab), /^base (diverged|did not diverge).*cumulative gaps .* → .* additions narrowed the gap; removing each .* widened it in \d of 4/);

  assert.equal(experimentCommand(["rht", ...common, "--only=bf16,wgrad,fprop", "dgrad", "none", "size-16", "size-128"]), 0);
  const rht = checkReport(join(out, "rht"), ["bf16", "wgrad", "fprop", "dgrad", "none", "size-16", "size-128"]);
  assert.match(verdict(rht), /no size above 16 ran/);
  assert.deepEqual(rht.runs.find((r) => r.name === "size-128")!.seeds, []);

  assert.equal(experimentCommand(["switch", ...common]), 0);
  checkReport(join(out, "switch"), getSuite("switch").runs.map((r) => r.name));
  const sw = readMetrics(join(out, "switch", "forward-seed1337", "metrics.jsonl")).filter((l) => l.type === "switch");
  assert.deepEqual(sw.map((l) => l.step), [3]);
});

test("a diverging run (lr 1e30) is recorded as diverged and the suite goes on", () => {
  const r = runSuite("precision", opts("diverge", { only: ["bf16", "nvfp4"], extra: [...TINY, "schedule.lr=1e30"] }));
  for (const run of r.runs) {
    assert.equal(run.seeds.length, 1);
    assert.ok(run.seeds[0].diverged, run.name);
    assert.ok(run.seeds[0].diverged!.step >= 1 && run.seeds[0].diverged!.step < 4);
  }
  const dir = join(root, "diverge", "precision");
  const md = readFileSync(join(dir, "report.md"), "utf8");
  assert.match(md, /\| nvfp4 \| .* \| yes \(step \d\) \|/);
  assert.match(md, /`nvfp4` seed 1337 diverged at step \d: step \d: /);
  assert.match(verdict(r), /mxfp4 are not in these results/);
  assert.ok(readFileSync(join(dir, "report.html"), "utf8").includes("<svg"));
});

test("two --only halves merge into the full suite's report; a second --only into the same folder accumulates", (t) => {
  quiet(t);
  const full = JSON.parse(readFileSync(join(root, "all", "precision", "results.json"), "utf8")) as SuiteResult;
  runSuite("precision", opts("h1", { only: ["bf16", "fp8"] }));
  runSuite("precision", opts("h2", { only: ["mxfp4", "nvfp4"] }));
  const halves = [join(root, "h1", "precision"), join(root, "h2", "precision")];
  const merged = mergeResults(halves);
  assert.deepEqual(merged.runs.map((r) => r.name), full.runs.map((r) => r.name));
  // same seeds, same data order: the halves' numbers are the full run's
  assert.deepEqual(merged.runs.map((r) => r.seeds[0].finalValLoss), full.runs.map((r) => r.seeds[0].finalValLoss));
  assert.equal(verdict(merged), verdict(full));
  const out = join(root, "merged");
  assert.equal(reportCommand([...halves, "--out", out]), 0);
  const m = checkReport(out, full.runs.map((r) => r.name));
  assert.ok(existsSync(join(out, m.runs[0].seeds[0].dir, "metrics.jsonl")), "run folders are found from the merged report");
  assert.throws(() => reportCommand(halves), /needs --out/);
  assert.throws(() => mergeResults([halves[0], join(root, "all", "sr")]), /cannot merge suite 'sr'/);
  assert.throws(() => mergeResults([root]), /no results.json/);

  runSuite("precision", opts("h1", { only: ["nvfp4", "mxfp4"] }));
  checkReport(halves[0], full.runs.map((r) => r.name));
  // rewriting a report in place gives the same results
  writeReport(join(root, "rewrite"), merged);
  assert.deepEqual(JSON.parse(readFileSync(join(root, "rewrite", "results.json"), "utf8")).runs.map((r: { name: string }) => r.name), full.runs.map((r) => r.name));
});
