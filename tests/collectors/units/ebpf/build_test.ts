// Building BPF objects as root (before the privilege drop) refuses an output directory another user could
// write: a planted vmlinux.h, object or link would be compiled, then loaded into the kernel.

import { join } from "node:path";
import { assertRejects } from "../../../helpers/assert.ts";
import { buildBpfObjects } from "../../../../collectors/units/ebpf/build.ts";

Deno.test("buildBpfObjects as root refuses an output directory others can write, before running any tool", async () => {
  const base = Deno.makeTempDirSync();
  try {
    const out = join(base, "bpf");
    Deno.mkdirSync(out);
    Deno.chmodSync(out, 0o777);
    Deno.writeTextFileSync(join(out, "vmlinux.h"), "/* planted */\n");
    await assertRejects(
      () => buildBpfObjects(out),
      /refusing to build BPF objects as root: .*bpf is (group-)?writable/,
    );
    // Nothing was built there.
    const left = [...Deno.readDirSync(out)].map((e) => e.name);
    if (left.join() !== "vmlinux.h") throw new Error(`built despite the refusal: ${left}`);
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});
