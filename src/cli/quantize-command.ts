/**
 * `fp4lm quantize FILE|--sample`: quantize every float tensor of a .safetensors or .npy file in
 * each format (NVFP4 1x16, 16x16, +RHT16, MXFP4 floor/rceil, FP8 per-tensor and 1x128) and print
 * the error statistics and block-scale histograms; `--out` writes the quantized tensors as
 * safetensors, `--json` prints machine-readable results. Bad input stops with a message and
 * writes nothing.
 */
import { parseArgs } from "node:util";
import { ShapeError, UsageError } from "../errors.ts";
import { loadFloatTensors, matrixShape, type FloatTensor } from "../io/float-tensors.ts";
import { writeSafetensors, type TensorEntry } from "../io/safetensors.ts";
import { formatStats, quantizeAs, REPORT_FORMATS, type FormatStats, type Quantized, type ReportFormat } from "../quant/format-report.ts";
import { assertFinite } from "../quant/tensor-checks.ts";
import { sampleTensors } from "./sample-tensors.ts";
import { sparkline, textTable } from "./text-table.ts";

export const QUANTIZE_HELP = `fp4lm quantize FILE [options]     quantize the float tensors of a .safetensors or .npy file
fp4lm quantize --sample           the same on a built-in sample (weight, activation, gradient)

Prints, per tensor and format, the relative RMS error, the SNR in dB, the share of non-zero
values that underflow to zero, the share that saturate, and the block-scale histogram.

Options:
  --formats LIST        comma-separated, from: ${REPORT_FORMATS.join(", ")} (default: all)
  --out FILE            write the quantized tensors as safetensors (packed U8 codes, F8_E4M3 or
                        E8M0 scales, F32 amax / scale_inv; layout in the file's metadata)
  --json                print results as JSON
  --allow-nonfinite     quantize tensors with NaN/Inf using Transformer Engine's policy (NaN is
                        ignored by the amax and encoded as +6) instead of stopping
  --skip-incompatible   skip tensor/format pairs whose shape breaks the format's rule (e.g.
                        columns not a multiple of 16) instead of stopping
`;

interface TensorResult {
  name: string;
  dtype: string;
  shape: number[];
  matrixShape: [number, number];
  amax: number;
  formats: FormatStats[];
  skippedFormats: { format: ReportFormat; reason: string }[];
}

function parseFormats(list: string | undefined): ReportFormat[] {
  if (list === undefined) return [...REPORT_FORMATS];
  const names = list.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(REPORT_FORMATS as readonly string[]).includes(n));
  if (bad.length || names.length === 0) {
    throw new UsageError(`unknown format(s) ${bad.join(", ") || "(none)"}; choose from ${REPORT_FORMATS.join(", ")}`);
  }
  return names as ReportFormat[];
}

function amaxOf(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) { const a = Math.abs(x[i]); if (a > m) m = a; }
  return m;
}

/** Safetensors entries of one quantized tensor, and its layout description for the metadata. */
function toEntries(prefix: string, r: Quantized): { entries: TensorEntry[]; layout: Record<string, unknown> } {
  const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const [rows, cols] = r.q.shape;
  if (r.kind === "nvfp4") {
    return {
      entries: [
        { name: `${prefix}.packed`, dtype: "U8", shape: [rows, cols / 2], data: r.q.packed },
        { name: `${prefix}.scales`, dtype: "F8_E4M3", shape: [rows, cols / 16], data: r.q.scales },
        { name: `${prefix}.amax`, dtype: "F32", shape: [1], data: u8(Float32Array.of(r.q.amax)) },
      ],
      layout: {
        format: "nvfp4", elements: "e2m1, two per byte, element 2i in the low nibble", scales: "e4m3, (rows, cols/16), compact row-major",
        block: r.q.tile2d ? "16x16 (byte repeated on the tile's 16 rows)" : "1x16",
        decode: "x = e2m1 * fl(fl(scale * amax) * fl(1/2688))", rht: r.q.rht ?? null,
      },
    };
  }
  if (r.kind === "mxfp4") {
    return {
      entries: [
        { name: `${prefix}.packed`, dtype: "U8", shape: [rows, cols / 2], data: r.q.packed },
        { name: `${prefix}.scales`, dtype: "U8", shape: [rows, cols / 32], data: r.q.scales },
      ],
      layout: {
        format: "mxfp4", elements: "e2m1, two per byte, element 2i in the low nibble", scales: "e8m0 (U8 bytes), (rows, cols/32)",
        scale_rounding: r.q.scaleRounding, decode: "x = e2m1 * 2^(scale - 127)",
      },
    };
  }
  return {
    entries: [
      { name: `${prefix}.data`, dtype: r.q.format === "e4m3" ? "F8_E4M3" : "F8_E5M2", shape: [rows, cols], data: r.q.data },
      { name: `${prefix}.scale_inv`, dtype: "F32", shape: [r.q.scaleInv.length], data: u8(r.q.scaleInv) },
    ],
    layout: { format: "fp8", element: r.q.format, scaling: r.q.scaling, decode: "x = fp8 * scale_inv[block]" },
  };
}

