import { test } from "node:test";
import assert from "node:assert/strict";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { dot, gradCheck, randn, randTokens } from "./test-random.ts";

/** Normwise relative error bound of the float64 finite-difference checks (achieved: ~1e-11). */
const GRAD_TOL = 1e-7;

test("embedding gradient (table) matches central differences in float64", (t) => {
  const BT = 12, C = 5, V = 7;
  const tokens = randTokens(BT, V, 401);
  const table = randn(V * C, 402), w = randn(BT * C, 403);
  const out = new Float64Array(BT * C);
  const loss = () => (embeddingForward(out, tokens, table, BT, C, V), dot(w, out));
  const d0 = randn(V * C, 404);
  const dtable = d0.slice(); // the backward must add to it
  embeddingBackward(dtable, w, tokens, BT, C, V);
  for (let i = 0; i < dtable.length; i++) dtable[i] -= d0[i];
  const e = gradCheck(table, dtable, loss);
  t.diagnostic(`normwise rel. error: dtable ${e.toExponential(2)}`);
  assert.ok(e < GRAD_TOL, `dtable error ${e}`);
});

test("embedding forward copies rows; backward with repeated tokens accumulates every occurrence", () => {
  const C = 3, V = 4, BT = 5;
  const tokens = Uint16Array.from([2, 0, 2, 3, 2]);
  const table = randn(V * C, 411);
  const out = new Float64Array(BT * C);
  embeddingForward(out, tokens, table, BT, C, V);
  for (let t = 0; t < BT; t++) assert.deepEqual(out.subarray(t * C, t * C + C), table.subarray(tokens[t] * C, tokens[t] * C + C));
  const dout = randn(BT * C, 412);
  const dtable = new Float64Array(V * C);
  embeddingBackward(dtable, dout, tokens, BT, C, V);
  for (let i = 0; i < C; i++) {
    assert.equal(dtable[2 * C + i], dout[0 * C + i] + dout[2 * C + i] + dout[4 * C + i]);
    assert.equal(dtable[0 * C + i], dout[1 * C + i]);
    assert.equal(dtable[1 * C + i], 0); // token 1 never appears
    assert.equal(dtable[3 * C + i], dout[3 * C + i]);
  }
});

test("embedding refuses out-of-vocabulary ids with a RangeError naming the position and the id", () => {
  const C = 2, V = 4;
  const table = randn(V * C, 421), out = new Float64Array(3 * C);
  const check = (e: unknown) => e instanceof RangeError && /token id 4 at position 1/.test(e.message) && /\[0, 4\)/.test(e.message);
  assert.throws(() => embeddingForward(out, Uint32Array.from([0, 4, 1]), table, 3, C, V), check);
  assert.throws(() => embeddingBackward(new Float64Array(V * C), out, Int32Array.from([0, 4, 1]), 3, C, V), check);
  assert.throws(() => embeddingForward(out, Int32Array.from([0, 1, -1]), table, 3, C, V), /token id -1 at position 2/);
});
