/**
 * The fast non-GEMM kernels (FP4LM_OPS_KERNELS=fast, the default) against their plain twins
 * (opsKernels "plain": the previous kernels) and the CPU oracle: bit-identical where the
 * per-element arithmetic is the same, within the oracle's tolerances where a reduction order changed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gpuBackend, randn, relMaxErr, sameTrainingWithSwitch, smallRun } from "./gpu.ts";
import { CpuBackend } from "../../src/backends/cpu/cpu-backend.ts";
import { CudaBackend } from "../../src/backends/cuda/cuda-backend.ts";
import { getDriver } from "../../src/backends/cuda/driver.ts";
import type { Backend, Tensor } from "../../src/backends/backend.ts";
import { roundBf16InPlace } from "../../src/formats/bf16.ts";
import { buildConfig } from "../../src/train/config.ts";
import { train } from "../../src/train/train.ts";

/** runs body with the shared (fast) backend, a plain-kernel backend and the CPU oracle */
function withBackends(t: Parameters<typeof gpuBackend>[0], body: (fast: CudaBackend, plain: CudaBackend, cpu: CpuBackend) => void): void {
  const fast = gpuBackend(t);
  if (!fast) return;
  const plain = new CudaBackend({ opsKernels: "plain" });
  const cpu = new CpuBackend({ threads: 1 });
  try {
    body(fast, plain, cpu);
  } finally {
    plain.close();
    cpu.close();
  }
}

const bitsEqual = (what: string, a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const i = ua.findIndex((x, j) => x !== ub[j]);
  assert.equal(i, -1, `${what}: first difference at ${i}: ${a[i]} vs ${b[i]}`);
};

test("optimizer: multi-tensor AdamW = the per-tensor kernel bit for bit; multi-tensor Σg² within the oracle's tolerance", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    // sizes: chunk boundaries (8192), tails that are not a multiple of 4, a tiny tensor, an empty one
    const shapes = [[3, 8195], [7], [768], [0], [20000], [64, 64]];
    const decay = [true, false, false, true, true, true];
    const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 };
    const data = shapes.map((s, i) => {
      const n = s.reduce((a, b) => a * b, 1);
      return { s, p: randn(n, 100 + i), g: randn(n, 200 + i), m: randn(n, 300 + i, 0.1), v: randn(n, 400 + i, 0.1).map(Math.abs) };
    });
    const state = <T extends Tensor>(be: Backend<T>) => data.map((d) => ({
      p: be.fromArray(d.p, d.s), g: be.fromArray(d.g, d.s), m: be.fromArray(d.m, d.s), v: be.fromArray(d.v, d.s),
    }));
    const f = state(fast), pl = state(plain), c = state(cpu);
    for (const step of [1, 2, 3]) {
      fast.adamwMany(f.map((x) => x.p), f.map((x) => x.g), f.map((x) => x.m), f.map((x) => x.v), decay, 1e-3, step, cfg, 0.5);
      plain.adamwMany(pl.map((x) => x.p), pl.map((x) => x.g), pl.map((x) => x.m), pl.map((x) => x.v), decay, 1e-3, step, cfg, 0.5);
      cpu.adamwMany(c.map((x) => x.p), c.map((x) => x.g), c.map((x) => x.m), c.map((x) => x.v), decay, 1e-3, step, cfg, 0.5);
    }
    f.forEach((x, i) => {
      bitsEqual(`adamw param ${i}`, fast.toArray(x.p), plain.toArray(pl[i].p));
      bitsEqual(`adamw m ${i}`, fast.toArray(x.m), plain.toArray(pl[i].m));
      bitsEqual(`adamw v ${i}`, fast.toArray(x.v), plain.toArray(pl[i].v));
      const err = relMaxErr(fast.toArray(x.p), cpu.toArray(c[i].p));
      assert.ok(err <= 1e-6, `adamw param ${i} vs CPU: ${err}`);
    });
    const sf = fast.sumSquaresMany(f.map((x) => x.g)), sp = plain.sumSquaresMany(pl.map((x) => x.g)), sc = cpu.sumSquaresMany(c.map((x) => x.g));
    sc.forEach((want, i) => {
      assert.ok(Math.abs(sf[i] - want) <= 1e-5 * want, `sumSquaresMany fast ${i}: ${sf[i]} vs CPU ${want}`);
      assert.ok(Math.abs(sp[i] - want) <= 1e-5 * want, `sumSquaresMany plain ${i}: ${sp[i]} vs CPU ${want}`);
    });
    // the table is cached per list: a second call reads the same tensors
    const again = fast.sumSquaresMany(f.map((x) => x.g));
    assert.deepEqual([...again], [...sf], "sumSquaresMany is deterministic");
    // a NaN gradient surfaces as a non-finite sum for that tensor only
    const bad = randn(9000, 7);
    bad[8500] = NaN;
    const gs = [fast.fromArray(randn(100, 8), [100]), fast.fromArray(bad, [9000])];
    const s = fast.sumSquaresMany(gs);
    assert.ok(Number.isFinite(s[0]) && Number.isNaN(s[1]), `NaN reaches its own sum: ${[...s]}`);
  });
});

