/**
 * The paper's experiments as data: seven suites (issue 5's table), each a list of runs given as
 * `buildConfig` overrides, the paper's claim, the paper's scale, and the test that decides from
 * the numbers whether a small-scale result agrees with the claim. Not a runner (runner.ts) and
 * not a report (report.ts). Method: arXiv 2509.25149 §4 (results), App. D (precision switch),
 * App. E (ablations); the numbers are quoted in docs/paper.md §4.
 */
import { UsageError } from "../errors.ts";

/** Placeholder value: the step where the run's LR decay starts (resolved by the runner). */
export const DECAY_START = "@decayStart";

export interface SuiteRun {
  /** letters, digits, '-' and '.' only: also the run folder's name */
  name: string;
  /** buildConfig overrides on top of the suite's setup (`recipe=nvfp4`, `recipe.tile2d=false`, ...) */
  overrides: string[];
  /** the reference every gap is measured against (one per suite) */
  baseline?: boolean;
  /** train this many times the suite's steps (default 1) */
  tokensFactor?: number;
  /** what the run is, in a few words, for the report */
  about?: string;
  /** plot groups: runs of a group are drawn together, with the baseline */
  groups?: string[];
}

/** One run's numbers, as a suite's judge sees them. */
export interface RunStats {
  name: string;
  /** mean relative gap of the final validation loss to the baseline, in % (null: no baseline or every seed diverged) */
  gap: number | null;
  /** standard deviation of the gap across seeds (0 with one seed) */
  gapSd: number;
  /** the gap of each seed that went through, by seed */
  gapBySeed: Record<number, number>;
  /** any seed diverged (NaN/Inf or a loss spike) */
  diverged: boolean;
  /** first step at which a seed diverged */
  divergedAt: number | null;
  tokensFactor: number;
  /** the blocks whose linear layers run in BF16 */
  bf16Blocks: number[];
  nLayers: number;
}

export type Lookup = (name: string) => RunStats | undefined;

export interface Suite {
  name: string;
  title: string;
  /** the paper's claim, as in issue 5's table */
  claim: string;
  /** the scale the paper measured it at */
  paper: { model: string; params: number; tokens: number; where: string };
  runs: SuiteRun[];
  /** every run records quantization telemetry (about ten times per run), and the report ranks the
   * layers by their Wgrad quantization error (App. E.2) */
  telemetry?: boolean;
  /** one sentence: what the numbers say, ending in agrees / disagrees / partly agrees / inconclusive */
  judge(get: Lookup): string;
}

// ---- comparisons used by the judges ----------------------------------------------------------

type Cmp = "better" | "worse" | "tie";

/**
 * a vs b on the gap (lower is better; diverged is worst). Seeds both ran are compared pairwise (they
 * share initial weights and data order): a mean difference within the standard deviation of the
 * differences is a tie. Without two common seeds, within the larger gap's spread is a tie.
 */
export function compareRuns(a: RunStats, b: RunStats): Cmp {
  if (a.diverged || b.diverged) return a.diverged && b.diverged ? "tie" : a.diverged ? "worse" : "better";
  if (a.gap === null || b.gap === null) return "tie";
  const common = Object.keys(a.gapBySeed).filter((k) => k in b.gapBySeed).map(Number);
  let d = a.gap - b.gap, tol = Math.max(a.gapSd, b.gapSd);
  if (common.length >= 2) {
    const diffs = common.map((k) => a.gapBySeed[k] - b.gapBySeed[k]);
    d = diffs.reduce((x, y) => x + y, 0) / diffs.length;
    tol = Math.sqrt(diffs.reduce((x, y) => x + (y - d) ** 2, 0) / (diffs.length - 1));
  }
  if (Math.abs(d) <= tol || d === 0) return "tie";
  return d < 0 ? "better" : "worse";
}

/** "0.42%" or "diverged (step 12)". */
export function gapText(s: RunStats): string {
  if (s.diverged) return `diverged${s.divergedAt !== null ? ` (step ${s.divergedAt})` : ""}`;
  if (s.gap === null) return "n/a";
  return `${s.gap >= 0 ? "+" : ""}${s.gap.toFixed(2)}%${s.gapSd > 0 ? ` ± ${s.gapSd.toFixed(2)}` : ""}`;
}

