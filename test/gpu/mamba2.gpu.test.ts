/**
 * The Mamba-2 kernels (kernels/mamba2.cu) against the CPU oracle on random inputs, with stated
 * tolerances (fp32 kernels vs the float64 oracle rounded to fp32): conv + SiLU, the gated norm,
 * the chunked SSD scan forward and backward (chunk lengths above, at and below the GPU's 64-token
 * tile, T not a multiple; several heads per group), determinism run to run; then nemotronh-small
 * trained for a few NVFP4 steps on the GPU tracking the CPU run. Skipped without a GPU.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gpuBackend, randn, relMaxErr } from "./gpu.ts";
import { CpuBackend, type CpuTensor } from "../../src/backends/cpu/cpu-backend.ts";
import { CudaBackend, type CudaTensor } from "../../src/backends/cuda/cuda-backend.ts";
import type { SsdDims } from "../../src/backends/backend.ts";
import { buildConfig } from "../../src/train/config.ts";
import { train } from "../../src/train/train.ts";

/** Tolerances (max |gpu − cpu| / max |cpu|): elementwise ops 1e-5; the scan's long fp32 sums 2e-4. */
const TOL_OPS = 1e-5, TOL_SCAN = 2e-4;

test("mamba2 kernels: conv+SiLU, gated RMSNorm, SSD scan forward and backward match the CPU oracle", (t) => {
  const g = gpuBackend(t);
  if (!g) return;
  const c = new CpuBackend({ threads: 1 });
  try {
    const pair = (data: Float32Array, shape: number[]) => [c.fromArray(data, shape), g.fromArray(data, shape)] as [CpuTensor, CudaTensor];
    const check = (what: string, [ct, gt]: [CpuTensor, CudaTensor], tol: number) => {
      const err = relMaxErr(g.toArray(gt), c.toArray(ct));
      assert.ok(err <= tol, `${what}: max rel error ${err} > ${tol}`);
      return err;
    };
    // conv + SiLU
    for (const [B, T, Cc, W] of [[2, 37, 80, 4], [1, 5, 33, 2]]) {
      const x = pair(randn(B * T * Cc, 1), [B, T, Cc]), w = pair(randn(Cc * W, 2, 0.5), [Cc, W]), b = pair(randn(Cc, 3, 0.5), [Cc]);
      const out = pair(new Float32Array(B * T * Cc), [B, T, Cc]);
      c.convSiluForward(out[0], x[0], w[0], b[0], B, T, Cc, W); g.convSiluForward(out[1], x[1], w[1], b[1], B, T, Cc, W);
      check(`conv forward ${B}x${T}x${Cc} W${W}`, out, TOL_OPS);
      const dout = pair(randn(B * T * Cc, 4), [B, T, Cc]), dx = pair(randn(B * T * Cc, 5), [B, T, Cc]);
      const dw = pair(randn(Cc * W, 6), [Cc, W]), db = pair(randn(Cc, 7), [Cc]);
      c.convSiluBackward(dx[0], dw[0], db[0], dout[0], x[0], w[0], b[0], B, T, Cc, W);
      g.convSiluBackward(dx[1], dw[1], db[1], dout[1], x[1], w[1], b[1], B, T, Cc, W);
      check("conv dx", dx, TOL_OPS); check("conv dweight (accumulated)", dw, TOL_OPS); check("conv dbias (accumulated)", db, TOL_OPS);
    }
    // gated RMSNorm
    for (const [rows, D, S] of [[70, 96, 48], [3, 640, 80]]) {
      const y = pair(randn(rows * D, 11), [rows, D]), z = pair(randn(rows * D, 12), [rows, D]), w = pair(randn(D, 13), [D]);
      const out = pair(new Float32Array(rows * D), [rows, D]), rstd = pair(new Float32Array(rows * (D / S)), [rows, D / S]);
      c.gatedRmsnormForward(out[0], rstd[0], y[0], z[0], w[0], rows, D, S, 1e-5); g.gatedRmsnormForward(out[1], rstd[1], y[1], z[1], w[1], rows, D, S, 1e-5);
      check("gated norm out", out, TOL_OPS); check("gated norm rstd", rstd, TOL_OPS);
      const dout = pair(randn(rows * D, 14), [rows, D]), dy = pair(randn(rows * D, 15), [rows, D]), dz = pair(randn(rows * D, 16), [rows, D]), dw = pair(randn(D, 17), [D]);
      c.gatedRmsnormBackward(dy[0], dz[0], dw[0], dout[0], y[0], z[0], w[0], rstd[0], rows, D, S);
      g.gatedRmsnormBackward(dy[1], dz[1], dw[1], dout[1], y[1], z[1], w[1], rstd[1], rows, D, S);
      check("gated norm dy", dy, TOL_OPS); check("gated norm dz", dz, TOL_OPS); check("gated norm dweight", dw, TOL_OPS);
    }
    // the scan
    const dims: SsdDims[] = [
      { B: 2, T: 100, H: 8, P: 16, G: 2, N: 32, chunk: 128 }, // GPU tile 64, T not a multiple
      { B: 1, T: 64, H: 4, P: 64, G: 1, N: 128, chunk: 64 }, // Nemotron-H's head and state sizes
      { B: 3, T: 37, H: 6, P: 8, G: 3, N: 16, chunk: 16 },
    ];
    for (const d of dims) {
      const { B, T, H, P, G, N } = d, nx = B * T * H * P, nbc = B * T * G * N;
      const x = pair(randn(nx, 21), [nx]), dt = pair(randn(B * T * H, 22, 0.8), [B * T * H]);
      const aLog = pair(Float32Array.from({ length: H }, (_, h) => Math.log(1 + (15 * h) / H)), [H]);
      const dtBias = pair(Float32Array.from({ length: H }, (_, h) => -4 + (3 * h) / H), [H]), D = pair(randn(H, 23), [H]);
      const Bm = pair(randn(nbc, 24, 0.5), [nbc]), Cm = pair(randn(nbc, 25, 0.5), [nbc]);
      const y = pair(new Float32Array(nx), [nx]);
      const saved: [CpuTensor, CudaTensor] = [c.alloc(c.ssdSavedShape(d)), g.alloc(g.ssdSavedShape(d))];
      c.ssdForward(y[0], saved[0], x[0], dt[0], aLog[0], dtBias[0], D[0], Bm[0], Cm[0], d);
      g.ssdForward(y[1], saved[1], x[1], dt[1], aLog[1], dtBias[1], D[1], Bm[1], Cm[1], d);
      const tag = `B${B} T${T} H${H} P${P} G${G} N${N} chunk ${d.chunk}`;
      const ey = check(`ssd y (${tag})`, y, TOL_SCAN);
      const dy = pair(randn(nx, 26), [nx]);
      const grads = () => {
        const mk = (n: number, seed: number) => pair(randn(n, seed), [n]);
        return { dx: mk(nx, 31), ddt: mk(B * T * H, 32), daLog: mk(H, 33), ddtBias: mk(H, 34), dD: mk(H, 35), dB: mk(nbc, 36), dC: mk(nbc, 37) };
      };
      const r = grads();
      const run = (i: 0 | 1, gr: ReturnType<typeof grads>) => {
        const be = i === 0 ? c : g;
        (be.ssdBackward as (...a: unknown[]) => void).call(be, gr.dx[i], gr.ddt[i], gr.daLog[i], gr.ddtBias[i], gr.dD[i], gr.dB[i], gr.dC[i],
          dy[i], x[i], dt[i], aLog[i], dtBias[i], D[i], Bm[i], Cm[i], saved[i], d);
      };
      run(0, r); run(1, r);
      const errs = (["dx", "ddt", "daLog", "ddtBias", "dD", "dB", "dC"] as const).map((k) => `${k} ${check(`ssd ${k} (${tag})`, r[k], TOL_SCAN).toExponential(1)}`);
      t.diagnostic(`${tag}: y ${ey.toExponential(1)}, ${errs.join(", ")}`);
      // the same bits on a second run
      const r2 = grads();
      run(1, r2);
      for (const k of ["dx", "dB", "daLog"] as const) assert.deepEqual(g.toArray(r2[k][1]), g.toArray(r[k][1]), `${k} deterministic`);
    }
  } finally {
    c.close();
  }
});

