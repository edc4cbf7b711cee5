/**
 * The Mamba-2 selective scan as the plain token-by-token recurrence: the boring twin of the
 * chunked SSD algorithm in ssd-scan.ts, used only as its test oracle (same arguments, same
 * gradient convention, no saved states). Per batch b and head h, group g = h / (H/G):
 *   dt_t = softplus(dtRaw_t + dtBias_h),  a_h = −exp(aLog_h)
 *   S_t = exp(dt_t·a_h)·S_{t−1} + dt_t·x_t ⊗ B_t[g],   y_t = S_t·C_t[g] + D_h·x_t
 * Backward: G_t = dL/dS_t = dy_t ⊗ C_t + exp(dt_{t+1}·a)·G_{t+1}, every state kept in memory
 * (T·P·N per head: fine for tests, not for training). Method: Gu & Dao 2023 (arXiv 2312.00752)
 * Alg. 2 with Mamba-2's scalar A per head (arXiv 2405.21060 §3).
 */
import type { FloatArray } from "./float-array.ts";
import { checkSsdDims, softplus, softplusGrad, type SsdDims } from "./ssd-scan.ts";

/** y (B,T,H,P) ← the recurrence (layouts as ssdForward). */
export function ssmRecurrenceForward(
  y: FloatArray, x: FloatArray, dtRaw: FloatArray, aLog: FloatArray, dtBias: FloatArray, D: FloatArray, Bm: FloatArray, Cm: FloatArray, d: SsdDims,
): void {
  checkSsdDims("ssmRecurrenceForward", d);
  const { B, T, H, P, G, N } = d, hpg = H / G;
  const S = new Float64Array(P * N);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / hpg), a = -Math.exp(aLog[h]);
      S.fill(0);
      for (let t = 0; t < T; t++) {
        const bt = b * T + t, dt = softplus(dtRaw[bt * H + h] + dtBias[h]), al = Math.exp(dt * a);
        const xo = (bt * H + h) * P, go = (bt * G + g) * N;
        for (let p = 0; p < P; p++) {
          let s = 0;
          for (let n = 0; n < N; n++) {
            const v = al * S[p * N + n] + dt * x[xo + p] * Bm[go + n];
            S[p * N + n] = v;
            s += v * Cm[go + n];
          }
          y[xo + p] = s + D[h] * x[xo + p];
        }
      }
    }
  }
}

/** The recurrence's backward pass (arguments and convention as ssdBackward, without states). */
export function ssmRecurrenceBackward(
  dx: FloatArray, ddtRaw: FloatArray, daLog: FloatArray, ddtBias: FloatArray, dD: FloatArray, dB: FloatArray, dC: FloatArray,
  dy: FloatArray, x: FloatArray, dtRaw: FloatArray, aLog: FloatArray, dtBias: FloatArray, D: FloatArray, Bm: FloatArray, Cm: FloatArray, d: SsdDims,
): void {
  checkSsdDims("ssmRecurrenceBackward", d);
  const { B, T, H, P, G, N } = d, hpg = H / G;
  dB.fill(0, 0, B * T * G * N);
  dC.fill(0, 0, B * T * G * N);
  const hist = new Float64Array((T + 1) * P * N); // hist[t+1] = S_t, hist[0] = 0
  const Gs = new Float64Array(P * N);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / hpg), a = -Math.exp(aLog[h]);
      const dts = Float64Array.from({ length: T }, (_, t) => softplus(dtRaw[(b * T + t) * H + h] + dtBias[h]));
      for (let t = 0; t < T; t++) {
        const xo = ((b * T + t) * H + h) * P, go = ((b * T + t) * G + g) * N, al = Math.exp(dts[t] * a);
        for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) {
          hist[(t + 1) * P * N + p * N + n] = al * hist[t * P * N + p * N + n] + dts[t] * x[xo + p] * Bm[go + n];
        }
      }
      Gs.fill(0);
      let da = 0;
      for (let t = T - 1; t >= 0; t--) {
        const bt = b * T + t, xo = (bt * H + h) * P, go = (bt * G + g) * N, dt = dts[t], al = Math.exp(dt * a);
        const St = (t + 1) * P * N, Sp = t * P * N;
        // G_t = dy_t ⊗ C_t + exp(dt_{t+1}·a)·G_{t+1} (Gs holds the second term on entry)
        for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) Gs[p * N + n] += dy[xo + p] * Cm[go + n];
        for (let n = 0; n < N; n++) {
          let sc = 0, sb = 0;
          for (let p = 0; p < P; p++) {
            sc += dy[xo + p] * hist[St + p * N + n];
            sb += Gs[p * N + n] * dt * x[xo + p];
          }
          dC[go + n] += sc;
          dB[go + n] += sb;
        }
        let dal = 0, ddt = 0;
        for (let p = 0; p < P; p++) {
          let du = 0;
          for (let n = 0; n < N; n++) {
            du += Gs[p * N + n] * Bm[go + n];
            dal += Gs[p * N + n] * hist[Sp + p * N + n];
          }
          ddt += du * x[xo + p];
          dx[xo + p] = du * dt + D[h] * dy[xo + p];
          dD[h] += dy[xo + p] * x[xo + p];
        }
        // α = exp(dt·a): dα/d dt = α·a, dα/da = α·dt
        ddt += dal * al * a;
        da += dal * al * dt;
        const gr = ddt * softplusGrad(dtRaw[bt * H + h] + dtBias[h]);
        ddtRaw[bt * H + h] = gr;
        ddtBias[h] += gr;
        for (let k = 0; k < P * N; k++) Gs[k] *= al;
      }
      daLog[h] += da * a;
    }
  }
}