test("elementwise: the float4 kernels = the plain ones bit for bit (tails, in place)", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    for (const n of [4099, 4096 * 3, 2]) {
      const x = randn(n, 500 + n), d = randn(n, 600 + n);
      const run = <T extends Tensor>(be: Backend<T>) => {
        const tx = be.fromArray(x, [n]), td = be.fromArray(d, [n]), o1 = be.alloc([n]), o2 = be.alloc([n]), o3 = be.alloc([n]);
        be.sqreluForward(o1, tx);
        be.sqreluBackward(o2, td, tx);
        be.add(o3, tx, td);
        be.accumulate(o3, o1);
        be.add(td, td, tx); // out aliasing a
        be.sqreluBackward(tx, o2, tx); // dx aliasing x
        return [o1, o2, o3, td, tx].map((o) => be.toArray(o));
      };
      const [rf, rp, rc] = [run(fast), run(plain), run(cpu)];
      ["sqrelu", "sqrelu back", "add + accumulate", "add in place", "sqrelu back in place"].forEach((what, i) => {
        bitsEqual(`${what} n=${n} fast vs plain`, rf[i], rp[i]);
        assert.ok(relMaxErr(rf[i], rc[i]) <= 1e-6, `${what} n=${n} vs CPU: ${relMaxErr(rf[i], rc[i])}`);
      });
    }
  });
});

test("attention glue: fused split+RoPE and RoPE+concat = split, rope, concat (plain kernels and the CPU)", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    for (const [B, T, NH, NKV, HS] of [[2, 40, 4, 2, 64], [1, 33, 3, 1, 16], [2, 8, 2, 2, 8]]) {
      const W = (NH + 2 * NKV) * HS, tag = `B${B} T${T} heads ${NH}/${NKV} HS ${HS}`;
      const qkv = randn(B * T * W, 700 + T), dq = randn(B * T * NH * HS, 800 + T), dk = randn(B * T * NKV * HS, 900 + T), dv = randn(B * T * NKV * HS, 1000 + T);
      const run = <T2 extends Tensor>(be: Backend<T2>) => {
        const x = be.fromArray(qkv, [B * T, W]);
        const q = be.alloc([B, T, NH, HS]), k = be.alloc([B, T, NKV, HS]), v = be.alloc([B, T, NKV, HS]);
        be.qkvSplitRope(x, q, k, v, B, T, NH, NKV, HS, 10000);
        const g = be.alloc([B * T, W]);
        be.qkvRopeConcat(g, be.fromArray(dq, [B, T, NH, HS]), be.fromArray(dk, [B, T, NKV, HS]), be.fromArray(dv, [B, T, NKV, HS]), B, T, NH, NKV, HS, 10000);
        return [q, k, v, g].map((o) => be.toArray(o));
      };
      const [rf, rp, rc] = [run(fast), run(plain), run(cpu)];
      ["q", "k", "v", "dqkv"].forEach((what, i) => {
        // the same rope_rotate per pair: expected bit-identical; 1e-6 leaves room for a different FMA contraction
        assert.ok(relMaxErr(rf[i], rp[i]) <= 1e-6, `${tag} ${what} fast vs plain: ${relMaxErr(rf[i], rp[i])}`);
        assert.ok(relMaxErr(rf[i], rc[i]) <= 1e-6, `${tag} ${what} vs CPU: ${relMaxErr(rf[i], rc[i])}`);
      });
      bitsEqual(`${tag} v is a copy`, rf[2], rc[2]);
    }
  });
});

test("RMSNorm backward: the warp-per-row kernel within the oracle's tolerance (dx, accumulated dweight), as the plain one", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    for (const [N, C] of [[200, 768], [37, 64], [50, 100], [9, 1024], [12, 1030]]) {
      const x = randn(N * C, 1100 + C), w = randn(C, 1200 + C), dout = randn(N * C, 1300 + C), dw0 = randn(C, 1400 + C);
      const run = <T extends Tensor>(be: Backend<T>) => {
        const tx = be.fromArray(x, [N, C]), tw = be.fromArray(w, [C]), out = be.alloc([N, C]), rstd = be.alloc([N]);
        be.rmsnormForward(out, rstd, tx, tw, N, C, 1e-5);
        const dx = be.alloc([N, C]), dw = be.fromArray(dw0, [C]);
        be.rmsnormBackward(dx, dw, be.fromArray(dout, [N, C]), tx, tw, rstd, N, C);
        // dx aliasing dout, a second accumulation into dweight
        const d2 = be.fromArray(dout, [N, C]);
        be.rmsnormBackward(d2, dw, d2, tx, tw, rstd, N, C);
        return [dx, dw, d2].map((o) => be.toArray(o));
      };
      const [rf, rp, rc] = [run(fast), run(plain), run(cpu)];
      ["dx", "dweight", "dx in place"].forEach((what, i) => {
        assert.ok(relMaxErr(rf[i], rc[i]) <= 1e-5, `rmsnorm ${N}x${C} ${what} vs CPU: ${relMaxErr(rf[i], rc[i])}`);
        assert.ok(relMaxErr(rf[i], rp[i]) <= 1e-5, `rmsnorm ${N}x${C} ${what} vs plain: ${relMaxErr(rf[i], rp[i])}`);
      });
    }
  });
});

