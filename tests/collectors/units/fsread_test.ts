// Tests of the cgroup file readers: values and "max", keyed files, CPU lists, PSI lines and escapes,
// each rejecting garbage instead of returning zeros.

import {
  CgroupDir,
  cpuListCount,
  parseCgroupValue,
  parseFlatKeyed,
  parsePsiFullSeconds,
  unescapeSystemd,
} from "../../../collectors/units/fsread.ts";
import { parseRdmaCurrent } from "../../../collectors/units/stats.ts";
import { assertEquals, assertThrows } from "../../helpers/assert.ts";

Deno.test("cgroup file parsers accept real content and reject garbage", () => {
  assertEquals(parseCgroupValue("4294967296\n", "p"), 4294967296);
  assertEquals(parseCgroupValue("max\n", "p"), Infinity);
  assertThrows(() => parseCgroupValue("12ab", "p"), /malformed value/);
  assertEquals(parseFlatKeyed("anon 1\nfile 2\n", "p"), new Map([["anon", 1], ["file", 2]]));
  assertThrows(() => parseFlatKeyed("anon\n", "p"), /malformed line/);
  assertEquals(cpuListCount("0-3,8,10-11\n"), 7);
  assertEquals(cpuListCount("1,41"), 2);
  assertEquals(cpuListCount(""), 0);
  assertThrows(() => cpuListCount("a-b"), /malformed cpu list/);
  assertEquals(parsePsiFullSeconds("some avg10=0 total=5\nfull avg10=0.00 avg60=0 avg300=0 total=2500000\n", "p"), 2.5);
  assertEquals(parsePsiFullSeconds("", "p"), 0);
  assertThrows(() => parsePsiFullSeconds("garbage", "p"), /malformed pressure/);
  assertEquals(unescapeSystemd("machine-qemu\\x2d2\\x2dinstance"), "machine-qemu-2-instance");
  assertEquals(
    parseRdmaCurrent("hfi1_0 hca_handle=479 hca_object=340\nmlx5_0 hca_handle=max hca_object=max\n", "p"),
    // `max` is MaxUint32, as CEEMS's cgroup library reads it.
    new Map([["hfi1_0", 479], ["mlx5_0", 4294967295]]),
  );
  assertThrows(() => parseRdmaCurrent("hfi1_0 hca_handle=x\n", "p"), /malformed/);
});

Deno.test("parseFlatKeyed: the wanted-keys fast path gives what the line-by-line parse gives", () => {
  const slow = (text: string, wanted: string[]) => {
    // Reference: all keys parsed line by line, then filtered.
    const all = parseFlatKeyed(text, "p");
    return new Map([...all].filter(([k]) => wanted.includes(k)));
  };
  const cases = [
    "anon 4098592768\nfile 0\nkernel 12787712\n",
    "file 7\nanon 3", // first line, no trailing newline
    "anon 1\nfile 2\nanon 5\n", // a repeated key: the last one wins
    "kernel_anon 9\nanon_thp 8\n", // keys that merely contain a wanted key
    "",
    "anon  1\n\nfile 2\n", // irregular spacing and blank lines take the line-by-line path
  ];
  for (const text of cases) {
    assertEquals(parseFlatKeyed(text, "p", ["anon", "file"]), slow(text, ["anon", "file"]), JSON.stringify(text));
  }
  assertThrows(() => parseFlatKeyed("anon 1\nfile x\n", "p", ["anon"]), /malformed line/);
  assertThrows(() => parseFlatKeyed("anon 1\ngarbage\n", "p", ["anon"]), /malformed line/);
});

Deno.test("CgroupDir reads a cgroup's files like the path-based readers, naming the file in errors", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-cgroupdir-" });
  try {
    Deno.writeTextFileSync(`${dir}/memory.current`, "4111491072\n");
    Deno.writeTextFileSync(`${dir}/memory.max`, "max\n");
    Deno.writeTextFileSync(`${dir}/memory.stat`, "anon 5\nfile 6\nkernel 7\n");
    Deno.writeTextFileSync(`${dir}/cpu.stat`, "usage_usec 1\n");
    Deno.writeTextFileSync(`${dir}/pids.current`, "12ab\n");
    const d = new CgroupDir(dir);
    assertEquals(d.value("memory.current"), 4111491072);
    assertEquals(d.value("memory.max"), Infinity);
    assertEquals(d.value("absent"), undefined);
    assertEquals(d.optional("absent"), undefined);
    assertEquals(d.keyed("memory.stat", ["anon", "file"]), new Map([["anon", 5], ["file", 6]]));
    assertEquals(d.keyed("absent", ["anon"]), undefined);
    assertThrows(() => d.keyed("cpu.stat", ["user_usec"]), new RegExp(`${dir}/cpu.stat: missing key user_usec`));
    assertThrows(() => d.value("pids.current"), new RegExp(`${dir}/pids.current: malformed value`));
    assertThrows(() => d.optional(""), /EISDIR/); // `${dir}/` is the directory itself
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
