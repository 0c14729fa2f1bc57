// `ceems api` flags: --web.max-requests means CEEMS's per-client rate per minute for the API (default 0),
// while the exporter keeps its own meaning of the shared flag.

import { assert, assertEquals } from "../helpers/assert.ts";
import { runCeems } from "../helpers/process.ts";

Deno.test("api help explains --web.max-requests as a per-client rate; exporter keeps its parallel limit", async () => {
  const line = (out: string) => out.split("\n").find((l) => l.includes("--web.max-requests")) ?? "";
  const api = await runCeems(["api", "--help"]);
  assertEquals(api.code, 0, api.stderr);
  const a = line(api.stdout + api.stderr);
  assert(/per minute per client/.test(a) && a.includes("(default: 0)"), a);
  const exp = await runCeems(["exporter", "--help"]);
  const e = line(exp.stdout + exp.stderr);
  assert(/parallel requests/.test(e) && e.includes("(default: 40)"), e);
});
