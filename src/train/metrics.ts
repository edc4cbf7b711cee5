/**
 * Metrics as JSONL, one object per line, appended and flushed line by line so that a killed run
 * keeps everything up to its last step. Line kinds: `run` (first line: config, recipe and the
 * precision of every GEMM), `step` (loss, lr, grad norm, ms, tokens/s), `eval` (step, val_loss),
 * `switch` (a precision change), `resume`, `end`. `readMetrics` returns the lines, keeping the
 * last record per (kind, step) so that a resumed run reads like an uninterrupted one.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";

export type MetricsLine = { type: string; step?: number; [k: string]: unknown };

export class MetricsWriter {
  constructor(readonly path: string) {}

  write(line: MetricsLine): void {
    appendFileSync(this.path, JSON.stringify(line) + "\n");
  }
}

/** Parse a metrics file; later records of the same (type, step) replace earlier ones. */
export function readMetrics(path: string): MetricsLine[] {
  if (!existsSync(path)) return [];
  const byKey = new Map<string, MetricsLine>();
  const order: string[] = [];
  readFileSync(path, "utf8").split("\n").forEach((l, i) => {
    if (!l.trim()) return;
    let o: MetricsLine;
    try {
      o = JSON.parse(l) as MetricsLine;
    } catch {
      return; // a line cut short by a kill
    }
    const key = o.step === undefined ? `${o.type}#${i}` : `${o.type}@${o.step}`;
    if (!byKey.has(key)) order.push(key);
    byKey.set(key, o);
  });
  return order.map((k) => byKey.get(k)!);
}
