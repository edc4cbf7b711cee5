/**
 * One status line per step: step, loss, lr, grad norm, ms, tokens/s. On a terminal the line is
 * redrawn in place with a progress bar (and evaluation lines stay); otherwise plain lines, every
 * `every` steps and at the end, so logs stay readable.
 */

export interface StepStatus {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  ms: number;
  tokensPerS: number;
}

export class Progress {
  private readonly live: boolean;

  constructor(private readonly mode: "auto" | "plain" | "quiet", private readonly every = 10, private readonly out = process.stdout) {
    this.live = mode === "auto" && Boolean(out.isTTY);
  }

  static format(s: StepStatus): string {
    return `step ${String(s.step + 1).padStart(String(s.steps).length)}/${s.steps}  loss ${s.loss.toFixed(4)}  lr ${s.lr.toExponential(2)}  ` +
      `norm ${s.gradNorm.toFixed(3)}  ${s.ms.toFixed(0)} ms  ${Math.round(s.tokensPerS)} tok/s`;
  }

  step(s: StepStatus): void {
    if (this.mode === "quiet") return;
    if (this.live) {
      const width = 20, done = Math.round(((s.step + 1) / s.steps) * width);
      this.out.write(`\r\x1b[2K[${"#".repeat(done)}${".".repeat(width - done)}] ${Progress.format(s)}`);
      if (s.step + 1 === s.steps) this.out.write("\n");
    } else if ((s.step + 1) % this.every === 0 || s.step === 0 || s.step + 1 === s.steps) {
      this.out.write(Progress.format(s) + "\n");
    }
  }

  /** A line that stays (evaluation, checkpoint, notices). */
  note(text: string): void {
    if (this.mode === "quiet") return;
    this.out.write((this.live ? "\r\x1b[2K" : "") + text + "\n");
  }
}