test("zeroMany: every tensor zeroed in one launch (chunk boundaries, a scalar tail, an empty tensor), nothing else touched", (t) => {
  const be = gpuBackend(t);
  if (!be) return;
  const shapes = [[3, 8195], [7], [0], [20000], [64, 64]];
  const ts = shapes.map((s, i) => be.fromArray(randn(s.reduce((a, b) => a * b, 1), 950 + i), s));
  const keep = be.fromArray(randn(999, 960), [999]);
  be.zeroMany(ts);
  ts.forEach((x, i) => assert.ok(be.toArray(x).every((v) => v === 0), `tensor ${i} [${shapes[i].join(", ")}] zeroed`));
  bitsEqual("a tensor not in the list", be.toArray(keep), randn(999, 960));
});

test("RMSNorm forward: the fast FP32 kernel (the row in registers, rmsnorm_forward_k<K>) = the plain one, bit for bit (out, rstd); the BF16 operand = RNE of the plain out", (t) => {
  withBackends(t, (fast, plain) => {
    // C 768 (K 24), a C that is no multiple of 32 (K 8, masked lanes), C 1024 (K 32), C 2048 (no K: the loop kernel), a row count that is no multiple of 8
    for (const [N, C] of [[333, 768], [40, 100], [17, 1024], [9, 2048]]) {
      const x = randn(N * C, 900 + C, 2), w = randn(C, 901 + C);
      const run = (be: CudaBackend) => {
        const out = be.alloc([N, C]), rstd = be.alloc([N]);
        be.rmsnormForward(out, rstd, be.fromArray(x, [N, C]), be.fromArray(w, [C]), N, C, 1e-5);
        return [out, rstd].map((o) => be.toArray(o));
      };
      const a = run(fast), b = run(plain);
      bitsEqual(`rmsnorm forward ${N}x${C} out`, a[0], b[0]);
      bitsEqual(`rmsnorm forward ${N}x${C} rstd`, a[1], b[1]);
      // the BF16 operand the fast kernel writes = RNE of the plain kernel's out
      const op = fast.bf16Operand?.(N, C, { format: "bf16", rounding: "rtn" }, "rmsnorm-test");
      if (op) {
        const out = fast.alloc([N, C]), rstd = fast.alloc([N]);
        fast.rmsnormForward(out, rstd, fast.fromArray(x, [N, C]), fast.fromArray(w, [C]), N, C, 1e-5, op);
        bitsEqual(`rmsnorm forward ${N}x${C} BF16 operand`, fast.operandValues(op), roundBf16InPlace(Float32Array.from(b[0])));
        bitsEqual(`rmsnorm forward ${N}x${C} rstd (BF16 kernel)`, fast.toArray(rstd), b[1]);
        fast.releaseOperand(op);
      }
    }
  });
});

test("cross-entropy: one read per row through shared memory, within the oracle's tolerance (V 50304, aliasing, loss only, bad target)", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    for (const [N, V] of [[12, 50304], [64, 300], [20, 301]]) {
      const logits = randn(N * V, 1500 + V, 2), ids = Int32Array.from({ length: N }, (_, i) => (i * 7919 + 3) % V);
      const run = <T extends Tensor>(be: Backend<T>) => {
        const lg = be.fromArray(logits, [N, V]), losses = be.alloc([N]), dl = be.alloc([N, V]);
        const mean = be.crossEntropy(losses, dl, lg, be.tokens(ids, [N]), V, 1 / N);
        const l2 = be.alloc([N]), meanOnly = be.crossEntropy(l2, null, lg, be.tokens(ids, [N]), V, 1 / N);
        be.crossEntropy(l2, lg, lg, be.tokens(ids, [N]), V, 1 / N); // dlogits aliasing logits
        return { mean, meanOnly, out: [losses, dl, lg].map((o) => be.toArray(o)) };
      };
      const [rf, rp, rc] = [run(fast), run(plain), run(cpu)];
      assert.ok(Math.abs(rf.mean - rc.mean) <= 1e-5 * rc.mean, `CE ${N}x${V} mean ${rf.mean} vs CPU ${rc.mean}`);
      assert.equal(rf.meanOnly, rf.mean, `CE ${N}x${V}: loss-only gives the same mean`);
      ["losses", "dlogits", "dlogits in place"].forEach((what, i) => {
        assert.ok(relMaxErr(rf.out[i], rc.out[i]) <= 1e-5, `CE ${N}x${V} ${what} vs CPU: ${relMaxErr(rf.out[i], rc.out[i])}`);
        assert.ok(relMaxErr(rf.out[i], rp.out[i]) <= 1e-5, `CE ${N}x${V} ${what} vs plain: ${relMaxErr(rf.out[i], rp.out[i])}`);
      });
    }
    const bad = Int32Array.from([1, 2, 300, 4]);
    assert.throws(() => fast.crossEntropy(fast.alloc([4]), fast.alloc([4, 300]), fast.fromArray(randn(1200, 5), [4, 300]), fast.tokens(bad, [4]), 300, 0.25), /token id 300 at position 2/);
  });
});

