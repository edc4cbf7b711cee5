/**
 * `fp4lm train [--config FILE] [--key=value ...]`: train a model with a precision recipe
 * (`--recipe=nvfp4|bf16|fp8|mxfp4`, then field overrides such as `--recipe.sr.gradients=false`).
 * Every setting is in src/train/config.ts; bad settings are all reported before any work.
 */
import { UsageError } from "../errors.ts";
import { buildConfig } from "../train/config.ts";
import { train } from "../train/train.ts";

export const TRAIN_HELP = `fp4lm train [--config FILE.json] [--key=value ...]
  --recipe=nvfp4|bf16|fp8|mxfp4    precision recipe (then e.g. --recipe.tile2d=false, --recipe.bf16Last=2,
                                   --recipe.rht.gemms=wgrad,fprop, --recipe.precisionSwitch.atFraction=0.8)
  --model.preset=tiny|small|gpt124m, --model.dModel=128, --model.nLayers=4, ...
  --steps=200 --batchSize=8 --gradAccum=1 --schedule.lr=3e-3 --schedule.kind=wsd|cosine|constant
  --data.dir=DIR (from fp4lm prepare) | --data.bundled=moby-dick --data.tokenizer=bpe --data.vocabSize=1024
  --name=RUN --outDir=runs --seed=1337 --evalEvery=25 --checkpointEvery=0 --threads=0
  --resume                         continue runs/NAME from its checkpoint, bit for bit
  --overwrite                      replace runs/NAME`;

/** Split `--a=b`, `--a b` and `--flag` into key=value strings; returns [overrides, config file]. */
export function parseOverrides(argv: string[]): [string[], string | undefined] {
  const out: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new UsageError(`unexpected argument '${a}'; settings look like --key=value (see fp4lm train --help)`);
    let kv = a.slice(2);
    if (!kv.includes("=") && i + 1 < argv.length && !argv[i + 1].startsWith("--")) kv += "=" + argv[++i];
    if (kv.startsWith("config=")) file = kv.slice(7);
    else out.push(kv);
  }
  return [out, file];
}

export function trainCommand(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const [overrides, file] = parseOverrides(argv);
  const cfg = buildConfig(overrides, file);
  const r = train(cfg);
  const last = r.evals[r.evals.length - 1];
  console.log(`done: ${r.runDir}  final val_loss ${last ? last.valLoss.toFixed(4) : "n/a"}  ${Math.round(r.tokensPerS)} tok/s`);
  return 0;
}
