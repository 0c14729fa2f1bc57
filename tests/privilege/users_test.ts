// Tests of --security.run-as-user resolution: by name, by numeric uid, and a clear error otherwise.

import { parsePasswd, resolveUser } from "../../privilege/users.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

Deno.test("parsePasswd skips comments and malformed lines", () => {
  const users = parsePasswd("# c\nroot:x:0:0:root:/root:/bin/bash\nbad line\nnobody:x:65534:65534:n:/nonexistent:/x\n");
  assertEquals(users.map((u) => [u.name, u.uid, u.gid, u.home]), [
    ["root", 0, 0, "/root"],
    ["nobody", 65534, 65534, "/nonexistent"],
  ]);
});

Deno.test("resolveUser takes a name, then a uid, and names an unknown value", () => {
  const p = Deno.makeTempFileSync();
  try {
    Deno.writeTextFileSync(p, "slurm:x:64030:64030::/var/lib/slurm:/bin/false\n123:x:500:500::/h:/x\n");
    assertEquals(resolveUser("slurm", p).uid, 64030);
    assertEquals(resolveUser("64030", p).name, "slurm");
    assertEquals(resolveUser("123", p).uid, 500); // a name that looks like a number wins, as in CEEMS
    assertThrows(() => resolveUser("ghost", p), /unknown user "ghost"/);
    assertThrows(() => resolveUser("777", p), /unknown user "777"/);
  } finally {
    Deno.removeSync(p);
  }
  assertEquals(resolveUser("nobody").uid, 65534);
});
