// Runs inside the QEMU guest of scripts/qemu_ipmi/run.ts (as root, real ipmi_si + ipmi_devintf driver): reads
// DCMI power through collectors/ipmi/native.ts until the host changes the simulated BMC's power, then reports.

import { findIpmiDevice, NativeDcmiReader } from "../../collectors/ipmi/native.ts";
import { openIpmiDeviceFd } from "../../ffi/ipmi.ts";
import type { OpResult, PrivilegedOp, SecurityContext, SecurityManager } from "../../privilege/security.ts";

/** The guest runs as root: "raising" a context is a no-op, openFd opens with libc. */
class GuestSecurity implements SecurityManager {
  contexts: string[] = [];
  run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    this.contexts.push(`${context.name}:${context.caps.join("+")}`);
    return Promise.resolve(ops.map((op): OpResult => {
      if (op.kind !== "openFd") return { ok: false, error: `unsupported op ${op.kind}` };
      try {
        return { ok: true, value: openIpmiDeviceFd(op.path) };
      } catch (e) {
        return { ok: false, error: (e as Error).message };
      }
    }));
  }
}

const path = findIpmiDevice(0);
if (!path) {
  console.log("CEEMS-GUEST-RESULT " + JSON.stringify({ error: "no /dev/ipmi0" }));
  Deno.exit(1);
}
const security = new GuestSecurity();
const reader = new NativeDcmiReader(path, security);
try {
  const t0 = performance.now();
  const first = await reader.read(5000);
  const firstMs = performance.now() - t0;
  console.log("CEEMS-GUEST-READ1 " + JSON.stringify(first));
  // The host now changes the BMC's power; poll until the reading follows (at most 30 s).
  let last = first;
  let reads = 1;
  const deadline = Date.now() + 30_000;
  while (last.currentWatts === first.currentWatts && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await reader.read(5000);
    reads++;
  }
  console.log(
    "CEEMS-GUEST-RESULT " +
      JSON.stringify({ path, first, last, reads, firstMs: Math.round(firstMs), contexts: security.contexts }),
  );
} catch (e) {
  console.log("CEEMS-GUEST-RESULT " + JSON.stringify({ error: (e as Error).message }));
  Deno.exit(1);
} finally {
  reader.close();
}
