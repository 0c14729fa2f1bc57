// Tests of the structured logger: logfmt quoting, JSON output, level filtering and child attributes.

import { Logger } from "../../common/log.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";

Deno.test("logger: logfmt quotes values with spaces and filters by level", () => {
  const lines: string[] = [];
  const log = new Logger("info", "logfmt", {}, (l) => lines.push(l)).with({ collector: "cpu" });
  log.debug("hidden");
  log.warn("disk is slow", { path: "/a b", n: 3 });
  assertEquals(lines.length, 1);
  assertMatch(lines[0], /^time=\S+ level=warn msg="disk is slow" collector=cpu path="\/a b" n=3$/);
});

Deno.test("logger: json format renders errors as their message", () => {
  const lines: string[] = [];
  const log = new Logger("debug", "json", {}, (l) => lines.push(l));
  log.error("boom", { err: new Error("bad thing") });
  const rec = JSON.parse(lines[0]);
  assertEquals(rec.level, "error");
  assertEquals(rec.msg, "boom");
  assertEquals(rec.err, "bad thing");
});
