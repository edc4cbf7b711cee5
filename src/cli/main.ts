/**
 * The `fp4lm` command line: dispatches to one command per file, turns fp4lm's own errors into a
 * one-line message and exit code 2 (no stack trace), and lets anything else crash loudly.
 */
import { readFileSync } from "node:fs";
import { Fp4lmError } from "../errors.ts";
import { QUANTIZE_HELP, quantizeCommand } from "./quantize-command.ts";
import { PREPARE_HELP, prepareCommand } from "./prepare-command.ts";
import { TRAIN_HELP, trainCommand } from "./train-command.ts";
import { QUICKSTART_HELP, quickstartCommand } from "./quickstart-command.ts";
import { EVAL_HELP, evalCommand } from "./eval-command.ts";
import { SAMPLE_HELP, sampleCommand } from "./sample-command.ts";
import { EXPORT_HELP, IMPORT_HELP, exportCommand, importCommand } from "./interop-commands.ts";
import { EXPERIMENT_HELP, experimentCommand } from "./experiment-command.ts";
import { REPORT_HELP, reportCommand } from "./report-command.ts";

const HELP = `fp4lm: pretrain language models in NVFP4 (4-bit), with BF16, FP8 and MXFP4 baselines

Usage:
${QUICKSTART_HELP}

${TRAIN_HELP}

${EVAL_HELP}

${SAMPLE_HELP}

${PREPARE_HELP}

${EXPORT_HELP}

${IMPORT_HELP}

${EXPERIMENT_HELP}

${REPORT_HELP}

${QUANTIZE_HELP}
fp4lm --version
fp4lm help`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Run the CLI with these arguments; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "quantize": return quantizeCommand(rest);
      case "train": return await trainCommand(rest);
      case "quickstart": return await quickstartCommand(rest);
      case "prepare": return prepareCommand(rest);
      case "eval": return evalCommand(rest);
      case "sample": return sampleCommand(rest);
      case "export": return exportCommand(rest);
      case "import": return importCommand(rest);
      case "experiment": return experimentCommand(rest);
      case "report": return reportCommand(rest);
      case "--version": case "-v": console.log(version()); return 0;
      case undefined: case "help": case "--help": case "-h": console.log(HELP); return 0;
      default:
        console.error(`fp4lm: unknown command '${cmd}'. Commands: quickstart, train, eval, sample, prepare, quantize, export, import, experiment, report. Try fp4lm help.`);
        return 2;
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (e instanceof Fp4lmError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))) {
      console.error(`fp4lm: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, "/"))) {
  process.exitCode = await main(process.argv.slice(2));
}