const SYMBOL: Record<Cmp, string> = { better: "<", worse: ">", tie: "≈" };

/** The judge's answer when runs it needs are absent or have no gap. */
function missing(get: Lookup, names: string[]): string | undefined {
  const absent = names.filter((n) => !get(n));
  if (absent.length) return `runs ${absent.join(", ")} are not in these results: inconclusive`;
  const noGap = names.filter((n) => !get(n)!.diverged && get(n)!.gap === null);
  if (noGap.length) return `no gap for ${noGap.join(", ")} (no baseline run with the same seeds): inconclusive`;
  return undefined;
}

/** true = as the paper says, false = the opposite, null = within the seed spread. */
function expect(c: Cmp, want: Cmp): boolean | null {
  return c === want ? true : c === "tie" ? null : false;
}

/** The verdict over several checks (see `expect`). */
function overall(checks: (boolean | null)[]): string {
  const yes = checks.filter((c) => c === true).length, no = checks.filter((c) => c === false).length;
  const ties = checks.length - yes - no;
  if (yes === checks.length) return "agrees";
  if (no === checks.length) return "disagrees";
  if (ties === checks.length) return "inconclusive (every difference is within the seed spread)";
  if (!no) return `agrees where the differences exceed the seed spread (${yes} of ${checks.length} checks; the rest are ties)`;
  if (!yes) return `disagrees where the differences exceed the seed spread (${no} of ${checks.length} checks; the rest are ties)`;
  return `partly agrees (${yes} of ${checks.length} checks agree, ${no} disagree${ties ? `, ${ties} tie` : ""})`;
}

/** A single comparison's verdict. */
function single(c: Cmp, want: Cmp): string {
  return overall([expect(c, want)]).replace(/ \(every difference is within the seed spread\)/, " (within the seed spread)");
}

const sameBlocks = (a: RunStats, b: RunStats) => a.bf16Blocks.join(",") === b.bf16Blocks.join(",");

// ---- the suites ------------------------------------------------------------------------------

const BF16: SuiteRun = { name: "bf16", overrides: ["recipe=bf16"], baseline: true, about: "BF16 baseline" };
const ABLATION_PAPER = { model: "1.2B Transformer (20 blocks, d 2048)", params: 1.2e9, tokens: 1e12, where: "App. E (1.2B, 1T tokens)" };
const NO_TECHNIQUES = ["recipe=nvfp4", "recipe.bf16Last=0", "recipe.tile2d=false", "recipe.rht.gemms=[]", "recipe.sr.gradients=false"];

const precision: Suite = {
  name: "precision",
  title: "BF16 vs FP8 vs NVFP4 vs MXFP4",
  claim: "NVFP4 ends ~1.5% above the baseline's loss, MXFP4 ~2.5%",
  paper: { model: "8B hybrid Mamba-Transformer", params: 8e9, tokens: 1e12, where: "§5, Fig. 6 (8B, 1T tokens)" },
  runs: [
    BF16,
    { name: "fp8", overrides: ["recipe=fp8"], about: "FP8 E4M3, 1x128 / 128x128 scales, first 1 + last 2 blocks BF16" },
    { name: "nvfp4", overrides: ["recipe=nvfp4"], about: "NVFP4, full recipe" },
    { name: "mxfp4", overrides: ["recipe=mxfp4"], about: "MXFP4, same recipe (RHT 32, 1x32 blocks)" },
  ],
  judge(get) {
    const miss = missing(get, ["nvfp4", "mxfp4"]);
    if (miss) return miss;
    const n = get("nvfp4")!, m = get("mxfp4")!, f = get("fp8");
    const c = compareRuns(n, m);
    const verdict = single(c, "better");
    return `NVFP4 gap ${gapText(n)} ${SYMBOL[c]} MXFP4 gap ${gapText(m)}${f ? ` (FP8 ${gapText(f)})` : ""}: ${verdict}`;
  },
};

const CUMULATIVE = ["base", "plus-last-bf16", "plus-2d", "plus-rht", "full"];
const MINUS = ["minus-last-bf16", "minus-2d", "minus-rht", "minus-sr"];