test("cross-entropy: the persistent grid (each block takes every G-th row, the next row's copy queued in the dlogits pass) = one block per row, bit for bit; a bad target throws before any work", (t) => {
  const fast = gpuBackend(t);
  if (!fast) return;
  const rows = new CudaBackend({ cePersistent: false });
  try {
    // N above the resident grid (132 SMs × 1 block at V 50304, × 2 at V 300) so blocks take several rows; a bf16 operand of dlogits too
    for (const [N, V] of [[400, 50304], [3001, 300]]) {
      const logits = randn(N * V, 2500 + V, 3), ids = Int32Array.from({ length: N }, (_, i) => (i * 7919 + 11) % V);
      const run = (be: CudaBackend) => {
        // losses start at −1 (a loss is ≥ 0 but for rounding): a row the grid skipped would keep it
        const lg = be.fromArray(logits, [N, V]), losses = be.fromArray(new Float32Array(N).fill(-1), [N]), dl = be.alloc([N, V]);
        const reader = be.crossEntropyQueued(losses, dl, lg, be.tokens(ids, [N]), V, 1 / N);
        const mean = reader();
        assert.equal(reader(), mean, "a queued loss read twice is the same value");
        const l2 = be.alloc([N]), meanOnly = be.crossEntropy(l2, null, lg, be.tokens(ids, [N]), V, 1 / N);
        const out = [losses, dl, l2].map((o) => be.toArray(o));
        return { mean, meanOnly, out };
      };
      const a = run(fast), b = run(rows);
      assert.equal(a.mean, b.mean, `CE ${N}x${V}: mean`);
      assert.equal(a.meanOnly, a.mean, `CE ${N}x${V}: loss only gives the same mean`);
      ["losses", "dlogits", "losses (no dlogits)"].forEach((what, i) => bitsEqual(`CE ${N}x${V} ${what}: persistent vs one block per row`, a.out[i], b.out[i]));
      const skipped = a.out[0].indexOf(-1);
      assert.equal(skipped, -1, `CE ${N}x${V}: row ${skipped}'s loss was not written`);
    }
    // a bad target at a row a persistent block reaches late: the error names it before anything is queued
    const N = 400, V = 50304, ids = Int32Array.from({ length: N }, (_, i) => i % V);
    ids[333] = V + 5;
    const losses = fast.alloc([N]);
    assert.throws(() => fast.crossEntropyQueued(losses, fast.alloc([N, V]), fast.alloc([N, V]), fast.tokens(ids, [N]), V, 1 / N), /token id 50309 at position 333 is outside the vocabulary/);
    assert.throws(() => fast.embeddingForward(fast.alloc([N, 8]), fast.tokens(ids, [N]), fast.alloc([V, 8]), V, 8), /embeddingForward: token id 50309 at position 333/);
    assert.ok(fast.toArray(losses).every((x) => x === 0), "nothing was written for the bad batch");
  } finally {
    rows.close();
  }
});

test("attention v4 (BF16 copies, cp.async, ldmatrix) = v3 (attention-mma.cu) and the CPU oracle on the same BF16 inputs", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    const HS = 64;
    for (const [B, T, NH, NKV] of [[2, 80, 4, 1], [1, 200, 6, 2], [1, 1024, 12, 4]]) {
      const tag = `attention B${B} T${T} heads ${NH}/${NKV}`;
      const q = randn(B * T * NH * HS, 21 + T), k = randn(B * T * NKV * HS, 22 + T), v = randn(B * T * NKV * HS, 23 + T), d = randn(B * T * NH * HS, 24 + T);
      const run = (be: CudaBackend) => {
        const [tq, tk, tv, td] = [[q, NH], [k, NKV], [v, NKV], [d, NH]].map(([x, h]) => be.fromArray(x as Float32Array, [B, T, h as number, HS]));
        const out = be.alloc([B, T, NH, HS]), lse = be.alloc(be.attentionSavedShape(B, T, NH, HS));
        be.attentionForward(out, lse, tq, tk, tv, B, T, NH, NKV, HS);
        const dq = be.alloc([B, T, NH, HS]), dk = be.alloc([B, T, NKV, HS]), dv = be.alloc([B, T, NKV, HS]);
        be.attentionBackward(dq, dk, dv, td, tq, tk, tv, out, lse, B, T, NH, NKV, HS);
        return [out, lse, dq, dk, dv].map((o) => be.toArray(o));
      };
      const rf = run(fast), rp = run(plain);
      const names = ["out", "lse", "dq", "dk", "dv"];
      const same = names.map((_, i) => new Uint32Array(rf[i].buffer).every((x, j) => x === new Uint32Array(rp[i].buffer)[j]));
      // the same mma.sync sequence and softmax code: expected bit-identical (the host run checks it); 1e-5 leaves room for FMA contraction
      names.forEach((what, i) => assert.ok(relMaxErr(rf[i], rp[i]) <= 1e-5, `${tag} ${what} v4 vs v3: ${relMaxErr(rf[i], rp[i])}`));
      console.log(`# ${tag}: v4 bit-identical to v3: ${names.map((n, i) => `${n} ${same[i] ? "yes" : "NO"}`).join(", ")}`);
      if (T <= 200) {
        const c = (x: Float32Array, shape: number[]) => cpu.fromArray(roundBf16InPlace(Float32Array.from(x)), shape);
        const [cq, ck, cv, cd] = [c(q, [B, T, NH, HS]), c(k, [B, T, NKV, HS]), c(v, [B, T, NKV, HS]), c(d, [B, T, NH, HS])];
        const out = cpu.alloc([B, T, NH, HS]), probs = cpu.alloc(cpu.attentionSavedShape(B, T, NH));
        cpu.attentionForward(out, probs, cq, ck, cv, B, T, NH, NKV, HS);
        const dq = cpu.alloc([B, T, NH, HS]), dk = cpu.alloc([B, T, NKV, HS]), dv = cpu.alloc([B, T, NKV, HS]);
        cpu.attentionBackward(dq, dk, dv, cd, cq, ck, cv, out, probs, B, T, NH, NKV, HS);
        [[0, out], [2, dq], [3, dk], [4, dv]].forEach(([i, ct]) => {
          const err = relMaxErr(rf[i as number], cpu.toArray(ct as ReturnType<typeof cpu.alloc>));
          assert.ok(err <= 1e-2, `${tag} ${names[i as number]} v4 vs CPU: ${err}`);
        });
      }
    }
  });
});

