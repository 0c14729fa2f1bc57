// replaceableBy as root-run tools are judged: the target and its directories, and also the directory of every
// symbolic link on the way (a link there can be repointed), with a sticky directory protecting root's entries.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { NOT_ROOT, replaceableBy } from "../../privilege/writable.ts";

Deno.test({
  name: "replaceableBy: a link to a safe tool, kept in a directory others can write, is replaceable",
  fn() {
    const base = Deno.makeTempDirSync();
    Deno.chmodSync(base, 0o755);
    try {
      const safe = join(base, "safe");
      const open = join(base, "open");
      const sticky = join(base, "sticky");
      Deno.mkdirSync(safe, { mode: 0o755 });
      Deno.mkdirSync(open);
      Deno.chmodSync(open, 0o777);
      Deno.mkdirSync(sticky);
      Deno.chmodSync(sticky, 0o1777);
      const tool = join(safe, "tool");
      Deno.writeTextFileSync(tool, "#!/bin/sh\n", { mode: 0o755 });
      assertEquals(replaceableBy(tool, NOT_ROOT), undefined);

      // The target is safe, but the link's directory is not: repointing the link changes what runs.
      Deno.symlinkSync(tool, join(open, "tool"));
      assertMatch(replaceableBy(join(open, "tool"), NOT_ROOT) ?? "", /open is (group-)?writable .*\(it holds the link/);
      // A link to that link, from a safe directory: the hop through `open` still counts.
      Deno.symlinkSync(join(open, "tool"), join(safe, "via"));
      assert(replaceableBy(join(safe, "via"), NOT_ROOT), "a chain through a writable directory");

      // In a sticky directory, a root-owned link cannot be replaced by others; one owned by another user can.
      Deno.symlinkSync(tool, join(sticky, "root-link"));
      assertEquals(replaceableBy(join(sticky, "root-link"), NOT_ROOT), undefined);
      Deno.symlinkSync(tool, join(sticky, "user-link"));
      new Deno.Command("chown", { args: ["-h", "65534", join(sticky, "user-link")] }).outputSync();
      assert(replaceableBy(join(sticky, "user-link"), NOT_ROOT), "a link another user owns in a sticky directory");
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  },
});
