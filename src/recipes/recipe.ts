/**
 * Precision recipes: which format each operand of each GEMM of each linear layer uses, selected
 * by name (`bf16`, `fp8`, `nvfp4`, `mxfp4`) and overridable field by field. A recipe is plain
 * frozen JSON (checkpoints and metrics record it verbatim); `planLinear` turns it into the
 * operand specs of one layer at one step. Method: arXiv 2509.25149 §2 (the NVFP4 recipe), §3.1
 * (the FP8 baseline), App. D (switching to BF16 near the end), App. E (the ablations these
 * switches reproduce). Not a quantizer: formats live in quant/, layers in nn/.
 */
import { Fp4lmError } from "../errors.ts";
import { BF16_OPERAND, FP32_OPERAND, type GemmName, type LinearPlan, type OperandSpec, type Role } from "./operand.ts";

export type RecipeName = "fp32" | "bf16" | "fp8" | "nvfp4" | "mxfp4";

export interface RecipeConfig {
  /** the preset this recipe started from */
  name: RecipeName;
  /** the low-precision format of quantized linear layers */
  format: "fp32" | "bf16" | "fp8" | "nvfp4" | "mxfp4";
  /** stochastic rounding per tensor role (paper: gradients only) */
  sr: { gradients: boolean; activations: boolean; weights: boolean };
  /** random Hadamard transform: on which GEMMs (paper: wgrad), size, sign choice */
  rht: { gemms: GemmName[]; size: number; signs: "fixed" | "per-tensor" | "none" };
  /** 16x16 scale tiles for weights, so Fprop and Dgrad see the same quantized W (nvfp4 only) */
  tile2d: boolean;
  /** keep the first N transformer blocks' linear layers in BF16 */
  bf16First: number;
  /** keep the last N blocks in BF16; "auto" = 15% of the blocks, rounded, at least 1 */
  bf16Last: number | "auto";
  /** glob patterns of linear-layer names kept in BF16 (e.g. "blocks.*.mlp.fc2"); each must match */
  bf16Layers: string[];
  /** FP8 baseline details */
  fp8: { element: "e4m3" | "e5m2"; activationBlock: "1x128" | "tensor"; weightBlock: "128x128" | "tensor" };
  /** MXFP4 scale rule */
  mxScale: "floor" | "rceil";
  /** switch to BF16 near the end (App. D): from a step or a fraction of training, for some passes */
  precisionSwitch: { atStep: number | null; atFraction: number | null; passes: "forward" | "backward" | "both" };
}

const BASE: Omit<RecipeConfig, "name" | "format"> = {
  sr: { gradients: false, activations: false, weights: false },
  rht: { gemms: [], size: 16, signs: "fixed" },
  tile2d: false,
  bf16First: 0,
  bf16Last: 0,
  bf16Layers: [],
  fp8: { element: "e4m3", activationBlock: "1x128", weightBlock: "128x128" },
  mxScale: "floor",
  precisionSwitch: { atStep: null, atFraction: null, passes: "both" },
};

/** The named presets. */
export const RECIPES: Record<RecipeName, RecipeConfig> = {
  // no rounding anywhere: the exact reference (gradient checks, debugging); not a paper baseline
  fp32: { ...BASE, name: "fp32", format: "fp32" },
  bf16: { ...BASE, name: "bf16", format: "bf16" },
  // paper §3.1: E4M3 everywhere, 1x128 activations/gradients, 128x128 weights; first block and last two in BF16
  fp8: { ...BASE, name: "fp8", format: "fp8", bf16First: 1, bf16Last: 2 },
  // paper §2: SR on gradients, RHT16 on Wgrad inputs, 16x16 weight tiles, last ~15% of blocks in BF16
  nvfp4: {
    ...BASE, name: "nvfp4", format: "nvfp4", sr: { gradients: true, activations: false, weights: false },
    rht: { gemms: ["wgrad"], size: 16, signs: "fixed" }, tile2d: true, bf16Last: "auto",
  },
  // paper §3.2: the same recipe with MXFP4 operands (blocks of 32, UE8M0), RHT size 32, no 2D tiles
  mxfp4: {
    ...BASE, name: "mxfp4", format: "mxfp4", sr: { gradients: true, activations: false, weights: false },
    rht: { gemms: ["wgrad"], size: 32, signs: "fixed" }, bf16Last: "auto",
  },
};