test("training in BF16 on the GPU: fast kernels and shared operands track the plain kernels and the CPU (|Δloss| ≤ 0.02 per step)", (t) => {
  if (!gpuBackend(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-fast-"));
  const saved = process.env.FP4LM_OPS_KERNELS;
  try {
    const base = [`outDir=${dir}`, "log=quiet", "data.tokenizer=byte", "model.dModel=128", "model.nLayers=2", "model.nHeads=2", "model.nKvHeads=1",
      "model.dFF=256", "model.seqLen=64", "batchSize=4", "steps=12", "evalEvery=6", "evalBatches=2", "recipe=bf16", "gradAccum=2"];
    const cpu = train(buildConfig([...base, "name=cpu", "device=cpu", "threads=2"]));
    const fast = train(buildConfig([...base, "name=fast", "device=cuda"]));
    process.env.FP4LM_OPS_KERNELS = "plain";
    const plain = train(buildConfig([...base, "name=plain", "device=cuda"]));
    const dc = cpu.losses.map((l, i) => Math.abs(l - fast.losses[i])), dp = plain.losses.map((l, i) => Math.abs(l - fast.losses[i]));
    assert.ok(Math.max(...dc) <= 0.02, `fast vs CPU: max |Δloss| ${Math.max(...dc)}; cpu ${cpu.losses.map((x) => x.toFixed(4))} fast ${fast.losses.map((x) => x.toFixed(4))}`);
    assert.ok(Math.max(...dp) <= 0.02, `fast vs plain: max |Δloss| ${Math.max(...dp)}; plain ${plain.losses.map((x) => x.toFixed(4))}`);
    assert.ok(fast.evals.every((e, i) => Math.abs(e.valLoss - cpu.evals[i].valLoss) <= 0.02), `val losses ${JSON.stringify(fast.evals)} vs CPU ${JSON.stringify(cpu.evals)}`);
    console.log(`# BF16 training, fast vs CPU max |Δ| ${Math.max(...dc).toExponential(2)}, fast vs plain ${Math.max(...dp).toExponential(2)}; tok/s fast ${Math.round(fast.tokensPerS)} plain ${Math.round(plain.tokensPerS)}`);
  } finally {
    if (saved === undefined) delete process.env.FP4LM_OPS_KERNELS;
    else process.env.FP4LM_OPS_KERNELS = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

/** a bf16 operand spec (the BF16 recipe's) */
const BF16_SPEC = { format: "bf16", rounding: "rtn" } as const;
const STREAM = { seed: 1, gemmId: 1, slot: 0 } as const;
/** the cases whose kernels skip the FP32 store for an operand marked fp32Unused (the others cast after writing it) */
const SKIPS_FP32 = new Set(["rmsnormForward", "sqreluForward (a scalar tail)", "sqreluBackward", "qkvRopeConcat", "crossEntropy (V 300: shared-memory rows)"]);

test("BF16 operands written by the producing ops = the cast of their FP32 output bit for bit; FP32 outputs unchanged; NaN named as the cast names it", (t) => {
  withBackends(t, (fast, plain, cpu) => {
    const BT = 37, C = 64, B = 1, T = 37, NH = 2, NKV = 1, HS = 32, V = 300;
    const cases: { what: string; rows: number; cols: number; run: <T2 extends Tensor>(be: Backend<T2>, op: unknown) => T2 }[] = [
      { what: "rmsnormForward", rows: BT, cols: C, run: (be, op) => {
        const out = be.alloc([BT, C]);
        be.rmsnormForward(out, be.alloc([BT]), be.fromArray(randn(BT * C, 31), [BT, C]), be.fromArray(randn(C, 32), [C]), BT, C, 1e-5, op as never);
        return out;
      } },
      { what: "rmsnormBackward (+ the residual's gradient)", rows: BT, cols: 2 * C, run: (be, op) => {
        const x = be.fromArray(randn(BT * 2 * C, 51), [BT, 2 * C]), w = be.fromArray(randn(2 * C, 52), [2 * C]), rstd = be.alloc([BT]);
        be.rmsnormForward(be.alloc([BT, 2 * C]), rstd, x, w, BT, 2 * C, 1e-5);
        const dx = be.alloc([BT, 2 * C]);
        be.rmsnormBackward(dx, be.alloc([2 * C]), be.fromArray(randn(BT * 2 * C, 53), [BT, 2 * C]), x, w, rstd, BT, 2 * C, be.fromArray(randn(BT * 2 * C, 54), [BT, 2 * C]), op as never);
        return dx;
      } },
      { what: "sqreluForward (a scalar tail)", rows: 1, cols: 4099, run: (be, op) => {
        const out = be.alloc([1, 4099]);
        be.sqreluForward(out, be.fromArray(randn(4099, 33), [1, 4099]), op as never);
        return out;
      } },
      { what: "sqreluBackward", rows: BT, cols: 4 * C, run: (be, op) => {
        const dx = be.alloc([BT, 4 * C]);
        be.sqreluBackward(dx, be.fromArray(randn(BT * 4 * C, 34), [BT, 4 * C]), be.fromArray(randn(BT * 4 * C, 35), [BT, 4 * C]), op as never);
        return dx;
      } },
      { what: "add", rows: BT, cols: C, run: (be, op) => {
        const out = be.alloc([BT, C]);
        be.add(out, be.fromArray(randn(BT * C, 36), [BT, C]), be.fromArray(randn(BT * C, 37), [BT, C]), op as never);
        return out;
      } },
      { what: "qkvRopeConcat", rows: B * T, cols: (NH + 2 * NKV) * HS, run: (be, op) => {
        const out = be.alloc([B * T, (NH + 2 * NKV) * HS]);
        be.qkvRopeConcat(out, be.fromArray(randn(B * T * NH * HS, 38), [B, T, NH, HS]), be.fromArray(randn(B * T * NKV * HS, 39), [B, T, NKV, HS]),
          be.fromArray(randn(B * T * NKV * HS, 40), [B, T, NKV, HS]), B, T, NH, NKV, HS, 10000, op as never);
        return out;
      } },
      { what: "attentionForward (HS 64: the v4 epilogue)", rows: 2 * 80, cols: 4 * 64, run: (be, op) => {
        const out = be.alloc([2, 80, 4, 64]);
        const [q, k, v] = [[4, 41], [2, 42], [2, 43]].map(([h, s]) => be.fromArray(randn(2 * 80 * h * 64, s), [2, 80, h, 64]));
        be.attentionForward(out, be.alloc(be.attentionSavedShape(2, 80, 4, 64)), q, k, v, 2, 80, 4, 2, 64, op as never);
        return out;
      } },
      { what: "attentionForward (HS 32: the cast fallback)", rows: B * T, cols: NH * HS, run: (be, op) => {
        const out = be.alloc([B, T, NH, HS]);
        const [q, k, v] = [[NH, 44], [NKV, 45], [NKV, 46]].map(([h, s]) => be.fromArray(randn(B * T * h * HS, s), [B, T, h, HS]));
        be.attentionForward(out, be.alloc(be.attentionSavedShape(B, T, NH, HS)), q, k, v, B, T, NH, NKV, HS, op as never);
        return out;
      } },
      { what: "crossEntropy (V 300: shared-memory rows)", rows: 20, cols: V, run: (be, op) => {
        const dl = be.alloc([20, V]);
        be.crossEntropy(be.alloc([20]), dl, be.fromArray(randn(20 * V, 47, 2), [20, V]), be.tokens(Int32Array.from({ length: 20 }, (_, i) => (i * 37) % V), [20]), V, 1 / 20, op as never);
        return dl;
      } },
      { what: "crossEntropy (V 301: the plain kernel and the cast)", rows: 20, cols: V + 1, run: (be, op) => {
        const dl = be.alloc([20, V + 1]);
        be.crossEntropy(be.alloc([20]), dl, be.fromArray(randn(20 * (V + 1), 48, 2), [20, V + 1]), be.tokens(Int32Array.from({ length: 20 }, (_, i) => (i * 37) % V), [20]), V + 1, 1 / 20, op as never);
        return dl;
      } },
    ];
    for (const c of cases) {
      const op = fast.bf16Operand(c.rows, c.cols, BF16_SPEC, `${c.what}.fprop.input`);
      assert.ok(op, `${c.what}: the fast backend hands out BF16 operands`);
      assert.equal(plain.bf16Operand(c.rows, c.cols, BF16_SPEC, "x"), null, "FP4LM_OPS_KERNELS=plain casts");
      const out = c.run(fast, op);
      const ref = c.run(fast, null), refPlain = c.run(plain, null);
      bitsEqual(`${c.what}: FP32 output with the operand = without`, fast.toArray(out), fast.toArray(ref));
      assert.ok(relMaxErr(fast.toArray(out), plain.toArray(refPlain)) <= 1e-5, `${c.what}: vs the plain kernels`);
      const cast = fast.quantize(ref, c.rows, c.cols, BF16_SPEC, false, STREAM, "cast");
      bitsEqual(`${c.what}: operand = the cast`, fast.operandValues(op!), fast.operandValues(cast));
      // the CPU oracle's operand is its own output rounded: the same function of the FP32 values
      const cop = cpu.bf16Operand(c.rows, c.cols, BF16_SPEC, "x")!;
      c.run(cpu, cop);
      assert.ok(relMaxErr(cop.values, fast.operandValues(op!)) <= 1e-2, `${c.what}: vs the CPU's operand`);
      fast.releaseOperand(op!);
      // fp32Unused (the caller's GEMM is the FP32 output's one reader): the same operand; the kernels
      // that can skip the FP32 store leave the (zero-filled) output untouched, the others write it as before
      const op2 = fast.bf16Operand(c.rows, c.cols, BF16_SPEC, `${c.what}.fprop.input`)!;
      op2.fp32Unused = true;
      const out2 = fast.toArray(c.run(fast, op2));
      bitsEqual(`${c.what}: operand with fp32Unused = the cast`, fast.operandValues(op2), fast.operandValues(cast));
      if (SKIPS_FP32.has(c.what)) assert.ok(out2.every((v) => Object.is(v, 0)), `${c.what}: FP32 output left unwritten`);
      else bitsEqual(`${c.what}: FP32 output written as without fp32Unused`, out2, fast.toArray(ref));
      fast.releaseOperand(op2);
      fast.releaseOperand(cast);
      fast.flushChecks();
    }
    // NaN: the producing op's check names the operand and the first bad element, as quantize's cast would
    for (const at of [10, 4097]) {
      const x = randn(4099, 49);
      x[at] = NaN;
      x[at + 1] = Infinity;
      const op = fast.bf16Operand(1, 4099, BF16_SPEC, "blocks.0.mlp.fc2.fprop.input")!;
      fast.sqreluForward(fast.alloc([1, 4099]), fast.fromArray(x, [1, 4099]), op);
      assert.throws(() => fast.flushChecks(), (e: Error) => e.name === "NonFiniteError" && e.message.startsWith(`blocks.0.mlp.fc2.fprop.input: element [0, ${at}] (flat index ${at}) is NaN`), `NaN at ${at}`);
      fast.releaseOperand(op);
    }
    const unfilled = fast.bf16Operand(4, 64, BF16_SPEC, "never.filled")!;
    const w = fast.quantize(fast.fromArray(randn(64 * 64, 50), [64, 64]), 64, 64, BF16_SPEC, false, STREAM, "w");
    assert.throws(() => fast.gemm(fast.alloc([4, 64]), unfilled, w, false), /never\.filled was never filled/);
  });
});

test("training in BF16 on the GPU: BF16 operands written by the producing ops give the casts' losses bit for bit (FP4LM_BF16_OPERANDS=0)", (t) => {
  if (!gpuBackend(t)) return;
  // head size 64 (the v4 attention epilogue), d_ff a multiple of 4 (the _bf16 elementwise kernels), V % 4 == 0 (cross-entropy in shared memory);
  // nvfp4: its BF16 last block and head take the operands from their producers too
  const bf16 = sameTrainingWithSwitch("FP4LM_BF16_OPERANDS", "0", (dir) => smallRun(dir, "bf16", ["gradAccum=2"]), "bf16");
  sameTrainingWithSwitch("FP4LM_BF16_OPERANDS", "0", (dir) => smallRun(dir, "nvfp4", ["gradAccum=2"]), "nvfp4");
  console.log(`# BF16 operands from the producing ops = casts bit for bit (bf16, nvfp4); tok/s ${Math.round(bf16.on)} vs ${Math.round(bf16.off)} with casts`);
});

test("attention v4 on the BF16 q, k, v that split+RoPE wrote and the dout its prep rounded = with its own casts bit for bit; a tensor written in between is cast again", (t) => {
  const fast = gpuBackend(t);
  if (!fast) return;
  const casts = new CudaBackend({ bf16Operands: false });
  try {
    // B2 T1024 8 heads: 16384 (b, t, h) rows, more than the HS-64 prep kernel's grid has warps, so its warps take several rows
    for (const [B, T, NH, NKV] of [[2, 80, 4, 2], [1, 130, 2, 2], [2, 1024, 8, 2]]) {
      const HS = 64, W = (NH + 2 * NKV) * HS, tag = `B${B} T${T} heads ${NH}/${NKV}`;
      const qkv = randn(B * T * W, 60 + T), dout = randn(B * T * NH * HS, 61 + T);
      const run = (be: CudaBackend, meddle: boolean) => {
        const q = be.alloc([B, T, NH, HS]), k = be.alloc([B, T, NKV, HS]), v = be.alloc([B, T, NKV, HS]);
        be.qkvSplitRope(be.fromArray(qkv, [B * T, W]), q, k, v, B, T, NH, NKV, HS, 10000);
        if (meddle) be.copy(q, be.fromArray(randn(q.size, 62), [B, T, NH, HS])); // q changes after the copies were written
        const out = be.alloc([B, T, NH, HS]), lse = be.alloc(be.attentionSavedShape(B, T, NH, HS));
        be.attentionForward(out, lse, q, k, v, B, T, NH, NKV, HS);
        const dq = be.alloc([B, T, NH, HS]), dk = be.alloc([B, T, NKV, HS]), dv = be.alloc([B, T, NKV, HS]);
        be.attentionBackward(dq, dk, dv, be.fromArray(dout, [B, T, NH, HS]), q, k, v, out, lse, B, T, NH, NKV, HS);
        return [out, lse, dq, dk, dv].map((o) => be.toArray(o));
      };
      for (const meddle of [false, true]) {
        const a = run(fast, meddle), b = run(casts, meddle);
        ["out", "lse", "dq", "dk", "dv"].forEach((what, i) => bitsEqual(`${tag}${meddle ? " (q written in between)" : ""} ${what}`, a[i], b[i]));
      }
    }
  } finally {
    casts.close();
  }
});

test("gemm with an addend (the residual in the GEMM's epilogue) = gemm then accumulate: BF16 and FP32 operands in cuBLASLt's C, NVFP4 through the add; transposed operands too", (t) => {
  withBackends(t, (fast, plain) => {
    const M = 96, N = 80, K = 64;
    const specs = [{ format: "bf16", rounding: "rtn" }, { format: "fp32", rounding: "rtn" }, { format: "nvfp4", block: "1x16", rounding: "rtn" }] as const;
    for (const spec of specs) {
      for (const transposeB of [false, true]) {
        const x = randn(M * K, 70), w = randn(N * K, 71), r = randn(M * N, 72, 3);
        const run = (be: CudaBackend, fused: boolean) => {
          const stream = { seed: 3, gemmId: 5, slot: 0 } as const;
          const a = be.quantize(be.fromArray(x, [M, K]), M, K, spec, false, stream, "x");
          const b = transposeB ? be.quantize(be.fromArray(w, [K, N]), K, N, spec, true, { ...stream, slot: 1 }, "w") : be.quantize(be.fromArray(w, [N, K]), N, K, spec, false, { ...stream, slot: 1 }, "w");
          const c = be.alloc([M, N]), res = be.fromArray(r, [M, N]);
          if (fused) be.gemm(c, a, b, false, res);
          else { be.gemm(c, a, b, false); be.accumulate(c, res); }
          return be.toArray(c);
        };
        const fused = run(fast, true), apart = run(fast, false), viaPlain = run(plain, true);
        const tag = `${spec.format}${transposeB ? " (Bᵀ)" : ""}`;
        const same = fused.every((v, i) => Object.is(v, apart[i]));
        assert.ok(relMaxErr(fused, apart) <= 1e-6, `${tag}: fused vs gemm + accumulate ${relMaxErr(fused, apart)}`);
        bitsEqual(`${tag}: the plain kernels (gemm, then accumulate)`, viaPlain, apart);
        if (spec.format === "nvfp4") bitsEqual(`${tag}: NVFP4 takes the separate add`, fused, apart);
        console.log(`# gemm + addend ${tag}: ${same ? "bit-identical to" : `within ${relMaxErr(fused, apart).toExponential(2)} of`} gemm then accumulate`);
      }
    }
    const c = fast.alloc([4, 4]);
    const op = () => fast.quantize(fast.alloc([4, 16]), 4, 16, specs[0], false, { seed: 1, gemmId: 1, slot: 0 }, "z");
    assert.throws(() => fast.gemm(c, op(), op(), true, fast.alloc([4, 4])), /addend with accumulate/);
    assert.throws(() => fast.gemm(c, op(), op(), false, c), /must not be c/);
  });
});

test("kernel arguments from the launch arena train exactly as a JS array per launch (FP4LM_LAUNCH_ARGS=arrays), faster", (t) => {
  if (!gpuBackend(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "fp4lm-gpu-launch-"));
  const drv = getDriver();
  try {
    drv.useLaunchArena(true);
    const arena = train(buildConfig([...smallRun(dir, "nvfp4"), "name=arena"]));
    drv.useLaunchArena(false);
    const arrays = train(buildConfig([...smallRun(dir, "nvfp4"), "name=arrays"]));
    assert.deepEqual(arena.losses, arrays.losses, "losses bit for bit");
    assert.deepEqual(arena.evals, arrays.evals, "validation losses bit for bit");
    console.log(`# launch arena = arrays bit for bit; tiny nvfp4 model tok/s: arena ${Math.round(arena.tokensPerS)}, arrays ${Math.round(arrays.tokensPerS)}`);
  } finally {
    drv.useLaunchArena(process.env.FP4LM_LAUNCH_ARGS !== "arrays");
    rmSync(dir, { recursive: true, force: true });
  }
});
