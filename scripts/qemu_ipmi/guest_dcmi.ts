// Runs inside the QEMU guest of scripts/qemu_ipmi/run.ts (as root, real ipmi_si + ipmi_devintf driver): scrapes
// the ipmi_dcmi collector (no tool in the guest: native mode) until the host changes the BMC's power, then reports.

import type { Labels, MetricSink } from "../../collectors/framework/collector.ts";
import { findIpmiDevice } from "../../collectors/ipmi/native.ts";
import { createIpmiDcmiCollector, ipmiDcmiOptions, registerIpmiDcmiFlags } from "../../collectors/ipmi_dcmi.ts";
import { FlagSet } from "../../common/flags.ts";
import { Logger } from "../../common/log.ts";
import { openIpmiDeviceFd } from "../../ffi/ipmi.ts";
import {
  InlineSecurityManager,
  type OpResult,
  type PrivilegedOp,
  type SecurityContext,
} from "../../privilege/security.ts";

/** The guest runs as root: "raising" a context is a no-op, openFd opens with libc. */
class GuestSecurity extends InlineSecurityManager {
  contexts: string[] = [];
  override run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
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
/** The readings of one scrape, as the collector emitted them. */
interface Reading {
  currentWatts?: number;
  minWatts?: number;
  maxWatts?: number;
  avgWatts?: number;
  /** The collector emits only when the BMC reports the measurement active. */
  active: boolean;
  labels?: Labels;
}

async function scrape(): Promise<Reading> {
  const out: Reading = { active: false };
  const sink: MetricSink = {
    gauge(name, _help, labels, value) {
      const kind = /^ceems_ipmi_dcmi_(current|min|max|avg)_watts$/.exec(name)?.[1];
      if (!kind) return;
      out[`${kind}Watts` as "currentWatts"] = value;
      out.labels = labels;
      out.active = true;
    },
    counter() {},
  };
  await collector.update(sink);
  return out;
}

const security = new GuestSecurity();
const flags = new FlagSet("guest", "");
registerIpmiDcmiFlags(flags);
flags.parse([]); // no tool on the guest's PATH: the collector chooses native mode by itself, as CEEMS does
const logs: string[] = [];
const collector = createIpmiDcmiCollector({
  logger: new Logger("info", "logfmt", {}, (l) => logs.push(l)),
  paths: { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" },
  hostname: "guest",
  security,
}, ipmiDcmiOptions(flags));
try {
  const t0 = performance.now();
  const first = await scrape();
  const firstMs = performance.now() - t0;
  console.log("CEEMS-GUEST-READ1 " + JSON.stringify(first));
  // The host now changes the BMC's power; poll until the reading follows (at most 30 s).
  let last = first;
  let reads = 1;
  const deadline = Date.now() + 30_000;
  while (last.currentWatts === first.currentWatts && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await scrape();
    reads++;
  }
  const mode = logs.find((l) => l.includes("using native IPMI"));
  console.log(
    "CEEMS-GUEST-RESULT " +
      JSON.stringify({ path, mode, first, last, reads, firstMs: Math.round(firstMs), contexts: security.contexts }),
  );
} catch (e) {
  console.log("CEEMS-GUEST-RESULT " + JSON.stringify({ error: (e as Error).message, logs }));
  Deno.exit(1);
} finally {
  collector.stop();
}