/** A bad recipe: lists every problem found. */
export class RecipeError extends Fp4lmError {
  override name = "RecipeError";
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

/** Check a recipe; throws RecipeError listing every problem. Returns it frozen. */
export function validateRecipe(r: RecipeConfig): RecipeConfig {
  const errs: string[] = [];
  const known = new Set(Object.keys(RECIPES.nvfp4));
  for (const k of Object.keys(r)) if (!known.has(k)) errs.push(`unknown recipe field '${k}' (known: ${[...known].join(", ")})`);
  if (!(r.name in RECIPES)) errs.push(`name must be one of ${Object.keys(RECIPES).join(", ")}, got ${JSON.stringify(r.name)}`);
  if (!["fp32", "bf16", "fp8", "nvfp4", "mxfp4"].includes(r.format)) errs.push(`format must be fp32, bf16, fp8, nvfp4 or mxfp4, got ${JSON.stringify(r.format)}`);
  for (const k of ["gradients", "activations", "weights"] as const) {
    if (typeof r.sr?.[k] !== "boolean") errs.push(`sr.${k} must be true or false`);
  }
  if (!Array.isArray(r.rht?.gemms) || r.rht.gemms.some((g) => !["fprop", "dgrad", "wgrad"].includes(g))) {
    errs.push(`rht.gemms must be a list of fprop, dgrad, wgrad, got ${JSON.stringify(r.rht?.gemms)}`);
  }
  const size = r.rht?.size;
  if (!Number.isInteger(size) || size < 2 || size > 128 || (size & (size - 1)) !== 0) errs.push(`rht.size must be a power of two in 2..128, got ${size}`);
  if (!["fixed", "per-tensor", "none"].includes(r.rht?.signs)) errs.push(`rht.signs must be fixed, per-tensor or none`);
  if (typeof r.tile2d !== "boolean") errs.push("tile2d must be true or false");
  if (r.tile2d && r.format !== "nvfp4") errs.push(`tile2d (16x16 weight tiles) exists for nvfp4 only, not ${r.format}`);
  if (!Number.isInteger(r.bf16First) || r.bf16First < 0) errs.push(`bf16First must be a non-negative integer, got ${r.bf16First}`);
  if (r.bf16Last !== "auto" && (!Number.isInteger(r.bf16Last) || r.bf16Last < 0)) errs.push(`bf16Last must be a non-negative integer or "auto", got ${r.bf16Last}`);
  if (!Array.isArray(r.bf16Layers) || r.bf16Layers.some((p) => typeof p !== "string" || !p)) errs.push("bf16Layers must be a list of non-empty patterns");
  if (!["e4m3", "e5m2"].includes(r.fp8?.element)) errs.push("fp8.element must be e4m3 or e5m2");
  if (!["1x128", "tensor"].includes(r.fp8?.activationBlock)) errs.push("fp8.activationBlock must be 1x128 or tensor");
  if (!["128x128", "tensor"].includes(r.fp8?.weightBlock)) errs.push("fp8.weightBlock must be 128x128 or tensor");
  if (!["floor", "rceil"].includes(r.mxScale)) errs.push("mxScale must be floor or rceil");
  const ps = r.precisionSwitch;
  if (ps?.atStep !== null && (!Number.isInteger(ps?.atStep) || ps.atStep < 0)) errs.push(`precisionSwitch.atStep must be null or a step number, got ${ps?.atStep}`);
  if (ps?.atFraction !== null && !(ps?.atFraction >= 0 && ps.atFraction <= 1)) errs.push(`precisionSwitch.atFraction must be null or in [0, 1], got ${ps?.atFraction}`);
  if (!["forward", "backward", "both"].includes(ps?.passes)) errs.push("precisionSwitch.passes must be forward, backward or both");
  if (errs.length) throw new RecipeError(`bad recipe:\n  - ${errs.join("\n  - ")}`);
  return deepFreeze(structuredClone(r));
}

/** A preset by name, validated (a copy). */
export function recipeByName(name: string): RecipeConfig {
  if (!(name in RECIPES)) throw new RecipeError(`unknown recipe '${name}'; choose from ${Object.keys(RECIPES).join(", ")}`);
  return validateRecipe(structuredClone(RECIPES[name as RecipeName]));
}

/** Number of last blocks kept in BF16 for a model of nBlocks. */
export function bf16LastBlocks(r: RecipeConfig, nBlocks: number): number {
  return r.bf16Last === "auto" ? Math.max(1, Math.round(0.15 * nBlocks)) : r.bf16Last;
}

/** Glob match: `*` matches any run of characters. */
export function matchesPattern(pattern: string, name: string): boolean {
  const re = new RegExp("^" + pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
  return re.test(name);
}

/** Throws if a bf16Layers pattern matches none of the model's linear layers. */
export function checkLayerPatterns(r: RecipeConfig, layerNames: string[]): void {
  const dead = r.bf16Layers.filter((p) => !layerNames.some((n) => matchesPattern(p, n)));
  if (dead.length) {
    throw new RecipeError(
      `bf16Layers pattern(s) ${dead.map((p) => `'${p}'`).join(", ")} match no linear layer; ` +
        `the model's linear layers are named like ${layerNames.slice(0, 4).join(", ")}${layerNames.length > 4 ? ", …" : ""}`,
    );
  }
}

/** Where a linear layer sits: its name and transformer block (-1 for the output head). */
export interface LayerSite {
  name: string;
  block: number;
  nBlocks: number;
}

/** Training progress, for the precision switch. */
export interface Progress {
  step: number;
  totalSteps: number;
}

/** True when the precision switch is active at this step. */
export function switchActive(r: RecipeConfig, p: Progress): boolean {
  const { atStep, atFraction } = r.precisionSwitch;
  if (atStep !== null && p.step >= atStep) return true;
  return atFraction !== null && p.totalSteps > 0 && p.step >= Math.floor(atFraction * p.totalSteps);
}

const ALL_BF16: LinearPlan = deepFreeze({
  fprop: { a: { ...BF16_OPERAND, role: "input" }, b: { ...BF16_OPERAND, role: "weight" } },
  dgrad: { a: { ...BF16_OPERAND, role: "gradOutput" }, b: { ...BF16_OPERAND, role: "weight" } },
  wgrad: { a: { ...BF16_OPERAND, role: "gradOutput" }, b: { ...BF16_OPERAND, role: "input" } },
});

/** Why a layer runs entirely in BF16, or undefined when it is quantized. */
export function bf16Reason(r: RecipeConfig, site: LayerSite): string | undefined {
  if (r.format === "fp32") return "recipe fp32 (no rounding)";
  if (site.block < 0) return "output head (never quantized)";
  if (r.format === "bf16") return "recipe bf16";
  if (site.block < r.bf16First) return `first ${r.bf16First} block(s) in BF16`;
  const last = bf16LastBlocks(r, site.nBlocks);
  if (site.block >= site.nBlocks - last) return `last ${last} block(s) in BF16`;
  const p = r.bf16Layers.find((pat) => matchesPattern(pat, site.name));
  if (p) return `bf16Layers '${p}'`;
  return undefined;
}

/** The operand spec of `role` in GEMM `gemm` of a quantized layer. */
function operandSpec(r: RecipeConfig, gemm: GemmName, role: Role, weight1d: boolean): OperandSpec {
  const sr = role === "gradOutput" ? r.sr.gradients : role === "input" ? r.sr.activations : r.sr.weights;
  const rounding = sr ? "sr" : "rtn";
  const rht = r.rht.gemms.includes(gemm) ? { size: r.rht.size, signs: r.rht.signs } : undefined;
  switch (r.format) {
    case "nvfp4":
      return { format: "nvfp4", block: role === "weight" && r.tile2d && !weight1d ? "16x16" : "1x16", rounding, ...(rht && { rht }) };
    case "mxfp4":
      return { format: "mxfp4", block: "1x32", rounding, mxScale: r.mxScale, ...(rht && { rht }) };
    case "fp8":
      return { format: "fp8", block: role === "weight" ? r.fp8.weightBlock : r.fp8.activationBlock, rounding: "rtn", fp8: r.fp8.element };
    case "bf16":
      return BF16_OPERAND;
    case "fp32":
      return FP32_OPERAND;
  }
}

/**
 * The operand specs of the three GEMMs of one linear layer at one step. TN order throughout:
 * Fprop Y = X·Wᵀ (a = X, b = W); Dgrad dX = dY·W (a = dY, b = Wᵀ); Wgrad dW = dYᵀ·X (a = dYᵀ,
 * b = Xᵀ, the reduction over tokens).
 */
const ALL_FP32: LinearPlan = deepFreeze({
  fprop: { a: { ...FP32_OPERAND, role: "input" }, b: { ...FP32_OPERAND, role: "weight" } },
  dgrad: { a: { ...FP32_OPERAND, role: "gradOutput" }, b: { ...FP32_OPERAND, role: "weight" } },
  wgrad: { a: { ...FP32_OPERAND, role: "gradOutput" }, b: { ...FP32_OPERAND, role: "input" } },
});

export function planLinear(r: RecipeConfig, site: LayerSite, progress: Progress): LinearPlan {
  if (r.format === "fp32") return ALL_FP32;
  if (bf16Reason(r, site)) return ALL_BF16;
  const sw = switchActive(r, progress) ? r.precisionSwitch.passes : undefined;
  const fwdBf16 = sw === "forward" || sw === "both";
  const bwdBf16 = sw === "backward" || sw === "both";
  // App. D: with the backward pass in BF16, weights use 1D scaling in the forward pass
  const weight1d = bwdBf16;
  const spec = (g: GemmName, role: Role, hp: boolean) => ({ ...(hp ? BF16_OPERAND : operandSpec(r, g, role, weight1d)), role });
  return {
    fprop: { a: spec("fprop", "input", fwdBf16), b: spec("fprop", "weight", fwdBf16) },
    dgrad: { a: spec("dgrad", "gradOutput", bwdBf16), b: spec("dgrad", "weight", bwdBf16) },
    wgrad: { a: spec("wgrad", "gradOutput", bwdBf16), b: spec("wgrad", "input", bwdBf16) },
  };
}
