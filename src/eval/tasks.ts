/**
 * Downstream tasks built from held-out text: the small-scale analogue of the paper's Table 2
 * (issue 5, part 4; the task designs are ../shared/docs/data.md §3). No benchmark data set can be
 * installed here, so every task is cut from the validation split of the run's own corpus (the
 * text of val.bin), never from training text; items whose sentence (or gloss line) also occurs in
 * the training split are dropped. Deterministic: the same text, seed and item count give the same
 * items. Tasks:
 *   bpb     bits per byte of the held-out token stream (score.ts; needs no items)
 *   cloze   LAMBADA-style: a passage of up to `maxChars` ending in a sentence's last word (3+
 *           letters, also used earlier in the passage); the model must produce that word greedily
 *   gloss   WordNet-gloss multiple choice: "lemma, lemma:" → the true definition or 3 definitions
 *           of other held-out synsets of the same file (part of speech); only where the held-out
 *           text has WordNet gloss lines (the regcorpus), otherwise no items
 *   ending  HellaSwag-style: the first half of a held-out sentence (8–40 words) → its true second
 *           half or the second halves of 3 other held-out sentences
 * Multiple choice is scored by length-normalised log-likelihood (score.ts). Not the scorer.
 */
import { join } from "node:path";
import { readShard } from "../data/shards.ts";
import { loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import { UsageError } from "../errors.ts";
import { philox4x32, seedKey } from "../quant/philox.ts";

export const TASK_NAMES = ["bpb", "cloze", "gloss", "ending"] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export interface ClozeItem {
  context: string;
  /** the final word with its leading space */
  target: string;
}

export interface ChoiceItem {
  context: string;
  /** continuations, each with its leading space */
  choices: string[];
  answer: number;
}

export interface TaskSet {
  cloze: ClozeItem[];
  gloss: ChoiceItem[];
  ending: ChoiceItem[];
  /** what the builder left out and why */
  notes: string[];
}

export interface BuildOptions {
  /** items per task at most (default 200) */
  items?: number;
  seed?: number;
  /** longest cloze passage in characters (default 800) */
  maxChars?: number;
  /** training documents: items whose sentence or gloss line occurs there are dropped */
  train?: readonly string[];
}

/** Parse a --tasks list ("bpb,cloze"; "all"); UsageError naming the tasks on a bad one. */
export function parseTasks(spec: string): TaskName[] {
  if (spec === "all") return [...TASK_NAMES];
  if (spec === "none" || spec === "") return [];
  const names = spec.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(TASK_NAMES as readonly string[]).includes(n));
  if (bad.length) throw new UsageError(`unknown task ${bad.map((b) => `'${b}'`).join(", ")}; tasks are ${TASK_NAMES.join(", ")} (or all, none)`);
  return [...new Set(names)] as TaskName[];
}

/** The documents of a shard: the text between end-of-text tokens. */
export function shardDocuments(file: string, tok: Tokenizer): string[] {
  const ids = readShard(file).tokens;
  const docs: string[] = [];
  let start = 0;
  for (let i = 0; i <= ids.length; i++) {
    if (i === ids.length || ids[i] === tok.eotToken) {
      if (i > start) docs.push(tok.decode(ids.subarray(start, i)));
      start = i + 1;
    }
  }
  return docs;
}

/** Held-out (val.bin) and training (train.bin) documents of a prepared-data folder. */
export function preparedDocuments(dir: string): { heldOut: string[]; train: string[] } {
  const tok = loadTokenizer(join(dir, "tokenizer.json"));
  try {
    return { heldOut: shardDocuments(join(dir, "val.bin"), tok), train: shardDocuments(join(dir, "train.bin"), tok) };
  } finally {
    tok.free();
  }
}

// ---- text units ------------------------------------------------------------------------------

