/**
 * A suite's report: `results.json`, `report.md` and a self-contained `report.html` (SVGs inline),
 * plus the SVG plots as files: validation loss per run (mean over seeds) and the relative loss
 * difference to the baseline over training, (run − baseline) / baseline in % (the paper's
 * Fig. 2/4/6 measure; positive = worse than the baseline), a table of final validation loss,
 * gap, divergence, tokens and parameters, the paper's claim, and one sentence that judges the
 * claim from the numbers (suites.ts). Also merges partial results of one suite (`--only` runs).
 * When the runs carry them: a table of downstream task scores per run (the paper's Table 2
 * analogue, eval/), and the quantization telemetry: per-layer Fprop and Wgrad error plots, a
 * per-layer table of one run, and the layers with the largest Wgrad error (App. E.2).
 * Not a plotting library: plots come from train/plot-svg.ts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { FileFormatError, UsageError } from "../errors.ts";
import type { ScheduleConfig } from "../optim/schedule.ts";
import { linePlotSvg, type Series } from "../train/plot-svg.ts";
import type { RunResult, SeedResult, SeedTelemetry, SuiteResult } from "./runner.ts";
import { SUITES, type RunStats } from "./suites.ts";

/** A run's numbers over its seeds. */
export interface RunSummary extends RunStats {
  run: RunResult;
  /** mean and sd of the final validation loss over the seeds that did not diverge (all seeds if every one did) */
  finalMean: number | null;
  finalSd: number;
  nSeeds: number;
  nDiverged: number;
  /** (tokens, mean validation loss) */
  curve: [number, number][];
  /** (tokens, mean relative gap to the baseline in %) */
  gapCurve: [number, number][];
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]) => (v.length < 2 ? 0 : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)));

