// Tests of the POSIX path helpers against node:path.posix, the behaviour they replace in the exporter,
// over absolute, relative, dotted, repeated-slash and trailing-slash paths.

import posix from "node:path/posix";
import { basename, dirname, isAbsolute, join, normalize } from "../../common/path.ts";
import { assertEquals } from "../helpers/assert.ts";

const paths = [
  "",
  "/",
  ".",
  "..",
  "a",
  "/a",
  "a/",
  "/a/b/",
  "//a//b",
  "/sys/class/powercap/intel-rapl:0",
  "./x/../y",
  "../../a/b",
  "/a/../../b",
  "a/./b/./",
  "/proc/1/../self/stat",
  "a//",
  "///",
];

Deno.test("normalize, dirname, basename and isAbsolute agree with node:path.posix", () => {
  for (const p of paths) {
    assertEquals(normalize(p), posix.normalize(p), `normalize ${JSON.stringify(p)}`);
    assertEquals(dirname(p), posix.dirname(p), `dirname ${JSON.stringify(p)}`);
    assertEquals(basename(p), posix.basename(p), `basename ${JSON.stringify(p)}`);
    assertEquals(isAbsolute(p), posix.isAbsolute(p), `isAbsolute ${JSON.stringify(p)}`);
  }
});

Deno.test("join agrees with node:path.posix", () => {
  const cases: string[][] = [
    [],
    [""],
    ["/sys", "class", "hwmon"],
    ["/sys/", "/class/", "hwmon/"],
    ["a", "", "b"],
    ["/a", "..", "..", "b"],
    ["rel", "../x"],
    ["/proc", "1", "cgroup"],
    [".", "."],
  ];
  for (const c of cases) assertEquals(join(...c), posix.join(...c), `join ${JSON.stringify(c)}`);
});
