/**
 * The Nemotron-H hybrid model family of the paper (arXiv 2509.25149 §3.1–3.2, App. A.1–A.2):
 * settings, presets, derived sizes and validation. A hybrid is a stack of single-mixer blocks
 * described by a pattern string (Megatron's `hybrid_override_pattern`): `M` Mamba-2, `*`
 * self-attention (GQA, no RoPE: Nemotron-H has no position embeddings), `-` squared-ReLU FFN; each
 * block is pre-RMSNorm + mixer + residual with two linear layers. Not the Transformer
 * (model-config.ts); the model itself is hybrid-model.ts. This file imports only types from
 * model-config.ts, which imports the presets from here.
 */
import type { ModelConfig } from "./model-config.ts";

/**
 * Mamba-2 mixer sizes (Dao & Gu 2024, arXiv 2405.21060; HF NemotronHConfig's names in brackets):
 * intermediate width expand·dModel split into heads of headDim, B and C shared by the heads of
 * each of nGroups groups.
 */
export interface MambaConfig {
  /** groups of heads sharing B and C; also the gated norm's groups [n_groups] */
  nGroups: number;
  /** SSM state size N [ssm_state_size] */
  dState: number;
  /** head size P [mamba_head_dim] */
  headDim: number;
  /** intermediate width = expand · dModel [expand; mamba_num_heads = expand·dModel/headDim] */
  expand: number;
  /** causal conv window W [conv_kernel] */
  convWindow: number;
  /** SSD chunk length of the scan (numerics only, not the model) [chunk_size] */
  chunkSize: number;
}

/** Nemotron-H's Mamba-2 settings (HF NemotronHConfig defaults; paper App. A.1: 8 groups, state 128, head 64, expand 2, window 4). */
export const NEMOTRON_H_MAMBA: MambaConfig = { nGroups: 8, dState: 128, headDim: 64, expand: 2, convWindow: 4, chunkSize: 128 };

/** The block kinds of a hybrid pattern. */
export type BlockKind = "M" | "*" | "-";
export const BLOCK_KINDS: Record<BlockKind, string> = { M: "Mamba-2", "*": "attention", "-": "FFN" };

/** The paper's 12B pattern (62 blocks: 28 M, 28 FFN, 6 attention; Megatron-Bridge NemotronNano 12B v2). */
export const PATTERN_12B = "M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M-";
/** The 8B pattern (52 blocks: 24 M, 24 FFN, 4 attention; Megatron-Bridge Nemotron-H 8B). */
export const PATTERN_8B = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-";

type Preset = Omit<ModelConfig, "vocabSize">;
const hybrid = (p: Omit<Preset, "nLayers" | "ropeTheta" | "normEps"> & { pattern: string; mamba: MambaConfig }): Preset =>
  ({ nLayers: p.pattern.length, ropeTheta: 10000, normEps: 1e-5, ...p });

/**
 * Hybrid presets: scaled-down models with the paper's block structure (runs of M- pairs with an
 * attention block after every fourth pair, equal Mamba and FFN counts, ~10% attention, FFN 4·d,
 * expand 2), and the full-size 8B and 12B as data. nvfp4 tiles every width of every preset; mxfp4
 * (blocks of 32) all but nemotronh-small's in_proj (336 rows).
 */
export const HYBRID_PRESETS: Record<string, Preset> = {
  /** CPU: 13 blocks (6 M, 6 FFN, 1 attention), d 64; 200 steps of nvfp4 take about a minute on 2 cores */
  "nemotronh-small": hybrid({
    dModel: 64, nHeads: 4, nKvHeads: 1, dFF: 256, seqLen: 64, pattern: "M-M-M*-M-M-M-",
    mamba: { nGroups: 2, dState: 16, headDim: 8, expand: 2, convWindow: 4, chunkSize: 16 },
  }),
  /** GPU: 22 blocks (10 M, 10 FFN, 2 attention: the 12B's first 22), head size 64, T 1024; 47M non-embedding parameters */
  "nemotronh-medium": hybrid({
    dModel: 512, nHeads: 8, nKvHeads: 2, dFF: 2048, seqLen: 1024, pattern: PATTERN_12B.slice(0, 18) + "M-M-",
    mamba: { nGroups: 8, dState: 64, headDim: 32, expand: 2, convWindow: 4, chunkSize: 128 },
  }),
  /** issue 5/8's hybrid experiment preset, the short horizon next to the Transformer exp-short (d 128, 0.885M):
   * 9 blocks `M-M-M*-M-` (4 Mamba-2, 4 FFN, 1 attention), 0.90M non-embedding parameters, T 1024. Mamba
   * widths chosen so that in_proj (2·256 + 2·1·60 + 8 = 640 rows) tiles for every recipe (16, 32, 128). */
  "exp-hybrid-short": hybrid({
    dModel: 128, nHeads: 2, nKvHeads: 1, dFF: 384, seqLen: 1024, pattern: "M-M-M*-M-",
    mamba: { nGroups: 1, dState: 60, headDim: 32, expand: 2, convWindow: 4, chunkSize: 64 },
  }),
  /** the paper's 8B (App. A.2): d 4096, FFN 21504, GQA 32/4 (the paper's 4 KV heads; Megatron-Bridge has 8), Mamba-2 8 groups, state 128, head 64 */
  "nemotronh-8b": hybrid({
    dModel: 4096, nHeads: 32, nKvHeads: 4, dFF: 21504, seqLen: 8192, pattern: PATTERN_8B,
    mamba: { nGroups: 8, dState: 128, headDim: 64, expand: 2, convWindow: 4, chunkSize: 128 },
  }),
  /** the paper's 12B (App. A.1; Nemotron-Nano-12B-v2-Base): d 5120, FFN 20480, GQA 40/8; Mamba-2 head size 80 × 128 heads as
   * the released model and Megatron-Bridge (the paper says 64: docs/paper.md §3.1 leaves it unresolved) */
  "nemotronh-12b": hybrid({
    dModel: 5120, nHeads: 40, nKvHeads: 8, dFF: 20480, seqLen: 8192, pattern: PATTERN_12B,
    mamba: { nGroups: 8, dState: 128, headDim: 80, expand: 2, convWindow: 4, chunkSize: 128 },
  }),
};