/** Linear interpolation of a curve sorted by x; undefined outside its range. */
function interpolate(pts: [number, number][], x: number): number | undefined {
  for (let i = 0; i < pts.length; i++) {
    if (pts[i][0] === x) return pts[i][1];
    if (i > 0 && pts[i - 1][0] < x && x < pts[i][0]) {
      const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
      return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return undefined;
}

/** Mean of y per x over several curves, sorted by x. */
function meanCurve(curves: [number, number][][]): [number, number][] {
  const by = new Map<number, number[]>();
  for (const c of curves) for (const [x, y] of c) by.set(x, [...(by.get(x) ?? []), y]);
  return [...by.entries()].sort((a, b) => a[0] - b[0]).map(([x, ys]) => [x, mean(ys)]);
}

/** Per-run statistics; gaps pair each seed with the baseline's run of the same seed. */
export function summarize(results: SuiteResult): RunSummary[] {
  const base = results.runs.find((r) => r.baseline && !r.skipped);
  const baseBySeed = new Map((base?.seeds ?? []).filter((s) => !s.diverged && s.finalValLoss !== null).map((s) => [s.seed, s]));
  const curveOf = (s: SeedResult): [number, number][] => s.evals.map((e) => [e.tokens, e.valLoss]);
  return results.runs.map((run) => {
    const ok = run.seeds.filter((s) => !s.diverged && s.finalValLoss !== null);
    const finals = (ok.length ? ok : run.seeds).map((s) => s.finalValLoss).filter((v): v is number => v !== null);
    const gapBySeed: Record<number, number> = {};
    const gapCurves: [number, number][][] = [];
    for (const s of run.seeds) {
      const b = baseBySeed.get(s.seed);
      if (!b) continue;
      const bc = curveOf(b);
      gapCurves.push(curveOf(s).flatMap(([x, y]): [number, number][] => {
        const by = interpolate(bc, x);
        return by === undefined ? [] : [[x, (100 * (y - by)) / by]];
      }));
      if (!s.diverged && s.finalValLoss !== null) gapBySeed[s.seed] = (100 * (s.finalValLoss - b.finalValLoss!)) / b.finalValLoss!;
    }
    const gaps = Object.values(gapBySeed);
    const div = run.seeds.filter((s) => s.diverged);
    return {
      run, name: run.name, tokensFactor: run.tokensFactor, bf16Blocks: run.bf16Blocks, nLayers: run.nLayers,
      gap: gaps.length ? mean(gaps) : null, gapSd: sd(gaps), gapBySeed,
      diverged: div.length > 0, divergedAt: div.length ? Math.min(...div.map((s) => s.diverged!.step)) : null,
      finalMean: finals.length ? mean(finals) : null, finalSd: sd(finals), nSeeds: run.seeds.length, nDiverged: div.length,
      curve: meanCurve(run.seeds.map(curveOf)), gapCurve: meanCurve(gapCurves),
    };
  });
}

/** The suite's judgement of its claim, from the numbers. */
export function verdict(results: SuiteResult, summaries = summarize(results)): string {
  const suite = SUITES[results.suite];
  if (!suite) return `no judge for suite '${results.suite}'`;
  const byName = new Map(summaries.filter((s) => !s.run.skipped && s.nSeeds > 0).map((s) => [s.name, s]));
  return suite.judge((n) => byName.get(n));
}

/** results.json of a folder, or undefined when it has none. */
export function readResults(dir: string): SuiteResult | undefined {
  const p = join(dir, "results.json");
  if (!existsSync(p)) return undefined;
  let r: SuiteResult;
  try {
    r = JSON.parse(readFileSync(p, "utf8")) as SuiteResult;
  } catch (e) {
    throw new FileFormatError(p, `not valid JSON (${(e as Error).message}); was the run killed while writing it?`);
  }
  if (r.version !== 1 || !Array.isArray(r.runs)) throw new FileFormatError(p, `not an fp4lm experiment results file (version ${JSON.stringify(r.version)})`);
  return r;
}

// ---- merging ---------------------------------------------------------------------------------

const suiteOrder = (suite: string, name: string) => {
  const i = SUITES[suite]?.runs.findIndex((r) => r.name === name) ?? -1;
  return i < 0 ? Number.MAX_SAFE_INTEGER : i;
};

/** b's runs added to a's; a run in both keeps b's definition and the union of seeds (b's wins on a repeat). */
export function mergeSuiteResults(a: SuiteResult, b: SuiteResult): SuiteResult {
  const runs = new Map(a.runs.map((r) => [r.name, structuredClone(r)]));
  for (const r of b.runs) {
    const old = runs.get(r.name);
    const seeds = new Map((old?.seeds ?? []).map((s) => [s.seed, s]));
    for (const s of r.seeds) seeds.set(s.seed, s);
    runs.set(r.name, {
      ...structuredClone(r), params: r.params ?? old?.params ?? null, seeds: [...seeds.values()].sort((x, y) => x.seed - y.seed),
      // notes of both (e.g. each seed's "reused from ..."), once each
      notes: [...new Set([...(old?.notes ?? []), ...r.notes])],
    });
  }
  const devices = [...new Set([a.setup.device, b.setup.device])].join("+");
  return {
    ...b,
    commands: [...new Set([...a.commands, ...b.commands])],
    setup: { ...b.setup, device: devices },
    runs: [...runs.values()].sort((x, y) => suiteOrder(b.suite, x.name) - suiteOrder(b.suite, y.name)),
  };
}

/** Merge the results of several folders of one suite (e.g. `--only` invocations); run folders become absolute paths. */
export function mergeResults(dirs: string[]): SuiteResult {
  if (!dirs.length) throw new UsageError("mergeResults: no folders given");
  const all = dirs.map((d) => {
    const r = readResults(d);
    if (!r) {
      const inside = existsSync(d) ? readdirSync(d).filter((f) => existsSync(join(d, f, "results.json"))) : [];
      throw new UsageError(`${d} has no results.json (give a suite folder written by fp4lm experiment, e.g. runs/precision)` +
        (inside.length ? `; it holds suite folders ${inside.map((f) => join(d, f)).join(", ")}` : ""));
    }
    for (const run of r.runs) for (const s of run.seeds) s.dir = resolve(d, s.dir);
    return { d, r };
  });
  const first = all[0];
  for (const { d, r } of all.slice(1)) {
    if (r.suite !== first.r.suite) throw new UsageError(`cannot merge suite '${r.suite}' (${d}) into suite '${first.r.suite}' (${first.d})`);
    const fa = first.r.setup.fingerprint, fb = r.setup.fingerprint;
    const diff = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].filter((k) => JSON.stringify(fa[k]) !== JSON.stringify(fb[k]));
    if (diff.length) {
      throw new UsageError(`cannot merge ${d} into ${first.d}: they were run with different ${diff.join(", ")} ` +
        `(${diff.map((k) => `${k}: ${JSON.stringify(fa[k])} vs ${JSON.stringify(fb[k])}`).join("; ")})`);
    }
  }
  return all.slice(1).reduce((acc, { r }) => mergeSuiteResults(acc, r), first.r);
}

// ---- formatting ------------------------------------------------------------------------------

/** 1234567 → "1.23M". */
export function fmtCount(n: number): string {
  const units: [number, string][] = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
  for (const [u, s] of units) if (Math.abs(n) >= u) return `${Number((n / u).toPrecision(3))}${s}`;
  return String(Number(n.toPrecision(3)));
}

const pm = (m: number, s: number, digits: number, suffix = "", sign = false) =>
  `${sign && m >= 0 ? "+" : ""}${m.toFixed(digits)}${suffix}${s > 0 ? ` ± ${s.toFixed(digits)}` : ""}`;
/** tokens per parameter: two significant digits below 10 */
const ratio = (r: number) => (r < 10 ? r.toPrecision(2) : r.toFixed(0));

function divergedCell(s: RunSummary): string {
  if (!s.nDiverged) return "no";
  const at = `step ${s.divergedAt}`;
  return s.nDiverged === s.nSeeds ? `yes (${at})` : `${s.nDiverged}/${s.nSeeds} seeds (${at})`;
}

/** "WSD: warmup 20 steps, linear decay over the last 20% to 1% of lr 0.003". */
function scheduleText(s: ScheduleConfig | undefined): string {
  if (!s) return "?";
  const warm = `warmup ${s.warmupSteps} steps`;
  if (s.kind === "constant") return `constant lr ${s.lr}, ${warm}`;
  if (s.kind === "cosine") return `cosine to ${s.minLrRatio * 100}% of lr ${s.lr}, ${warm}`;
  return `WSD: ${warm}, constant, ${s.decayShape} decay over the last ${Math.round(s.decayFraction * 100)}% to ${s.minLrRatio * 100}% of lr ${s.lr}`;
}

/** Plot unit for token counts. */
function tokenUnit(max: number): [number, string] {
  return max >= 1e9 ? [1e9, "tokens (B)"] : max >= 1e6 ? [1e6, "tokens (M)"] : max >= 1e3 ? [1e3, "tokens (k)"] : [1, "tokens"];
}

/** Drop points far beyond the runs that went through, so one diverged run does not flatten the others. */
function clip(series: Series[], healthy: boolean[], symmetric: boolean): Series[] {
  const ys = series.flatMap((s, i) => (healthy[i] ? s.points.map((p) => p[1]) : [])).filter(Number.isFinite);
  if (!ys.length) return series;
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || Math.abs(hi) || 1;
  const [a, b] = symmetric ? [lo - 2 * span, hi + 2 * span] : [lo - span, hi + span];
  return series.map((s) => ({ ...s, points: s.points.filter(([, y]) => Number.isFinite(y) && y >= a && y <= b) }));
}

interface Plot {
  file: string;
  title: string;
  svg: string;
}

function plots(results: SuiteResult, sums: RunSummary[]): Plot[] {
  const base = sums.find((s) => s.run.baseline);
  const live = sums.filter((s) => !s.run.skipped && s.nSeeds > 0);
  const groups = [...new Set(live.flatMap((s) => s.run.groups))];
  const maxX = Math.max(1, ...live.flatMap((s) => s.curve.map((p) => p[0])));
  const [unit, xLabel] = tokenUnit(maxX);
  const scaleX = (pts: [number, number][]) => pts.map(([x, y]): [number, number] => [x / unit, y]);
  const out: Plot[] = [];
  for (const g of groups.length ? groups : [""]) {
    const members = live.filter((s) => !g || s.run.groups.includes(g) || s.run.baseline);
    const suffix = g ? `-${g}` : "";
    const what = g ? ` (${g})` : "";
    const healthy = members.map((s) => !s.diverged);
    const loss = clip(members.map((s) => ({ name: s.name, points: scaleX(s.curve) })), healthy, false);
    out.push({
      file: `val-loss${suffix}.svg`, title: `validation loss${what}`,
      svg: linePlotSvg(loss, { title: `${results.suite}${what}: validation loss (mean over seeds)`, xLabel, yLabel: "validation loss (nats/token)" }),
    });
    if (base) {
      const others = members.filter((s) => !s.run.baseline);
      const gap = clip(others.map((s) => ({ name: s.name, points: scaleX(s.gapCurve) })), others.map((s) => !s.diverged), true);
      out.push({
        file: `gap${suffix}.svg`, title: `relative loss difference to ${base.name}${what}`,
        svg: linePlotSvg(gap, { title: `${results.suite}${what}: (run − ${base.name}) / ${base.name}, %`, xLabel, yLabel: `relative difference to ${base.name}, %` }),
      });
    }
  }
  return out;
}

// ---- quantization telemetry and downstream tasks --------------------------------------------

type TelemetryLayer = SeedTelemetry["layers"][number];

/** The GEMM operands per GEMM, as telemetry names them. */
const GEMM_OPS = { fprop: ["fprop.X", "fprop.W"], dgrad: ["dgrad.dY", "dgrad.W"], wgrad: ["wgrad.dY", "wgrad.X"] } as const;

/** A run's telemetry averaged over its seeds (layers in model order), or undefined without any. */
export function runTelemetry(run: RunResult): TelemetryLayer[] | undefined {
  const seeds = run.seeds.map((s) => s.telemetry).filter((t): t is SeedTelemetry => t !== undefined && t.layers.length > 0);
  if (!seeds.length) return undefined;
  return seeds[0].layers.map((l) => {
    const same = seeds.map((t) => t.layers.find((x) => x.layer === l.layer)).filter((x): x is TelemetryLayer => x !== undefined);
    const ops: TelemetryLayer["ops"] = {};
    for (const k of Object.keys(l.ops)) {
      const vs = same.map((x) => x.ops[k]).filter((v) => v !== undefined);
      ops[k] = [0, 1, 2, 3].map((j) => mean(vs.map((v) => v[j]))) as [number, number, number, number];
    }
    return { layer: l.layer, format: l.format, ops };
  });
}

/** Relative error of a GEMM's inputs to first order: √(e_a² + e_b²) of its two operands. */
export function gemmError(l: TelemetryLayer, gemm: keyof typeof GEMM_OPS): number | undefined {
  const e = GEMM_OPS[gemm].map((k) => l.ops[k]?.[0]).filter((v): v is number => v !== undefined);
  return e.length ? Math.sqrt(e.reduce((a, v) => a + v * v, 0)) : undefined;
}

const quantizedLayer = (l: TelemetryLayer) => !/^(bf16|fp32)/.test(l.format);
const blockOf = (layer: string) => { const m = /^blocks\.(\d+)\./.exec(layer); return m ? Number(m[1]) : undefined; };

/** The run whose telemetry the report tabulates: the non-baseline run with the most quantized layers. */
function telemetryRun(sums: RunSummary[]): { run: RunSummary; layers: TelemetryLayer[] } | undefined {
  let best: { run: RunSummary; layers: TelemetryLayer[] } | undefined;
  for (const s of sums) {
    const layers = s.run.skipped ? undefined : runTelemetry(s.run);
    if (!layers || s.run.baseline) continue;
    if (!best || layers.filter(quantizedLayer).length > best.layers.filter(quantizedLayer).length) best = { run: s, layers };
  }
  return best;
}

const pct1 = (v: number) => `${(100 * v).toFixed(1)}%`;
const pct2 = (v: number) => `${(100 * v).toFixed(2)}%`;

/**
 * Which layers' Wgrad inputs quantize worst (App. E.2: the last layers'), from the telemetry of
 * the run with the most quantized layers; undefined without telemetry.
 */
export function sensitivity(results: SuiteResult, sums = summarize(results)): string | undefined {
  const t = telemetryRun(sums);
  if (!t) return undefined;
  const L = t.run.nLayers;
  const ranked = t.layers.filter((l) => quantizedLayer(l) && blockOf(l.layer) !== undefined && gemmError(l, "wgrad") !== undefined)
    .map((l) => ({ l, e: gemmError(l, "wgrad")!, b: blockOf(l.layer)! })).sort((a, b) => b.e - a.e);
  if (!ranked.length) return `run \`${t.run.name}\` has no quantized block layers to rank`;
  const top = ranked.slice(0, 3).map((r) => `${r.l.layer} ${pct1(r.e)}`).join(", ");
  const half = Math.floor(L / 2);
  const first = ranked.filter((r) => r.b < half), last = ranked.filter((r) => r.b >= L - half);
  const head = `largest Wgrad input error (√(e_dY² + e_X²), run \`${t.run.name}\`, mean over telemetry steps): ${top}`;
  if (!half || !first.length || !last.length) return `${head}; the first and last halves of the blocks cannot both be compared on this model: inconclusive`;
  const mf = mean(first.map((r) => r.e)), ml = mean(last.map((r) => r.e));
  const span = (a: number, b: number) => (a === b ? `block ${a}` : `blocks ${a}–${b}`);
  return `${head}; mean over the last ${span(L - half, L - 1)} ${pct1(ml)} vs the first ${span(0, half - 1)} ${pct1(mf)}: ` +
    (ml > mf ? "agrees (App. E.2: the last layers' Wgrad error is largest)" : "disagrees (App. E.2 finds the last layers' Wgrad error largest)");
}

function telemetryPlots(results: SuiteResult, sums: RunSummary[]): Plot[] {
  const runs = sums.filter((s) => !s.run.skipped).map((s) => ({ s, layers: runTelemetry(s.run) })).filter((r) => r.layers !== undefined);
  if (!runs.length) return [];
  const names = runs[0].layers!.map((l) => l.layer);
  const xLabel = `linear layer, model order (0 = ${names[0]}, ${names.length - 1} = ${names[names.length - 1]})`;
  return (["wgrad", "fprop"] as const).map((g) => ({
    file: `telemetry-${g}.svg`,
    title: `${g === "wgrad" ? "Wgrad" : "Fprop"} input quantization error per layer`,
    svg: linePlotSvg(runs.map(({ s, layers }) => ({
      name: s.name, points: layers!.flatMap((l, i): [number, number][] => { const e = gemmError(l, g); return e === undefined ? [] : [[i, 100 * e]]; }),
    })), { title: `${results.suite}: ${g === "wgrad" ? "Wgrad (dY, X)" : "Fprop (X, W)"} relative quantization error, √(e_a² + e_b²), %`, xLabel, yLabel: "relative error, %" }),
  }));
}

function telemetryBlocks(results: SuiteResult, sums: RunSummary[], plotList: Plot[]): Block[] {
  const t = telemetryRun(sums);
  if (!t) return [];
  const every = results.setup.telemetryEvery;
  const steps = t.run.run.seeds.find((x) => x.telemetry)?.telemetry?.steps ?? [];
  const blocks: Block[] = [{ h: 2, text: "Quantization telemetry" }];
  blocks.push({
    p: `${every === 1 ? "Every step" : `Every ${every ?? "N"} steps`} (${steps.length} measurements per seed) each linear layer measured the six operands of its GEMMs ` +
      `against the high-precision values (xᵀ and the Hadamard transform where the recipe applies them): relative error ||q(x) − x|| / ||x||, ` +
      `the share of nonzero values flushed to zero, the share clipped at the top of their block's grid (saturated), and amax; ` +
      `numbers are means over the measurements and seeds. The plots combine a GEMM's two operands as √(e_a² + e_b²).`,
  });
  const sens = sensitivity(results, sums);
  if (sens) blocks.push({ p: `**Layer sensitivity:** ${sens}.` });
  for (const p of plotList.filter((x) => x.file.startsWith("telemetry-"))) blocks.push({ plot: p });
  const cell = (l: TelemetryLayer, k: string, f: (v: [number, number, number, number]) => string) => (l.ops[k] ? f(l.ops[k]) : "");
  const maxSat = (l: TelemetryLayer) => Math.max(...Object.values(l.ops).map((v) => v[2]));
  blocks.push({ p: `Per layer, run \`${t.run.name}\` (relative error of each operand; flushed: Wgrad dY; saturated: largest over the operands):` });
  blocks.push({
    table: [["layer", "precision (Fprop X)", "Fprop X", "Fprop W", "Dgrad dY", "Dgrad W", "Wgrad dY", "Wgrad X", "flushed dY", "saturated", "amax X", "amax dY"],
      ...t.layers.map((l) => [
        l.layer, l.format, ...["fprop.X", "fprop.W", "dgrad.dY", "dgrad.W", "wgrad.dY", "wgrad.X"].map((k) => cell(l, k, (v) => pct2(v[0]))),
        cell(l, "wgrad.dY", (v) => pct2(v[1])), pct2(maxSat(l)), cell(l, "fprop.X", (v) => v[3].toPrecision(3)), cell(l, "wgrad.dY", (v) => v[3].toPrecision(3)),
      ])],
  });
  return blocks;
}

const TASK_COLUMNS: { key: "bpb" | "cloze" | "gloss" | "ending"; head: string; fmt: (m: number, s: number) => string }[] = [
  { key: "bpb", head: "bits/byte", fmt: (m, s) => pm(m, s, 4) },
  { key: "cloze", head: "cloze (greedy word)", fmt: (m, s) => pm(100 * m, 100 * s, 1, "%") },
  { key: "gloss", head: "WordNet gloss (4-way)", fmt: (m, s) => pm(100 * m, 100 * s, 1, "%") },
  { key: "ending", head: "sentence ending (4-way)", fmt: (m, s) => pm(100 * m, 100 * s, 1, "%") },
];

function taskBlocks(results: SuiteResult, sums: RunSummary[]): Block[] {
  const withTasks = sums.filter((s) => !s.run.skipped && s.run.seeds.some((x) => x.tasks));
  if (!withTasks.length) return [];
  const cols = TASK_COLUMNS.filter((c) => withTasks.some((s) => s.run.seeds.some((x) => x.tasks?.[c.key] !== undefined)));
  const t = results.setup.tasks;
  const rows = withTasks.map((s) => [s.name + (s.run.baseline ? " (baseline)" : ""), ...cols.map((c) => {
    const v = s.run.seeds.map((x) => x.tasks?.[c.key]).filter((x): x is number => x !== undefined);
    return v.length ? c.fmt(mean(v), sd(v)) : "n/a";
  })]);
  const items = t ? Object.entries(t.items).map(([k, n]) => `${n} ${k}`).join(", ") : "";
  return [
    { h: 2, text: "Downstream tasks" },
    {
      p: `The small-scale analogue of the paper's Table 2: the final weights of every seed scored ${t ? `with ${t.recipe.toUpperCase()} GEMMs ` : ""}on tasks built ` +
        `from the held-out text of the corpus, never from training text${t ? ` (${items} items, seed ${t.seed})` : ""}: bits per byte of the held-out tokens ` +
        `(lower is better), LAMBADA-style last-word cloze (the word produced by greedy decoding), and 4-way multiple choice scored by ` +
        `length-normalised log-likelihood (chance 25%). Mean ± standard deviation over seeds.`,
    },
    { table: [["run", ...cols.map((c) => c.head)], ...rows] },
    ...(t?.notes.length ? [{ list: t.notes.map((n) => `tasks: ${n}`) }] : []),
  ];
}

// ---- the document: blocks rendered to markdown and to HTML -----------------------------------

type Block = { h: 1 | 2; text: string } | { p: string } | { list: string[] } | { table: string[][] } | { plot: Plot };

function documentOf(results: SuiteResult, sums: RunSummary[], plotList: Plot[]): Block[] {
  const suite = SUITES[results.suite];
  const base = sums.find((s) => s.run.baseline);
  const st = results.setup, m = st.model;
  const live = sums.filter((s) => !s.run.skipped && s.nSeeds > 0);
  const nonEmb = sums[0]?.run.nonEmbeddingParams ?? 0;
  const allParams = live.find((s) => s.run.params !== null)?.run.params ?? null;
  const seeds = [...new Set(sums.flatMap((s) => s.run.seeds.map((x) => x.seed)))].sort((a, b) => a - b);
  const blocks: Block[] = [{ h: 1, text: `Experiment \`${results.suite}\`: ${results.title}` }];
  blocks.push({ p: `**The paper:** ${results.claim}${suite ? ` (${suite.paper.where})` : ""}.` });
  blocks.push({ p: `**This run:** ${verdict(results, sums)}.` });
  if (results.commands.length) blocks.push({ p: `Made with: ${results.commands.map((c) => `\`${c}\``).join("; ")}.` });

  blocks.push({ h: 2, text: "Scale" });
  const scale: string[][] = [
    ["", "this run", "the paper"],
    ["model", `${m.preset}: d ${m.dModel}, ${m.nLayers} blocks, ${m.nHeads}/${m.nKvHeads} heads, FF ${m.dFF}, T ${m.seqLen}, vocabulary ${m.vocabSize}`, suite?.paper.model ?? "?"],
    ["parameters (non-embedding)", `${fmtCount(nonEmb)}${allParams !== null ? ` (${fmtCount(allParams)} with embedding and head)` : ""}`, suite ? `~${fmtCount(suite.paper.params)} (all)` : "?"],
    ["tokens per run (1x)", `${fmtCount(st.tokens)} (${st.steps} steps of ${st.tokensPerStep})`, suite ? fmtCount(suite.paper.tokens) : "?"],
    ["tokens per parameter", nonEmb ? ratio(st.tokens / nonEmb) : "?", suite ? `~${Math.round(suite.paper.tokens / suite.paper.params)}` : "?"],
    ["schedule", scheduleText(st.fingerprint.schedule as ScheduleConfig | undefined), "WSD, decay over the last 15–20% (App. A)"],
    ["seeds", `${seeds.length} (${seeds.join(", ")})`, "1"],
    ["device", st.device, "GB200/B200 (NVFP4 tensor cores)"],
  ];
  blocks.push({ table: scale });

  blocks.push({ h: 2, text: "Final validation loss" });
  const head = ["run", "what", "val loss", `gap vs ${base?.name ?? "baseline"}`, "diverged", "tokens", "params (non-emb.)", "tokens/param"];
  const rows = sums.map((s) => {
    const r = s.run;
    if (r.skipped) return [r.name, r.about, "skipped", "", "", fmtCount(r.tokens), fmtCount(r.nonEmbeddingParams), ""];
    return [
      r.name + (r.baseline ? " (baseline)" : ""), r.about,
      s.finalMean === null ? "n/a" : pm(s.finalMean, s.finalSd, 4),
      r.baseline ? "0" : s.gap === null ? (s.diverged && s.nDiverged === s.nSeeds ? "diverged" : "n/a") : pm(s.gap, s.gapSd, 2, "%", true),
      divergedCell(s), fmtCount(r.tokens), fmtCount(r.nonEmbeddingParams), ratio(r.tokens / r.nonEmbeddingParams),
    ];
  });
  blocks.push({ table: [head, ...rows] });
  blocks.push({
    p: `Gap: (run − baseline) / baseline of the final validation loss, each seed paired with the baseline's run of the same seed; ` +
      `mean ± standard deviation over the seeds that did not diverge (no ± with one seed); positive = worse than the baseline ` +
      `(the paper's Fig. 4 plots the opposite sign). The judgement above compares runs seed by seed (same initial weights and data ` +
      `order) and counts a mean difference within the standard deviation of those differences as a tie.`,
  });

  const curves = plotList.filter((p) => !p.file.startsWith("telemetry-"));
  if (curves.length) {
    blocks.push({ h: 2, text: "Curves" });
    for (const p of curves) blocks.push({ plot: p });
  }
  blocks.push(...taskBlocks(results, sums), ...telemetryBlocks(results, sums, plotList));
  const notes = sums.flatMap((s) => [
    ...s.run.notes.map((n) => `\`${s.name}\`: ${n}`),
    ...(s.run.skipped ? [`\`${s.name}\`: ${s.run.skipped}`] : []),
    ...s.run.seeds.filter((x) => x.diverged).map((x) => `\`${s.name}\` seed ${x.seed} diverged at step ${x.diverged!.step}: ${x.diverged!.reason}`),
  ]);
  if (notes.length) blocks.push({ h: 2, text: "Notes" }, { list: notes });
  blocks.push({ h: 2, text: "Runs" });
  blocks.push({
    table: [["run", "overrides (after the suite's setup)", "seeds", "time", "tokens/s"], ...sums.filter((s) => !s.run.skipped).map((s) => [
      s.name, s.run.overrides.map((o) => `\`${o}\``).join(" "), String(s.nSeeds),
      s.run.sameAs ? `(= ${s.run.sameAs})` : `${s.run.seeds.reduce((a, x) => a + x.seconds, 0).toFixed(1)} s`,
      s.run.seeds.length ? fmtCount(mean(s.run.seeds.map((x) => x.tokensPerS))) : "",
    ])],
  });
  blocks.push({ p: `Setup shared by every run: ${st.extra.length ? st.extra.map((e) => `\`${e}\``).join(" ") : "the defaults"}; results of ${results.created}.` });
  return blocks;
}

const mdCell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function toMarkdown(blocks: Block[]): string {
  return blocks.map((b) => {
    if ("h" in b) return `${"#".repeat(b.h)} ${b.text}\n`;
    if ("p" in b) return `${b.p}\n`;
    if ("list" in b) return b.list.map((l) => `- ${l}`).join("\n") + "\n";
    if ("table" in b) {
      const [h, ...rest] = b.table;
      return [h, h.map(() => "---"), ...rest].map((r) => `| ${r.map(mdCell).join(" | ")} |`).join("\n") + "\n";
    }
    return `![${b.plot.title}](${b.plot.file})\n`;
  }).join("\n");
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
/** Escape, then the two markdown inlines we use: `code` and **bold**. */
const inline = (s: string) => esc(s).replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");

function toHtml(title: string, blocks: Block[]): string {
  const body = blocks.map((b) => {
    if ("h" in b) return `<h${b.h}>${inline(b.text)}</h${b.h}>`;
    if ("p" in b) return `<p>${inline(b.p)}</p>`;
    if ("list" in b) return `<ul>\n${b.list.map((l) => `<li>${inline(l)}</li>`).join("\n")}\n</ul>`;
    if ("table" in b) {
      const [h, ...rest] = b.table;
      return `<table>\n<tr>${h.map((c) => `<th>${inline(c)}</th>`).join("")}</tr>\n${rest.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("\n")}\n</table>`;
    }
    return `<figure>${b.plot.svg}<figcaption>${esc(b.plot.title)} (${esc(b.plot.file)})</figcaption></figure>`;
  }).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}code{background:#f4f4f4}figure{margin:1em 0}</style>
</head><body>
${body}
</body></html>
`;
}

