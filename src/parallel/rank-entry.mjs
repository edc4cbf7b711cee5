/**
 * Entry of one data-parallel rank process (launch.ts starts one per rank): registers tsx, as
 * bin/fp4lm.mjs does, then runs rank-main.ts with this process's arguments.
 */
import { register } from "tsx/esm/api";

register();
const { rankMain } = await import("./rank-main.ts");
process.exitCode = rankMain(process.argv.slice(2));
