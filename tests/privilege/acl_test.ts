// Tests of ACL handling on real files, checked with getfacl/setfacl: an entry is added only where the
// run-as user has none, nobody else's effective rights move, removal undoes exactly that, and a record
// left by a dead run is repaired only where nothing changed since.

import { join } from "node:path";
import { Logger } from "../../common/log.ts";
import { addAclEntry, planAclEntries, removeAddedAcl } from "../../privilege/acl.ts";
import { AclRecord, repairLeftoverAcls } from "../../privilege/acl_record.ts";
import { assertEquals, assertMatch, assertThrows } from "../helpers/assert.ts";

const dec = new TextDecoder();
const getfacl = (p: string) =>
  dec.decode(new Deno.Command("getfacl", { args: ["-cpn", p], stderr: "null" }).outputSync().stdout);
/** getfacl with every entry's effective rights ("#effective:r--"). */
const effective = (p: string) =>
  dec.decode(new Deno.Command("getfacl", { args: ["-cpne", p], stderr: "null" }).outputSync().stdout);
function setfacl(p: string, spec: string): void {
  const r = new Deno.Command("setfacl", { args: ["-n", "-m", spec, p], stderr: "piped" }).outputSync();
  if (r.code !== 0) throw new Error(dec.decode(r.stderr));
}
const quiet = new Logger("error", "logfmt", {}, () => {});

function withFile(mode: number, fn: (f: string, dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-acltest-" });
  try {
    const f = join(dir, "f");
    Deno.writeTextFileSync(f, "x");
    Deno.chmodSync(f, mode);
    fn(f, dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("an added entry and its mask are undone exactly: ACL and mode as before", () => {
  withFile(0o640, (f) => {
    const before = getfacl(f);
    const a = addAclEntry({ path: f, uid: 65534, perm: 4 })!;
    assertMatch(getfacl(f), /^user:65534:r--$/m);
    assertMatch(getfacl(f), /^mask::r--$/m);
    assertEquals(a.maskBefore, null);
    assertEquals(removeAddedAcl(a), "removed");
    assertEquals(getfacl(f), before);
    assertEquals((Deno.statSync(f).mode ?? 0) & 0o777, 0o640);
    assertEquals(removeAddedAcl(a), "absent");
  });
});

Deno.test("an existing entry of the run-as user is never changed: enough is used as is, too little is refused", () => {
  withFile(0o600, (f) => {
    setfacl(f, "u:65534:r--,m::r--");
    const before = getfacl(f);
    assertEquals(addAclEntry({ path: f, uid: 65534, perm: 4 }), undefined);
    assertThrows(() => addAclEntry({ path: f, uid: 65534, perm: 6 }), new RegExp("changes no existing ACL entry"));
    assertEquals(getfacl(f), before);
  });
});

Deno.test("the mask is never widened when that would change someone else's effective rights", () => {
  withFile(0o600, (f) => {
    // The operator's group entry is held at mask::--- on purpose.
    setfacl(f, "g:50:rw-,m::---");
    const before = effective(f);
    assertThrows(() => addAclEntry({ path: f, uid: 65534, perm: 4 }), new RegExp("group:50:rw-"));
    assertEquals(effective(f), before);
  });
  withFile(0o600, (f) => {
    // Widening r-- to rw- moves nobody (the group entry has no w): allowed, and undone on removal.
    setfacl(f, "g:50:r--,m::r--");
    const before = getfacl(f);
    const a = addAclEntry({ path: f, uid: 65534, perm: 6 })!;
    assertMatch(effective(f), /^group:50:r--\s+#effective:r--$/m);
    assertMatch(before, /^group:50:r--$/m);
    assertMatch(getfacl(f), /^mask::rw-$/m);
    assertEquals(removeAddedAcl(a), "removed");
    assertEquals(getfacl(f), before);
  });
});

Deno.test("removal takes only what was added: others' entries stay, a changed entry stays", () => {
  withFile(0o600, (f) => {
    const a = addAclEntry({ path: f, uid: 65534, perm: 4 })!;
    setfacl(f, "u:4242:r--"); // the operator adds an entry meanwhile
    assertEquals(removeAddedAcl(a), "removed");
    assertMatch(getfacl(f), /^user:4242:r--$/m);
    assertEquals(getfacl(f).includes("65534"), false);
    const b = addAclEntry({ path: f, uid: 65534, perm: 4 })!;
    setfacl(f, "u:65534:rw-"); // the operator changes ours
    assertEquals(removeAddedAcl(b), "changed");
    assertMatch(getfacl(f), /^user:65534:rw-\s/m);
  });
});

Deno.test("a dead run's record: unchanged entries removed, changed paths left, record deleted; live runs kept", () => {
  const state = Deno.makeTempDirSync({ prefix: "ceems-aclstate-" });
  try {
    withFile(0o600, (f, dir) => {
      const g = join(dir, "g");
      Deno.writeTextFileSync(g, "y");
      const before = getfacl(f);
      const dead = new AclRecord(state, 999_999_999); // no such process
      dead.add(addAclEntry({ path: f, uid: 65534, perm: 4 })!);
      dead.add(addAclEntry({ path: g, uid: 65534, perm: 4 })!);
      const live = new AclRecord(state); // this process: its entries stay
      live.add(addAclEntry({ path: dir, uid: 65534, perm: 1 })!);
      Deno.chmodSync(g, 0o640); // g changed after the entry was added (its ctime moved)
      assertEquals(repairLeftoverAcls(quiet, state), 1);
      assertEquals(getfacl(f), before);
      assertMatch(getfacl(g), /^user:65534:r--$/m);
      assertMatch(getfacl(dir), /^user:65534:--x$/m);
      assertEquals([...Deno.readDirSync(state)].map((e) => e.name), [`acl-${Deno.pid}.json`]);
      assertEquals((Deno.statSync(join(state, `acl-${Deno.pid}.json`)).mode ?? 0) & 0o777, 0o600);
      removeAddedAcl(live.entries[0]);
    });
  } finally {
    Deno.removeSync(state, { recursive: true });
  }
});

Deno.test("a record directory anyone else can write is not trusted", () => {
  const state = Deno.makeTempDirSync({ prefix: "ceems-aclstate-" });
  try {
    Deno.chmodSync(state, 0o777);
    assertThrows(() => new AclRecord(state), new RegExp("only root can write"));
    assertThrows(() => repairLeftoverAcls(quiet, state), new RegExp("only root can write"));
  } finally {
    Deno.removeSync(state, { recursive: true });
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