const PLOT_FILE = /^(val-loss|gap|telemetry)(-[\w.-]+)?\.svg$/;

/**
 * Write results.json, report.md, report.html and the SVG plots into `dir`; returns the files written.
 * Run folders given as absolute paths are stored relative to `dir`.
 */
export function writeReport(dir: string, results: SuiteResult): string[] {
  mkdirSync(dir, { recursive: true });
  const stored: SuiteResult = structuredClone(results);
  for (const r of stored.runs) for (const s of r.seeds) if (isAbsolute(s.dir)) s.dir = relative(resolve(dir), s.dir) || ".";
  const sums = summarize(stored);
  const plotList = [...plots(stored, sums), ...telemetryPlots(stored, sums)];
  const blocks = documentOf(stored, sums, plotList);
  const files: [string, string][] = [
    ["results.json", JSON.stringify(stored, null, 1) + "\n"],
    ["report.md", toMarkdown(blocks)],
    ["report.html", toHtml(`fp4lm experiment ${stored.suite}`, blocks)],
    ...plotList.map((p): [string, string] => [p.file, p.svg + "\n"]),
  ];
  // plots of an earlier write that this one does not make (a group that has no run any more)
  for (const f of readdirSync(dir)) if (PLOT_FILE.test(f) && !files.some(([g]) => g === f)) rmSync(join(dir, f));
  for (const [f, text] of files) writeFileSync(join(dir, f), text);
  return files.map(([f]) => join(dir, f));
}
