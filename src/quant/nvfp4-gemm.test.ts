import { test } from "node:test";
import assert from "node:assert/strict";
import { nvfp4Gemm } from "./nvfp4-gemm.ts";
import { dequantizeNVFP4, nvfp4GemmAlpha, nvfp4Operand, quantizeNVFP4, quantizeNVFP4Columnwise } from "./nvfp4.ts";
import { ShapeError } from "../errors.ts";
import { bf16Normals, heavyTailed, normals, Rng, toBf16Values, withOutliers } from "../../test/random.ts";

test("nvfp4Gemm equals the float64 product of the dequantized operands within fp32 accumulation error", () => {
  const shapes: [number, number, number][] = [[1, 1, 16], [3, 5, 32], [8, 7, 64], [16, 16, 256], [5, 9, 1024]];
  let seed = 100;
  for (const [M, N, K] of shapes) {
    const rng = new Rng(seed++);
    const A = normals(rng, M * K, 0.02);
    const B = heavyTailed(rng, N * K);
    const qa = quantizeNVFP4(A, [M, K]);
    const qb = quantizeNVFP4(B, [N, K], { rounding: "sr", seed, tensorId: 2 });
    const opA = nvfp4Operand(qa), opB = nvfp4Operand(qb);
    // the operand carries e2m1·S; times amax/2688 it is the dequantized tensor (to ~1 ulp)
    const deqA = dequantizeNVFP4(qa);
    for (let i = 0; i < opA.length; i++) assert.ok(Math.abs((opA[i] * qa.amax) / 2688 - deqA[i]) <= 2 ** -22 * Math.abs(deqA[i]));
    const alpha = (qa.amax * qb.amax) / (36 * 448 * 448);
    assert.ok(Math.abs(nvfp4GemmAlpha(qa.amax, qb.amax) - alpha) <= 4 * 2 ** -24 * alpha, "alpha");
    const D = nvfp4Gemm(qa, qb);
    assert.equal(D.length, M * N);
    const nb = K / 16;
    let nonzero = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let ref = 0, abs = 0;
        for (let k = 0; k < K; k++) {
          const p = opA[m * K + k] * opB[n * K + k];
          ref += p;
          abs += Math.abs(p);
        }
        ref *= alpha;
        // block terms are exact; nb fp32 additions (each ≤ 2^-24 of a partial sum ≤ Σ|p|),
        // alpha from 4 fp32 roundings and the final multiply: (nb + 6)·2^-24 relative to Σ|p|·alpha
        const tol = (nb + 6) * 2 ** -24 * alpha * abs;
        assert.ok(Math.abs(D[m * N + n] - ref) <= tol, `[${M}x${N}x${K}] (${m},${n}): ${D[m * N + n]} vs ${ref} tol ${tol}`);
        if (D[m * N + n] !== 0) nonzero++;
      }
    }
    assert.ok(nonzero > (M * N) / 2);
  }
});

test("Wgrad with RHT on both operands: nvfp4Gemm(Q(RHT(dYᵀ)), Q(RHT(Xᵀ))) ≈ dYᵀ·X", () => {
  // Bound: each entry is a·b over M = 256 tokens; quantization adds relative RMS noise δ_X ≈ 0.096
  // (RN) and δ_dY ≈ 0.137 (SR) to the operands (see nvfp4.test.ts), and the RHT is orthogonal, so
  // |error| ≈ sqrt(δ_X² + δ_dY²)·‖a‖·‖b‖/√M ≈ 0.0105·‖a‖‖b‖ (measured RMS 0.0104–0.0113, max
  // 0.035–0.049 over 6 seeds). Asserted: RMS < 0.015 and max < 0.08 of ‖a‖‖b‖.
  const M = 256, N = 32, K = 48;
  for (const seed of [1, 2]) {
    const rng = new Rng(seed);
    const dY = bf16Normals(rng, M * N);
    const X = toBf16Values(withOutliers(rng, M * K, 0.01, 50));
    const qd = quantizeNVFP4Columnwise(dY, [M, N], { rht: true, rounding: "sr", seed, tensorId: 1 });
    const qx = quantizeNVFP4Columnwise(X, [M, K], { rht: true });
    assert.deepEqual(qd.shape, [N, M]);
    assert.deepEqual(qx.shape, [K, M]);
    assert.deepEqual(qd.rht, qx.rht, "both operands carry the same transform");
    const D = nvfp4Gemm(qd, qx);
    let sq = 0, mx = 0;
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        let ref = 0, na = 0, nb = 0;
        for (let m = 0; m < M; m++) {
          ref += dY[m * N + n] * X[m * K + k];
          na += dY[m * N + n] ** 2;
          nb += X[m * K + k] ** 2;
        }
        const e = Math.abs(D[n * K + k] - ref) / Math.sqrt(na * nb);
        sq += e * e;
        mx = Math.max(mx, e);
      }
    }
    const rms = Math.sqrt(sq / (N * K));
    assert.ok(rms < 0.015 && mx < 0.08, `seed ${seed}: normalized error RMS ${rms}, max ${mx}`);
    assert.ok(rms > 0.003, `seed ${seed}: error RMS ${rms} is implausibly small for 4-bit operands`);
  }
});

test("mismatched inner dimensions throw a ShapeError naming both shapes", () => {
  const rng = new Rng(7);
  const a = quantizeNVFP4(normals(rng, 2 * 32), [2, 32]);
  const b = quantizeNVFP4(normals(rng, 3 * 48), [3, 48]);
  assert.throws(() => nvfp4Gemm(a, b), (e: Error) => e instanceof ShapeError && /\[2, 32\]/.test(e.message) && /\[3, 48\]/.test(e.message));
});
