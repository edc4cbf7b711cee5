/**
 * The recipes as the paper states them: which operand of which GEMM gets which quantizer, the
 * BF16 block policy, layer patterns, the precision switch, and validation messages.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeGemm } from "./operand.ts";
import { bf16LastBlocks, checkLayerPatterns, planLinear, recipeByName, validateRecipe, RecipeError, type RecipeConfig } from "./recipe.ts";

const site = (block: number, nBlocks = 20, name = `blocks.${block}.mlp.fc1`) => ({ name, block, nBlocks });
const at = (step: number, totalSteps = 100) => ({ step, totalSteps });

test("nvfp4: Fprop X 1x16 RTN × W 16x16 RTN; Dgrad dY 1x16 SR × W 16x16; Wgrad RHT16(dYᵀ) SR × RHT16(Xᵀ) RTN", () => {
  const p = planLinear(recipeByName("nvfp4"), site(3), at(0));
  assert.deepEqual(p.fprop.a, { format: "nvfp4", block: "1x16", rounding: "rtn", role: "input" });
  assert.deepEqual(p.fprop.b, { format: "nvfp4", block: "16x16", rounding: "rtn", role: "weight" });
  assert.deepEqual(p.dgrad.a, { format: "nvfp4", block: "1x16", rounding: "sr", role: "gradOutput" });
  assert.deepEqual(p.dgrad.b, { format: "nvfp4", block: "16x16", rounding: "rtn", role: "weight" });
  assert.deepEqual(p.wgrad.a, { format: "nvfp4", block: "1x16", rounding: "sr", rht: { size: 16, signs: "fixed" }, role: "gradOutput" });
  assert.deepEqual(p.wgrad.b, { format: "nvfp4", block: "1x16", rounding: "rtn", rht: { size: 16, signs: "fixed" }, role: "input" });
  assert.equal(describeGemm(p.wgrad), "nvfp4 1x16 SR RHT16 × nvfp4 1x16 RTN RHT16");
});

test("nvfp4 keeps the last ~15% of blocks (at least one) and the head in BF16", () => {
  const r = recipeByName("nvfp4");
  assert.equal(bf16LastBlocks(r, 20), 3);
  assert.equal(bf16LastBlocks(r, 4), 1);
  assert.equal(planLinear(r, site(16), at(0)).fprop.a.format, "nvfp4");
  assert.equal(planLinear(r, site(17), at(0)).fprop.a.format, "bf16");
  assert.equal(planLinear(r, { name: "head", block: -1, nBlocks: 20 }, at(0)).wgrad.b.format, "bf16");
});

test("fp8: E4M3, 1x128 activations and gradients, 128x128 weights, first 1 and last 2 blocks BF16", () => {
  const r = recipeByName("fp8");
  const p = planLinear(r, site(5), at(0));
  assert.deepEqual([p.fprop.a.block, p.fprop.b.block, p.dgrad.a.block, p.wgrad.b.block], ["1x128", "128x128", "1x128", "1x128"]);
  assert.equal(p.fprop.a.fp8, "e4m3");
  assert.equal(planLinear(r, site(0), at(0)).fprop.a.format, "bf16");
  assert.equal(planLinear(r, site(18), at(0)).fprop.a.format, "bf16");
  assert.equal(planLinear(r, site(17), at(0)).fprop.a.format, "fp8");
});

test("mxfp4: blocks of 32, RHT32 on Wgrad, SR on gradients", () => {
  const p = planLinear(recipeByName("mxfp4"), site(2), at(0));
  assert.equal(p.fprop.b.block, "1x32");
  assert.deepEqual(p.wgrad.a.rht, { size: 32, signs: "fixed" });
  assert.equal(p.dgrad.a.rounding, "sr");
  assert.equal(p.fprop.a.rounding, "rtn");
});

test("ablation switches: SR on activations/weights, RHT on Fprop, tile2d off, bf16First", () => {
  const base = recipeByName("nvfp4");
  const r = validateRecipe({ ...structuredClone(base), sr: { gradients: false, activations: true, weights: true }, rht: { gemms: ["fprop"], size: 64, signs: "none" }, tile2d: false, bf16First: 2 } as RecipeConfig);
  const p = planLinear(r, site(2), at(0));
  assert.equal(p.fprop.a.rounding, "sr");
  assert.equal(p.fprop.b.rounding, "sr");
  assert.equal(p.dgrad.a.rounding, "rtn");
  assert.deepEqual(p.fprop.b.rht, { size: 64, signs: "none" });
  assert.equal(p.wgrad.a.rht, undefined);
  assert.equal(p.fprop.b.block, "1x16");
  assert.equal(planLinear(r, site(1), at(0)).fprop.a.format, "bf16");
});

test("precision switch (App. D): forward only, backward only (weights 1D), both; by step or fraction", () => {
  const mk = (passes: "forward" | "backward" | "both", atFraction: number | null, atStep: number | null = null) =>
    validateRecipe({ ...structuredClone(recipeByName("nvfp4")), precisionSwitch: { atStep, atFraction, passes } } as RecipeConfig);
  const fwd = mk("forward", 0.8);
  assert.equal(planLinear(fwd, site(3), at(79)).fprop.a.format, "nvfp4");
  const after = planLinear(fwd, site(3), at(80));
  assert.deepEqual([after.fprop.a.format, after.dgrad.a.format, after.wgrad.a.format], ["bf16", "nvfp4", "nvfp4"]);
  const bwd = planLinear(mk("backward", 0.8), site(3), at(90));
  assert.deepEqual([bwd.fprop.a.format, bwd.fprop.b.block, bwd.dgrad.a.format, bwd.wgrad.b.format], ["nvfp4", "1x16", "bf16", "bf16"]);
  const both = planLinear(mk("both", null, 10), site(3), at(10));
  assert.deepEqual([both.fprop.a.format, both.dgrad.b.format], ["bf16", "bf16"]);
  assert.equal(planLinear(mk("both", null, 10), site(3), at(9)).fprop.a.format, "nvfp4");
});

test("layer patterns: matching layers go BF16; a pattern matching nothing is an error naming it", () => {
  const r = validateRecipe({ ...structuredClone(recipeByName("nvfp4")), bf16Layers: ["blocks.*.mlp.fc2"] } as RecipeConfig);
  assert.equal(planLinear(r, site(2, 20, "blocks.2.mlp.fc2"), at(0)).fprop.a.format, "bf16");
  assert.equal(planLinear(r, site(2, 20, "blocks.2.mlp.fc1"), at(0)).fprop.a.format, "nvfp4");
  checkLayerPatterns(r, ["blocks.0.mlp.fc2", "head"]);
  const bad = validateRecipe({ ...structuredClone(recipeByName("nvfp4")), bf16Layers: ["blocks.*.ffn.*"] } as RecipeConfig);
  assert.throws(() => checkLayerPatterns(bad, ["blocks.0.mlp.fc2", "head"]), /'blocks\.\*\.ffn\.\*' match no linear layer/);
});

test("validation lists every problem at once", () => {
  const r = { ...structuredClone(recipeByName("mxfp4")), tile2d: true, rht: { gemms: ["bprop"], size: 24, signs: "fixed" }, extra: 1 } as unknown as RecipeConfig;
  const e = (() => { try { validateRecipe(r); } catch (x) { return x as Error; } })();
  assert.ok(e instanceof RecipeError);
  for (const want of [/unknown recipe field 'extra'/, /rht\.gemms/, /rht\.size must be a power of two/, /tile2d .* nvfp4 only, not mxfp4/]) assert.match(e.message, want);
  assert.throws(() => recipeByName("fp4"), /unknown recipe 'fp4'; choose from fp32, bf16, fp8, nvfp4, mxfp4/);
});

test("recipes are frozen JSON that round-trips", () => {
  const r = recipeByName("nvfp4");
  assert.ok(Object.isFrozen(r) && Object.isFrozen(r.sr));
  assert.deepEqual(validateRecipe(JSON.parse(JSON.stringify(r))), r);
});