/** Run the command; returns the process exit code. */
export function quantizeCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + "\n")): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      formats: { type: "string" }, out: { type: "string" }, json: { type: "boolean" }, sample: { type: "boolean" },
      "allow-nonfinite": { type: "boolean" }, "skip-incompatible": { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) { out(QUANTIZE_HELP); return 0; }
  if (positionals.length > 1 || (positionals.length === 1) === Boolean(values.sample)) {
    throw new UsageError("fp4lm quantize needs exactly one FILE (.safetensors or .npy) or --sample; see fp4lm quantize --help");
  }
  const formats = parseFormats(values.formats);
  const source = values.sample ? "built-in sample" : positionals[0];
  const loaded = values.sample ? { tensors: sampleTensors(), skipped: [] } : loadFloatTensors(positionals[0]);
  const nonFinite = values["allow-nonfinite"] ? "te" as const : "error" as const;

  const results: TensorResult[] = [];
  const written: TensorEntry[] = [];
  const layouts: Record<string, unknown> = {};
  const notes: string[] = loaded.skipped.map((s) => `${s.name}: skipped, dtype ${s.dtype} is not floating point`);
  for (const t of loaded.tensors as FloatTensor[]) {
    const shape = matrixShape(t.shape);
    if (!shape) { notes.push(`${t.name}: skipped, shape [${t.shape.join(", ")}] is a scalar or empty`); continue; }
    if (nonFinite === "error") assertFinite(t.data, shape, t.name);
    const res: TensorResult = { name: t.name, dtype: t.dtype, shape: t.shape, matrixShape: shape, amax: amaxOf(t.data), formats: [], skippedFormats: [] };
    for (const f of formats) {
      let q: Quantized;
      try {
        q = quantizeAs(f, t.data, shape, { nonFinite, name: t.name });
      } catch (e) {
        if (!(e instanceof ShapeError)) throw e;
        if (!values["skip-incompatible"]) {
          throw new ShapeError(`${e.message}\n(--skip-incompatible skips such tensor/format pairs; --formats picks formats)`);
        }
        res.skippedFormats.push({ format: f, reason: e.message });
        continue;
      }
      res.formats.push(formatStats(f, t.data, q));
      if (values.out) {
        const { entries, layout } = toEntries(`${t.name}.${f}`, q);
        written.push(...entries);
        layouts[`${t.name}.${f}`] = { ...layout, source_dtype: t.dtype, source_shape: t.shape, matrix_shape: shape };
      }
    }
    results.push(res);
  }

  if (values.out) {
    writeSafetensors(values.out, written, { fp4lm: JSON.stringify({ version: 1, source, tensors: layouts }) });
    notes.push(`wrote ${written.length} tensors to ${values.out}`);
  }
  if (values.json) out(JSON.stringify({ source, tensors: results, notes }, null, 1));
  else out(renderText(source, results, notes));
  return 0;
}

const pct = (v: number) => (v === 0 ? "0" : v < 1e-4 ? v.toExponential(1) : (100 * v).toFixed(2) + "%");

function renderText(source: string, results: TensorResult[], notes: string[]): string {
  const parts = [`fp4lm quantize: ${source}, ${results.length} tensor(s)`];
  for (const r of results) {
    parts.push("", `${r.name}  [${r.shape.join(", ")}] ${r.dtype}  as [${r.matrixShape.join(", ")}]  amax ${r.amax.toPrecision(4)}`);
    const rows: (string | number)[][] = [["format", "rel.RMS err", "SNR dB", "underflow", "saturated", "bits/elem", "block scales (log2)"]];
    for (const s of r.formats) {
      const keys = Object.keys(s.scaleHistogram).filter((k) => /^-?\d+$/.test(k)).map(Number).sort((a, b) => a - b);
      let hist = "";
      if (keys.length) {
        const lo = keys[0], hi = keys[keys.length - 1];
        const counts = Array.from({ length: hi - lo + 1 }, (_, i) => s.scaleHistogram[String(lo + i)] ?? 0);
        hist = `2^${lo} ${sparkline(counts)} 2^${hi}`;
      }
      if (s.scaleHistogram.zero) hist += `  zero:${s.scaleHistogram.zero}`;
      rows.push([s.format, s.relRmsError.toExponential(3), s.snrDb.toFixed(2), pct(s.underflow), pct(s.saturated), s.bitsPerElement.toFixed(3), hist]);
    }
    for (const k of r.skippedFormats) rows.push([k.format, "skipped", "", "", "", "", k.reason.split(";")[0]]);
    parts.push(textTable(rows, [false, true, true, true, true, true, false]));
  }
  if (notes.length) parts.push("", ...notes);
  return parts.join("\n");
}
