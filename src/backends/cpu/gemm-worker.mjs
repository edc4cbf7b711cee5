/**
 * Entry of a GemmPool worker thread: registers tsx in this thread, then loads gemm-worker.ts.
 * Needed because on Node 20 a worker started with `execArgv: ['--import', 'tsx']` still fails on
 * a .ts entry (ERR_UNKNOWN_FILE_EXTENSION); tsx's documented API, register() from tsx/esm/api,
 * installs its loader hooks for this thread's imports.
 */
import { register } from "tsx/esm/api";

register();
await import("./gemm-worker.ts");
