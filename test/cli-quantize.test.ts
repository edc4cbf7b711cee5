/**
 * `fp4lm quantize` end to end: the sample table, files in (.npy, .safetensors), --out, --json,
 * and every kind of bad input (NaN, bad shape, truncated file, bad flag) giving a one-line
 * error, a non-zero exit code and no output file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "./run-cli.ts";
import { serializeNpy } from "../src/io/npy.ts";
import { readSafetensors, serializeSafetensors, tensorToFloat32 } from "../src/io/safetensors.ts";
import { quantizeNVFP4 } from "../src/quant/nvfp4.ts";
import { quantizeMXFP4 } from "../src/quant/mxfp4.ts";
import { toHex } from "./vector-files.ts";

const run = runCli;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "fp4lm-cli-"));
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return (s / 2 ** 32 - 0.5) * 4;
  });
}

const f32bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

test("--sample --json: every tensor in every format; NVFP4 beats MXFP4, FP8 beats both", async () => {
  const r = await run(["quantize", "--sample", "--json"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.tensors.map((t: { name: string }) => t.name), ["weight", "activation", "gradient"]);
  for (const t of j.tensors) {
    const by = Object.fromEntries(t.formats.map((f: { format: string }) => [f.format, f]));
    assert.equal(t.formats.length, 7);
    assert.ok(by["nvfp4-1x16"].relRmsError < by["mxfp4"].relRmsError, `${t.name}: nvfp4 < mxfp4`);
    assert.ok(by["fp8-1x128"].snrDb > by["nvfp4-1x16"].snrDb + 2, `${t.name}: fp8 > nvfp4 + 2 dB`);
    assert.ok(Math.abs(by["nvfp4-1x16"].snrDb + 20 * Math.log10(by["nvfp4-1x16"].relRmsError)) < 1e-9, "SNR = -20 log10(rel err)");
    assert.equal(by["nvfp4-1x16"].saturated, 0, "NVFP4 scales never clip beyond rounding");
  }
  // the RHT flattens the gradient's outliers: far fewer values underflow to zero
  const g = Object.fromEntries(j.tensors[2].formats.map((f: { format: string }) => [f.format, f]));
  assert.ok(g["nvfp4-rht16"].underflow < g["nvfp4-1x16"].underflow / 4);
});

test("text table: header, one row per format, scale histograms", async () => {
  const r = await run(["quantize", "--sample", "--formats", "nvfp4-1x16,mxfp4"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /rel\.RMS err\s+SNR dB\s+underflow\s+saturated/);
  assert.equal((r.out.match(/^nvfp4-1x16 /gm) ?? []).length, 3);
  assert.equal((r.out.match(/^mxfp4 /gm) ?? []).length, 3);
  assert.doesNotMatch(r.out, /fp8/);
  assert.match(r.out, /2\^-?\d+ [▁▂▃▄▅▆▇█ ]+ 2\^-?\d+/);
});

test(".npy in, --out safetensors: bytes equal the library's quantizers, layout in metadata", async () => {
  const d = tmp();
  try {
    const x = seeded(32 * 64, 7);
    writeFileSync(join(d, "act.npy"), serializeNpy({ dtype: "f4", shape: [32, 64], data: f32bytes(x) }));
    const outFile = join(d, "q.safetensors");
    const r = await run(["quantize", join(d, "act.npy"), "--formats", "nvfp4-16x16,mxfp4", "--out", outFile]);
    assert.equal(r.code, 0, r.err);
    const f = readSafetensors(outFile);
    const by = Object.fromEntries(f.tensors.map((t) => [t.name, t]));
    const q = quantizeNVFP4(x, [32, 64], { tile2d: true });
    assert.equal(toHex(by["act.nvfp4-16x16.packed"].data), toHex(q.packed));
    assert.equal(by["act.nvfp4-16x16.scales"].dtype, "F8_E4M3");
    assert.deepEqual(by["act.nvfp4-16x16.scales"].shape, [32, 4]);
    assert.equal(toHex(by["act.nvfp4-16x16.scales"].data), toHex(q.scales));
    assert.equal(tensorToFloat32(by["act.nvfp4-16x16.amax"], outFile)[0], q.amax);
    assert.equal(toHex(by["act.mxfp4.scales"].data), toHex(quantizeMXFP4(x, [32, 64]).scales));
    const meta = JSON.parse(f.metadata.fp4lm);
    assert.equal(meta.tensors["act.nvfp4-16x16"].format, "nvfp4");
    assert.deepEqual(meta.tensors["act.mxfp4"].matrix_shape, [32, 64]);
  } finally { rmSync(d, { recursive: true, force: true }); }
});

test("NaN in a tensor: error names the tensor and the element; nothing written; --allow-nonfinite proceeds", async () => {
  const d = tmp();
  try {
    const x = seeded(16 * 32, 3);
    x[2 * 32 + 5] = NaN;
    const st = serializeSafetensors([
      { name: "ok", dtype: "F32", shape: [16, 32], data: f32bytes(seeded(16 * 32, 4)) },
      { name: "layers.0.bad", dtype: "F32", shape: [16, 32], data: f32bytes(x) },
    ]);
    writeFileSync(join(d, "in.safetensors"), st);
    const outFile = join(d, "out.safetensors");
    const r = await run(["quantize", join(d, "in.safetensors"), "--out", outFile]);
    assert.equal(r.code, 2);
    assert.match(r.err, /layers\.0\.bad: element \[2, 5\] \(flat index 69\) is NaN/);
    assert.ok(!existsSync(outFile), "no output file after an error");
    assert.deepEqual(readdirSync(d).sort(), ["in.safetensors"]);
    const ok = await run(["quantize", join(d, "in.safetensors"), "--allow-nonfinite", "--json"]);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(JSON.parse(ok.out).tensors.length, 2);
  } finally { rmSync(d, { recursive: true, force: true }); }
});

test("shape rules: cols not a multiple of 16 → error with the rule; --skip-incompatible skips and says so", async () => {
  const d = tmp();
  try {
    writeFileSync(join(d, "b.npy"), serializeNpy({ dtype: "f4", shape: [4, 24], data: f32bytes(seeded(96, 5)) }));
    const r = await run(["quantize", join(d, "b.npy")]);
    assert.equal(r.code, 2);
    assert.match(r.err, /b: NVFP4 needs the number of columns \(last dimension\) to be a multiple of 16/);
    const s = await run(["quantize", join(d, "b.npy"), "--skip-incompatible", "--json"]);
    assert.equal(s.code, 0, s.err);
    const t = JSON.parse(s.out).tensors[0];
    assert.deepEqual(t.formats.map((f: { format: string }) => f.format), ["fp8-tensor", "fp8-1x128"]);
    assert.equal(t.skippedFormats.length, 5);
  } finally { rmSync(d, { recursive: true, force: true }); }
});

test("the installed command: truncated file → one-line error, exit 2, no stack trace", () => {
  const d = tmp();
  try {
    const st = serializeSafetensors([{ name: "w", dtype: "F32", shape: [16, 16], data: f32bytes(seeded(256, 9)) }]);
    writeFileSync(join(d, "t.safetensors"), st.subarray(0, st.length - 100));
    const p = spawnSync(process.execPath, ["bin/fp4lm.mjs", "quantize", join(d, "t.safetensors"), "--out", join(d, "o.safetensors")], { encoding: "utf8" });
    assert.equal(p.status, 2);
    assert.match(p.stderr, /^fp4lm: .*t\.safetensors: /);
    assert.doesNotMatch(p.stderr, /\n\s+at /, "no stack trace");
    assert.ok(!existsSync(join(d, "o.safetensors")));
    const u = spawnSync(process.execPath, ["bin/fp4lm.mjs", "quantize", "--sample", "--bogus"], { encoding: "utf8" });
    assert.equal(u.status, 2);
    assert.match(u.stderr, /bogus/);
    const v = spawnSync(process.execPath, ["bin/fp4lm.mjs", "--version"], { encoding: "utf8" });
    assert.equal(v.stdout.trim(), JSON.parse(readFileSync("package.json", "utf8")).version);
  } finally { rmSync(d, { recursive: true, force: true }); }
});
