/**
 * Every shared vector file, bit for bit: formats (E2M1 RN/SR, E4M3), NVFP4 1x16 / 16x16 / SR /
 * NaN policy / RHT Wgrad pipeline, MXFP4 floor and rceil, the RHT, the scale swizzle and the
 * NVFP4 GEMM. The vectors come from our numpy reference (shared/reference/nvfp4_ref.py).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bitsOf, codesHex, f32s, hexBytes, loadVector, num, toHex, type Json } from "./vector-files.ts";
import { e2m1EncodeRN, e2m1EncodeSR, e2m1Decode } from "../src/formats/e2m1.ts";
import { E4M3_DECODE, e4m3Encode } from "../src/formats/e4m3.ts";
import { f32ToBits } from "../src/formats/float-bits.ts";
import {
  dequantizeNVFP4, nvfp4Codes, nvfp4GemmAlpha, nvfp4TensorScales, quantizeNVFP4, quantizeNVFP4Columnwise, type NVFP4Options, type NVFP4Tensor,
} from "../src/quant/nvfp4.ts";
import { nvfp4Gemm } from "../src/quant/nvfp4-gemm.ts";
import { dequantizeMXFP4, quantizeMXFP4 } from "../src/quant/mxfp4.ts";
import { hadamardEntry, rht, signMask, TE_SIGN_VECTOR } from "../src/quant/hadamard.ts";
import { transpose } from "../src/quant/tensor-checks.ts";
import { swizzleScales, unswizzleScales } from "../src/quant/scale-layout.ts";

const hex32 = (x: number) => "0x" + f32ToBits(x).toString(16).padStart(8, "0");

test("e2m1_rn.json: every case encodes and decodes", () => {
  const v = loadVector("e2m1_rn.json");
  assert.ok(v.cases.length > 50);
  for (const c of v.cases) {
    const x = num(c.x);
    assert.equal(e2m1EncodeRN(x), c.code, `x=${c.x}`);
    assert.ok(Object.is(e2m1Decode(c.code), num(c.value)), `decode ${c.code}`);
  }
});

test("e2m1_sr.json: trunc8 rule for every (x, r8) case", () => {
  const v = loadVector("e2m1_sr.json");
  let disagreements = 0;
  for (const c of v.cases) {
    assert.equal(e2m1EncodeSR(num(c.x), c.r8), c.code, `x=${c.x} r8=${c.r8}`);
    if (!c.variants_agree) disagreements++;
  }
  assert.ok(disagreements >= 1, "the file flags at least one TE-variant disagreement");
});

test("e4m3.json: encode cases and the full decode table", () => {
  const v = loadVector("e4m3.json");
  for (const c of v.encode_cases) assert.equal(e4m3Encode(num(c.x)), c.byte, `x=${c.x}`);
  assert.equal(v.decode_table.length, 256);
  v.decode_table.forEach((d: number | string, b: number) => {
    const want = num(d);
    assert.ok(Object.is(E4M3_DECODE[b], want) || (Number.isNaN(want) && Number.isNaN(E4M3_DECODE[b])), `byte ${b}`);
  });
});

/** Compare an NVFP4 record (amax, scales, codes, packed, dequant) with our quantizer output. */
function checkNvfp4Record(rec: Json, q: NVFP4Tensor, label: string): void {
  assert.equal(hex32(q.amax), rec.amax.bits ?? hex32(num(rec.amax.value ?? rec.amax)), `${label}: amax`);
  const { sEnc, sDec } = nvfp4TensorScales(q.amax);
  if (rec.s_enc) assert.equal(hex32(sEnc), rec.s_enc.bits, `${label}: s_enc`);
  if (rec.s_dec) assert.equal(hex32(sDec), rec.s_dec.bits, `${label}: s_dec`);
  assert.deepEqual(q.shape, rec.shape ?? q.shape);
  assert.equal(toHex(q.scales), rec.scales, `${label}: scales`);
  assert.equal(codesHex(nvfp4Codes(q)), rec.codes, `${label}: codes`);
  assert.equal(toHex(q.packed), rec.packed, `${label}: packed`);
  assert.deepEqual(bitsOf(dequantizeNVFP4(q)), bitsOf(f32s(rec.dequant)), `${label}: dequant`);
  if (rec.dequant_sdec) {
    assert.deepEqual(bitsOf(dequantizeNVFP4(q, { formula: "sdec" })), bitsOf(f32s(rec.dequant_sdec)), `${label}: dequant_sdec`);
  }
}

