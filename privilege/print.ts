// Text of --print-capabilities: the required set for the given flags and the systemd lines of a root start;
// file capabilities only ever for the compiled binary, never for the deno interpreter running this program.

import { ACCESS_POLICY, type Component } from "./capabilities.ts";
import type { Capability } from "./ops.ts";

const UNIT_NAMES: Record<Component, string> = {
  exporter: "ceems_exporter",
  api: "ceems_api_server",
  lb: "ceems_lb",
};

/** How this program runs: `deno run` (an interpreter anyone may use) or a compiled binary at `path`. */
export interface Runtime {
  standalone: boolean;
  path: string;
  /** Mode bits of `path`. */
  mode: number;
}

/** The running program's runtime. */
export function currentRuntime(): Runtime {
  let mode = 0;
  try {
    mode = Deno.statSync(Deno.execPath()).mode ?? 0;
  } catch {
    // unknown
  }
  return { standalone: Deno.build.standalone, path: Deno.execPath(), mode };
}

/** The capabilities a root start keeps in the bounding set while it switches user (then trimmed away). */
export function rootStartBoundingSet(component: Component, required: Iterable<Capability>): string[] {
  const switching = [
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    ...(ACCESS_POLICY[component] === "acl" ? ["CAP_FOWNER"] : []),
  ];
  return [...new Set([...[...required].map((c) => c.toUpperCase()), ...switching])].sort();
}

/** The --print-capabilities report for `component` needing `required` (capability → flags). */
export function formatCapabilities(
  component: Component,
  required: Map<Capability, string>,
  runtime: Runtime = currentRuntime(),
): string {
  const caps = [...required.keys()].sort();
  const lines = [`# Capabilities needed by ceems ${component} with these flags`];
  if (caps.length === 0) lines.push("capabilities: none");
  else {
    lines.push(`capabilities: ${caps.join(" ")}`);
    for (const c of caps) lines.push(`  ${c.padEnd(20)} needed by ${required.get(c)}`);
  }
  lines.push("");
  lines.push("# Start as root (recommended): ceems switches every thread to --security.run-as-user itself, trims the");
  lines.push("# bounding set to the set above, sets no_new_privs and raises a capability only on a throwaway thread.");
  lines.push(`# systemd, [Service] section of ${UNIT_NAMES[component]}.service (no User=):`);
  lines.push(`CapabilityBoundingSet=${rootStartBoundingSet(component, caps).join(" ")}`);
  lines.push("AmbientCapabilities=");
  lines.push("NoNewPrivileges=yes");
  if (ACCESS_POLICY[component] === "acl") {
    lines.push("RuntimeDirectory=ceems");
    lines.push("RuntimeDirectoryPreserve=yes");
  }
  if (!runtime.standalone) lines.push("Environment=DENO_DIR=/dev/null");
  lines.push("");
  if (!runtime.standalone) {
    lines.push(`# File capabilities: none under \`deno run\`. On the interpreter (${runtime.path}) they would reach`);
    lines.push(
      "# every user who can run it. They belong only on the compiled binary (deno task build), which must then",
    );
    lines.push("# not be executable by others, e.g.:");
    lines.push(
      `#   chown root:ceems dist/ceems && chmod 0750 dist/ceems && setcap ${caps.join(",") || "-r"}${
        caps.length ? "+p" : ""
      } dist/ceems`,
    );
    return lines.join("\n") + "\n";
  }
  lines.push("# Or non-root with file capabilities on this binary (permitted only, never effective); only the run-as");
  lines.push("# user's group may execute it:");
  lines.push(`chown root:ceems ${runtime.path} && chmod 0750 ${runtime.path}`);
  lines.push(
    caps.length ? `setcap ${caps.join(",")}+p ${runtime.path}` : `setcap -r ${runtime.path}  # no capability needed`,
  );
  if (runtime.mode & 0o001) {
    lines.push(
      `# WARNING: ${runtime.path} is executable by others (mode ${(runtime.mode & 0o7777).toString(8)}): ` +
        "with file capabilities every user could use them",
    );
  }
  return lines.join("\n") + "\n";
}
