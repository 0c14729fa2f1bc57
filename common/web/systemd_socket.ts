// systemd socket activation (sd_listen_fds(3)): the listening sockets systemd passes from fd 3 on, named by
// LISTEN_FDS for the process LISTEN_PID, for --web.systemd-socket.

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** Why socket activation cannot be used: start-up stops with this one line. */
export class SystemdSocketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SystemdSocketError";
  }
}

/** Where the passed descriptors are inspected (tests point it elsewhere). */
export interface ListenFdsOptions {
  env: Record<string, string | undefined>;
  pid: number;
  /** Directory of this process's descriptors (default /proc/self/fd). */
  fdDir?: string;
}

/**
 * The listening sockets systemd passed to this process, as sd_listen_fds reads them: LISTEN_PID must be this
 * process and LISTEN_FDS the count; each descriptor must be a socket. Throws SystemdSocketError otherwise
 * (ceems never falls back to listening on an address of its own).
 */
export function systemdListenFds(opts: ListenFdsOptions): number[] {
  const { env, pid } = opts;
  const count = env.LISTEN_FDS;
  if (count === undefined || count === "") {
    throw new SystemdSocketError("no socket passed by systemd (LISTEN_FDS is not set): start from a .socket unit");
  }
  if (!/^\d+$/.test(count) || Number(count) === 0) {
    throw new SystemdSocketError(`no socket passed by systemd (LISTEN_FDS=${count})`);
  }
  // As sd_listen_fds and go-systemd: without LISTEN_PID naming this process the sockets are not ours (they
  // may be inherited from a parent that was started by systemd).
  const owner = env.LISTEN_PID;
  if (owner === undefined || owner === "") {
    throw new SystemdSocketError("LISTEN_PID is not set: the sockets are not passed to this process");
  }
  if (owner !== String(pid)) {
    throw new SystemdSocketError(`the sockets passed by systemd are for process ${owner}, not this one (${pid})`);
  }
  const fds: number[] = [];
  for (let fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + Number(count); fd++) {
    let target: string;
    try {
      target = Deno.readLinkSync(`${opts.fdDir ?? "/proc/self/fd"}/${fd}`);
    } catch {
      throw new SystemdSocketError(`descriptor ${fd} named by LISTEN_FDS=${count} is not open`);
    }
    if (!target.startsWith("socket:")) {
      throw new SystemdSocketError(`descriptor ${fd} named by LISTEN_FDS=${count} is not a socket (${target})`);
    }
    fds.push(fd);
  }
  return fds;
}