function quantRecord(rec: Json, opts: NVFP4Options): NVFP4Tensor {
  return quantizeNVFP4(f32s(rec.x), rec.shape, opts);
}

test("nvfp4_1x16_hand.json: every E2M1 tie, hand-checkable scales", () => {
  const v = loadVector("nvfp4_1x16_hand.json");
  const q = quantRecord(v.case, {});
  checkNvfp4Record(v.case, q, "hand");
  assert.equal(codesHex(nvfp4Codes(q)).slice(0, 16), v.expected_block0_codes);
});

test("nvfp4_1x16_random.json: rowwise and columnwise 1x16 RN", () => {
  const v = loadVector("nvfp4_1x16_random.json");
  checkNvfp4Record(v.rowwise, quantRecord(v.rowwise, {}), "rowwise");
  checkNvfp4Record(v.columnwise, quantRecord(v.columnwise, {}), "columnwise");
});

test("nvfp4_1x16_edge.json: zeros, -0, subnormal scales, FLT_MAX, tiny amax, inf, E4M3 tie", () => {
  const v = loadVector("nvfp4_1x16_edge.json");
  assert.equal(v.cases.length, 11);
  for (const c of v.cases) {
    const q = quantRecord(c, { nonFinite: "te" });
    checkNvfp4Record(c, q, c.name);
  }
});

test("nvfp4_nan_policy.json: TE unfused-kernel policy under nonFinite: 'te'", () => {
  const v = loadVector("nvfp4_nan_policy.json");
  checkNvfp4Record(v.case, quantRecord(v.case, { nonFinite: "te" }), "nan");
});

test("nvfp4_2d_16x16.json: 16x16 tiles, rowwise and columnwise", () => {
  const v = loadVector("nvfp4_2d_16x16.json");
  const row = quantRecord(v.rowwise, { tile2d: true });
  checkNvfp4Record(v.rowwise, row, "2d rowwise");
  checkNvfp4Record(v.columnwise, quantRecord(v.columnwise, { tile2d: true }), "2d columnwise");
  const tiles = Array.from({ length: 2 }, (_, tr) => toHex(row.scales.slice(tr * 16 * 3, tr * 16 * 3 + 3))).join("");
  assert.equal(tiles, v.tile_scales_16x16);
});

test("nvfp4_sr_1x16.json: SR with explicit bytes", () => {
  const v = loadVector("nvfp4_sr_1x16.json");
  const q = quantRecord(v.case, { rounding: "sr", randomBytes: hexBytes(v.r8) });
  checkNvfp4Record(v.case, q, "sr");
  const rn = quantRecord(v.case, {});
  assert.equal(codesHex(nvfp4Codes(rn)), v.case.codes_rn);
});

test("rht16.json: H16, sign mask, T and example transforms (fp32 and bf16 outputs)", () => {
  const v = loadVector("rht16.json");
  assert.deepEqual([...TE_SIGN_VECTOR], v.sign_vector);
  assert.equal(signMask(TE_SIGN_VECTOR), v.sign_mask);
  for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) {
    assert.equal(hadamardEntry(r, c), v.H16[r][c]);
    assert.equal(TE_SIGN_VECTOR[r] * hadamardEntry(r, c) * 0.25, v.T[r][c]);
  }
  const ex = v.examples;
  const x = f32s(ex.x);
  assert.deepEqual(bitsOf(rht(x, ex.shape)), bitsOf(f32s(ex.y_bf16)));
  assert.deepEqual(bitsOf(rht(x, ex.shape, { output: "fp32" })), bitsOf(f32s(ex.y_fp32)));
});

