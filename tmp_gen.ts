import { generateTree } from "./scripts/bench_cgroups.ts"; generateTree(Deno.args[0], Number(Deno.args[1]));
