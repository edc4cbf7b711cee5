/**
 * Learning-rate schedules: linear warmup, then constant-then-decay (WSD, warmup-stable-decay, as
 * the paper's runs: constant LR, decayed over the last 15–20% of training to 1% of the peak) or
 * cosine. Pure functions of the step, so a resumed run gets the same LR as an uninterrupted one.
 * Source: arXiv 2509.25149 App. A (WSD; 12B: 4.5e-4 → 4.5e-6 over the last 20%); decay shape
 * not stated in the paper: linear by default, "1-sqrt" and "cosine" as options.
 */

export interface ScheduleConfig {
  kind: "wsd" | "cosine" | "constant";
  /** peak learning rate */
  lr: number;
  /** final LR as a fraction of the peak (paper: 0.01) */
  minLrRatio: number;
  warmupSteps: number;
  /** WSD: fraction of all steps spent decaying, at the end (paper: 0.15–0.2) */
  decayFraction: number;
  /** WSD decay curve */
  decayShape: "linear" | "1-sqrt" | "cosine";
}

/** Step at which a WSD schedule starts decaying. */
export function decayStart(s: ScheduleConfig, totalSteps: number): number {
  return s.kind === "wsd" ? Math.round(totalSteps * (1 - s.decayFraction)) : s.warmupSteps;
}

/** LR at `step` (0-based) of a run of `totalSteps`. */
export function learningRate(s: ScheduleConfig, step: number, totalSteps: number): number {
  const minLr = s.lr * s.minLrRatio;
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === "constant") return s.lr;
  if (s.kind === "cosine") {
    const span = Math.max(1, totalSteps - s.warmupSteps);
    const p = Math.min(1, (step - s.warmupSteps) / span);
    return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * p));
  }
  const start = Math.max(decayStart(s, totalSteps), s.warmupSteps);
  if (step < start) return s.lr;
  const p = Math.min(1, (step - start + 1) / Math.max(1, totalSteps - start));
  const f = s.decayShape === "linear" ? 1 - p : s.decayShape === "1-sqrt" ? 1 - Math.sqrt(p) : 0.5 * (1 + Math.cos(Math.PI * p));
  return minLr + (s.lr - minLr) * f;
}
