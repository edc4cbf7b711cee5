/**
 * The Mamba-2 mixer module: its forward pass against an independent float64 transcription of HF
 * NemotronHMamba2Mixer.torch_forward's arithmetic (in_proj split [z | xBC | dt], conv with left
 * zero padding, SiLU, the plain recurrence instead of the chunked scan, gated norm, out_proj), and
 * its backward pass (every parameter and the input) against a central finite difference along a
 * random direction (fp32 recipe, as the whole-model check in test/train.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CpuBackend, type CpuTensor } from "../backends/cpu/cpu-backend.ts";
import { ssmRecurrenceForward } from "../backends/cpu/ops/ssm-recurrence.ts";
import { recipeByName } from "../recipes/recipe.ts";
import { RunContext } from "./context.ts";
import { mambaDims } from "./hybrid-config.ts";
import { Mamba2 } from "./mamba2.ts";
import type { ModelConfig } from "./model-config.ts";

const CFG: ModelConfig = {
  vocabSize: 32, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 32, seqLen: 12, ropeTheta: 10000, normEps: 1e-5, pattern: "M",
  mamba: { nGroups: 2, dState: 4, headDim: 4, expand: 2, convWindow: 4, chunkSize: 5 },
};

function lcg(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => (((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1) * scale);
}

/** HF's mixer in float64 from the module's parameters; x (BT, C) → out (BT, C). */
function reference(m: Mamba2, x: Float32Array, B: number, T: number): Float64Array {
  const d = mambaDims(CFG), C = CFG.dModel, BT = B * T, GN = d.G * d.N;
  const get = (t: unknown) => (t as CpuTensor).data;
  const Win = get(m.inProj.weight.data), Wout = get(m.outProj.weight.data), cw = get(m.convWeight.data), cb = get(m.convBias.data);
  const proj = new Float64Array(BT * d.inProj);
  for (let r = 0; r < BT; r++) for (let o = 0; o < d.inProj; o++) {
    let s = 0;
    for (let i = 0; i < C; i++) s += Win[o * C + i] * x[r * C + i];
    proj[r * d.inProj + o] = s;
  }
  const col = (r: number, c: number) => proj[r * d.inProj + c];
  const silu = (v: number) => v / (1 + Math.exp(-v));
  // xBC = proj[:, dInner : dInner + convDim]; depthwise conv, padding W−1, first T outputs
  const xbc = new Float64Array(BT * d.convDim);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let c = 0; c < d.convDim; c++) {
    let s = cb[c];
    for (let k = 0; k < d.W; k++) {
      const src = t + k - (d.W - 1);
      if (src >= 0) s += cw[c * d.W + k] * col(b * T + src, d.dInner + c);
    }
    xbc[(b * T + t) * d.convDim + c] = silu(s);
  }
  const xs = new Float64Array(BT * d.dInner), Bm = new Float64Array(BT * GN), Cm = new Float64Array(BT * GN), dt = new Float64Array(BT * d.H);
  for (let r = 0; r < BT; r++) {
    for (let i = 0; i < d.dInner; i++) xs[r * d.dInner + i] = xbc[r * d.convDim + i];
    for (let i = 0; i < GN; i++) {
      Bm[r * GN + i] = xbc[r * d.convDim + d.dInner + i];
      Cm[r * GN + i] = xbc[r * d.convDim + d.dInner + GN + i];
    }
    for (let h = 0; h < d.H; h++) dt[r * d.H + h] = col(r, d.dInner + d.convDim + h);
  }
  const y = new Float64Array(BT * d.dInner);
  const f64 = (t: unknown) => Float64Array.from(get(t));
  ssmRecurrenceForward(y, xs, dt, f64(m.aLog.data), f64(m.dtBias.data), f64(m.D.data), Bm, Cm, { B, T, H: d.H, P: d.P, G: d.G, N: d.N, chunk: 1 });
  // gated norm: y·silu(z) normalised per group of dInner/G, times the weight
  const nw = get(m.normWeight.data), S = d.dInner / d.G, yn = new Float64Array(BT * d.dInner);
  for (let r = 0; r < BT; r++) for (let g = 0; g < d.G; g++) {
    const h = Array.from({ length: S }, (_, i) => y[r * d.dInner + g * S + i] * silu(col(r, g * S + i)));
    const rs = 1 / Math.sqrt(h.reduce((a, v) => a + v * v, 0) / S + CFG.normEps);
    h.forEach((v, i) => (yn[r * d.dInner + g * S + i] = v * rs * nw[g * S + i]));
  }
  const out = new Float64Array(BT * C);
  for (let r = 0; r < BT; r++) for (let o = 0; o < C; o++) {
    let s = 0;
    for (let i = 0; i < d.dInner; i++) s += Wout[o * d.dInner + i] * yn[r * d.dInner + i];
    out[r * C + o] = s;
  }
  return out;
}

