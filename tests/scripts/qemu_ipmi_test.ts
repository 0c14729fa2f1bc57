// Native IPMI on a real kernel driver: runs scripts/qemu_ipmi/run.ts, which boots a Debian kernel in QEMU
// with a KCS BMC backed by ipmi_sim + our DCMI plugin and scrapes the ipmi_dcmi collector (native mode) there.

import { assert, assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

Deno.test({
  name: "guest reads DCMI power through /dev/ipmi0 (ipmi_si + ipmi_devintf) and follows a change of the BMC's power",
  // Needs root (apt-get for qemu/kernel packages on first run); CI runs as root.
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${repoRoot}scripts/qemu_ipmi/run.ts`, "--timeout-s=420"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    const m = /PASS in [\d.]+ s: (\{.*\})$/m.exec(text);
    assert(m, text);
    const r = JSON.parse(m[1]);
    assertEquals(r.path, "/dev/ipmi0");
    // The ipmi_dcmi collector itself, with no tool in the guest, chose native mode on /dev/ipmi0.
    assert(/using native IPMI.*device=\/dev\/ipmi0/.test(r.mode), r.mode);
    assertEquals(r.first.labels, { hostname: "guest" });
    assertEquals([r.first.currentWatts, r.first.active], [312, true]);
    assertEquals([r.last.currentWatts, r.last.minWatts, r.last.maxWatts], [405, 312, 405]);
    assertEquals(r.contexts, ["ipmi_dcmi_native:cap_dac_override"]);
  },
});
