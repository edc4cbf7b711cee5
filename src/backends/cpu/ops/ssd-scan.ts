/**
 * The Mamba-2 selective state-space scan, computed with the chunked state-space-duality (SSD)
 * algorithm (Dao & Gu 2024, "Transformers are SSMs", arXiv 2405.21060, §6 / Listing 1; Hugging
 * Face `NemotronHMamba2Mixer.torch_forward`). Per batch b and head h (group g = h / (H/G), as
 * `repeat_interleave`):
 *   dt_t = softplus(dtRaw_t + dtBias_h),  a_h = −exp(aLog_h)
 *   S_t  = exp(dt_t·a_h) · S_{t−1} + (dt_t · x_t) ⊗ B_t[g]      (S: P × N, S_{−1} = 0)
 *   y_t  = S_t · C_t[g] + D_h · x_t
 * The sequence is cut into chunks of L tokens (the last may be shorter). With cs_i the cumulative
 * sum of dt·a inside a chunk and u_j = dt_j·x_j:
 *   intra-chunk  y_i += Σ_{j≤i} (C_i·B_j) · exp(cs_i − cs_j) · u_j      (a masked L×L matrix product)
 *   inter-chunk  y_i += exp(cs_i) · H_c · C_i,  H_{c+1} = exp(cs_last)·H_c + Σ_j exp(cs_last − cs_j) u_j ⊗ B_j
 * so the work is small matrix products plus a recurrence over T/L chunk states. Every exponent is
 * ≤ 0 (a < 0, dt > 0): nothing overflows. The forward saves the state entering each chunk,
 * `states` (B, nChunks, H, P, N), for the backward pass, which runs the same algorithm in reverse
 * (chunk by chunk from the last, carrying dL/dH). The plain recurrence above is the test oracle,
 * ssm-recurrence.ts. Not quantized anywhere (paper: only linear layers are); float64 inside.
 *
 * Layouts (row-major): x, y (B,T,H,P); dtRaw (B,T,H); Bm, Cm (B,T,G,N); aLog, dtBias, D (H).
 * Gradient convention: dx, ddtRaw, dB, dC are OVERWRITTEN; daLog, ddtBias, dD are ACCUMULATED (+=).
 */
import { checkLength, type FloatArray } from "./float-array.ts";
import { ShapeError } from "../../../errors.ts";
import type { SsdDims } from "../../backend.ts";

export type { SsdDims };

/** softplus as PyTorch's F.softplus (beta 1, threshold 20: linear above). */
export const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
/** d softplus / dv = σ(v) (1 above the threshold, as PyTorch). */
export const softplusGrad = (v: number) => (v > 20 ? 1 : 1 / (1 + Math.exp(-v)));

/** Number of chunks of a sequence of T tokens. */
export const ssdChunks = (d: SsdDims) => Math.ceil(d.T / d.chunk);
/** Shape of the per-chunk entering states the forward saves: (B, nChunks, H, P, N). */
export const ssdStatesShape = (d: SsdDims) => [d.B, ssdChunks(d), d.H, d.P, d.N];

/** Throws a ShapeError naming every bad dimension. */
export function checkSsdDims(op: string, d: SsdDims): void {
  const bad = (["B", "T", "H", "P", "G", "N", "chunk"] as const).filter((k) => !Number.isInteger(d[k]) || d[k] <= 0);
  if (bad.length) throw new ShapeError(`${op}: ${bad.map((k) => `${k} = ${d[k]}`).join(", ")} must be positive integers`);
  if (d.H % d.G !== 0) throw new ShapeError(`${op}: the groups G = ${d.G} must divide the heads H = ${d.H} (heads of a group share B and C)`);
}

function checkArrays(op: string, d: SsdDims, arrays: [string, ArrayLike<number>, number][]): void {
  const shape = `(B=${d.B}, T=${d.T}, H=${d.H}, P=${d.P}, G=${d.G}, N=${d.N}, chunk=${d.chunk})`;
  for (const [name, a, n] of arrays) checkLength(op, name, a, n, shape);
}

