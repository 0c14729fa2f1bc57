// sacct output parsing: CEEMS's fixture, alloctres units, hostlist expansion, window-clipped walltimes,
// and edge cases (job steps, `|` and newlines inside fields, malformed lines skipped and reported).

import { join } from "node:path";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { repoRoot } from "../../helpers/process.ts";
import { parseAllocTres, parseAssociations, parseSacct } from "../../../api_server/managers/sacct_parse.ts";

const fixture = Deno.readTextFileSync(join(repoRoot, "tests/api_server/fixtures/tools/sacct.txt"));
const line = (id: string, name: string, workdir: string, end = "2023-02-21T15:57:23+0100") =>
  `${id}|part1|qos1|acc2|grp2|1002|usr2|1002|2023-02-21T15:48:20+0100|2023-02-21T15:49:06+0100|${end}|00:08:17|497|0:0|COMPLETED|billing=4,cpu=4,mem=1G,node=1|n1|${name}|${workdir}`;

Deno.test("sacct fixture parses into CEEMS's units", () => {
  const win = Date.parse("2024-01-01T00:00:00Z");
  const { units, skipped } = parseSacct(fixture, "slurm-0", win, win + 3_600_000);
  assertEquals(skipped, []);
  assertEquals(units.length, 12);
  const u = units.find((x) => x.uuid === "1481508")!;
  assertEquals(u.started_at, "2023-02-21T15:49:06+0100");
  assertEquals(u.started_at_ts, 1676990946000);
  assertEquals(u.allocation, { billing: 160, cpus: 16, gpus: 0, mem: 343597383680, nodes: 2 });
  assertEquals(u.total_time_seconds, {
    walltime: 497,
    alloc_cputime: 7952,
    alloc_cpumemtime: 162856960,
    alloc_gputime: 0,
    alloc_gpumemtime: 0,
  });
  assertEquals(u.tags.nodelistexp, "compute-0|compute-1|compute-2");
  const running = units.find((x) => x.uuid === "2009248")!;
  assertEquals([running.ended_at, running.ended_at_ts, running.state], ["Unknown", 0, "RUNNING"]);
  // A running job's walltime is its overlap with the window: the whole hour here.
  assertEquals(running.total_time_seconds.walltime, 3600);
});

Deno.test("sacct edge cases: steps, separators and newlines in fields, malformed lines", () => {
  const out = [
    line("100", "plain", "/home/a"),
    line("100.batch", "plain", "/home/a"),
    line("101", "name|with|pipes", "/home/b|c"),
    line("102", "multi\nline name", "/home/c"),
    "garbage line without fields",
    line("abc", "x", "/home/d"),
    line("103", "badtime", "/home/e", "yesterday"),
    "",
  ].join("\n");
  const { units, skipped } = parseSacct(out, "c", 0, Date.parse("2030-01-01T00:00:00Z"));
  assertEquals(units.map((u) => u.uuid), ["100", "101", "102"]);
  assertEquals(units[1].name, "name|with|pipes");
  assertEquals(units[1].tags.workdir, "/home/b|c");
  assertEquals(units[2].name, "multi\nline name");
  assertEquals(skipped.length, 3, JSON.stringify(skipped));
  assert(skipped.some((s) => s.reason.includes('invalid job id "abc"')));
  assert(skipped.some((s) => s.reason.includes('invalid end time "yesterday"')));
});

Deno.test("alloctres, hostlists and associations", () => {
  assertEquals(parseAllocTres("billing=2,cpu=2,mem=200M,node=1,gres/gpu:a100=2,gres/gpu=2"), {
    billing: 2,
    cpus: 2,
    gpus: 2,
    mem: 200 * 1024 * 1024,
    nodes: 1,
  });
  const { users, projects } = parseAssociations("root|\nroot|root\nacc1|\nacc1|usr1\nacc2|usr1\n");
  assertEquals([...users.get("usr1")!], ["acc1", "acc2"]);
  assertEquals([...projects.get("acc1")!], ["usr1"]);
  assert(!users.has("root"));
});