/** True for a Nemotron-H hybrid config (a non-empty pattern). */
export function isHybrid(c: ModelConfig): boolean {
  return typeof c.pattern === "string" && c.pattern.length > 0;
}

/** Sizes derived from a hybrid config's Mamba-2 settings. */
export function mambaDims(c: ModelConfig): { dInner: number; H: number; P: number; G: number; N: number; W: number; convDim: number; inProj: number; chunk: number } {
  const m = c.mamba ?? NEMOTRON_H_MAMBA;
  const dInner = m.expand * c.dModel, P = m.headDim, H = dInner / P, G = m.nGroups, N = m.dState;
  const convDim = dInner + 2 * G * N;
  // in_proj rows: [z (dInner) | x, B, C (convDim) | dt (H)], HF's split order
  return { dInner, H, P, G, N, W: m.convWindow, convDim, inProj: dInner + convDim + H, chunk: m.chunkSize };
}

/** Problems of a hybrid config's pattern and Mamba-2 sizes (empty when fine). */
export function hybridProblems(c: ModelConfig): string[] {
  const errs: string[] = [];
  const p = c.pattern!;
  const bad = [...new Set(p.replace(/[M*-]/g, ""))];
  if (bad.length) errs.push(`model.pattern may hold M (Mamba-2), * (attention) and - (FFN) only, got ${bad.map((ch) => `'${ch}'`).join(", ")} in "${p}"`);
  if (c.nLayers !== p.length) errs.push(`model.nLayers (${c.nLayers}) must equal the pattern's length (${p.length} blocks in "${p}")`);
  if ((c.mlp ?? "sqrelu") !== "sqrelu") errs.push(`hybrid models use Nemotron-H's squared-ReLU FFN; model.mlp = ${c.mlp} is for Transformers`);
  const m = c.mamba;
  if (!m || typeof m !== "object") return [...errs, "model.mamba (nGroups, dState, headDim, expand, convWindow, chunkSize) is missing"];
  for (const k of ["nGroups", "dState", "headDim", "expand", "convWindow", "chunkSize"] as const) {
    if (!Number.isInteger(m[k]) || m[k] <= 0) errs.push(`model.mamba.${k} must be a positive integer, got ${m[k]}`);
  }
  if (errs.length) return errs;
  const dInner = m.expand * c.dModel;
  if (dInner % m.headDim !== 0) errs.push(`model.mamba.headDim (${m.headDim}) must divide the intermediate width expand·dModel = ${dInner}`);
  else if ((dInner / m.headDim) % m.nGroups !== 0) errs.push(`model.mamba.nGroups (${m.nGroups}) must divide the Mamba heads expand·dModel/headDim = ${dInner / m.headDim}`);
  return errs;
}

/**
 * The widths of a hybrid's linear layers that a block format must tile (each layer's input and
 * output width: the reduction dimensions of Fprop and Dgrad), named for error messages.
 */
export function hybridLinearWidths(c: ModelConfig): [string, number][] {
  const kinds = new Set(c.pattern ?? "");
  const out: [string, number][] = [["model.dModel", c.dModel]];
  if (kinds.has("M")) {
    const d = mambaDims(c);
    out.push(["Mamba in_proj width 2·expand·dModel + 2·nGroups·dState + heads", d.inProj], ["Mamba intermediate width expand·dModel", d.dInner]);
  }
  if (kinds.has("-")) out.push(["model.dFF", c.dFF]);
  if (kinds.has("*")) {
    const HS = c.dModel / c.nHeads;
    out.push(["attention width nHeads·headSize", c.nHeads * HS], ["QKV width (nHeads + 2·nKvHeads)·headSize", (c.nHeads + 2 * c.nKvHeads) * HS]);
  }
  return out;
}

/** Parameters of one hybrid block of each kind (its pre-norm included). */
export function hybridBlockParameters(c: ModelConfig): Record<BlockKind, number> {
  const C = c.dModel, HS = C / c.nHeads, d = mambaDims(c);
  // in_proj, conv weight and bias, dt_bias, A_log, D, gated-norm weight, out_proj
  const mamba = C * d.inProj + d.convDim * (d.W + 1) + 3 * d.H + d.dInner + d.dInner * C;
  const attn = C * (c.nHeads + 2 * c.nKvHeads) * HS + c.nHeads * HS * C;
  return { M: mamba + C, "*": attn + C, "-": 2 * C * c.dFF + C };
}

/** Parameter count of a hybrid (embedding + blocks + final norm + head). */
export function hybridParameterCount(c: ModelConfig): number {
  const per = hybridBlockParameters(c);
  return 2 * c.vocabSize * c.dModel + [...c.pattern!].reduce((s, k) => s + per[k as BlockKind], 0) + c.dModel;
}
