import { test } from "node:test";
import assert from "node:assert/strict";
import { hadamardEntry, inverseRht, resolveRht, rht, signMask, TE_SIGN_VECTOR } from "./hadamard.ts";
import { ShapeError } from "../errors.ts";
import { bf16Normals, f32Bits, Rng } from "../../test/random.ts";

const SIZES = [2, 4, 8, 16, 32, 64, 128];

/** Sylvester construction H_{2n} = [[H, H], [H, −H]], independent of hadamardEntry's popcount. */
function sylvester(n: number): number[][] {
  let h = [[1]];
  while (h.length < n) h = [...h.map((r) => [...r, ...r]), ...h.map((r) => [...r, ...r.map((v) => -v)])];
  return h;
}

/** T = diag(s)·H/√n as float64 rows, built from hadamardEntry. */
function buildT(signs: readonly number[]): number[][] {
  const n = signs.length;
  return signs.map((s, i) => Array.from({ length: n }, (_, j) => (s * hadamardEntry(i, j)) / Math.sqrt(n)));
}

function randomSigns(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.sign());
}

/** Exact-in-binary64 reference of the unscaled transform: (x∘s)·H for each group. */
function unscaledRef(x: Float32Array, signs: readonly number[]): Float64Array {
  const n = signs.length, H = sylvester(n);
  const out = new Float64Array(x.length);
  for (let g = 0; g < x.length; g += n) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += signs[i] * x[g + i] * H[i][j];
      out[g + j] = s;
    }
  }
  return out;
}

test("hadamardEntry is the Sylvester matrix; TE sign vector and its mask 0xD7E8", () => {
  for (const n of SIZES) {
    const H = sylvester(n);
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) assert.equal(hadamardEntry(r, c), H[r][c], `H${n}[${r}][${c}]`);
  }
  assert.deepEqual([...TE_SIGN_VECTOR], [1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1]);
  assert.equal(signMask(TE_SIGN_VECTOR), 0xd7e8);
  assert.equal(signMask(Array(16).fill(1)), 0);
  assert.deepEqual(resolveRht().signs, [...TE_SIGN_VECTOR], "size 16 defaults to TE's vector");
  assert.equal(resolveRht().output, "bf16");
});

test("Tᵀ·T = I for T built from hadamardEntry (every size, random signs); T itself is not symmetric", () => {
  const rng = new Rng(606);
  for (const n of SIZES) {
    const T = buildT(randomSigns(rng, n));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0, s2 = 0;
        for (let k = 0; k < n; k++) { s += T[k][i] * T[k][j]; s2 += T[i][k] * T[j][k]; }
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-12, `n=${n} (TᵀT)[${i}][${j}] = ${s}`);
        assert.ok(Math.abs(s2 - (i === j ? 1 : 0)) < 1e-12, `n=${n} (TTᵀ)[${i}][${j}] = ${s2}`);
      }
    }
  }
  // with TE's signs T ≠ Tᵀ, so applying the same transform twice is not the identity
  const T = buildT(TE_SIGN_VECTOR);
  let asym = 0;
  for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) if (T[i][j] !== T[j][i]) asym++;
  assert.ok(asym > 0);
});

test("fp32 output = (x∘s)·H/√n rounded once (exact for powers of 4, ≤1 ulp otherwise); bf16 output within half a BF16 ulp", () => {
  const rng = new Rng(707);
  for (const n of SIZES) {
    const signs = randomSigns(rng, n);
    const rows = 3, cols = 2 * n;
    const x = bf16Normals(rng, rows * cols);
    const ref = unscaledRef(x, signs);
    const y32 = rht(x, [rows, cols], { size: n, signs, output: "fp32" });
    const y16 = rht(x, [rows, cols], { size: n, signs });
    const pow4 = Math.log2(n) % 2 === 0;
    let changed = 0;
    for (let i = 0; i < x.length; i++) {
      const exact = ref[i] / Math.sqrt(n);
      if (pow4) assert.equal(y32[i], Math.fround(exact), `n=${n} i=${i}`);
      else {
        const ulp = 2 ** (Math.floor(Math.log2(Math.abs(exact))) - 23);
        assert.ok(Math.abs(y32[i] - exact) <= ulp, `n=${n} i=${i}: ${y32[i]} vs ${exact}`);
      }
      assert.equal(f32Bits(y16[i]) & 0xffff, 0, "bf16 output is BF16-representable");
      const halfUlp16 = exact === 0 ? 0 : 2 ** (Math.floor(Math.log2(Math.abs(exact))) - 8);
      assert.ok(Math.abs(y16[i] - exact) <= halfUlp16 * (1 + 1e-9), `n=${n} i=${i}: bf16 ${y16[i]} vs ${exact}`);
      if (Math.abs(y32[i] - x[i]) > 1e-3) changed++;
    }
    assert.ok(changed > x.length / 2, `the transform actually mixes values (n=${n})`);
  }
});

test("bf16 output is one rounding of the exact value (no double rounding through fp32)", () => {
  // size 4, signs +1, x = [1, 2^-8, 2^-29, 0] (all BF16 values): y0 = (1 + 2^-8 + 2^-29)/2
  // = 0.5 + 2^-9 + 2^-30, just above the BF16 midpoint 0.5 + 2^-9 (BF16 step is 2^-8 in [0.5, 1))
  // → 0.5 + 2^-8. Rounding to fp32 first would drop 2^-30 and land on the tie, which goes to 0.5.
  const x = Float32Array.from([1, 2 ** -8, 2 ** -29, 0]);
  const y = rht(x, [1, 4], { size: 4, signs: [1, 1, 1, 1] });
  assert.equal(y[0], 0.5 + 2 ** -8);
  assert.equal(y[1], 0.5 - 2 ** -9);
  const y32 = rht(x, [1, 4], { size: 4, signs: [1, 1, 1, 1], output: "fp32" });
  assert.equal(y32[0], 0.5 + 2 ** -9, "fp32 output drops 2^-30");
});

