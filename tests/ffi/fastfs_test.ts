// Tests of the libc small-file and directory reader against Deno's own APIs on real files: contents of
// every size (including larger than the buffer and multi-byte text), listings, and errors.

import { FastFs, fastFs } from "../../ffi/fastfs.ts";
import { libc } from "../../ffi/libc.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

function assertNotFound(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    assert(e instanceof Deno.errors.NotFound, String(e));
    return;
  }
  throw new Error("expected NotFound");
}

function withDir(fn: (dir: string, fs: FastFs) => void) {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-fastfs-" });
  try {
    const fs = fastFs();
    assert(fs, "libc must load on Linux");
    fn(dir, fs);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("fastfs: readText returns exactly what Deno reads, for empty, small, buffer-sized and larger files", () => {
  withDir((dir) => {
    const small = new FastFs(libc(), 16);
    const texts = ["", "4\n", "x".repeat(16), "y".repeat(17), "é€😀".repeat(40), "line\n".repeat(10_000)];
    texts.forEach((t, i) => {
      Deno.writeTextFileSync(`${dir}/f${i}`, t);
      assertEquals(fastFs()!.readText(`${dir}/f${i}`), t);
      // A 16-byte buffer splits multi-byte characters across reads.
      assertEquals(small.readText(`${dir}/f${i}`), t);
    });
    // procfs files report size 0 and are read until EOF.
    assert(fastFs()!.readText("/proc/self/status").includes("\nVmRSS:"));
  });
});

Deno.test("fastfs: missing paths throw NotFound, other errors name the errno", () => {
  withDir((dir, fs) => {
    assertNotFound(() => fs.readText(`${dir}/absent`));
    assertNotFound(() => fs.readText(`${dir}/absent/deeper`));
    assertNotFound(() => fs.readDir(`${dir}/absent`));
    assertThrows(() => fs.readText(dir), /EISDIR/);
    Deno.writeTextFileSync(`${dir}/file`, "x");
    assertNotFound(() => fs.readSubdirs(`${dir}/file`)); // ENOTDIR
  });
});

Deno.test("fastfs: listings equal Deno.readDirSync, with directories flagged and symlinks not followed", () => {
  withDir((dir, fs) => {
    for (let i = 0; i < 600; i++) Deno.mkdirSync(`${dir}/job_${i}_${"x".repeat(40)}`); // > one getdents buffer
    Deno.writeTextFileSync(`${dir}/cgroup.procs`, "");
    Deno.mkdirSync(`${dir}/ünïcode`);
    Deno.symlinkSync(`${dir}/job_0_${"x".repeat(40)}`, `${dir}/link`);
    const expected = [...Deno.readDirSync(dir)].map((e) => [e.name, e.isDirectory] as const).sort();
    assertEquals(fs.readDir(dir).map((e) => [e.name, e.isDirectory] as const).sort(), expected);
    assertEquals(fs.readSubdirs(dir).sort(), expected.filter(([, d]) => d).map(([n]) => n).sort());
    assertEquals(fs.readSubdirs(`${dir}/ünïcode`), []);
  });
});

Deno.test("fastfs: a long path is refused rather than truncated", () => {
  withDir((dir, fs) => {
    assertThrows(() => fs.readText(`${dir}/${"a/".repeat(3000)}`), /path too long/);
  });
});