test("nvfp4_rht_wgrad.json: the full Wgrad operand pipeline and alpha", () => {
  const v = loadVector("nvfp4_rht_wgrad.json");
  const X = f32s(v.X.x), dY = f32s(v.dY.x);
  const [M, K] = v.X.shape, N = v.dY.shape[1];
  checkNvfp4Record(v.X_rowwise, quantizeNVFP4(X, [M, K]), "X rowwise");
  // the records' x are the transformed tensors: check the RHT itself, then quantize from the source
  assert.deepEqual(bitsOf(rht(transpose(X, [M, K]), [K, M])), bitsOf(f32s(v.X_columnwise_rht.x)));
  assert.deepEqual(bitsOf(rht(transpose(dY, [M, N]), [N, M])), bitsOf(f32s(v.dY_columnwise_rht_sr.x)));
  const xcol = quantizeNVFP4Columnwise(X, [M, K], { rht: true });
  checkNvfp4Record(v.X_columnwise_rht, xcol, "X columnwise RHT");
  checkNvfp4Record(v.dY_rowwise_sr, quantizeNVFP4(dY, [M, N], { rounding: "sr", randomBytes: hexBytes(v.dY_rowwise_sr.r8) }), "dY rowwise SR");
  const dycol = quantizeNVFP4Columnwise(dY, [M, N], {
    rht: true, rounding: "sr", randomBytes: hexBytes(v.dY_columnwise_rht_sr.r8),
  });
  checkNvfp4Record(v.dY_columnwise_rht_sr, dycol, "dY columnwise RHT SR");
  assert.equal(hex32(nvfp4GemmAlpha(dycol.amax, xcol.amax)), v.wgrad.alpha.bits);
  const dW = nvfp4Gemm(dycol, xcol);
  const want = v.wgrad.dW_from_quantized_fp64 as number[];
  assert.equal(dW.length, want.length);
  dW.forEach((d, i) => assert.ok(Math.abs(d - want[i]) <= 1e-6 * (1 + Math.abs(want[i])), `dW[${i}] ${d} vs ${want[i]}`));
});

test("nvfp4_gemm.json: operands bit for bit, alpha, and D within fp32 accumulation error", () => {
  const v = loadVector("nvfp4_gemm.json");
  const A = quantRecord(v.A, {}), B = quantRecord(v.B, {});
  checkNvfp4Record(v.A, A, "A");
  checkNvfp4Record(v.B, B, "B");
  assert.equal(hex32(nvfp4GemmAlpha(A.amax, B.amax)), v.alpha.bits);
  const D = nvfp4Gemm(A, B);
  assert.deepEqual([...v.D_shape], [4, 3]);
  (v.D_fp64 as number[]).forEach((d, i) => assert.ok(Math.abs(D[i] - d) <= 2e-6 * Math.abs(d) + 1e-7, `D[${i}] ${D[i]} vs ${d}`));
});

test("mxfp4.json: floor (OCP) and rceil scales, codes, dequant", () => {
  const v = loadVector("mxfp4.json");
  const x = f32s(v.x);
  for (const mode of ["floor", "rceil"] as const) {
    const q = quantizeMXFP4(x, v.shape, { scaleRounding: mode, nonFinite: "te" });
    assert.equal(toHex(q.scales), v[mode].scales, `${mode} scales`);
    assert.equal(toHex(q.packed), v[mode].packed, `${mode} packed`);
    assert.deepEqual(bitsOf(dequantizeMXFP4(q)), bitsOf(f32s(v[mode].dequant)), `${mode} dequant`);
  }
});

test("scale_swizzle.json: compact → cuBLAS swizzled layout and back", () => {
  const v = loadVector("scale_swizzle.json");
  const [r, c] = v.compact_shape;
  const sw = swizzleScales(hexBytes(v.compact), r, c);
  assert.equal(toHex(sw), v.swizzled);
  assert.equal(toHex(unswizzleScales(sw, r, c)), v.compact);
});
