// The components and how their run-as user reaches what it needs after a root start. The capabilities
// themselves are declared by the features (privilege/declare.ts) and gathered per component.

import type { Capability } from "./ops.ts";

/** The three long-running subcommands. */
export type Component = "exporter" | "api" | "lb";

/** The capability kept when ACL entries must be removed at shutdown. */
export const ACL_REMOVAL_CAP: Capability = "cap_fowner";

/**
 * How each component's run-as user reaches the paths it needs after a root start: "acl" adds POSIX ACL
 * entries (removed at shutdown, which keeps {@link ACL_REMOVAL_CAP}); "check" adds nothing and refuses to
 * start when a path is unreadable (the load balancer: no capability at all, file access from the packaging).
 */
export const ACCESS_POLICY: Record<Component, "acl" | "check"> = { exporter: "acl", api: "acl", lb: "check" };
