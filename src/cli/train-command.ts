/**
 * `fp4lm train [--config FILE] [--key=value ...]`: train a model with a precision recipe
 * (`--recipe=nvfp4|bf16|fp8|mxfp4`, then field overrides such as `--recipe.sr.gradients=false`).
 * Every setting is in src/train/config.ts; bad settings are all reported before any work.
 * `--gpus N` (or `--ranks N --device=cpu`) trains data-parallel, one process per rank
 * (src/parallel/launch.ts).
 */
import { UsageError } from "../errors.ts";
import { launchDataParallel } from "../parallel/launch.ts";
import { buildConfig } from "../train/config.ts";
import { train } from "../train/train.ts";

export const TRAIN_HELP = `fp4lm train [--config FILE.json] [--key=value ...]
  --recipe=nvfp4|bf16|fp8|mxfp4    precision recipe (then e.g. --recipe.tile2d=false, --recipe.bf16Last=2,
                                   --recipe.rht.gemms=wgrad,fprop, --recipe.precisionSwitch.atFraction=0.8)
  --model.preset=tiny|small|gpt124m, --model.dModel=128, --model.nLayers=4, ...
  --model nemotronh-small          a Nemotron-H hybrid (also nemotronh-medium, nemotronh-8b, nemotronh-12b);
                                   --model.pattern=M-M*-... (M Mamba-2, * attention, - FFN), --model.mamba.dState=16, ...
  --steps=200 --batchSize=8 --gradAccum=1 --schedule.lr=3e-3 --schedule.kind=wsd|cosine|constant
  --data.dir=DIR (from fp4lm prepare) | --data.bundled=moby-dick --data.tokenizer=bpe --data.vocabSize=1024
  --name=RUN --outDir=runs --seed=1337 --evalEvery=25 --checkpointEvery=0 --threads=0
  --telemetry-every=N              quantization error, flushed/saturated shares and amax of every GEMM operand
                                   every N steps into runs/NAME/telemetry.jsonl (0 = off, the default)
  --gpus=N                         data parallel over N GPUs, one process each (batchSize, gradAccum per GPU)
  --ranks=N --device=cpu           the same with N CPU processes
  --parallel.overlap=false         all-reduce the gradients after the backward pass (default: each bucket as soon as it is final)
  --parallel.zero1                 ZeRO-1: AdamW moments sharded over the ranks (reduce-scatter, all-gather)
  --parallel.bucketMB=25           gradient bucket size
  --resume                         continue runs/NAME from its checkpoint, bit for bit
  --overwrite                      replace runs/NAME`;

/** `telemetry-every` → `telemetryEvery` (per dotted segment): settings may be spelt in kebab case. */
export function camelKey(key: string): string {
  return key.split(".").map((k) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())).join(".");
}

/** Split `--a=b`, `--a b` and `--flag` into key=value strings (keys camel-cased); returns [overrides, config file]. */
export function parseOverrides(argv: string[]): [string[], string | undefined] {
  const out: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new UsageError(`unexpected argument '${a}'; settings look like --key=value (see fp4lm train --help)`);
    let kv = a.slice(2);
    if (!kv.includes("=") && i + 1 < argv.length && !argv[i + 1].startsWith("--")) kv += "=" + argv[++i];
    const eq = kv.indexOf("=");
    kv = eq < 0 ? camelKey(kv) : camelKey(kv.slice(0, eq)) + kv.slice(eq);
    if (kv.startsWith("config=")) file = kv.slice(7);
    else out.push(kv);
  }
  return [out, file];
}

/** `gpus=N` → `ranks=N`, `device=cuda`; whether the run goes through the data-parallel launcher. */
export function parallelOverrides(overrides: string[]): [string[], boolean] {
  const gpus = overrides.filter((o) => o.startsWith("gpus="));
  if (gpus.length === 0) return [overrides, overrides.some((o) => o.startsWith("ranks="))];
  if (overrides.some((o) => o.startsWith("ranks="))) throw new UsageError("give --gpus N (GPU ranks) or --ranks N (with --device), not both");
  if (overrides.includes("device=cpu")) throw new UsageError("--gpus runs on GPUs; for CPU ranks use --ranks N --device=cpu");
  const rest = overrides.filter((o) => !o.startsWith("gpus=") && !o.startsWith("device="));
  return [[...rest, `ranks=${gpus[gpus.length - 1].slice(5)}`, "device=cuda"], true];
}

export async function trainCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const [given, file] = parseOverrides(argv);
  const [overrides, launch] = parallelOverrides(given);
  const cfg = buildConfig(overrides, file);
  if (launch || cfg.ranks > 1) {
    const r = await launchDataParallel(cfg);
    console.log(`done: ${r.runDir}  final val_loss ${r.finalValLoss?.toFixed(4) ?? "n/a"}  ${Math.round(r.tokensPerS ?? 0)} tok/s over ${cfg.ranks} ranks`);
    return 0;
  }
  const r = train(cfg);
  const last = r.evals[r.evals.length - 1];
  console.log(`done: ${r.runDir}  final val_loss ${last ? last.valLoss.toFixed(4) : "n/a"}  ${Math.round(r.tokensPerS)} tok/s`);
  return 0;
}