test("Mamba-2 mixer = HF NemotronH's torch_forward (float64 transcription with the plain recurrence); parameter shapes and init", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const ctx = new RunContext(be, recipeByName("fp32"), 5);
    const B = 2, T = CFG.seqLen, C = CFG.dModel, d = mambaDims(CFG);
    const m = new Mamba2(ctx, "blocks.0.mamba", CFG, 0, 0, B, T);
    assert.deepEqual(m.params.map((p) => [p.name, p.shape.join("x")]), [
      ["blocks.0.mamba.in_proj.weight", `${2 * 32 + 2 * 2 * 4 + 8}x16`], ["blocks.0.mamba.conv.weight", "48x4"], ["blocks.0.mamba.conv.bias", "48"],
      ["blocks.0.mamba.dt_bias", "8"], ["blocks.0.mamba.A_log", "8"], ["blocks.0.mamba.D", "8"], ["blocks.0.mamba.norm.weight", "32"], ["blocks.0.mamba.out_proj.weight", "16x32"],
    ]);
    const aLog = be.toArray(m.aLog.data as CpuTensor), dtB = be.toArray(m.dtBias.data as CpuTensor);
    assert.ok(aLog.every((v) => v >= 0 && v <= Math.log(16)), `A_log in [0, log 16]: ${aLog}`);
    assert.ok(dtB.every((v) => { const dt = Math.log1p(Math.exp(v)); return dt >= 1e-3 * 0.999 && dt <= 0.1 * 1.001; }), `softplus(dt_bias) in [1e-3, 0.1]: ${dtB}`);
    assert.deepEqual([...be.toArray(m.D.data as CpuTensor)], Array(d.H).fill(1));
    // O(1) weights so every part matters
    be.copy(m.inProj.weight.data as CpuTensor, be.fromArray(lcg(d.inProj * C, 11, 0.5), [d.inProj, C]));
    be.copy(m.outProj.weight.data as CpuTensor, be.fromArray(lcg(C * d.dInner, 12, 0.3), [C, d.dInner]));
    be.copy(m.normWeight.data as CpuTensor, be.fromArray(lcg(d.dInner, 13, 0.5).map((v) => 1 + v), [d.dInner]));
    const x = lcg(B * T * C, 14);
    const out = be.alloc([B * T, C]);
    m.forward(out, be.fromArray(x, [B * T, C]));
    const got = be.toArray(out), ref = reference(m, x, B, T);
    let err = 0, scale = 0;
    for (let i = 0; i < ref.length; i++) { err = Math.max(err, Math.abs(got[i] - ref[i])); scale = Math.max(scale, Math.abs(ref[i])); }
    assert.ok(scale > 0.3, `reference output too small to test: ${scale}`);
    assert.ok(err / scale < 2e-6, `max rel error ${err / scale}`);
  } finally {
    be.close();
  }
});

test("Mamba-2 mixer backward (every parameter and the input) matches a central difference along a random direction (fp32 recipe)", () => {
  const be = new CpuBackend({ threads: 1 });
  try {
    const ctx = new RunContext(be, recipeByName("fp32"), 9);
    const B = 2, T = CFG.seqLen, C = CFG.dModel, d = mambaDims(CFG);
    const m = new Mamba2(ctx, "m", CFG, 0, 0, B, T);
    be.copy(m.inProj.weight.data as CpuTensor, be.fromArray(lcg(d.inProj * C, 21, 0.4), [d.inProj, C]));
    be.copy(m.outProj.weight.data as CpuTensor, be.fromArray(lcg(C * d.dInner, 22, 0.3), [C, d.dInner]));
    const x = be.fromArray(lcg(B * T * C, 23), [B * T, C]), proj = lcg(B * T * C, 24);
    const out = be.alloc([B * T, C]), dx = be.alloc([B * T, C]);
    const loss = () => {
      m.forward(out, x);
      const o = (out as CpuTensor).data;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += proj[i] * o[i];
      return s;
    };
    loss();
    m.backward(dx, be.fromArray(proj, [B * T, C]));
    const tensors = [...m.params.map((p) => [p.data, p.grad] as const), [x, dx] as const];
    let dot = 0;
    const dirs = tensors.map(([v, g], i) => {
      const dir = lcg(v.size, 100 + i);
      const gd = (g as CpuTensor).data;
      for (let j = 0; j < dir.length; j++) dot += gd[j] * dir[j];
      return dir;
    });
    const base = tensors.map(([v]) => Float32Array.from((v as CpuTensor).data));
    const at = (h: number) => {
      tensors.forEach(([v], i) => { const w = (v as CpuTensor).data; for (let j = 0; j < w.length; j++) w[j] = base[i][j] + h * dirs[i][j]; });
      return loss();
    };
    const h = 1e-3, numeric = (at(h) - at(-h)) / (2 * h);
    assert.ok(Math.abs(dot) > 0.1, `directional derivative too small to test: ${dot}`);
    assert.ok(Math.abs(numeric - dot) / Math.abs(dot) < 2e-3, `analytic ${dot} vs numeric ${numeric}`);
  } finally {
    be.close();
  }
});
