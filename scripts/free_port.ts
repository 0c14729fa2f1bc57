// A TCP port for a server a test, bench or demo is about to start: below the kernel's ephemeral range, so no
// port-0 listener (every ceems server opens one) and no outgoing connection can take it in the meantime.

/** The lowest port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), 32768 when unreadable. */
function ephemeralLow(): number {
  try {
    const low = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

/** Lowest port handed out: above the fixed ports the tests' real components use (SLURM, MariaDB, …). */
const FLOOR = 20000;
const handedOut = new Set<number>();

/**
 * A port on 127.0.0.1 that binds now, chosen at random between 20000 and the start of the ephemeral range and
 * never handed out before by this process. A port from `port: 0` would lie in the ephemeral range, where
 * another process's port-0 listener could take it before the server binds it (and then answer its readiness
 * probe). On a host whose ephemeral range starts below 21000, it falls back to a port-0 bind.
 */
export function freePort(): number {
  const high = ephemeralLow();
  if (high - FLOOR < 1000) return portZero(); // a host whose ephemeral range leaves no room below it
  for (let tries = 0; tries < 1000; tries++) {
    const port = FLOOR + Math.floor(Math.random() * (high - FLOOR));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue;
    }
    handedOut.add(port);
    return port;
  }
  throw new Error(`freePort: no free port between ${FLOOR} and ${high} after 1000 tries`);
}

/** A port the kernel gives a port-0 bind, not handed out before by this process. */
function portZero(): number {
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}
