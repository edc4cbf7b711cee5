/**
 * Training checkpoints: one safetensors file holding the FP32 master weights (`model.NAME`), the
 * AdamW moments (`optim.m.NAME`, `optim.v.NAME`) and, in the metadata key `fp4lm.checkpoint`, a
 * JSON state: step, the full run config and recipe, the tokenizer, the data-loader position and
 * the optimizer's update count. Randomness is counter-based (Philox keyed by seed and step), so
 * this is all a resumed run needs to continue bit for bit. Written atomically (temp file +
 * rename); refuses to write non-finite state; a checkpoint that does not match the model gives
 * an error listing every mismatch and is left untouched. The config records the MLP kind
 * (`model.mlp`); reading a checkpoint written before that field existed fills in "sqrelu".
 */
import { existsSync } from "node:fs";
import { FileFormatError, Fp4lmError } from "../errors.ts";
import { readSafetensors, tensorToFloat32, writeSafetensors, type TensorEntry } from "../io/safetensors.ts";

export const CHECKPOINT_VERSION = 1;
const META_KEY = "fp4lm.checkpoint";

/** JSON state stored with the tensors. */
export interface CheckpointState {
  version: number;
  /** optimizer steps completed */
  step: number;
  /** AdamW update count (bias correction) */
  optimizerT: number;
  config: unknown;
  recipe: unknown;
  tokenizer: unknown;
  loader: unknown;
  /** free-form: last losses, wall time, ... */
  info: Record<string, unknown>;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface CheckpointContents {
  state: CheckpointState;
  params: NamedTensor[];
  m: NamedTensor[];
  v: NamedTensor[];
}

/** Thrown instead of writing a checkpoint from a poisoned state. */
export class PoisonedStateError extends Fp4lmError {
  override name = "PoisonedStateError";
}

function firstBad(t: NamedTensor): number {
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return i;
  return -1;
}

const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Write a checkpoint atomically. Throws PoisonedStateError (writing nothing) on NaN/Inf. */
export function saveCheckpoint(path: string, c: CheckpointContents): void {
  const entries: TensorEntry[] = [];
  for (const [prefix, list] of [["model.", c.params], ["optim.m.", c.m], ["optim.v.", c.v]] as const) {
    for (const t of list) {
      const bad = firstBad(t);
      if (bad >= 0) {
        throw new PoisonedStateError(
          `not writing checkpoint ${path}: ${prefix}${t.name} holds ${t.data[bad]} at flat index ${bad} (step ${c.state.step}); the previous checkpoint is kept`,
        );
      }
      // a copy: the caller's arrays may live in shared memory that keeps changing
      entries.push({ name: prefix + t.name, dtype: "F32", shape: t.shape, data: bytes(Float32Array.from(t.data)) });
    }
  }
  writeSafetensors(path, entries, { [META_KEY]: JSON.stringify({ ...c.state, version: CHECKPOINT_VERSION }) });
}

/** Read a checkpoint file (tensors and state) without checking it against a model. */
export function loadCheckpoint(path: string): CheckpointContents {
  if (!existsSync(path)) throw new FileFormatError(path, "no such checkpoint file");
  const f = readSafetensors(path);
  const raw = f.metadata[META_KEY];
  if (!raw) throw new FileFormatError(path, `not an fp4lm checkpoint: metadata has no '${META_KEY}' entry (is it a Hugging Face or quantized-tensor file?)`);
  let state: CheckpointState;
  try {
    state = JSON.parse(raw) as CheckpointState;
  } catch (e) {
    throw new FileFormatError(path, `checkpoint state is not valid JSON (${(e as Error).message})`);
  }
  if (state.version !== CHECKPOINT_VERSION) {
    throw new FileFormatError(path, `checkpoint version ${state.version}, this fp4lm reads version ${CHECKPOINT_VERSION}`);
  }
  if (!Number.isInteger(state.step) || state.step < 0) throw new FileFormatError(path, `checkpoint step ${state.step} is not a step number`);
  // checkpoints from before the MLP option (nn/model-config.ts) have no model.mlp: theirs is squared ReLU
  const model = (state.config as { model?: Record<string, unknown> } | null)?.model;
  if (typeof model === "object" && model !== null && model.mlp === undefined) model.mlp = "sqrelu";
  const out: CheckpointContents = { state, params: [], m: [], v: [] };
  for (const t of f.tensors) {
    if (t.dtype !== "F32") throw new FileFormatError(path, `tensor ${t.name} is ${t.dtype}; checkpoints hold F32 master weights and moments`);
    const nt = { shape: t.shape, data: tensorToFloat32(t, path) };
    if (t.name.startsWith("model.")) out.params.push({ name: t.name.slice(6), ...nt });
    else if (t.name.startsWith("optim.m.")) out.m.push({ name: t.name.slice(8), ...nt });
    else if (t.name.startsWith("optim.v.")) out.v.push({ name: t.name.slice(8), ...nt });
    else throw new FileFormatError(path, `unexpected tensor ${t.name} in a checkpoint`);
  }
  return out;
}

/**
 * Check that a checkpoint holds exactly the expected parameters (names and shapes), with moments
 * for each; throws a FileFormatError listing every mismatch.
 */
export function checkCheckpointMatches(path: string, c: CheckpointContents, expected: { name: string; shape: number[] }[], withOptimizer: boolean): void {
  const problems: string[] = [];
  const lists: [string, NamedTensor[]][] = withOptimizer ? [["model", c.params], ["optim.m", c.m], ["optim.v", c.v]] : [["model", c.params]];
  for (const [what, list] of lists) {
    const have = new Map(list.map((t) => [t.name, t]));
    for (const e of expected) {
      const t = have.get(e.name);
      if (!t) problems.push(`${what}.${e.name} is missing`);
      else if (t.shape.join("x") !== e.shape.join("x")) problems.push(`${what}.${e.name} has shape [${t.shape}], the model needs [${e.shape}]`);
      have.delete(e.name);
    }
    for (const name of have.keys()) problems.push(`${what}.${name} is not a parameter of this model`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 12).join("; ") + (problems.length > 12 ? `; and ${problems.length - 12} more` : "");
    throw new FileFormatError(path, `checkpoint does not match the model (different config?): ${shown}`);
  }
}