test("SSD scan: the staged kernels (ssd_forward_staged, ssd_backward_staged: Grams and state reads from shared-memory copies) = the plain ones, bit for bit", (t) => {
  const fast = gpuBackend(t);
  if (!fast) return;
  const plain = new CudaBackend({ opsKernels: "plain" });
  try {
    const dims: SsdDims[] = [
      { B: 2, T: 300, H: 4, P: 64, G: 1, N: 128, chunk: 64 }, // Nemotron-H's sizes, 5 chunks, a short last one
      { B: 1, T: 100, H: 6, P: 24, G: 2, N: 32, chunk: 128 }, // the GPU's 64-token chunks, T not a multiple
      { B: 3, T: 37, H: 6, P: 8, G: 3, N: 16, chunk: 16 },
    ];
    for (const d of dims) {
      const { B, T, H, P, G, N } = d, nx = B * T * H * P, nbc = B * T * G * N, tag = `B${B} T${T} H${H} P${P} G${G} N${N} chunk ${d.chunk}`;
      const inputs = [randn(nx, 41), randn(B * T * H, 42, 0.8), Float32Array.from({ length: H }, (_, h) => Math.log(1 + (15 * h) / H)),
        Float32Array.from({ length: H }, (_, h) => -4 + (3 * h) / H), randn(H, 43), randn(nbc, 44, 0.5), randn(nbc, 45, 0.5), randn(nx, 46)];
      const run = (be: CudaBackend) => {
        const [x, dt, aLog, dtBias, D, Bm, Cm, dy] = inputs.map((a) => be.fromArray(a, [a.length]));
        const y = be.alloc([nx]), saved = be.alloc(be.ssdSavedShape(d));
        be.ssdForward(y, saved, x, dt, aLog, dtBias, D, Bm, Cm, d);
        const gr = [nx, B * T * H, H, H, H, nbc, nbc].map((n, i) => be.fromArray(randn(n, 50 + i), [n])); // dx ddt daLog ddtBias dD dB dC
        be.ssdBackward(gr[0], gr[1], gr[2], gr[3], gr[4], gr[5], gr[6], dy, x, dt, aLog, dtBias, D, Bm, Cm, saved, d);
        return [y, saved, ...gr].map((o) => be.toArray(o));
      };
      const [a, b] = [run(fast), run(plain)];
      ["y", "chunk states", "dx", "ddtRaw", "daLog", "ddtBias", "dD", "dB", "dC"].forEach((what, k) => {
        const i = new Uint32Array(a[k].buffer).findIndex((w, j) => w !== new Uint32Array(b[k].buffer)[j]);
        assert.equal(i, -1, `${tag} ${what}: first difference at ${i}: ${a[k][i]} vs ${b[k][i]}`);
      });
    }
  } finally {
    plain.close();
  }
});