const ablation: Suite = {
  name: "ablation",
  title: "the recipe's techniques, added one by one and removed one at a time",
  claim: "base diverges; each technique narrows the gap",
  paper: ABLATION_PAPER,
  runs: [
    BF16,
    { name: "base", overrides: NO_TECHNIQUES, about: "every layer NVFP4, 1x16 everywhere, RTN", groups: ["cumulative"] },
    { name: "plus-last-bf16", overrides: [...NO_TECHNIQUES, "recipe.bf16Last=auto"], about: "+ last blocks BF16", groups: ["cumulative"] },
    { name: "plus-2d", overrides: [...NO_TECHNIQUES, "recipe.bf16Last=auto", "recipe.tile2d=true"], about: "+ 16x16 weight tiles", groups: ["cumulative"] },
    {
      name: "plus-rht", overrides: [...NO_TECHNIQUES, "recipe.bf16Last=auto", "recipe.tile2d=true", "recipe.rht.gemms=wgrad"],
      about: "+ RHT16 on Wgrad", groups: ["cumulative"],
    },
    { name: "full", overrides: ["recipe=nvfp4"], about: "+ SR on gradients = the full recipe", groups: ["cumulative", "minus"] },
    { name: "minus-last-bf16", overrides: ["recipe=nvfp4", "recipe.bf16Last=0"], about: "full recipe without BF16 blocks", groups: ["minus"] },
    { name: "minus-2d", overrides: ["recipe=nvfp4", "recipe.tile2d=false"], about: "full recipe with 1x16 weight scales", groups: ["minus"] },
    { name: "minus-rht", overrides: ["recipe=nvfp4", "recipe.rht.gemms=[]"], about: "full recipe without RHT", groups: ["minus"] },
    { name: "minus-sr", overrides: ["recipe=nvfp4", "recipe.sr.gradients=false"], about: "full recipe with RTN gradients", groups: ["minus"] },
  ],
  judge(get) {
    const miss = missing(get, [...CUMULATIVE, ...MINUS]);
    if (miss) return miss;
    const base = get("base")!, full = get("full")!;
    const steps = CUMULATIVE.slice(1).map((n, i) => compareRuns(get(n)!, get(CUMULATIVE[i])!));
    const removals = MINUS.map((n) => compareRuns(get(n)!, full));
    const narrowed = steps.filter((c) => c === "better").length;
    const widened = removals.filter((c) => c === "worse").length;
    return `base ${base.diverged ? gapText(base) : `did not diverge (gap ${gapText(base)})`}; cumulative gaps ` +
      `${CUMULATIVE.map((n) => gapText(get(n)!)).join(" → ")}: ${narrowed} of ${steps.length} additions narrowed the gap; ` +
      `removing each from the full recipe (${MINUS.map((n) => `${n} ${gapText(get(n)!)}`).join(", ")}) widened it in ${widened} of ${removals.length}: ` +
      overall([base.diverged, ...steps.map((c) => expect(c, "better")), ...removals.map((c) => expect(c, "worse"))]);
  },
};

const layers: Suite = {
  name: "layers",
  title: "which blocks to keep in BF16",
  claim: "last layers matter, first layers alone do not",
  paper: ABLATION_PAPER,
  telemetry: true,
  runs: [
    BF16,
    { name: "none", overrides: ["recipe=nvfp4", "recipe.bf16Last=0"], about: "no BF16 blocks (reference)" },
    { name: "last-1", overrides: ["recipe=nvfp4", "recipe.bf16Last=1"], about: "last block BF16" },
    { name: "last-2", overrides: ["recipe=nvfp4", "recipe.bf16Last=2"], about: "last 2 blocks BF16" },
    { name: "last-4", overrides: ["recipe=nvfp4", "recipe.bf16Last=4"], about: "last 4 blocks BF16" },
    { name: "first-4", overrides: ["recipe=nvfp4", "recipe.bf16Last=0", "recipe.bf16First=4"], about: "first 4 blocks BF16" },
    { name: "first-2-last-2", overrides: ["recipe=nvfp4", "recipe.bf16Last=2", "recipe.bf16First=2"], about: "first 2 + last 2 blocks BF16" },
  ],
  judge(get) {
    const miss = missing(get, ["last-4", "first-4"]);
    if (miss) return miss;
    const l4 = get("last-4")!, f4 = get("first-4")!;
    const others = ["first-2-last-2", "last-1", "last-2", "none"].filter((n) => get(n)).map((n) => `${n} ${gapText(get(n)!)}`).join(", ");
    const head = `last 4 blocks in BF16 gap ${gapText(l4)}`;
    if (sameBlocks(l4, f4)) {
      return `${head}; on this ${l4.nLayers}-block model 'last 4' and 'first 4' both keep blocks ${l4.bf16Blocks.join(", ")} in BF16, so they cannot be told apart: inconclusive`;
    }
    const c = compareRuns(l4, f4);
    const verdict = single(c, "better");
    return `${head} ${SYMBOL[c]} first 4 gap ${gapText(f4)}${others ? ` (${others})` : ""}: ${verdict}`;
  },
};