/**
 * CB[c, i, j] = C_i · B_j (j ≤ i) of group g, batch b, for every chunk c: the "attention-like"
 * Gram matrix the heads of a group share (computed once per group, not per head).
 */
function groupGram(CB: Float64Array, Cm: FloatArray, Bm: FloatArray, b: number, g: number, d: SsdDims): void {
  const { T, G, N, chunk: L } = d, nC = ssdChunks(d);
  for (let c = 0; c < nC; c++) {
    const t0 = c * L, Lc = Math.min(L, T - t0);
    for (let i = 0; i < Lc; i++) {
      const ci = ((b * T + t0 + i) * G + g) * N;
      for (let j = 0; j <= i; j++) {
        const bj = ((b * T + t0 + j) * G + g) * N;
        let s = 0;
        for (let n = 0; n < N; n++) s += Cm[ci + n] * Bm[bj + n];
        CB[(c * L + i) * L + j] = s;
      }
    }
  }
}

/** y (B,T,H,P) and states (B,nChunks,H,P,N) ← the scan of x with dt, A, B, C, D (chunked SSD). */
export function ssdForward(
  y: FloatArray, states: FloatArray, x: FloatArray, dtRaw: FloatArray, aLog: FloatArray, dtBias: FloatArray, D: FloatArray,
  Bm: FloatArray, Cm: FloatArray, d: SsdDims,
): void {
  checkSsdDims("ssdForward", d);
  const { B, T, H, P, G, N, chunk: L } = d, nC = ssdChunks(d), hpg = H / G;
  checkArrays("ssdForward", d, [
    ["x (B,T,H,P)", x, B * T * H * P], ["y (B,T,H,P)", y, B * T * H * P], ["dtRaw (B,T,H)", dtRaw, B * T * H],
    ["Bm (B,T,G,N)", Bm, B * T * G * N], ["Cm (B,T,G,N)", Cm, B * T * G * N], ["aLog (H)", aLog, H], ["dtBias (H)", dtBias, H], ["D (H)", D, H],
    ["states (B,nChunks,H,P,N)", states, B * nC * H * P * N],
  ]);
  const Hs = new Float64Array(P * N), cs = new Float64Array(L), u = new Float64Array(L * P), acc = new Float64Array(P);
  const dtv = new Float64Array(L), CB = new Float64Array(nC * L * L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / hpg), a = -Math.exp(aLog[h]), Dh = D[h];
      if (h % hpg === 0) groupGram(CB, Cm, Bm, b, g, d);
      Hs.fill(0);
      for (let c = 0; c < nC; c++) {
        const t0 = c * L, Lc = Math.min(L, T - t0);
        states.set(Hs, ((b * nC + c) * H + h) * P * N);
        let run = 0;
        for (let i = 0; i < Lc; i++) {
          const bt = b * T + t0 + i;
          dtv[i] = softplus(dtRaw[bt * H + h] + dtBias[h]);
          run += dtv[i] * a;
          cs[i] = run;
          for (let p = 0; p < P; p++) u[i * P + p] = dtv[i] * x[(bt * H + h) * P + p];
        }
        for (let i = 0; i < Lc; i++) {
          const bt = b * T + t0 + i, ci = (bt * G + g) * N, xo = (bt * H + h) * P;
          acc.fill(0);
          for (let j = 0; j <= i; j++) {
            const m = CB[(c * L + i) * L + j] * Math.exp(cs[i] - cs[j]);
            for (let p = 0; p < P; p++) acc[p] += m * u[j * P + p];
          }
          const ei = Math.exp(cs[i]);
          for (let p = 0; p < P; p++) {
            let s = 0;
            for (let n = 0; n < N; n++) s += Cm[ci + n] * Hs[p * N + n];
            y[xo + p] = acc[p] + ei * s + Dh * x[xo + p];
          }
        }
        const el = Math.exp(cs[Lc - 1]);
        for (let k = 0; k < P * N; k++) Hs[k] *= el;
        for (let j = 0; j < Lc; j++) {
          const bj = ((b * T + t0 + j) * G + g) * N, e = Math.exp(cs[Lc - 1] - cs[j]);
          for (let p = 0; p < P; p++) {
            const up = e * u[j * P + p];
            for (let n = 0; n < N; n++) Hs[p * N + n] += up * Bm[bj + n];
          }
        }
      }
    }
  }
}

