/**
 * How one GEMM operand is quantized: the unit a recipe hands to a layer. A layer asks for the
 * operand spec of a role (input X, weight W, gradOutput dY) in a GEMM (fprop, dgrad, wgrad) and
 * passes it to the backend's quantizer; it never names a format itself.
 * JSON-serialisable, frozen; `describeOperand` gives the one-line label that runs print.
 */

export type Role = "input" | "weight" | "gradOutput";
export type GemmName = "fprop" | "dgrad" | "wgrad";
export type OperandFormat = "fp32" | "bf16" | "fp8" | "nvfp4" | "mxfp4";

export interface RhtSpec {
  /** transform size, a power of two in 2..128 (16 for NVFP4, 32 for MXFP4) */
  size: number;
  /** "fixed": TE's vector (16) or one run-wide seeded vector; "per-tensor": fresh signs per
   * transform (from the SR stream); "none": plain Hadamard */
  signs: "fixed" | "per-tensor" | "none";
}

export interface OperandSpec {
  format: OperandFormat;
  /** scale granularity: "1x16" | "16x16" (nvfp4), "1x32" (mxfp4), "1x128" | "128x128" | "tensor" (fp8); none for bf16 */
  block?: "1x16" | "16x16" | "1x32" | "1x128" | "128x128" | "tensor";
  rounding: "rtn" | "sr";
  /** random Hadamard transform along the GEMM's reduction dimension */
  rht?: RhtSpec;
  /** fp8 element format */
  fp8?: "e4m3" | "e5m2";
  /** mxfp4 scale rule */
  mxScale?: "floor" | "rceil";
}

/** Both operands of one GEMM, in TN order: C = A · Bᵀ with K contiguous in both. */
export interface GemmPlan {
  a: OperandSpec & { role: Role };
  b: OperandSpec & { role: Role };
}

/** The three GEMMs of one linear layer. */
export interface LinearPlan {
  fprop: GemmPlan;
  dgrad: GemmPlan;
  wgrad: GemmPlan;
}

export const BF16_OPERAND: OperandSpec = Object.freeze({ format: "bf16", rounding: "rtn" });
/** No rounding at all: the fp32 recipe, an exact reference for gradient checks. */
export const FP32_OPERAND: OperandSpec = Object.freeze({ format: "fp32", rounding: "rtn" });

/**
 * Whether a quantized x and a quantized xᵀ hold each other's values transposed, in every SR stream:
 * formats rounded element by element (bf16, fp32; RTN, no RHT) and NVFP4 with 16x16 tiles, RTN, no
 * RHT (a tile is the same 256 values either way, so its amax, E4M3 scale and every element's code
 * are too, and the tensor amax is orientation-free: the paper's reason for 16x16 weight tiles, §4.2).
 * Such an operand can serve the other orientation's GEMM without quantizing again (shareOperand).
 */
export function transposeInvariant(s: OperandSpec): boolean {
  if (s.rounding !== "rtn" || s.rht) return false;
  return s.format === "bf16" || s.format === "fp32" || (s.format === "nvfp4" && s.block === "16x16");
}

/** s1's operand of x, read transposed, is s2's operand of xᵀ (both transposeInvariant, same format and tiles). */
export function sameValuesTransposed(s1: OperandSpec, s2: OperandSpec): boolean {
  return transposeInvariant(s1) && transposeInvariant(s2) && s1.format === s2.format && (s1.block ?? "") === (s2.block ?? "");
}

/**
 * Whether Backend.quantizePair makes this pair (an operand of x with a, one of xᵀ with b) from one
 * read: NVFP4 1x16 both, x's without RHT, xᵀ's with an RHT of at most 16 — the recipe's Dgrad dY /
 * Wgrad dYᵀ and Fprop X / Wgrad Xᵀ (CUDA: the nvfp4_dual_* kernels).
 */
export function pairable(a: OperandSpec, b: OperandSpec): boolean {
  const x16 = (s: OperandSpec) => s.format === "nvfp4" && s.block === "1x16";
  return x16(a) && x16(b) && !a.rht && (b.rht?.size ?? 0) <= 16;
}

/** Short label, e.g. "nvfp4 1x16 SR RHT16". */
export function describeOperand(s: OperandSpec): string {
  const parts: string[] = [s.format === "fp8" ? `fp8-${s.fp8 ?? "e4m3"}` : s.format];
  if (s.block) parts.push(s.block);
  if (s.format === "mxfp4" && s.mxScale === "rceil") parts.push("rceil");
  if (s.format !== "bf16" && s.format !== "fp32") parts.push(s.rounding.toUpperCase());
  if (s.rht) parts.push(`RHT${s.rht.size}${s.rht.signs === "fixed" ? "" : `(${s.rht.signs})`}`);
  return parts.join(" ");
}

/** "A × B" label of a GEMM. */
export function describeGemm(g: GemmPlan): string {
  const a = describeOperand(g.a), b = describeOperand(g.b);
  return a === b && (a === "bf16" || a === "fp32") ? a : `${a} × ${b}`;
}
