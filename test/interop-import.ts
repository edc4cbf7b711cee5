/**
 * The import half of the Hugging Face round-trip tests (src/interop/hf-interop.test.ts for Arcee and
 * Llama, hf-nemotronh.test.ts for NemotronH): import the exported folder `hf` into `out` and require
 * every parameter the original checkpoint had, in its order and shape, bit for bit. Returns the
 * imported checkpoint for the tests' own checks of its state.
 */
import assert from "node:assert/strict";
import { loadCheckpoint, type NamedTensor } from "../src/checkpoint/checkpoint.ts";
import { importHf } from "../src/interop/hf-import.ts";

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

export function importBitIdentical(hf: string, out: string, params: NamedTensor[]): ReturnType<typeof loadCheckpoint> {
  const r = importHf(hf, out);
  assert.equal(r.params, params.reduce((s, p) => s + p.data.length, 0));
  const c = loadCheckpoint(out);
  assert.deepEqual(c.params.map((p) => p.name), params.map((p) => p.name));
  c.params.forEach((p, i) => {
    assert.deepEqual(p.shape, params[i].shape, p.name);
    assert.deepEqual(bits(p.data), bits(params[i].data), `${p.name} is not bit-identical`);
  });
  return c;
}
