// Benchmark of one security context (Worker start → capabilities raised → result → thread gone),
// median of 100, against floors from the same interleaved run: the same Worker without a raise, a bare
// blob Worker, and the op inline on main.
// Run as root: `deno run -A scripts/bench_privilege.ts [N] [security flags]` (drops to nobody first, as the product does).

import { FlagSet } from "../common/flags.ts";
import { Logger } from "../common/log.ts";
import { runOpSync } from "../privilege/ops.ts";
import { WorkerSecurityManager } from "../privilege/security.ts";
import { addSecurityFlags, setupSecurity } from "../privilege/setup.ts";
import type { WorkerRequest } from "../privilege/worker.ts";

const N = Number(Deno.args[0] ?? 100);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A named case: one run of it. */
type Case = [label: string, run: () => Promise<unknown>];

/** Runs the cases interleaved (one round = each case once), so load drift hits all alike; prints medians. */
async function timeInterleaved(cases: Case[]): Promise<number[]> {
  for (const [, f] of cases) await f(); // warm-up
  const xs: number[][] = cases.map(() => []);
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < cases.length; c++) {
      const t0 = performance.now();
      await cases[c][1]();
      xs[c].push(performance.now() - t0);
    }
  }
  return cases.map(([label], c) => {
    const m = median(xs[c]);
    console.log(`${label.padEnd(58)} median ${m.toFixed(2)} ms (n=${N})`);
    return m;
  });
}

if (Deno.uid() !== 0) {
  console.error("bench_privilege: run as root (it drops to nobody and keeps cap_dac_read_search)");
  Deno.exit(1);
}
const fs = new FlagSet("bench", "");
addSecurityFlags(fs);
fs.parse(Deno.args.slice(1));
const setup = await setupSecurity({
  component: "exporter",
  flags: fs,
  logger: new Logger("warn", "logfmt"),
  required: new Map([["cap_dac_read_search", "--bench"]]),
  readPaths: [],
  readWritePaths: [],
});
const mgr = setup.manager as WorkerSecurityManager;
const op = { kind: "readFile" as const, path: "/etc/hostname" };

const ctxCase: Case = ["security context: raise, readFile, lower, thread gone", async () => {
  const d = await mgr.runDetailed({ name: "bench", caps: ["cap_dac_read_search"] }, [op]);
  if (!d.results[0].ok) throw new Error(JSON.stringify(d.results[0]));
}];
// Floor 1: the same Worker module and protocol, no capability raised (the manager runs caps=[]
// inline, so drive the Worker directly).
const workerUrl = mgr.workerUrl;
const sameCase: Case = ["floor: same Worker code, no raise, thread gone", async () => {
  const w = new Worker(workerUrl, { type: "module" });
  const reply = await new Promise<{ tid: number }>((resolve) => {
    w.onmessage = (e) => resolve(e.data);
    const req: WorkerRequest = { items: [{ context: "bench", caps: [], ops: [op], allowed: [op.kind] }] };
    w.postMessage(req);
  });
  w.terminate();
  for (let i = 0; i < 500; i++) {
    try {
      Deno.statSync(`/proc/self/task/${reply.tid}`);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}];
const blob = URL.createObjectURL(
  new Blob(["self.onmessage = () => self.postMessage(1);"], { type: "application/javascript" }),
);
const bareCase: Case = ["floor: bare blob Worker start/reply/terminate", async () => {
  const w = new Worker(blob, { type: "module" });
  await new Promise((resolve) => {
    w.onmessage = resolve;
    w.postMessage(0);
  });
  w.terminate();
}];
const inlineCase: Case = ["floor: inline readFile on main (no isolation)", () => Promise.resolve(runOpSync(op))];
const [ctx, sameWorker, bare, inline] = await timeInterleaved([ctxCase, sameCase, bareCase, inlineCase]);
console.log(
  `ratios: context/same-Worker ${(ctx / sameWorker).toFixed(2)}, context/bare-Worker ${(ctx / bare).toFixed(2)}, ` +
    `context/inline ${(ctx / inline).toFixed(0)}`,
);
await setup.close();
