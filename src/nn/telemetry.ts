/**
 * Quantization telemetry during training (issue 5, part 3). On the steps the training loop picks
 * (`telemetryEvery`), each linear layer measures the six operands of its three GEMMs, Fprop X/W,
 * Dgrad dY/W, Wgrad dY/X, with the backend's `quantStats` (relative error, shares flushed to zero
 * and saturated, amax: recipes/operand-stats.ts), on the step's first micro-batch. Other steps pay
 * one null check per GEMM. Lines go to `telemetry.jsonl` in the run folder, one per operand:
 * `{"step", "layer", "gemm", "operand", "format", "rel_err", "flushed", "saturated", "amax"}`.
 * Not a plot or a report (experiments/report.ts reads the file).
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describeOperand, type GemmName, type OperandSpec, type Role } from "../recipes/operand.ts";
import type { QuantStats } from "../recipes/operand-stats.ts";
import type { RunContext } from "./context.ts";

export type OperandName = "X" | "W" | "dY";

export const OPERAND_NAME: Record<Role, OperandName> = { input: "X", weight: "W", gradOutput: "dY" };

export interface TelemetryLine {
  step: number;
  layer: string;
  gemm: GemmName;
  operand: OperandName;
  /** describeOperand of the spec, e.g. "nvfp4 1x16 SR RHT16" */
  format: string;
  rel_err: number;
  flushed: number;
  saturated: number;
  amax: number;
}

/** What one telemetry step collects; the context holds it while that step runs. */
export class TelemetryRecorder {
  readonly lines: TelemetryLine[] = [];
  constructor(readonly step: number) {}

  add(layer: string, gemm: GemmName, spec: OperandSpec & { role: Role }, s: QuantStats): void {
    this.lines.push({
      step: this.step, layer, gemm, operand: OPERAND_NAME[spec.role], format: describeOperand(spec),
      rel_err: s.relErr, flushed: s.flushed, saturated: s.saturated, amax: s.amax,
    });
  }
}

/** The run's telemetry file; `begin`/`end` bracket a training step. */
export class TelemetryLog {
  private constructor(readonly path: string, readonly every: number) {}

  /** null when telemetry is off (every = 0) */
  static open(dir: string, every: number): TelemetryLog | null {
    return every > 0 ? new TelemetryLog(join(dir, "telemetry.jsonl"), every) : null;
  }

  begin(ctx: RunContext, step: number): void {
    ctx.telemetry = step % this.every === 0 ? new TelemetryRecorder(step) : null;
  }

  end(ctx: RunContext): void {
    if (ctx.telemetry?.lines.length) appendFileSync(this.path, ctx.telemetry.lines.map((l) => JSON.stringify(l) + "\n").join(""));
    ctx.telemetry = null;
  }
}

/** A telemetry file's lines; a step written twice (a resumed run) keeps its later lines. */
export function readTelemetry(path: string): TelemetryLine[] {
  if (!existsSync(path)) return [];
  const byKey = new Map<string, TelemetryLine>();
  for (const l of readFileSync(path, "utf8").split("\n")) {
    if (!l.trim()) continue;
    try {
      const o = JSON.parse(l) as TelemetryLine;
      byKey.set(`${o.step}/${o.layer}/${o.gemm}/${o.operand}`, o);
    } catch {
      // a line cut short by a kill
    }
  }
  return [...byKey.values()];
}

/** Per layer, GEMM and operand: the mean of each number over the telemetry steps. */
export interface OperandSummary {
  layer: string;
  gemm: GemmName;
  operand: OperandName;
  format: string;
  steps: number;
  relErr: number;
  flushed: number;
  saturated: number;
  amax: number;
}

/** Means over steps, in the order the layers first appear (the model's order). */
export function summarizeTelemetry(lines: TelemetryLine[]): OperandSummary[] {
  const by = new Map<string, TelemetryLine[]>();
  for (const l of lines) {
    const k = `${l.layer}/${l.gemm}/${l.operand}`;
    by.set(k, [...(by.get(k) ?? []), l]);
  }
  const mean = (ls: TelemetryLine[], f: (l: TelemetryLine) => number) => ls.reduce((a, l) => a + f(l), 0) / ls.length;
  return [...by.values()].map((ls) => ({
    layer: ls[0].layer, gemm: ls[0].gemm, operand: ls[0].operand, format: ls[ls.length - 1].format, steps: ls.length,
    relErr: mean(ls, (l) => l.rel_err), flushed: mean(ls, (l) => l.flushed), saturated: mean(ls, (l) => l.saturated), amax: mean(ls, (l) => l.amax),
  }));
}
