/**
 * Causal grouped-query attention core: out = softmax(Q·Kᵀ/√HS + causal mask)·V per head, with
 * NH query heads sharing NKV key/value heads (head h reads kv head ⌊h / (NH/NKV)⌋, the grouping of
 * HF `repeat_kv`; NKV = NH is multi-head, NKV = 1 multi-query). The two batched GEMMs and the
 * softmax are the part of the model the NVFP4 recipe never quantizes (docs/paper.md §2: all
 * attention internals stay in high precision), so here every dot product, max, exponential sum
 * and weighted sum runs in float64 and is rounded once on store. Not included: the Q/K/V and
 * output projections (ordinary linears), RoPE (rope.ts), dropout, masks other than causal, KV
 * cache. Algorithm: the textbook form with the T×T probabilities materialised, as llm.c's
 * `attention_forward` (not FlashAttention; T is small in CPU tests). Method: Vaswani et al. 2017,
 * arXiv 1706.03762; GQA: Ainslie et al. 2023, arXiv 2305.13245.
 *
 * Gradient convention: dq, dk, dv are OVERWRITTEN (no parameters here); dk and dv hold the sum
 * over the NH/NKV query heads of their group. Outputs must not alias inputs.
 */
import { ShapeError } from "../../../errors.ts";
import { checkLength, type FloatArray } from "./float-array.ts";

