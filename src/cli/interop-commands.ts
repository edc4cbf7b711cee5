/**
 * `fp4lm export CKPT --format hf|nvfp4 --out DIR` and `fp4lm import DIR --out CKPT`: Hugging Face
 * folders out (BF16/FP32 `ArceeForCausalLM`, with the SwiGLU MLP `LlamaForCausalLM`, hybrids `NemotronHForCausalLM`, or NVFP4 in NVIDIA ModelOpt's layout, see
 * docs/nvfp4-export.md) and in (to continue pretraining: `fp4lm train --init CKPT`).
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { exportHf } from "../interop/hf-export.ts";
import { importHf } from "../interop/hf-import.ts";
import { exportNvfp4 } from "../interop/nvfp4-export.ts";

export const EXPORT_HELP = `fp4lm export CKPT --format hf|nvfp4 --out DIR [--dtype bf16|f32] [--calib-batches N | --no-calibration] [--overwrite]
  hf: config.json + model.safetensors (ArceeForCausalLM, LlamaForCausalLM for --model.mlp=swiglu runs,
      NemotronHForCausalLM for hybrids; BF16 by default) + generation_config.json + HF tokenizer files (tokenizer.json, ...)
  nvfp4: linear weights in NVFP4 (ModelOpt layout: packed U8, F8_E4M3 scales, FP32 scales; layers
         trained in BF16 stay BF16 and are excluded); input scales calibrated on N validation batches`;

export const IMPORT_HELP = `fp4lm import DIR --out CKPT [--recipe nvfp4] [--seq-len N] [--overwrite]
  reads a Hugging Face ArceeForCausalLM, LlamaForCausalLM or NemotronHForCausalLM folder (sharded or not); continue with fp4lm train --init CKPT`;

export function exportCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      format: { type: "string" }, out: { type: "string" }, dtype: { type: "string" }, "calib-batches": { type: "string" },
      "no-calibration": { type: "boolean" }, overwrite: { type: "boolean" }, help: { type: "boolean" },
    },
  });
  if (values.help) { console.log(EXPORT_HELP); return 0; }
  if (positionals.length !== 1 || !values.out) throw new UsageError(`fp4lm export needs a checkpoint and --out DIR\n${EXPORT_HELP}`);
  const ckpt = positionals[0], out = values.out, overwrite = Boolean(values.overwrite);
  if (values.format === "hf") {
    const dtype = values.dtype ?? "bf16";
    if (dtype !== "bf16" && dtype !== "f32") throw new UsageError(`--dtype must be bf16 or f32, got ${dtype}`);
    const r = exportHf(ckpt, out, { dtype, overwrite });
    console.log(`wrote ${out}: ${r.files.join(", ")}`);
    if (r.tokenizerSkipped) console.log(`no HF tokenizer files: ${r.tokenizerSkipped}`);
    return 0;
  }
  if (values.format === "nvfp4") {
    const batches = Number(values["calib-batches"] ?? 8);
    if (!values["no-calibration"] && (!Number.isInteger(batches) || batches < 1)) throw new UsageError(`--calib-batches must be a positive integer, got ${values["calib-batches"]}`);
    const r = exportNvfp4(ckpt, out, { calibration: values["no-calibration"] ? null : { batches }, overwrite });
    console.log(`wrote ${out}: ${r.quantized.length} NVFP4 linear layers, ${r.excluded.length} kept in BF16 (${r.excluded.join(", ")})`);
    return 0;
  }
  throw new UsageError(`--format must be hf or nvfp4, got ${values.format ?? "(none)"}`);
}

export function importCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { out: { type: "string" }, recipe: { type: "string" }, "seq-len": { type: "string" }, overwrite: { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) { console.log(IMPORT_HELP); return 0; }
  if (positionals.length !== 1 || !values.out) throw new UsageError(`fp4lm import needs a folder and --out CKPT\n${IMPORT_HELP}`);
  const seqLen = values["seq-len"] === undefined ? undefined : Number(values["seq-len"]);
  const r = importHf(positionals[0], values.out, { recipe: values.recipe, seqLen, overwrite: Boolean(values.overwrite) });
  console.log(`wrote ${values.out}: ${r.params} parameters; continue with fp4lm train --init=${values.out}`);
  return 0;
}
