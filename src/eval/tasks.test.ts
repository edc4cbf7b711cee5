import { test } from "node:test";
import assert from "node:assert/strict";
import { splitDocuments } from "../data/corpus.ts";
import { bundledSource } from "../data/prepare.ts";
import { UsageError } from "../errors.ts";
import { buildTasks, parseTasks } from "./tasks.ts";

const flat = (docs: readonly string[]) => docs.join("\n\n").replace(/\s+/g, " ");

// the bundled corpus split exactly as `fp4lm prepare` and training split it
const moby = splitDocuments(bundledSource("moby-dick").documents, 0.05);
const heldOut = flat(moby.val), trainText = flat(moby.train);

test("items come from the held-out text only, never from the training text", () => {
  const t = buildTasks(moby.val, { items: 60, seed: 3, train: moby.train });
  assert.ok(t.cloze.length >= 20 && t.ending.length === 60, `${t.cloze.length} cloze, ${t.ending.length} ending`);
  for (const it of t.cloze) {
    const passage = it.context + it.target;
    assert.ok(heldOut.includes(passage), `cloze passage not in the held-out text: …${passage.slice(-80)}`);
    assert.ok(!trainText.includes(passage.slice(-120)), `cloze passage in the training text: ${passage.slice(-80)}`);
  }
  for (const it of t.ending) {
    const sentence = it.context + it.choices[it.answer];
    assert.ok(heldOut.includes(sentence), sentence);
    assert.ok(!trainText.includes(sentence), `ending item in the training text: ${sentence}`);
    for (const c of it.choices) assert.ok(heldOut.includes(c.trim()), `distractor not held out: ${c}`);
  }
  // and building from the training split instead gives other text
  const fromTrain = buildTasks(moby.train.map((d) => d.slice(0, 100_000)), { items: 5, seed: 3 });
  assert.ok(fromTrain.ending.every((it) => !heldOut.includes(it.context + it.choices[it.answer])));
});

test("cloze items are LAMBADA-style: the passage ends before a sentence's last word, which it used earlier", () => {
  const t = buildTasks(moby.val, { items: 40, seed: 1, maxChars: 500 });
  for (const it of t.cloze) {
    assert.match(it.target, /^ [A-Za-z]{3,}$/);
    assert.ok(it.context.length >= 60 && it.context.length <= 500, `${it.context.length} characters`);
    assert.ok(new RegExp(`\\b${it.target.trim()}\\b`, "i").test(it.context), `${it.target} not earlier in the passage`);
    assert.ok(!/\s$/.test(it.context));
    // the word ends a sentence in the held-out text: punctuation follows it there
    const at = heldOut.indexOf(it.context + it.target);
    assert.ok(at >= 0 && /[.!?]/.test(heldOut[at + it.context.length + it.target.length]), `…${it.context.slice(-40)}|${it.target}`);
  }
});

test("the builder is deterministic in its seed; answers sit at seeded places", () => {
  const a = buildTasks(moby.val, { items: 30, seed: 7 }), b = buildTasks(moby.val, { items: 30, seed: 7 });
  assert.deepEqual(a, b);
  const c = buildTasks(moby.val, { items: 30, seed: 8 });
  assert.notDeepEqual(a.ending.map((i) => i.context), c.ending.map((i) => i.context));
  const places = new Set(a.ending.map((i) => i.answer));
  assert.ok(places.size >= 3, `answers at ${[...places]}`);
  for (const it of a.ending) {
    assert.equal(it.choices.length, 4);
    assert.equal(new Set(it.choices).size, 4, "distinct choices");
  }
});

test("a held-out sentence that also occurs in the training text is left out", () => {
  const t0 = buildTasks(moby.val, { items: 1000, seed: 2 });
  const victim = t0.ending[0];
  const sentence = victim.context + victim.choices[victim.answer];
  const t1 = buildTasks(moby.val, { items: 1000, seed: 2, train: [`Some other text. ${sentence} More text.`] });
  assert.ok(!t1.ending.some((it) => it.context + it.choices[it.answer] === sentence));
  assert.match(t1.notes.join("\n"), /1 held-out sentences or gloss lines also occur in the training text/);
});

test("WordNet gloss items from gloss lines: lemma context, the true definition among 3 others; none from prose", () => {
  const lines = Array.from({ length: 30 }, (_, i) => `lemma${i}, synonym ${i}: the definition number ${i} of a made-up word; "an example ${i}"`);
  const wordnet = lines.join("\n") + "\n";
  const t = buildTasks([wordnet, "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea."], { items: 10, seed: 5 });
  assert.equal(t.gloss.length, 10);
  for (const it of t.gloss) {
    const i = Number(/^lemma(\d+),/.exec(it.context)![1]);
    assert.equal(it.context, `lemma${i}, synonym ${i}:`);
    assert.equal(it.choices[it.answer], ` the definition number ${i} of a made-up word`, "the example is not part of the gloss");
    assert.equal(new Set(it.choices).size, 4);
    for (const c of it.choices) assert.match(c, /^ the definition number \d+ of a made-up word$/);
  }
  const prose = buildTasks(moby.val, { items: 10 });
  assert.equal(prose.gloss.length, 0);
  assert.match(prose.notes.join("\n"), /gloss: the held-out text has no WordNet gloss lines/);
  // a gloss line also in training is left out
  const leak = buildTasks([wordnet], { items: 100, seed: 5, train: [lines[3]] });
  assert.equal(leak.gloss.length, 29);
  assert.ok(!leak.gloss.some((it) => it.context.startsWith("lemma3,")));
});

test("task lists: names, all, none; unknown names are usage errors", () => {
  assert.deepEqual(parseTasks("bpb,cloze,gloss,ending"), ["bpb", "cloze", "gloss", "ending"]);
  assert.deepEqual(parseTasks("all"), ["bpb", "cloze", "gloss", "ending"]);
  assert.deepEqual(parseTasks("none"), []);
  assert.deepEqual(parseTasks("ending,bpb,ending"), ["ending", "bpb"]);
  assert.throws(() => parseTasks("bpb,hellaswag"), (e: unknown) => e instanceof UsageError && /'hellaswag'.*bpb, cloze, gloss, ending/.test(e.message));
});