/**
 * The backward pass of ssdForward: dx, ddtRaw (dL/d dtRaw), dB, dC overwritten; daLog, ddtBias,
 * dD accumulated. `states` is what the forward saved. dy is not modified.
 */
export function ssdBackward(
  dx: FloatArray, ddtRaw: FloatArray, daLog: FloatArray, ddtBias: FloatArray, dD: FloatArray, dB: FloatArray, dC: FloatArray,
  dy: FloatArray, x: FloatArray, dtRaw: FloatArray, aLog: FloatArray, dtBias: FloatArray, D: FloatArray, Bm: FloatArray, Cm: FloatArray,
  states: FloatArray, d: SsdDims,
): void {
  checkSsdDims("ssdBackward", d);
  const { B, T, H, P, G, N, chunk: L } = d, nC = ssdChunks(d), hpg = H / G;
  checkArrays("ssdBackward", d, [
    ["x (B,T,H,P)", x, B * T * H * P], ["dy (B,T,H,P)", dy, B * T * H * P], ["dx (B,T,H,P)", dx, B * T * H * P],
    ["dtRaw (B,T,H)", dtRaw, B * T * H], ["ddtRaw (B,T,H)", ddtRaw, B * T * H],
    ["Bm (B,T,G,N)", Bm, B * T * G * N], ["Cm (B,T,G,N)", Cm, B * T * G * N], ["dB (B,T,G,N)", dB, B * T * G * N], ["dC (B,T,G,N)", dC, B * T * G * N],
    ["aLog (H)", aLog, H], ["dtBias (H)", dtBias, H], ["D (H)", D, H], ["daLog (H)", daLog, H], ["ddtBias (H)", ddtBias, H], ["dD (H)", dD, H],
    ["states (B,nChunks,H,P,N)", states, B * nC * H * P * N],
  ]);
  // dB, dC sum over the heads of a group: float64 accumulators, written once
  const dBacc = new Float64Array(B * T * G * N), dCacc = new Float64Array(B * T * G * N);
  const dHn = new Float64Array(P * N), dHc = new Float64Array(P * N), Hc = new Float64Array(P * N);
  const cs = new Float64Array(L), dtv = new Float64Array(L), u = new Float64Array(L * P), du = new Float64Array(L * P), dcs = new Float64Array(L);
  const CB = new Float64Array(nC * L * L), da = new Float64Array(H), dDh = new Float64Array(H), dBias = new Float64Array(H);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / hpg), a = -Math.exp(aLog[h]), Dh = D[h];
      if (h % hpg === 0) groupGram(CB, Cm, Bm, b, g, d);
      dHn.fill(0);
      for (let c = nC - 1; c >= 0; c--) {
        const t0 = c * L, Lc = Math.min(L, T - t0);
        const so = ((b * nC + c) * H + h) * P * N;
        for (let k = 0; k < P * N; k++) Hc[k] = states[so + k];
        let run = 0;
        for (let i = 0; i < Lc; i++) {
          const bt = b * T + t0 + i;
          dtv[i] = softplus(dtRaw[bt * H + h] + dtBias[h]);
          run += dtv[i] * a;
          cs[i] = run;
          for (let p = 0; p < P; p++) u[i * P + p] = dtv[i] * x[(bt * H + h) * P + p];
        }
        du.fill(0, 0, Lc * P);
        dcs.fill(0, 0, Lc);
        dHc.fill(0);
        for (let i = 0; i < Lc; i++) {
          const bt = b * T + t0 + i, ci = (bt * G + g) * N, yo = (bt * H + h) * P, ei = Math.exp(cs[i]);
          // inter-chunk output: y_i += exp(cs_i) · Hc · C_i
          let t = 0;
          for (let p = 0; p < P; p++) {
            let s = 0;
            for (let n = 0; n < N; n++) s += Cm[ci + n] * Hc[p * N + n];
            t += dy[yo + p] * s;
          }
          dcs[i] += ei * t;
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let p = 0; p < P; p++) s += dy[yo + p] * Hc[p * N + n];
            dCacc[ci + n] += ei * s;
          }
          for (let p = 0; p < P; p++) {
            const v = ei * dy[yo + p];
            for (let n = 0; n < N; n++) dHc[p * N + n] += v * Cm[ci + n];
          }
          // intra-chunk: y_i += Σ_{j≤i} (C_i·B_j) exp(cs_i − cs_j) u_j
          for (let j = 0; j <= i; j++) {
            const bj = ((b * T + t0 + j) * G + g) * N;
            const dec = Math.exp(cs[i] - cs[j]), m = CB[(c * L + i) * L + j] * dec;
            let dm = 0;
            for (let p = 0; p < P; p++) {
              dm += dy[yo + p] * u[j * P + p];
              du[j * P + p] += m * dy[yo + p];
            }
            const dg = dm * dec;
            for (let n = 0; n < N; n++) {
              dCacc[ci + n] += dg * Bm[bj + n];
              dBacc[bj + n] += dg * Cm[ci + n];
            }
            if (j !== i) {
              dcs[i] += dm * m;
              dcs[j] -= dm * m;
            }
          }
        }
        // the chunk's state: H_{c+1} = exp(cs_last)·Hc + Σ_j exp(cs_last − cs_j) u_j ⊗ B_j, dL/dH_{c+1} = dHn
        const last = Lc - 1, el = Math.exp(cs[last]);
        for (let j = 0; j < Lc; j++) {
          const bj = ((b * T + t0 + j) * G + g) * N, e = Math.exp(cs[last] - cs[j]);
          let tt = 0;
          for (let n = 0; n < N; n++) {
            let q = 0;
            for (let p = 0; p < P; p++) q += dHn[p * N + n] * u[j * P + p];
            dBacc[bj + n] += e * q;
            tt += Bm[bj + n] * q;
          }
          for (let p = 0; p < P; p++) {
            let s = 0;
            for (let n = 0; n < N; n++) s += dHn[p * N + n] * Bm[bj + n];
            du[j * P + p] += e * s;
          }
          dcs[last] += e * tt;
          dcs[j] -= e * tt;
        }
        let hd = 0;
        for (let k = 0; k < P * N; k++) hd += dHn[k] * Hc[k];
        dcs[last] += el * hd;
        for (let k = 0; k < P * N; k++) dHn[k] = dHc[k] + el * dHn[k];
        // cs_i = Σ_{m≤i} dt_m·a: dL/d(dt_m·a) is the reverse cumulative sum of dcs
        let rc = 0;
        for (let m = Lc - 1; m >= 0; m--) {
          rc += dcs[m];
          const bt = b * T + t0 + m, xo = (bt * H + h) * P;
          let ddt = rc * a;
          da[h] += rc * dtv[m];
          for (let p = 0; p < P; p++) {
            ddt += du[m * P + p] * x[xo + p];
            dDh[h] += dy[xo + p] * x[xo + p];
            dx[xo + p] = du[m * P + p] * dtv[m] + Dh * dy[xo + p];
          }
          const gr = ddt * softplusGrad(dtRaw[bt * H + h] + dtBias[h]);
          ddtRaw[bt * H + h] = gr;
          dBias[h] += gr;
        }
      }
    }
  }
  for (let h = 0; h < H; h++) {
    daLog[h] += da[h] * -Math.exp(aLog[h]);
    dD[h] += dDh[h];
    ddtBias[h] += dBias[h];
  }
  for (let i = 0; i < B * T * G * N; i++) {
    dB[i] = dBacc[i];
    dC[i] = dCacc[i];
  }
}
