// What a feature declares about its privileges, once, next to the code that uses them: its security
// contexts (capabilities, why, what runs in them), the paths it reads or loads code from, its commands.

import type { Capability, PrivilegedOp } from "./ops.ts";

/** Something that runs in a context: a privileged operation, or a command run as root. */
export type ContextUse = PrivilegedOp["kind"] | "exec-root";

/** A security context as its feature declares it. */
export interface DeclaredContext {
  /** Name used in log lines and by the code that runs in it. */
  name: string;
  /** Capabilities raised for it (for an exec-root context: the most a root child holds). */
  caps: Capability[];
  /** The flag (or config key) that needs it, as log lines and --print-capabilities name it. */
  flag: string;
  /** Why it is needed (documentation and --print-capabilities). */
  reason: string;
  /** What runs in it. */
  uses: ContextUse[];
}

/** A command a feature runs, resolved at start-up. */
export interface DeclaredCommand {
  /** The flag naming it (or the feature's flag when it is found by name). */
  flag: string;
  /** Absolute path (resolved at start-up) or the bare name looked up in the system directories. */
  path: string;
  /** Run as root (uid/gid 0) through an exec-root context, or as the process without capabilities. */
  asRoot: boolean;
}

/** What a feature needs with its options: the declarations in force. */
export interface SecurityNeeds {
  contexts?: DeclaredContext[];
  /** Files or directories the run-as user must read after the drop (ACL entries when absent). */
  readPaths?: string[];
  /** Files or directories code is loaded from after the drop: never replaceable by the run-as user. */
  loadPaths?: string[];
  commands?: DeclaredCommand[];
}

/** Declarations of one feature as a function of its typed options. */
export type SecurityDeclaration<O> = (opts: O) => SecurityNeeds;

/** The context that kills what a root command left running (privilege/security.ts runs it). */
export function sweepContext(flag: string): DeclaredContext {
  return {
    name: "exec_sweep",
    caps: ["cap_kill"],
    flag,
    reason: "kills a command run as root, and everything it started, at its deadline",
    uses: ["killForeignDescendants"],
  };
}

/** Everything the enabled features declare, gathered. */
export interface GatheredSecurity {
  /** Each capability needed, with the flags needing it (comma separated, in declaration order), sorted. */
  required: Map<Capability, string>;
  /** Every declared context by name (a name declared twice must declare the same capabilities). */
  contexts: Map<string, DeclaredContext>;
  readPaths: string[];
  loadPaths: string[];
  commands: DeclaredCommand[];
}

/**
 * Gathers declarations: the union of their contexts (an exec-root context brings the sweep context),
 * the capabilities those need, their paths and commands. Throws on a context name declared with two
 * different capability sets (one name, one set).
 */
export function gatherSecurity(needs: SecurityNeeds[]): GatheredSecurity {
  const contexts = new Map<string, DeclaredContext>();
  const byCap = new Map<Capability, string[]>();
  const add = (c: DeclaredContext) => {
    const had = contexts.get(c.name);
    if (had && [...had.caps].sort().join() !== [...c.caps].sort().join()) {
      throw new Error(`security context ${c.name} declared with ${had.caps.join(",")} and ${c.caps.join(",")}`);
    }
    contexts.set(c.name, had ? { ...had, uses: [...new Set([...had.uses, ...c.uses])] } : c);
    for (const cap of c.caps) {
      const flags = byCap.get(cap) ?? [];
      if (!flags.includes(`--${c.flag}`)) flags.push(`--${c.flag}`);
      byCap.set(cap, flags);
    }
  };
  for (const n of needs) {
    for (const c of n.contexts ?? []) {
      add(c);
      if (c.uses.includes("exec-root")) add(sweepContext(c.flag));
    }
  }
  const required = new Map([...byCap.keys()].sort().map((c) => [c, byCap.get(c)!.join(",")] as const));
  return {
    required,
    contexts,
    readPaths: needs.flatMap((n) => n.readPaths ?? []).filter((p) => p),
    loadPaths: needs.flatMap((n) => n.loadPaths ?? []).filter((p) => p),
    commands: needs.flatMap((n) => n.commands ?? []),
  };
}

/** Several declarations as one (a collector and its sub-collectors). */
export function gatherNeeds(needs: SecurityNeeds[]): SecurityNeeds {
  return {
    contexts: needs.flatMap((n) => n.contexts ?? []),
    readPaths: needs.flatMap((n) => n.readPaths ?? []),
    loadPaths: needs.flatMap((n) => n.loadPaths ?? []),
    commands: needs.flatMap((n) => n.commands ?? []),
  };
}
