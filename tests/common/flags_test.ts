// Tests of the kingpin-compatible flag parser: value forms, booleans and negation, repeatable
// flags, deprecated aliases, environment defaults and the errors that name the flag.

import { FlagError, FlagSet, parseDuration } from "../../common/flags.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

function sample(): FlagSet {
  const fs = new FlagSet("t", "test");
  fs.add({ name: "web.listen-address", kind: "strings", default: [":9010"], help: "" });
  fs.add({ name: "collector.cpu", kind: "bool", default: true, help: "" });
  fs.add({ name: "web.max-requests", kind: "int", default: 40, help: "" });
  fs.add({ name: "log.level", kind: "enum", choices: ["debug", "info"], default: "info", help: "" });
  fs.add({ name: "timeout", kind: "duration", default: 10_000, help: "" });
  fs.add({ name: "web.config.file", kind: "string", default: "", envar: "WEB_CFG", help: "" });
  fs.add({ name: "collector.slurm.psi-metrics", kind: "bool", help: "" });
  fs.alias("collector.slurm.psi.metrics", "collector.slurm.psi-metrics");
  return fs;
}

Deno.test("flags: both value forms, negated booleans and repeatable flags", () => {
  const fs = sample();
  fs.parse(["--web.listen-address=:1", "--web.listen-address", ":2", "--no-collector.cpu", "--web.max-requests=3"]);
  assertEquals(fs.strings("web.listen-address"), [":1", ":2"]);
  assertEquals(fs.bool("collector.cpu"), false);
  assertEquals(fs.isExplicit("collector.cpu"), true);
  assertEquals(fs.number("web.max-requests"), 3);
});

Deno.test("flags: defaults apply when not given", () => {
  const fs = sample();
  fs.parse([]);
  assertEquals(fs.strings("web.listen-address"), [":9010"]);
  assertEquals(fs.bool("collector.cpu"), true);
  assertEquals(fs.isExplicit("collector.cpu"), false);
  assertEquals(fs.string("log.level"), "info");
});

Deno.test("flags: environment variable supplies a default but the command line wins", () => {
  const a = sample();
  a.parse([], { WEB_CFG: "/etc/x.yml" });
  assertEquals(a.string("web.config.file"), "/etc/x.yml");
  const b = sample();
  b.parse(["--web.config.file=/y.yml"], { WEB_CFG: "/etc/x.yml" });
  assertEquals(b.string("web.config.file"), "/y.yml");
});

Deno.test("flags: a deprecated alias sets the target and records a warning", () => {
  const fs = sample();
  fs.parse(["--collector.slurm.psi.metrics"]);
  assertEquals(fs.bool("collector.slurm.psi-metrics"), true);
  assertEquals(fs.warnings.length, 1);
  assertEquals(/deprecated.*--collector\.slurm\.psi-metrics/.test(fs.warnings[0]), true);
});

Deno.test("flags: errors name the offending flag", () => {
  const cases: [string[], RegExp][] = [
    [["--nope"], /unknown long flag '--nope'/],
    [["--web.max-requests=abc"], /--web\.max-requests.*integer/],
    [["--log.level=loud"], /--log\.level.*one of debug, info/],
    [["--web.listen-address"], /expected argument for flag '--web\.listen-address'/],
    [["--collector.cpu=maybe"], /invalid boolean value 'maybe' for flag '--collector\.cpu'/],
    [["--timeout=ten"], /--timeout.*duration/],
  ];
  for (const [argv, re] of cases) {
    const fs = sample();
    let err: unknown;
    try {
      fs.parse(argv);
    } catch (e) {
      err = e;
    }
    assertEquals(err instanceof FlagError, true, `no FlagError for ${argv}`);
    assertEquals(re.test((err as Error).message), true, `${(err as Error).message} !~ ${re}`);
  }
});

Deno.test("flags: help lists every visible flag with its default and hides hidden ones", () => {
  const fs = sample();
  fs.add({ name: "secret", kind: "bool", hidden: true, help: "hidden" });
  const help = fs.help();
  assertEquals(help.includes("--web.max-requests=INT"), true);
  assertEquals(help.includes("(default: 40)"), true);
  assertEquals(help.includes("--[no-]collector.cpu"), true);
  assertEquals(help.includes("secret"), false);
});

Deno.test("parseDuration understands Go-style durations", () => {
  assertEquals(parseDuration("10s"), 10_000);
  assertEquals(parseDuration("1m30s"), 90_000);
  assertEquals(parseDuration("500ms"), 500);
  assertEquals(parseDuration("2h"), 7_200_000);
  assertThrows(() => parseDuration("10"), /invalid duration/);
  assertThrows(() => parseDuration("s10"), /invalid duration/);
});