/** a sentence ends at '.', '!' or '?' (and closing quotes or brackets) followed by a space */
const SENTENCE_END = /(?<=[.!?]["'”’)\]]*)\s+/;

/** Paragraphs of a document, whitespace collapsed. */
function paragraphs(doc: string): string[] {
  return doc.split(/\n[ \t\r]*\n/).map((p) => p.replace(/\s+/g, " ").trim()).filter((p) => p.length > 0);
}

/** Sentences of a paragraph (a plain splitter; joined with spaces they give the paragraph back). */
function sentences(paragraph: string): string[] {
  return paragraph.split(SENTENCE_END).filter((s) => s.length > 0);
}

const GLOSS_LINE = /^([^:;"]{1,80}): (.+)$/;
const LEMMAS = /^[\w'’.\- ]+(, [\w'’.\- ]+)*$/;

/** "lemma, lemma: definition; "example"" lines → [lemmas, definition], or undefined. */
function glossOf(line: string): [string, string] | undefined {
  const m = GLOSS_LINE.exec(line.trim());
  if (!m || !LEMMAS.test(m[1])) return undefined;
  const def = m[2].split('; "')[0].trim();
  return def.length >= 10 ? [m[1], def] : undefined;
}

// ---- seeded choices ----------------------------------------------------------------------------

/** Philox counter word of the task builder, apart from other users of a seed. */
const TASK_STREAM = 0x7a5c;

/** A seeded generator of uniform integers. */
function seededInts(seed: number, stream: number): (n: number) => number {
  const [k0, k1] = seedKey(seed);
  const w = new Uint32Array(4);
  let draw = 0;
  return (n) => {
    philox4x32(draw++, stream, TASK_STREAM, 0, k0, k1, w);
    return Math.min(n - 1, Math.floor(((w[0] * 2 ** 21 + (w[1] >>> 11)) / 2 ** 53) * n));
  };
}

/** The first `k` of a seeded permutation of `list`. */
function sample<T>(list: readonly T[], k: number, rand: (n: number) => number): T[] {
  const a = [...list];
  const m = Math.min(k, a.length);
  for (let i = 0; i < m; i++) {
    const j = i + rand(a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, m);
}

/** A choice item: the true continuation at a seeded place among distractors drawn from `pool`. */
function choiceItem(context: string, truth: string, pool: readonly string[], rand: (n: number) => number): ChoiceItem | undefined {
  const others = new Set<string>();
  for (let tries = 0; others.size < 3 && tries < 50; tries++) {
    const c = pool[rand(pool.length)];
    if (c !== truth) others.add(c);
  }
  if (others.size < 3) return undefined;
  const choices = [...others];
  const answer = rand(4);
  choices.splice(answer, 0, truth);
  return { context, choices, answer };
}

// ---- the builder -------------------------------------------------------------------------------

/** Build the cloze, gloss and ending items from held-out documents (see the header). */
export function buildTasks(heldOut: readonly string[], opts: BuildOptions = {}): TaskSet {
  const items = opts.items ?? 200, seed = opts.seed ?? 0, maxChars = opts.maxChars ?? 800;
  const notes: string[] = [];
  const trainSentences = new Set<string>(), trainLines = new Set<string>();
  for (const d of opts.train ?? []) {
    for (const p of paragraphs(d)) for (const s of sentences(p)) trainSentences.add(s);
    for (const l of d.split("\n")) trainLines.add(l.trim());
  }
  let leaked = 0;

  // cloze and ending candidates, in text order
  const cloze: ClozeItem[] = [];
  const endings: { context: string; truth: string }[] = [];
  const glossDocs: [string, string][][] = [];
  for (const doc of heldOut) {
    const lines = doc.split("\n").filter((l) => l.trim().length > 0);
    const parsed = lines.map((l) => [l.trim(), glossOf(l)] as const).filter(([, g]) => g !== undefined);
    // a document of gloss lines (a WordNet file), not prose that happens to hold a colon
    if (parsed.length >= 4 && parsed.length >= 0.5 * lines.length) {
      const fresh = parsed.filter(([l]) => !trainLines.has(l)).map(([, g]) => g!);
      leaked += parsed.length - fresh.length;
      glossDocs.push(fresh);
      continue;
    }
    const sents = paragraphs(doc).flatMap(sentences);
    sents.forEach((s, i) => {
      if (trainSentences.has(s)) { leaked++; return; }
      const words = s.split(" ");
      if (words.length >= 8 && words.length <= 40) {
        const h = Math.floor(words.length / 2);
        endings.push({ context: words.slice(0, h).join(" "), truth: " " + words.slice(h).join(" ") });
      }
      // the target ends a sentence of 6+ words (not an exclamation such as "Oars!")
      const m = /\s([A-Za-z]{3,})[.!?]+["'”’)\]]*$/.exec(s);
      if (!m || words.length < 6) return;
      let context = s.slice(0, m.index);
      for (let j = i - 1; j >= 0 && context.length + sents[j].length + 1 <= maxChars; j--) context = `${sents[j]} ${context}`;
      const word = m[1];
      if (context.length < 60 || context.length > maxChars) return;
      if (!new RegExp(`\\b${word}\\b`, "i").test(context)) return;
      cloze.push({ context, target: ` ${word}` });
    });
  }

  const rand = seededInts(seed, 1);
  const out: TaskSet = { cloze: sample(cloze, items, rand), gloss: [], ending: [], notes };
  const endPool = endings.map((e) => e.truth);
  for (const e of sample(endings, items, seededInts(seed, 2))) {
    const it = choiceItem(e.context, e.truth, endPool, rand);
    if (it) out.ending.push(it);
  }
  const grand = seededInts(seed, 3);
  const glossPick = sample(glossDocs.flatMap((g, d) => g.map((_, i) => [d, i] as const)), items, grand);
  for (const [d, i] of glossPick) {
    const [lemmas, def] = glossDocs[d][i];
    const pool = glossDocs[d].length >= 8 ? glossDocs[d].map((g) => ` ${g[1]}`) : glossDocs.flat().map((g) => ` ${g[1]}`);
    const it = choiceItem(`${lemmas}:`, ` ${def}`, pool, grand);
    if (it) out.gloss.push(it);
  }
  if (!glossDocs.length) notes.push("gloss: the held-out text has no WordNet gloss lines (lemma, lemma: definition), so no items");
  if (leaked) notes.push(`${leaked} held-out sentences or gloss lines also occur in the training text: left out`);
  for (const [name, got] of [["cloze", out.cloze.length], ["ending", out.ending.length]] as const) {
    if (got < items) notes.push(`${name}: ${got} items (the held-out text has no more that qualify)`);
  }
  return out;
}
