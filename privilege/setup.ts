// Process-wide security set-up every subcommand calls once its features are known: the security
// flags, the capability set the enabled features need, and the SecurityManager that runs privileged work.

import type { FlagSet } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { type Capability, InlineSecurityManager, type SecurityManager } from "./security.ts";

/** What a subcommand tells the security layer at start-up. */
export interface SecuritySetupOptions {
  component: "exporter" | "api" | "lb";
  flags: FlagSet;
  logger: Logger;
  /** Each capability the enabled features need, with the flag that needs it (for log lines). */
  required: Map<Capability, string>;
  /** Paths the unprivileged user must be able to read (config files, ...). */
  readPaths: string[];
  /** Paths the unprivileged user must be able to write (data directories, ...). */
  readWritePaths: string[];
}

/** The installed security layer. */
export interface SecuritySetup {
  manager: SecurityManager;
  /** Undoes what set-up did that must not outlive the process (ACL entries). */
  close(): Promise<void>;
}

/** Declares --security.run-as-user, --security.disable-cap-awareness and --print-capabilities. */
export function addSecurityFlags(fs: FlagSet): void {
  fs.add({
    name: "security.run-as-user",
    kind: "string",
    default: "nobody",
    help: "User to switch to when started as root (a name or a uid).",
  });
  fs.add({
    name: "security.disable-cap-awareness",
    kind: "bool",
    hidden: true,
    help: "Keep the starting user and capabilities (debugging only).",
  });
  fs.add({
    name: "print-capabilities",
    kind: "bool",
    help: "Print the capabilities the given flags need, with setcap and systemd lines, and exit.",
  });
}

/** Installs the security layer. This first version keeps the process's credentials unchanged. */
export function setupSecurity(_opts: SecuritySetupOptions): Promise<SecuritySetup> {
  return Promise.resolve({ manager: new InlineSecurityManager(), close: () => Promise.resolve() });
}
