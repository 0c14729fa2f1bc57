// One of each in the product code: every command started by privilege/exec.ts, libc bound once (ffi/libc.ts),
// one timeout error type (common/timeout.ts), and every dlopen in ffi/.

import { join, relative } from "node:path";
import { assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

const PRODUCT = ["main.ts", "collectors", "common", "privilege", "ffi", "api_server", "lb", "tool"];

function* files(path: string): Generator<string> {
  const st = Deno.statSync(path);
  if (st.isFile) {
    if (path.endsWith(".ts")) yield path;
    return;
  }
  for (const e of Deno.readDirSync(path)) yield* files(join(path, e.name));
}

/** Product files whose code (comments stripped) matches `re`. */
function using(re: RegExp): string[] {
  const out: string[] = [];
  for (const p of PRODUCT) {
    for (const f of files(join(repoRoot, p))) {
      const code = Deno.readTextFileSync(f).replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      if (re.test(code)) out.push(relative(repoRoot, f));
    }
  }
  return out.sort();
}

Deno.test("every command is started by the one exec helper", () => {
  assertEquals(using(/new Deno\.Command\(|node:child_process/), ["privilege/exec.ts"]);
});

Deno.test("libc is bound once; every dlopen is in ffi/", () => {
  // ffi/ipmi.ts binds the IPMI device's ioctl/poll through a library tests replace with a fake driver.
  assertEquals(using(/Deno\.dlopen\("libc\.so\.6"/), ["ffi/libc.ts"]);
  assertEquals(using(/Deno\.dlopen\(/).filter((f) => !f.startsWith("ffi/")), []);
});

Deno.test("one timeout error type", () => {
  assertEquals(using(/class \w*Timeout\w* extends/), ["common/timeout.ts"]);
  assertEquals(using(/timed out/), ["common/timeout.ts"]);
});