test("orthogonality: RHT(A)·RHT(B)ᵀ ≈ A·Bᵀ for every size, fp32 and bf16 outputs", () => {
  const rng = new Rng(808);
  for (const n of SIZES) {
    for (const signSpec of ["explicit", "seeded"] as const) {
      const m = 5, p = 4, k = 2 * n;
      const A = bf16Normals(rng, m * k), B = bf16Normals(rng, p * k, 3);
      const opts = signSpec === "explicit" ? { size: n, signs: randomSigns(rng, n) } : { size: n, signSeed: rng.int(0, 1e6) };
      for (const output of ["fp32", "bf16"] as const) {
        const tA = rht(A, [m, k], { ...opts, output }), tB = rht(B, [p, k], { ...opts, output });
        // each output has relative error ≤ u (2^-24 fp32, 2^-8 bf16, ×(1+tiny) for non-powers of 4);
        // a dot product of k of them then errs by ≤ 2u·Σ|ya||yb| + u² ≤ (2u+u²)·‖a‖·‖b‖ (Cauchy–Schwarz, ‖Ta‖=‖a‖)
        const u = output === "fp32" ? 2 ** -24 * 1.01 : 2 ** -8;
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < p; j++) {
            let exact = 0, got = 0, na = 0, nb = 0;
            for (let c = 0; c < k; c++) {
              exact += A[i * k + c] * B[j * k + c];
              got += tA[i * k + c] * tB[j * k + c];
              na += A[i * k + c] ** 2;
              nb += B[j * k + c] ** 2;
            }
            const tol = (2 * u + u * u) * Math.sqrt(na * nb) + 1e-12;
            assert.ok(Math.abs(got - exact) <= tol, `n=${n} ${signSpec} ${output} [${i},${j}]: ${got} vs ${exact} (tol ${tol})`);
          }
        }
      }
    }
  }
});

test("inverse: rht with signs s, then plain H (signs +1), then ∘s gives x back; inverseRht too", () => {
  const rng = new Rng(909);
  for (const n of SIZES) {
    const signs = randomSigns(rng, n);
    const rows = 4, cols = n * 3;
    // small integers times 2^-4: every partial sum fits in 24 bits, so the fp32 outputs are exact
    const x = Float32Array.from({ length: rows * cols }, () => rng.int(-100, 100) / 16);
    x[0] = 1.5;
    const y = rht(x, [rows, cols], { size: n, signs, output: "fp32" });
    const back = rht(y, [rows, cols], { size: n, signs: Array(n).fill(1), output: "fp32" });
    const inv = inverseRht(y, [rows, cols], { size: n, signs });
    const pow4 = Math.log2(n) % 2 === 0;
    for (let i = 0; i < x.length; i++) {
      const xb = back[i] * signs[i % n];
      if (pow4) {
        assert.equal(xb, x[i], `n=${n} i=${i}`);
        assert.equal(inv[i], x[i], `inverseRht n=${n} i=${i}`);
      } else {
        const tol = 4 * 2 ** -24 * (Math.abs(x[i]) + 8);
        assert.ok(Math.abs(xb - x[i]) <= tol, `n=${n} i=${i}: ${xb} vs ${x[i]}`);
        assert.ok(Math.abs(inv[i] - x[i]) <= tol, `inverseRht n=${n} i=${i}: ${inv[i]} vs ${x[i]}`);
      }
    }
  }
});

test("applying the same signed transform twice is not the identity (T is not symmetric); with all-+1 signs it is", () => {
  const x = Float32Array.from({ length: 32 }, (_, i) => ((i * 7) % 13) - 6);
  const twice = rht(rht(x, [2, 16], { output: "fp32" }), [2, 16], { output: "fp32" });
  assert.ok(x.some((v, i) => Math.abs(twice[i] - v) > 0.5), "TE signs: T·T ≠ I");
  const plain = Array(16).fill(1);
  const twicePlain = rht(rht(x, [2, 16], { signs: plain, output: "fp32" }), [2, 16], { signs: plain, output: "fp32" });
  assert.deepEqual(twicePlain, x, "H/4 is symmetric and orthogonal, so it is its own inverse");
});

test("bad sizes, signs and shapes throw errors that state the rule", () => {
  const x = new Float32Array(48).fill(1);
  for (const size of [3, 256, 0, 1, 2.5, 12]) {
    assert.throws(() => rht(x, [1, 48], { size }), (e: Error) => e instanceof RangeError && /power of two in 2\.\.128/.test(e.message), `size ${size}`);
  }
  assert.throws(() => rht(x, [2, 24], { size: 16 }), (e: Error) => e instanceof ShapeError && /multiple of 16/.test(e.message));
  assert.throws(() => rht(x, [4, 12], { size: 8 }), (e: Error) => e instanceof ShapeError && /multiple of 8/.test(e.message));
  assert.throws(() => inverseRht(x, [2, 24]), (e: Error) => e instanceof ShapeError && /multiple of 16/.test(e.message));
  assert.throws(() => rht(x, [3, 16], { signs: [1, -1, 1] }), /16 values of \+1 or -1/);
  assert.throws(() => rht(x, [3, 16], { signs: Array(16).fill(0.5) }), /\+1 or -1/);
});
