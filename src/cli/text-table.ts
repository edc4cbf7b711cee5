/**
 * Plain-text tables and tiny bar charts for terminal output. Columns are left-aligned for text
 * and right-aligned for numbers.
 */

/** Render rows (first row = header) as an aligned table. */
export function textTable(rows: (string | number)[][], numeric: boolean[] = []): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) =>
    r.map((v, c) => (numeric[c] ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join("  ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

const BARS = "▁▂▃▄▅▆▇█";

/** One character per value, height proportional to value / max (0 → space). */
export function sparkline(values: number[]): string {
  const max = Math.max(...values, 0);
  return values.map((v) => (v <= 0 || max === 0 ? " " : BARS[Math.min(7, Math.floor((v / max) * 7.999))])).join("");
}
