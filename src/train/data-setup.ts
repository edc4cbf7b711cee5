/**
 * The data a run trains on: a folder made by `fp4lm prepare` (train.bin, val.bin,
 * tokenizer.json), or the bundled corpus, prepared once into `${outDir}/.data/` and reused.
 * Gives the tokenizer, the deterministic training loader (resumable) and an evaluator over a
 * fixed set of validation batches.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Fp4lmError } from "../errors.ts";
import { TokenLoader } from "../data/loader.ts";
import { bundledSource, prepareTokens, writePrepared } from "../data/prepare.ts";
import { loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import type { TrainConfig } from "./config.ts";

export interface TrainingData {
  tokenizer: Tokenizer;
  train: TokenLoader;
  /** mean loss of `lossOf` over the fixed validation batches */
  evaluate(lossOf: (inputs: Int32Array, targets: Int32Array) => number): number;
  dir: string;
}

/** The prepared-data folder for a config, preparing the bundled corpus on first use. */
export function preparedDir(cfg: TrainConfig, log: (s: string) => void): string {
  if (cfg.data.dir) {
    for (const f of ["train.bin", "val.bin", "tokenizer.json"]) {
      if (!existsSync(join(cfg.data.dir, f))) {
        throw new Fp4lmError(`data.dir ${cfg.data.dir} has no ${f}; make it with fp4lm prepare FILES --out ${cfg.data.dir}`);
      }
    }
    return cfg.data.dir;
  }
  const d = cfg.data;
  const vocab = d.tokenizer === "bpe" ? `-${d.vocabSize}` : "";
  const dir = join(cfg.outDir, ".data", `${d.bundled}-${d.tokenizer}${vocab}-val${d.valFraction}`);
  if (!existsSync(join(dir, "tokenizer.json"))) {
    log(`preparing the bundled corpus '${d.bundled}' (${d.tokenizer}${vocab}) into ${dir} ...`);
    const t0 = performance.now();
    const prepared = prepareTokens([bundledSource(d.bundled)], {
      tokenizer: d.tokenizer, vocabSize: d.tokenizer === "bpe" ? d.vocabSize : undefined, valFraction: d.valFraction,
    });
    writePrepared(dir, prepared, { force: true });
    log(`  ${prepared.train.length} train + ${prepared.val.length} val tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return dir;
}

export function openTrainingData(cfg: TrainConfig, log: (s: string) => void): TrainingData {
  const dir = preparedDir(cfg, log);
  const tokenizer = loadTokenizer(join(dir, "tokenizer.json"));
  const B = cfg.batchSize, T = cfg.model.seqLen;
  const train = TokenLoader.open(join(dir, "train.bin"), { B, T, seed: cfg.seed });
  const val = TokenLoader.open(join(dir, "val.bin"), { B, T, shuffle: false });
  return {
    tokenizer, train, dir,
    evaluate(lossOf) {
      let sum = 0, n = 0;
      for (const b of val.evalBatches(cfg.evalBatches)) {
        sum += lossOf(b.inputs, b.targets);
        n++;
      }
      return sum / n;
    },
  };
}
