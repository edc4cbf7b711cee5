/**
 * `fp4lm report DIR... [--out DIR]`: (re)writes an experiment report from results.json: one
 * suite folder in place, or several folders of the same suite (from `fp4lm experiment --only`
 * invocations) merged into one report in --out. Trains nothing; see experiments/report.ts.
 */
import { UsageError } from "../errors.ts";
import { mergeResults, verdict, writeReport } from "../experiments/report.ts";

export const REPORT_HELP = `fp4lm report DIR... [--out DIR]
  rewrites the report (report.md, report.html, SVG plots) of an experiment folder from its results.json;
  several folders of one suite (e.g. from fp4lm experiment --only) are merged into --out`;

export function reportCommand(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) { console.log(REPORT_HELP); return 0; }
  const dirs: string[] = [];
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--out") {
      out = argv[++i];
      if (out === undefined) throw new UsageError("--out needs a folder");
    } else if (a.startsWith("--out=")) out = a.slice(6);
    else if (a.startsWith("--")) throw new UsageError(`unknown option '${a}'; usage: ${REPORT_HELP.split("\n")[0]}`);
    else dirs.push(a);
  }
  if (!dirs.length) throw new UsageError(`fp4lm report needs at least one experiment folder; usage: ${REPORT_HELP.split("\n")[0]}`);
  if (dirs.length > 1 && out === undefined) throw new UsageError(`merging ${dirs.length} folders needs --out DIR for the merged report`);
  const target = out ?? dirs[0];
  const results = mergeResults(dirs);
  const files = writeReport(target, results);
  const done = results.runs.filter((r) => !r.skipped && r.seeds.length).length;
  console.log(`${results.suite}: ${done} of ${results.runs.length} runs with results\npaper: ${results.claim}\nhere:  ${verdict(results)}`);
  console.log(`wrote ${files.join(", ")}`);
  return 0;
}
