// freePort hands out ports below the kernel's ephemeral range, each bindable and never twice, so no port-0
// listener of another process (every ceems server opens one) can take a port between its choice and its use.

import { assert, assertEquals } from "../helpers/assert.ts";
import { freePort } from "../../scripts/free_port.ts";

Deno.test("freePort: below the ephemeral range, free, never the same port twice, never one a port-0 bind gets", () => {
  const low = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0]);
  const ports = Array.from({ length: 300 }, () => {
    const p = freePort();
    Deno.listen({ hostname: "127.0.0.1", port: p }).close(); // free when handed out
    return p;
  });
  assertEquals(new Set(ports).size, ports.length, "a port handed out twice");
  if (low < 21000) {
    console.log(`ephemeral range starts at ${low}: no room below it, freePort uses port-0 binds here`);
    return;
  }
  for (const p of ports) assert(p >= 20000 && p < low, `port ${p} outside [20000, ${low})`);
  // What the kernel gives port-0 listeners lies in the ephemeral range, so it never meets a handed-out port.
  const held = Array.from({ length: 50 }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  try {
    for (const l of held) {
      const p = (l.addr as Deno.NetAddr).port;
      assert(p >= low && !ports.includes(p), `a port-0 bind got ${p}`);
    }
  } finally {
    for (const l of held) l.close();
  }
});