function checkDims(op: string, B: number, T: number, NH: number, NKV: number, HS: number): void {
  for (const [name, v] of [["B", B], ["T", T], ["NH", NH], ["NKV", NKV], ["HS", HS]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new ShapeError(`${op}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (NKV <= 0 || NH % NKV !== 0) {
    throw new ShapeError(`${op}: NH=${NH} query heads cannot be grouped over NKV=${NKV} key/value heads; NH must be a positive multiple of NKV`);
  }
}

/**
 * out (B,T,NH,HS), probs (B,NH,T,T) ← q (B,T,NH,HS), k (B,T,NKV,HS), v (B,T,NKV,HS).
 * probs[b,h,i,j] is the softmax weight of key j for query i, saved for the backward; entries with
 * j > i are written as 0. Rows are stabilised by subtracting their max score.
 */
export function attentionForward(
  out: FloatArray,
  probs: FloatArray,
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  B: number,
  T: number,
  NH: number,
  NKV: number,
  HS: number,
): void {
  const op = "attentionForward";
  checkDims(op, B, T, NH, NKV, HS);
  const qShape = `(B=${B}, T=${T}, NH=${NH}, HS=${HS})`, kvShape = `(B=${B}, T=${T}, NKV=${NKV}, HS=${HS})`;
  checkLength(op, "q", q, B * T * NH * HS, qShape);
  checkLength(op, "out", out, B * T * NH * HS, qShape);
  checkLength(op, "k", k, B * T * NKV * HS, kvShape);
  checkLength(op, "v", v, B * T * NKV * HS, kvShape);
  checkLength(op, "probs", probs, B * NH * T * T, `(B=${B}, NH=${NH}, T=${T}, T=${T})`);
  const rep = NH / NKV;
  const scale = 1 / Math.sqrt(HS);
  const e = new Float64Array(T); // exp(score − max) of one row, kept in float64 for the V sum
  const acc = new Float64Array(HS);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / rep);
      const pBase = (b * NH + h) * T * T;
      for (let i = 0; i < T; i++) {
        const qOff = ((b * T + i) * NH + h) * HS;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const kOff = ((b * T + j) * NKV + g) * HS;
          let s = 0;
          for (let d = 0; d < HS; d++) s += q[qOff + d] * k[kOff + d];
          s *= scale;
          e[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          e[j] = Math.exp(e[j] - max);
          sum += e[j];
        }
        const inv = 1 / sum;
        const row = pBase + i * T;
        acc.fill(0);
        for (let j = 0; j <= i; j++) {
          const p = e[j] * inv;
          probs[row + j] = p;
          const vOff = ((b * T + j) * NKV + g) * HS;
          for (let d = 0; d < HS; d++) acc[d] += p * v[vOff + d];
        }
        for (let j = i + 1; j < T; j++) probs[row + j] = 0;
        for (let d = 0; d < HS; d++) out[qOff + d] = acc[d];
      }
    }
  }
}

/**
 * dq (B,T,NH,HS), dk, dv (B,T,NKV,HS) ← dout (B,T,NH,HS) and the forward's q, k, v, probs.
 * With P = probs, dP_ij = dout_i·v_j, D_i = Σ_j P_ij·dP_ij and dS_ij = P_ij·(dP_ij − D_i):
 * dq_i = Σ_j dS_ij·k_j/√HS, dk_j = Σ_{h in group, i ≥ j} dS_ij·q_i/√HS, dv_j = Σ_{h, i ≥ j} P_ij·dout_i.
 * Two passes so every gradient element is one float64 sum rounded once: pass 1 walks query rows
 * (dq and D), pass 2 walks key columns (dk, dv), recomputing dP_ij rather than storing a second T×T
 * tensor.
 */
export function attentionBackward(
  dq: FloatArray,
  dk: FloatArray,
  dv: FloatArray,
  dout: FloatArray,
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  probs: FloatArray,
  B: number,
  T: number,
  NH: number,
  NKV: number,
  HS: number,
): void {
  const op = "attentionBackward";
  checkDims(op, B, T, NH, NKV, HS);
  const qShape = `(B=${B}, T=${T}, NH=${NH}, HS=${HS})`, kvShape = `(B=${B}, T=${T}, NKV=${NKV}, HS=${HS})`;
  for (const [name, a] of [["q", q], ["dq", dq], ["dout", dout]] as const) checkLength(op, name, a, B * T * NH * HS, qShape);
  for (const [name, a] of [["k", k], ["v", v], ["dk", dk], ["dv", dv]] as const) checkLength(op, name, a, B * T * NKV * HS, kvShape);
  checkLength(op, "probs", probs, B * NH * T * T, `(B=${B}, NH=${NH}, T=${T}, T=${T})`);
  const rep = NH / NKV;
  const scale = 1 / Math.sqrt(HS);
  const D = new Float64Array(B * NH * T); // (B,NH,T): D_i = Σ_j P_ij·dP_ij = dout_i·out_i
  const dp = new Float64Array(T);
  const acc = new Float64Array(HS);
  const acc2 = new Float64Array(HS);

  // Pass 1: query rows → dq, D.
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / rep);
      const pBase = (b * NH + h) * T * T;
      for (let i = 0; i < T; i++) {
        const qOff = ((b * T + i) * NH + h) * HS;
        const row = pBase + i * T;
        let Di = 0;
        for (let j = 0; j <= i; j++) {
          const vOff = ((b * T + j) * NKV + g) * HS;
          let s = 0;
          for (let d = 0; d < HS; d++) s += dout[qOff + d] * v[vOff + d];
          dp[j] = s;
          Di += probs[row + j] * s;
        }
        D[(b * NH + h) * T + i] = Di;
        acc.fill(0);
        for (let j = 0; j <= i; j++) {
          const ds = probs[row + j] * (dp[j] - Di);
          const kOff = ((b * T + j) * NKV + g) * HS;
          for (let d = 0; d < HS; d++) acc[d] += ds * k[kOff + d];
        }
        for (let d = 0; d < HS; d++) dq[qOff + d] = acc[d] * scale;
      }
    }
  }

  // Pass 2: key/value columns → dk, dv, summed over the query heads of the group.
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < NKV; g++) {
      for (let j = 0; j < T; j++) {
        const kvOff = ((b * T + j) * NKV + g) * HS;
        acc.fill(0); // dk_j
        acc2.fill(0); // dv_j
        for (let h = g * rep; h < (g + 1) * rep; h++) {
          const pBase = (b * NH + h) * T * T;
          for (let i = j; i < T; i++) {
            const p = probs[pBase + i * T + j];
            const qOff = ((b * T + i) * NH + h) * HS;
            let s = 0;
            for (let d = 0; d < HS; d++) s += dout[qOff + d] * v[kvOff + d];
            const ds = p * (s - D[(b * NH + h) * T + i]);
            for (let d = 0; d < HS; d++) {
              acc[d] += ds * q[qOff + d];
              acc2[d] += p * dout[qOff + d];
            }
          }
        }
        for (let d = 0; d < HS; d++) {
          dk[kvOff + d] = acc[d] * scale;
          dv[kvOff + d] = acc2[d];
        }
      }
    }
  }
}
