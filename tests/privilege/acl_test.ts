// Tests of the ACL planner and the xattr codec, checked against the real getfacl: entries appear,
// the mask follows setfacl's rule, removal restores the original ACL and mode.

import { join } from "node:path";
import { addAclEntry, planAclEntries, removeAclEntry } from "../../privilege/acl.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";

const getfacl = (p: string) =>
  new TextDecoder().decode(new Deno.Command("getfacl", { args: ["-cpn", p], stderr: "null" }).outputSync().stdout);

Deno.test("addAclEntry/removeAclEntry round-trip on a real file, verified with getfacl", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-acltest-" });
  try {
    const f = join(dir, "f");
    Deno.writeTextFileSync(f, "x");
    Deno.chmodSync(f, 0o640);
    const before = getfacl(f);
    addAclEntry({ path: f, uid: 65534, perm: 4 });
    assertMatch(getfacl(f), /^user:65534:r--$/m);
    assertMatch(getfacl(f), /^mask::r--$/m);
    addAclEntry({ path: f, uid: 4242, perm: 6 });
    assertMatch(getfacl(f), /^mask::rw-$/m);
    removeAclEntry(f, 65534);
    assertEquals(getfacl(f).includes("65534"), false);
    assertMatch(getfacl(f), /^user:4242:rw-$/m);
    removeAclEntry(f, 4242);
    assertEquals(getfacl(f), before);
    assertEquals((Deno.statSync(f).mode ?? 0) & 0o777, 0o640);
    removeAclEntry(f, 4242); // absent: no-op
    assertEquals(getfacl(f), before);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("planAclEntries asks for r on files, r-x/rwx on directories, x on ancestors, nothing already granted", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-acltest-" }); // 0700
  try {
    const f = join(dir, "cfg.yml");
    Deno.writeTextFileSync(f, "x");
    Deno.chmodSync(f, 0o600);
    const data = join(dir, "data");
    Deno.mkdirSync(data, { mode: 0o700 });
    const open = join(dir, "open.yml");
    Deno.writeTextFileSync(open, "x");
    Deno.chmodSync(open, 0o644);
    const plan = planAclEntries({ uid: 65534, gid: 65534 }, [f, open, join(dir, "missing")], [data]);
    assertEquals(
      plan.sort((a, b) => a.path.localeCompare(b.path)),
      [
        { path: dir, uid: 65534, perm: 1 },
        { path: f, uid: 65534, perm: 4 },
        { path: data, uid: 65534, perm: 7 },
      ].sort((a, b) => a.path.localeCompare(b.path)),
    );
    // The owner needs nothing.
    Deno.chownSync(f, 65534, 65534);
    assertEquals(planAclEntries({ uid: 65534, gid: 65534 }, [f], []).map((e) => e.path), [dir]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
