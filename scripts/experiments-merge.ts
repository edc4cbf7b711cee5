/**
 * Merges what scripts/gpu-experiments.ts brought back from the GPU machine (OUT/exp.tgz, unpacked:
 * JOBROOT/SUITE-HORIZON/JOB/SUITE/results.json with its run folders) into the committed reports,
 * `OUT/SUITE-HORIZON/` (results.json, report.md, report.html, SVG plots), together with what is
 * already there, so that the reports grow over several device calls and sessions. Each seed's
 * run folder is kept small in `OUT/SUITE-HORIZON/runs/RUN-seedS/`: config.json, the precision
 * announcements (precision*.json) and metrics.jsonl as metrics.jsonl.br (brotli) — checkpoints
 * never come back. A seed one suite reused from another (`--reuse`) points at that suite's copy.
 *
 * Usage: node --import tsx scripts/experiments-merge.ts [--out experiments] JOBROOT...
 *        (later JOBROOTs win where they hold the same run and seed)
 */
import { brotliCompressSync, constants } from "node:zlib";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { mergeResults, verdict, writeReport } from "../src/experiments/report.ts";

/** where gpu-experiments.ts runs the jobs on the GPU machine (reused seeds point there) */
const DEVICE_WORK = "/tmp/fp4lm-exp-work/";

/** Every suite folder (holding results.json) under root, with its SUITE-HORIZON key. */
function suiteFolders(root: string): { key: string; dir: string }[] {
  const out: { key: string; dir: string }[] = [];
  for (const group of readdirSync(root)) {
    const g = join(root, group);
    if (!statSync(g).isDirectory() || !/^[\w.-]+-(\w+-)?(short|long)$/.test(group)) continue;
    for (const job of readdirSync(g)) {
      const j = join(g, job);
      if (!statSync(j).isDirectory()) continue;
      for (const suite of readdirSync(j)) if (existsSync(join(j, suite, "results.json"))) out.push({ key: group, dir: join(j, suite) });
    }
  }
  return out;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: "string", default: "experiments" } } });
  if (!positionals.length) throw new Error("usage: experiments-merge.ts [--out DIR] JOBROOT... (folders unpacked from gpu-experiments' exp.tgz)");
  const out = resolve(values.out!);
  const roots = positionals.map((p) => resolve(p));
  const byKey = new Map<string, string[]>();
  for (const root of roots) for (const { key, dir } of suiteFolders(root)) byKey.set(key, [...(byKey.get(key) ?? []), dir]);
  /** a device path of a reused seed → the unpacked folder that holds it (the latest root) */
  const local = (p: string) => {
    if (!p.startsWith(DEVICE_WORK)) return p;
    const hit = [...roots].reverse().map((r) => join(r, p.slice(DEVICE_WORK.length))).find((q) => existsSync(q));
    return hit ?? p;
  };
  for (const [key, dirs] of [...byKey].sort()) {
    const target = join(out, key);
    const merged = mergeResults([...(existsSync(join(target, "results.json")) ? [target] : []), ...dirs]);
    const horizon = key.slice(merged.suite.length + 1);
    for (const run of merged.runs) {
      for (const s of run.seeds) {
        const from = local(s.dir);
        const name = basename(from);
        const home = s.reusedFrom ? join(out, `${s.reusedFrom.split("/")[0]}-${horizon}`) : target;
        const to = join(home, "runs", name);
        if (resolve(from) !== resolve(to) && existsSync(from)) copyRun(from, to);
        // the runner's notes name the folder a reused seed came from: name its committed copy
        const rel = relative(target, to);
        run.notes = run.notes.map((n) => n.split(s.dir).join(rel).replace(new RegExp(`\\(${escape(DEVICE_WORK)}[^)]*/${escape(name)}\\)`, "g"), `(${rel})`));
        s.dir = to;
      }
      run.notes = [...new Set(run.notes)];
    }
    writeReport(target, merged);
    console.log(`${key}: ${merged.runs.filter((r) => r.seeds.length).length} runs with results (${dirs.length} job folders merged)\n  here: ${verdict(merged)}`);
  }
}

/** config.json, precision*.json and metrics.jsonl (as .br) of one run folder. */
function copyRun(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) {
    if (f === "config.json" || /^precision.*\.json$/.test(f)) copyFileSync(join(from, f), join(to, f));
    else if (f === "metrics.jsonl" || f === "telemetry.jsonl") {
      const br = brotliCompressSync(readFileSync(join(from, f)), { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } });
      writeFileSync(join(to, `${f}.br`), br);
    }
  }
}

main();
