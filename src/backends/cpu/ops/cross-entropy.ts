/**
 * Softmax cross-entropy on the output head's logits, forward and backward fused as in llm.c's
 * `crossentropy_softmax_backward` (the backward needs only the softmax the forward computes):
 * loss_n = logsumexp(logits_n) − logits_n[target_n], dlogits_n = (softmax(logits_n) − onehot) ·
 * dlossScale. logsumexp subtracts the row max, so logits of any finite size are safe; row sums
 * run in float64. Not included: label smoothing, ignore-index, z-loss, the LM head GEMM.
 *
 * Gradient convention: `dlogits` is OVERWRITTEN (it is the first gradient of the backward pass).
 * dlossScale is d(objective)/d(loss_n), the same for every row: 1/N for a mean over the batch,
 * 1/(N·accumulationSteps) with gradient accumulation.
 */
import { checkLength, type FloatArray, type TokenArray } from "./float-array.ts";

/**
 * losses (N) and, unless dlogits is null, dlogits (N,V) ← logits (N,V), targets (N).
 * N is B·T. Returns the mean of the N losses (float64). dlogits may alias logits.
 */
export function crossEntropyForwardBackward(
  losses: FloatArray,
  dlogits: FloatArray | null,
  logits: FloatArray,
  targets: TokenArray,
  N: number,
  V: number,
  dlossScale: number,
): number {
  const op = "crossEntropyForwardBackward";
  checkLength(op, "logits", logits, N * V, `(N=${N}, V=${V})`);
  checkLength(op, "losses", losses, N, `(N=${N})`);
  checkLength(op, "targets", targets, N, `(N=${N})`);
  if (dlogits !== null) checkLength(op, "dlogits", dlogits, N * V, `(N=${N}, V=${V})`);
  // Validate all targets first so a bad batch leaves the outputs untouched.
  for (let n = 0; n < N; n++) {
    const tgt = targets[n];
    if (!(tgt >= 0 && tgt < V)) {
      throw new RangeError(`${op}: target id ${tgt} at position ${n} is outside the vocabulary [0, ${V}); check the data's tokenizer against the model's V`);
    }
  }
  let total = 0;
  for (let n = 0; n < N; n++) {
    const row = n * V;
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[row + i] > max) max = logits[row + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[row + i] - max);
    const tgt = targets[n];
    const loss = max + Math.log(sum) - logits[row + tgt];
    losses[n] = loss;
    total += loss;
    if (dlogits !== null) {
      const inv = 1 / sum;
      for (let i = 0; i < V; i++) {
        const p = Math.exp(logits[row + i] - max) * inv;
        dlogits[row + i] = (p - (i === tgt ? 1 : 0)) * dlossScale;
      }
    }
  }
  return N > 0 ? total / N : 0;
}
