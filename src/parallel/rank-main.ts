/**
 * One data-parallel rank: reads the job the launcher prepared (launch.ts: the run config with the
 * device resolved, the rendezvous), connects its communicator (NCCL on GPU `rank`, or the file
 * communicator on the CPU) and runs the ordinary training loop with the `parallel` hook. Errors
 * go to stderr as one line `fp4lm rank R: ...` for the launcher to show; the exit code tells the
 * launcher whether this rank failed itself (1 crash, 2 an fp4lm error) or because a peer did
 * (PEER_FAILED_EXIT).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Fp4lmError } from "../errors.ts";
import { uniqueIdFromHex } from "../backends/cuda/nccl.ts";
import type { TrainConfig } from "../train/config.ts";
import { train } from "../train/train.ts";
import { CommError, PEER_FAILED_EXIT } from "./communicator.ts";
import { DataParallel } from "./data-parallel.ts";
import { FileCommunicator } from "./file-communicator.ts";
import { NcclCommunicator } from "./nccl-communicator.ts";

export function rankMain(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { job: { type: "string" }, size: { type: "string" }, rank: { type: "string" }, "nccl-id": { type: "string" }, "stop-after": { type: "string" } } });
  const rank = Number(values.rank), size = Number(values.size), job = String(values.job);
  const parentPid = process.ppid;
  try {
    const cfg = JSON.parse(readFileSync(join(job, "config.json"), "utf8")) as TrainConfig;
    if (rank !== 0) cfg.log = "quiet";
    const gpu = cfg.device === "cuda";
    const id = gpu ? uniqueIdFromHex(String(values["nccl-id"])) : undefined;
    const bucketBytes = cfg.parallel.bucketMB * 2 ** 20;
    const dp = new DataParallel(rank, size, gpu ? rank : undefined, () =>
      id ? new NcclCommunicator({ rank, size, id, parentPid, bucketBytes }) : new FileCommunicator({ dir: join(job, "comm"), rank, size, parentPid, bucketBytes }), cfg.parallel);
    train(cfg, { parallel: dp, stopAfter: values["stop-after"] === undefined ? undefined : Number(values["stop-after"]) });
    return 0;
  } catch (e) {
    if (!(e instanceof Fp4lmError)) throw e;
    process.stderr.write(`fp4lm rank ${rank}: ${e.message}\n`);
    return e instanceof CommError ? PEER_FAILED_EXIT : 2;
  }
}