test("training: nemotronh-small, 12 NVFP4 steps on the GPU track the CPU run (|Δloss| ≤ 0.03 per step)", (t) => {
  if (!gpuBackend(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-hybrid-"));
  try {
    const base = [`outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model=nemotronh-small", "model.seqLen=64", "batchSize=4", "steps=12",
      "evalEvery=6", "evalBatches=2", "recipe=nvfp4", "schedule.lr=0.01", "schedule.warmupSteps=2"];
    const cpu = train(buildConfig([...base, "name=cpu", "device=cpu", "threads=2"]));
    const gpu = train(buildConfig([...base, "name=gpu", "device=cuda"]));
    const d = cpu.losses.map((l, i) => Math.abs(l - gpu.losses[i]));
    assert.ok(Math.max(...d) <= 0.03, `max |Δloss| ${Math.max(...d)}; cpu ${cpu.losses.map((x) => x.toFixed(4))} gpu ${gpu.losses.map((x) => x.toFixed(4))}`);
    assert.ok(gpu.losses[11] < gpu.losses[0] - 0.3, "the GPU run learns");
    console.log(`# nemotronh-small GPU vs CPU losses, max |Δ| ${Math.max(...d).toExponential(2)}; gpu ${Math.round(gpu.tokensPerS)} tok/s, cpu ${Math.round(cpu.tokensPerS)} tok/s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
