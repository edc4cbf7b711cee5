/**
 * The experiment suites end to end on a tiny CPU model (2 blocks of d 32, bytes, 4 steps): every
 * suite's run list builds, every suite runs and writes a complete report (results.json, report.md
 * with the table and the claim line, report.html with inline SVG, SVG files), a diverging run is
 * recorded and the suite goes on, and `--only` halves merge into the full suite's results; the
 * `layers` suite's telemetry and every suite's downstream-task table reach the report; the GPU
 * presets and the WSD schedule plan as documented.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { experimentCommand } from "../cli/experiment-command.ts";
import { reportCommand } from "../cli/report-command.ts";
import { evalCommand } from "../cli/eval-command.ts";
import { MODEL_PRESETS, parameterCount } from "../nn/model-config.ts";
import { readTelemetry, summarizeTelemetry } from "../nn/telemetry.ts";
import { readShard } from "../data/shards.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { buildConfig } from "../train/config.ts";
import { readMetrics } from "../train/metrics.ts";
import { gemmError, mergeResults, runTelemetry, sensitivity, summarize, verdict, writeReport } from "./report.ts";
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
  const common = ["--steps", "4", "--seeds", "1", "--out", out, "--device", "cpu", "--task-items", "3", ...TINY_CLI];
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

test("--reuse takes seeds another suite trained identically; --tokens-per-param sizes the runs", (t) => {
  quiet(t);
  const precision = JSON.parse(readFileSync(join(root, "all", "precision", "results.json"), "utf8")) as SuiteResult;
  const sw = runSuite("switch", opts("reuse", { only: ["bf16", "nvfp4", "forward"], reuse: [join(root, "all", "precision")] }));
  const seed = (r: SuiteResult, n: string) => r.runs.find((x) => x.name === n)!.seeds[0];
  for (const n of ["bf16", "nvfp4"]) {
    assert.equal(seed(sw, n).reusedFrom, `precision/${n}`);
    assert.equal(seed(sw, n).finalValLoss, seed(precision, n).finalValLoss, "the same training gave the same numbers");
    assert.ok(existsSync(join(seed(sw, n).dir, "metrics.jsonl")), "the reused seed points at the run folder that trained it");
  }
  assert.equal(seed(sw, "forward").reusedFrom, undefined, "a recipe no earlier suite ran is trained");
  assert.ok(existsSync(join(root, "reuse", "switch", seed(sw, "forward").dir, "metrics.jsonl")));
  assert.ok(readFileSync(join(root, "reuse", "switch", "report.md"), "utf8").includes("its numbers reused"));
  // a folder of suite folders: the switch suite there trained 'forward' the same way
  const again = runSuite("switch", opts("reuse2", { only: ["forward"], reuse: [join(root, "all")] }));
  assert.equal(seed(again, "forward").reusedFrom, "switch/forward");
  // another length is another training: nothing reused
  const longer = runSuite("switch", opts("reuse-longer", { steps: 5, only: ["bf16"], reuse: [join(root, "all", "precision")] }));
  assert.equal(seed(longer, "bf16").reusedFrom, undefined);
  assert.throws(() => runSuite("switch", opts("x", { reuse: [join(root, "nowhere")] })), /--reuse .*nowhere: no such folder/);

  const plan = planSuite("precision", { tokensPerParam: 20, outDir: root, extra: TINY });
  const nonEmb = plan.runs[0].result.nonEmbeddingParams;
  assert.equal(plan.setup.steps, Math.round((20 * nonEmb) / plan.setup.tokensPerStep));
  assert.throws(() => planSuite("precision", { tokensPerParam: 20, steps: 3, outDir: root, extra: TINY }), /not --steps and --tokens-per-param/);
});

test("the layers suite records telemetry: per-layer means in results.json, plots, a table, the most sensitive layers", () => {
  const dir = join(root, "all", "layers");
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as SuiteResult;
  assert.equal(results.setup.telemetryEvery, 1, "about ten measurements per run: every step of 4");
  const none = results.runs.find((r) => r.name === "none")!;
  const tel = none.seeds[0].telemetry!;
  assert.deepEqual(tel.steps, [0, 1, 2, 3]);
  assert.equal(tel.layers.length, 2 * 4 + 1);
  // the stored means are the means of the run's telemetry.jsonl
  const lines = readTelemetry(join(dir, none.seeds[0].dir, "telemetry.jsonl"));
  const fc2 = lines.filter((l) => l.layer === "blocks.1.mlp.fc2" && l.gemm === "wgrad" && l.operand === "dY");
  assert.equal(fc2.length, 4);
  const stored = tel.layers.find((l) => l.layer === "blocks.1.mlp.fc2")!.ops["wgrad.dY"];
  assert.ok(Math.abs(stored[0] - fc2.reduce((a, l) => a + l.rel_err, 0) / 4) < 1e-3 * stored[0]);
  assert.equal(summarizeTelemetry(lines).length, 9 * 6);
  // the most sensitive layer named is the one with the largest Wgrad error among quantized block layers
  const layers = runTelemetry(none)!;
  const ranked = layers.filter((l) => l.layer.startsWith("blocks.") && !l.format.startsWith("bf16")).sort((a, b) => gemmError(b, "wgrad")! - gemmError(a, "wgrad")!);
  const sens = sensitivity(results)!;
  assert.ok(sens.includes(`run \`none\``), sens);
  assert.ok(sens.includes(`: ${ranked[0].layer} ${(100 * gemmError(ranked[0], "wgrad")!).toFixed(1)}%`), sens);
  assert.match(sens, /mean over the last block 1 \d+\.\d% vs the first block 0 \d+\.\d%: (agrees|disagrees)/);
  const md = readFileSync(join(dir, "report.md"), "utf8");
  assert.ok(md.includes("## Quantization telemetry") && md.includes(`**Layer sensitivity:** ${sens}.`));
  assert.ok(md.includes("| layer | precision (Fprop X) | Fprop X | Fprop W | Dgrad dY | Dgrad W | Wgrad dY | Wgrad X |"));
  assert.match(md, /\| blocks\.1\.mlp\.fc2 \| nvfp4 1x16 RTN \| \d+\.\d\d% \|/);
  for (const f of ["telemetry-wgrad.svg", "telemetry-fprop.svg"]) {
    const svg = readFileSync(join(dir, f), "utf8");
    assert.ok(md.includes(`](${f})`) && svg.includes("<path"), f);
    // one series per run that has telemetry (all seven; the BF16 baseline too)
    assert.equal(svg.match(/<path /g)!.length, 7, f);
  }
  // suites without telemetry write no telemetry section
  assert.ok(!readFileSync(join(root, "all", "precision", "report.md"), "utf8").includes("Quantization telemetry"));
});

test("downstream tasks: every seed scored, bits per byte consistent with the validation loss, a table in the report", () => {
  const r = runSuite("precision", opts("tasks", { only: ["bf16", "nvfp4"], tasks: ["bpb", "cloze", "gloss", "ending"], taskItems: 5 }));
  assert.deepEqual(r.setup.tasks?.names, ["bpb", "cloze", "gloss", "ending"]);
  assert.equal(r.setup.tasks?.items.ending, 5);
  assert.equal(r.setup.tasks?.items.gloss, 0);
  const bf = r.runs[0].seeds[0];
  for (const run of r.runs) {
    const t = run.seeds[0].tasks!;
    assert.equal(t.counts.ending, 5);
    assert.ok(t.ending! >= 0 && t.ending! <= 1 && t.cloze! >= 0 && t.cloze! <= 1);
    assert.equal(t.gloss, undefined, "no WordNet text in Moby Dick");
  }
  // the bf16 run is scored in its own precision on the validation windows: bpb = val_loss / ln 2 · tokens / bytes
  const data = join(root, "tasks", ".data");
  const prepared = join(data, readdirSync(data)[0]);
  const tok = loadTokenizer(join(prepared, "tokenizer.json"));
  const ids = readShard(join(prepared, "val.bin")).tokens;
  const T = 16, n = 2 * 2; // evalBatches 2 of B 2 windows
  let bytes = 0;
  for (let w = 0; w < n; w++) bytes += tok.decodeBytes(ids.subarray(w * T + 1, w * T + T + 1).filter((t) => t !== tok.eotToken)).length;
  const want = (bf.finalValLoss! / Math.LN2) * (n * T) / bytes;
  assert.ok(Math.abs(bf.tasks!.bpb! - want) < 1e-5 * want, `${bf.tasks!.bpb} vs ${want}`);
  const md = readFileSync(join(root, "tasks", "precision", "report.md"), "utf8");
  assert.ok(md.includes("## Downstream tasks"));
  assert.ok(md.includes("| run | bits/byte | cloze (greedy word) | sentence ending (4-way) |"), "no gloss column without gloss items");
  assert.match(md, /\| nvfp4 \| \d\.\d{4} \| \d+\.\d% \| \d+\.\d% \|/);
  assert.match(md, /tasks: gloss: the held-out text has no WordNet gloss lines/);
  // fp4lm eval --tasks builds the same items from the same held-out text: the same scores
  const logged: string[] = [];
  const ckpt = join(root, "tasks", "precision", "nvfp4-seed1337", "checkpoint.safetensors");
  const orig = console.log;
  console.log = (s: string) => { logged.push(s); };
  try {
    assert.equal(evalCommand([ckpt, "--tasks", "ending,cloze", "--items", "5", "--recipe", "bf16", "--json"]), 0);
    assert.equal(evalCommand([ckpt, "--tasks", "all", "--items", "5"]), 0);
  } finally {
    console.log = orig;
  }
  const j = JSON.parse(logged[0]) as { ending: number; cloze: number; counts: Record<string, number>; notes: string[] };
  const nv = r.runs[1].seeds[0].tasks!;
  assert.equal(j.ending, nv.ending);
  assert.equal(j.cloze, nv.cloze);
  assert.deepEqual(j.counts, { cloze: nv.counts.cloze, ending: 5 });
  assert.match(logged.slice(1).join("\n"), /task +score +over[\s\S]*bpb +\d\.\d{4} +bits per byte over \d+ held-out tokens[\s\S]*ending +\d+\.\d% +5 sentence endings, 4-way \(chance 25%\)[\s\S]*note: gloss:/);
  assert.throws(() => evalCommand([ckpt, "--tasks", "bpb", "--items", "0"]), /--items must be an integer ≥ 1/);
  // a run that diverged gets no scores
  const d = runSuite("precision", opts("tasks-div", { only: ["bf16"], tasks: ["bpb"], taskItems: 2, extra: [...TINY, "schedule.lr=1e30"] }));
  assert.equal(d.runs[0].seeds[0].tasks, undefined);
});

test("the CLI scores tasks by default, and --tasks none turns them off", (t) => {
  quiet(t);
  const out = join(root, "all");
  const ab = JSON.parse(readFileSync(join(out, "ablation", "results.json"), "utf8")) as SuiteResult;
  assert.deepEqual(ab.setup.tasks?.names, ["bpb", "cloze", "gloss", "ending"]);
  assert.ok(ab.runs.every((r) => r.seeds.every((x) => x.diverged || x.tasks?.counts.ending === 3)));
  assert.ok(readFileSync(join(out, "ablation", "report.md"), "utf8").includes("## Downstream tasks"));
  assert.equal(experimentCommand(["precision", "--steps", "2", "--out", join(root, "notasks"), "--only", "bf16", "--tasks", "none", ...TINY_CLI]), 0);
  const r = JSON.parse(readFileSync(join(root, "notasks", "precision", "results.json"), "utf8")) as SuiteResult;
  assert.equal(r.setup.tasks, undefined);
  assert.equal(r.runs[0].seeds[0].tasks, undefined);
  assert.throws(() => experimentCommand(["precision", "--tasks", "mmlu", ...TINY_CLI]), /unknown task 'mmlu'/);
});

test("GPU presets: exp-short ~20 and exp-long ≥ 200 tokens per non-embedding parameter (smaller model, within 10× the tokens); WSD decays over the last 15–20%", () => {
  const tokens: number[] = [];
  for (const [name, perParam] of [["exp-short", 20], ["exp-long", 200]] as const) {
    const p = MODEL_PRESETS[name];
    assert.equal(p.dModel / p.nHeads, 64, `${name}: head size 64`);
    assert.ok(p.nHeads > p.nKvHeads && p.nHeads % p.nKvHeads === 0, `${name}: GQA`);
    assert.equal(p.seqLen, 1024);
    const nonEmb = parameterCount({ ...p, vocabSize: 0 });
    tokens.push(nonEmb * perParam);
    const plan = planSuite("precision", { model: name, tokensPerParam: perParam, outDir: root, extra: ["batchSize=32"] });
    assert.ok(Math.abs(plan.setup.tokens / nonEmb - perParam) / perParam < 0.01, `${name}: ${plan.setup.tokens} tokens for ${nonEmb} parameters`);
    for (const recipe of ["nvfp4", "mxfp4", "fp8", "bf16"]) buildConfig([`model.preset=${name}`, `recipe=${recipe}`]);
    // every suite plans on it (the RHT sizes that do not divide its widths are skipped, not errors)
    for (const suite of Object.keys(SUITES)) planSuite(suite, { model: name, tokens: nonEmb * perParam, outDir: root });
  }
  assert.ok(tokens[1] > tokens[0] && tokens[1] < 10 * tokens[0], `the long horizon costs ${(tokens[1] / tokens[0]).toFixed(1)}× the short one's tokens`);
  assert.ok(parameterCount({ ...MODEL_PRESETS["exp-long"], vocabSize: 0 }) < parameterCount({ ...MODEL_PRESETS["exp-short"], vocabSize: 0 }), "the long horizon uses the smaller model");
  // the hybrid's precision suite (issue 8) sits next to exp-short: about as many parameters, every recipe trains
  const hy = planSuite("precision", { model: "exp-hybrid-short", tokensPerParam: 20, outDir: root, extra: ["batchSize=16"] });
  const ratio = hy.runs[0].result.nonEmbeddingParams / parameterCount({ ...MODEL_PRESETS["exp-short"], vocabSize: 0 });
  assert.ok(ratio > 0.9 && ratio < 1.1, `hybrid/Transformer parameters ${ratio.toFixed(3)}`);
  assert.deepEqual(hy.runs.map((r) => [r.result.name, r.result.skipped]), [["bf16", undefined], ["fp8", undefined], ["nvfp4", undefined], ["mxfp4", undefined]]);
  const long = planSuite("layers", { model: "exp-short", steps: 100, outDir: root });
  const blocks = (n: string) => long.runs.find((p) => p.run.name === n)!.result.bf16Blocks;
  assert.notDeepEqual(blocks("first-4"), blocks("last-4"), "6 blocks: the layer suite can tell first from last");
  // the runs' schedule is WSD; --schedule.decayFraction moves the decay start, and the switch suite with it
  const sw = planSuite("switch", { steps: 100, outDir: root, extra: [...TINY, "schedule.decayFraction=0.15"] });
  assert.equal(sw.runs[0].configs[0].schedule.kind, "wsd");
  assert.ok(sw.runs.find((p) => p.run.name === "forward")!.result.overrides.includes("recipe.precisionSwitch.atStep=85"));
});