const sr: Suite = {
  name: "sr",
  title: "where stochastic rounding goes",
  claim: "only gradients need SR; SR on activations or weights hurts",
  paper: ABLATION_PAPER,
  runs: [
    BF16,
    { name: "none", overrides: ["recipe=nvfp4", "recipe.sr.gradients=false"], about: "RTN everywhere (reference)" },
    { name: "gradients", overrides: ["recipe=nvfp4"], about: "SR on gradients (the recipe)" },
    { name: "activations", overrides: ["recipe=nvfp4", "recipe.sr.gradients=false", "recipe.sr.activations=true"], about: "SR on activations only" },
    { name: "weights", overrides: ["recipe=nvfp4", "recipe.sr.gradients=false", "recipe.sr.weights=true"], about: "SR on weights only" },
    // the recipe has one switch per tensor role, and the only tensor the backward pass makes is the gradient
    { name: "all-backward", overrides: ["recipe=nvfp4"], about: "SR on all backward tensors (= gradients in this recipe)" },
  ],
  judge(get) {
    const miss = missing(get, ["gradients", "activations", "weights"]);
    if (miss) return miss;
    const g = get("gradients")!, a = get("activations")!, w = get("weights")!;
    const ca = compareRuns(g, a), cw = compareRuns(g, w);
    const none = get("none");
    return `SR on gradients gap ${gapText(g)} ${SYMBOL[ca]} on activations ${gapText(a)}, ${SYMBOL[cw]} on weights ${gapText(w)}` +
      `${none ? ` (RTN everywhere ${gapText(none)})` : ""}: ${overall([expect(ca, "better"), expect(cw, "better")])}`;
  },
};

