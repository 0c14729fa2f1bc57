// Reads the credentials of every thread of a process from /proc/<pid>/task/*/status, so start-up and
// tests can check that the drop reached every thread.

/** Credentials of one thread as /proc reports them. */
export interface ThreadCreds {
  tid: number;
  name: string;
  uid: number[];
  gid: number[];
  capInh: bigint;
  capPrm: bigint;
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
  /** The thread's no_new_privs flag. */
  noNewPrivs: boolean;
}

/** Parses one /proc/.../status text. */
export function parseStatus(tid: number, text: string): ThreadCreds {
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
  const hex = (k: string) => BigInt("0x" + (field(k) || "0"));
  return {
    tid,
    name: field("Name"),
    uid: field("Uid").split(/\s+/).map(Number),
    gid: field("Gid").split(/\s+/).map(Number),
    capInh: hex("CapInh"),
    capPrm: hex("CapPrm"),
    capEff: hex("CapEff"),
    capBnd: hex("CapBnd"),
    capAmb: hex("CapAmb"),
    noNewPrivs: field("NoNewPrivs") === "1",
  };
}

/** Credentials of every live thread of `pid` (threads that exit while being read are skipped). */
export function threadCredentials(pid: number | "self" = "self", procfs = "/proc"): ThreadCreds[] {
  const out: ThreadCreds[] = [];
  for (const e of Deno.readDirSync(`${procfs}/${pid}/task`)) {
    try {
      out.push(parseStatus(Number(e.name), Deno.readTextFileSync(`${procfs}/${pid}/task/${e.name}/status`)));
    } catch {
      // thread ended meanwhile
    }
  }
  return out.sort((a, b) => a.tid - b.tid);
}
