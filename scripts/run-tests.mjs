#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with Node's test runner through tsx.
// (Node 20's `node --test` does not expand glob patterns itself, so we list the files here.)
// Usage: node scripts/run-tests.mjs [substring filters...]
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === "node_modules" ? [] : find(join(dir, e.name))) : e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}
const filters = process.argv.slice(2);
const files = ["src", "test"].flatMap(find).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
