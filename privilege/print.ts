// Text of --print-capabilities: the required set for the given flags, the setcap command and the
// systemd lines that grant exactly that set, so operators do not have to guess.

import { ACCESS_POLICY, type Component } from "./capabilities.ts";
import type { Capability } from "./ops.ts";

const UNIT_NAMES: Record<Component, string> = {
  exporter: "ceems_exporter",
  api: "ceems_api_server",
  lb: "ceems_lb",
};

/** The --print-capabilities report for `component` needing `required` (capability → flags). */
export function formatCapabilities(component: Component, required: Map<Capability, string>): string {
  const caps = [...required.keys()].sort();
  const upper = caps.map((c) => c.toUpperCase());
  const lines = [`# Capabilities needed by ceems ${component} with these flags`];
  if (caps.length === 0) lines.push("capabilities: none");
  else {
    lines.push(`capabilities: ${caps.join(" ")}`);
    for (const c of caps) lines.push(`  ${c.padEnd(20)} needed by ${required.get(c)}`);
  }
  lines.push("");
  lines.push("# Started as non-root with file capabilities (permitted only, never effective):");
  lines.push(
    caps.length
      ? `setcap ${caps.join(",")}+p ${Deno.execPath()}`
      : `setcap -r ${Deno.execPath()}  # no capability needed`,
  );
  lines.push("");
  lines.push(`# systemd, [Service] section of ${UNIT_NAMES[component]}.service (User= a non-root account).`);
  lines.push("# Note: Deno's runtime threads started before ceems runs keep ambient capabilities effective;");
  lines.push("# prefer the root start below, which switches every thread itself.");
  lines.push(`AmbientCapabilities=${upper.join(" ")}`);
  lines.push(`CapabilityBoundingSet=${upper.join(" ")}`);
  lines.push("");
  lines.push("# systemd started as root (the process switches to --security.run-as-user itself):");
  const switching = ["CAP_SETUID", "CAP_SETGID", ...(ACCESS_POLICY[component] === "acl" ? ["CAP_FOWNER"] : [])];
  const rootSet = [...new Set([...upper, ...switching])].sort();
  lines.push(`CapabilityBoundingSet=${rootSet.join(" ")}`);
  return lines.join("\n") + "\n";
}