const rht: Suite = {
  name: "rht",
  title: "random Hadamard transforms: on which GEMM, what size, which signs",
  claim: "Wgrad only; 16 is enough",
  paper: ABLATION_PAPER,
  runs: [
    BF16,
    { name: "wgrad", overrides: ["recipe=nvfp4"], about: "RHT16 on Wgrad (the recipe)", groups: ["placement"] },
    { name: "fprop", overrides: ["recipe=nvfp4", "recipe.rht.gemms=fprop"], about: "RHT16 on Fprop only", groups: ["placement"] },
    { name: "dgrad", overrides: ["recipe=nvfp4", "recipe.rht.gemms=dgrad"], about: "RHT16 on Dgrad only", groups: ["placement"] },
    { name: "none", overrides: ["recipe=nvfp4", "recipe.rht.gemms=[]"], about: "no RHT", groups: ["placement"] },
    { name: "size-4", overrides: ["recipe=nvfp4", "recipe.rht.size=4"], about: "RHT 4x4 on Wgrad", groups: ["size"] },
    { name: "size-16", overrides: ["recipe=nvfp4", "recipe.rht.size=16"], about: "RHT 16x16 on Wgrad", groups: ["size"] },
    { name: "size-64", overrides: ["recipe=nvfp4", "recipe.rht.size=64"], about: "RHT 64x64 on Wgrad", groups: ["size"] },
    { name: "size-128", overrides: ["recipe=nvfp4", "recipe.rht.size=128"], about: "RHT 128x128 on Wgrad", groups: ["size"] },
    { name: "signs-fixed", overrides: ["recipe=nvfp4", "recipe.rht.signs=fixed"], about: "one fixed sign vector", groups: ["signs"] },
    { name: "signs-per-tensor", overrides: ["recipe=nvfp4", "recipe.rht.signs=per-tensor"], about: "new signs per tensor", groups: ["signs"] },
    { name: "signs-none", overrides: ["recipe=nvfp4", "recipe.rht.signs=none"], about: "no random signs", groups: ["signs"] },
  ],
  judge(get) {
    const miss = missing(get, ["wgrad", "fprop", "dgrad", "none", "size-16"]);
    if (miss) return miss;
    const [wg, fp, dg, none, s16] = ["wgrad", "fprop", "dgrad", "none", "size-16"].map((n) => get(n)!);
    const helps = compareRuns(wg, none), fpHurts = compareRuns(fp, none), dgHurts = compareRuns(dg, none);
    const larger = ["size-64", "size-128"].map((n) => get(n)).filter((s): s is RunStats => s !== undefined && (s.diverged || s.gap !== null));
    let sizePart: string, sizeOk: (boolean | null)[] = [];
    if (!larger.length) {
      sizePart = "no size above 16 ran (they need dimensions and B·T divisible by the size), so '16 is enough' is untested";
    } else {
      // "enough": no larger transform beats 16 beyond the seed spread and by more than 0.1 percentage points
      const beats = larger.filter((s) => compareRuns(s, s16) === "better" && !s16.diverged && s16.gap! - s.gap! > 0.1);
      sizeOk = [beats.length === 0];
      sizePart = `size 16 ${gapText(s16)} vs ${larger.map((s) => `${s.name} ${gapText(s)}`).join(", ")}` +
        (beats.length ? ` (larger is better by > 0.1 pp)` : ` (no larger size better by more than 0.1 pp or the spread)`);
    }
    const s4 = get("size-4");
    return `RHT on Wgrad ${gapText(wg)} vs none ${gapText(none)} (${helps === "better" ? "helps" : helps === "worse" ? "hurts" : "no difference"}); ` +
      `on Fprop ${gapText(fp)} (${fpHurts === "worse" ? "hurts" : fpHurts === "better" ? "helps" : "no difference"}), ` +
      `on Dgrad ${gapText(dg)} (${dgHurts === "worse" ? "hurts" : dgHurts === "better" ? "helps" : "no difference"}); ${sizePart}` +
      `${s4 ? `; size 4 ${gapText(s4)}` : ""}: ${overall([expect(helps, "better"), expect(fpHurts, "worse"), expect(dgHurts, "worse"), ...sizeOk])}`;
  },
};

const SW = ["recipe=nvfp4", `recipe.precisionSwitch.atStep=${DECAY_START}`];
const precisionSwitch: Suite = {
  name: "switch",
  title: "switching to BF16 near the end of training",
  claim: "forward (or both) recovers most of the gap, backward alone does not",
  paper: { model: "12B hybrid Mamba-Transformer", params: 12e9, tokens: 10e12, where: "App. D (12B, 10T tokens)" },
  runs: [
    BF16,
    { name: "nvfp4", overrides: ["recipe=nvfp4"], about: "NVFP4 throughout" },
    { name: "forward", overrides: [...SW, "recipe.precisionSwitch.passes=forward"], about: "forward pass BF16 from the start of LR decay" },
    { name: "backward", overrides: [...SW, "recipe.precisionSwitch.passes=backward"], about: "backward pass BF16 from the start of LR decay" },
    { name: "both", overrides: [...SW, "recipe.precisionSwitch.passes=both"], about: "both passes BF16 from the start of LR decay" },
    { name: "late", overrides: ["recipe=nvfp4", "recipe.precisionSwitch.atFraction=0.95", "recipe.precisionSwitch.passes=both"], about: "both passes BF16 for the last 5%" },
  ],
  judge(get) {
    const miss = missing(get, ["nvfp4", "forward", "backward", "both"]);
    if (miss) return miss;
    const [nv, fw, bw, both] = ["nvfp4", "forward", "backward", "both"].map((n) => get(n)!);
    if (nv.diverged || nv.gap === null) return `NVFP4 ${gapText(nv)}: no gap to measure recovery against: inconclusive`;
    if (nv.gap <= nv.gapSd) return `NVFP4 gap ${gapText(nv)} is not above its seed spread, so there is no gap to recover: inconclusive`;
    // share of NVFP4's gap that a switch removes; "most" = more than half
    const rec = (s: RunStats) => (s.diverged || s.gap === null ? -Infinity : (nv.gap! - s.gap) / nv.gap!);
    const pct = (s: RunStats) => (Number.isFinite(rec(s)) ? `${Math.round(100 * rec(s))}%` : "none (diverged)");
    const late = get("late");
    return `NVFP4 gap ${gapText(nv)}; switching at the start of LR decay recovers ${pct(fw)} (forward, ${gapText(fw)}), ` +
      `${pct(both)} (both, ${gapText(both)}), ${pct(bw)} (backward, ${gapText(bw)})${late ? `, late switch ${pct(late)}` : ""}: ` +
      overall([rec(fw) > 0.5 || rec(both) > 0.5, !(rec(bw) > 0.5)]);
  },
};

const MX_FACTORS = [1, 1.25, 1.36, 1.5];
const mxfp4Tokens: Suite = {
  name: "mxfp4-tokens",
  title: "how many more tokens MXFP4 needs to match NVFP4",
  claim: "MXFP4 needs ~36% more tokens to match NVFP4",
  paper: { model: "8B hybrid Mamba-Transformer", params: 8e9, tokens: 1e12, where: "§5, Fig. 6b (8B, 1T tokens)" },
  runs: [
    BF16,
    { name: "nvfp4", overrides: ["recipe=nvfp4"], about: "NVFP4, 1x the tokens" },
    ...MX_FACTORS.map((f): SuiteRun => ({ name: `mxfp4-x${f.toFixed(2)}`, overrides: ["recipe=mxfp4"], tokensFactor: f, about: `MXFP4, ${f}x the tokens` })),
  ],
  judge(get) {
    const names = MX_FACTORS.map((f) => `mxfp4-x${f.toFixed(2)}`);
    const miss = missing(get, ["nvfp4", names[0]]);
    if (miss) return miss;
    const nv = get("nvfp4")!;
    const mx = names.map(get).filter((s): s is RunStats => s !== undefined).sort((a, b) => a.tokensFactor - b.tokensFactor);
    const list = mx.map((s) => `${s.tokensFactor}x ${gapText(s)}`).join(", ");
    const match = mx.find((s) => compareRuns(s, nv) !== "worse");
    const head = `NVFP4 gap ${gapText(nv)}; MXFP4 at ${list}`;
    if (!match) return `${head}: MXFP4 stays behind NVFP4 up to ${mx[mx.length - 1].tokensFactor}x the tokens: partly agrees (it needs more than the paper's 1.36x)`;
    if (match.tokensFactor <= 1) return `${head}: MXFP4 matches NVFP4 without extra tokens: disagrees`;
    return `${head}: MXFP4 first matches NVFP4 at ${match.tokensFactor}x the tokens (paper: ~1.36x): agrees`;
  },
};

export const SUITES: Record<string, Suite> = Object.fromEntries(
  [precision, ablation, layers, sr, rht, precisionSwitch, mxfp4Tokens].map((s) => [s.name, s]),
);

/** A suite by name; UsageError listing the suites when there is none. */
export function getSuite(name: string): Suite {
  const s = SUITES[name];
  if (!s) throw new UsageError(`unknown experiment suite '${name}'; choose from ${Object.keys(SUITES).join(", ")}`);
  return s;
}

/** The suite's runs restricted to `only` (all when empty); UsageError listing the run names on a bad name. */
export function selectRuns(suite: Suite, only: string[] = []): SuiteRun[] {
  if (!only.length) return suite.runs;
  const known = new Set(suite.runs.map((r) => r.name));
  const bad = only.filter((n) => !known.has(n));
  if (bad.length) {
    throw new UsageError(`suite '${suite.name}' has no run ${bad.map((b) => `'${b}'`).join(", ")}; its runs are ${[...known].join(", ")}`);
  }
  return suite.runs.filter((r) => only.includes(r.name));
}
