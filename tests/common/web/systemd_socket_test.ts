// --web.systemd-socket: the servers serve on the sockets systemd passes (LISTEN_FDS/LISTEN_PID), here from
// systemd's own systemd-socket-activate (TCP and a Unix socket), and refuse to listen elsewhere without them.

import { join } from "node:path";
import { systemdListenFds, SystemdSocketError } from "../../../common/web/systemd_socket.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import { CEEMS_ENV, freePort, mainTs, runCeems } from "../../helpers/process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("systemdListenFds reads LISTEN_FDS for this process only, and only sockets", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.symlinkSync("socket:[123]", join(dir, "3"));
    Deno.symlinkSync("socket:[124]", join(dir, "4"));
    Deno.symlinkSync("/etc/passwd", join(dir, "5"));
    const at = (env: Record<string, string>) => systemdListenFds({ env, pid: 42, fdDir: dir });
    assertEquals(at({ LISTEN_FDS: "2", LISTEN_PID: "42" }), [3, 4]);
    assertEquals(at({ LISTEN_FDS: "1", LISTEN_PID: "42" }), [3]);
    assertThrows(() => at({ LISTEN_FDS: "1" }), /LISTEN_PID is not set/);
    assertThrows(() => at({}), /LISTEN_FDS is not set/);
    assertThrows(() => at({ LISTEN_FDS: "0" }), /no socket passed/);
    assertThrows(() => at({ LISTEN_FDS: "2", LISTEN_PID: "41" }), /for process 41, not this one \(42\)/);
    assertThrows(() => at({ LISTEN_FDS: "3", LISTEN_PID: "42" }), /descriptor 5 .* is not a socket/);
    assertThrows(() => at({ LISTEN_FDS: "4", LISTEN_PID: "42" }), /descriptor 5 .* is not a socket/);
    let e: unknown;
    try {
      at({});
    } catch (x) {
      e = x;
    }
    assert(e instanceof SystemdSocketError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--web.systemd-socket without sockets from systemd stops with one line, listening nowhere", async () => {
  for (const sub of ["exporter", "lb"]) {
    const r = await runCeems([sub, "--web.systemd-socket"]);
    assertEquals(r.code, 2);
    assertEquals(
      r.stderr,
      `ceems ${sub}: error: --web.systemd-socket: no socket passed by systemd (LISTEN_FDS is not set): start from a .socket unit\n`,
    );
  }
});

/** Runs `ceems exporter --web.systemd-socket` under systemd-socket-activate listening on `listen`. */
function activated(listen: string): Deno.ChildProcess {
  const env = Object.entries(CEEMS_ENV).map(([k, v]) => `${k}=${v}`);
  return new Deno.Command("systemd-socket-activate", {
    args: ["-l", listen, "env", ...env, Deno.execPath(), "run", "-A", mainTs, "exporter", "--web.systemd-socket"]
      .concat(["--collector.disable-defaults", "--collector.cpu"]),
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

async function curl(args: string[]): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const out = await new Deno.Command("curl", { args: ["-sf", "-m", "5", ...args], stdout: "piped" }).output();
    if (out.success) return new TextDecoder().decode(out.stdout);
    await sleep(200);
  }
  throw new Error(`curl ${args.join(" ")} never answered`);
}

async function stop(child: Deno.ChildProcess): Promise<string> {
  child.kill("SIGTERM");
  const [st, err] = await Promise.all([child.status, new Response(child.stderr).text()]);
  assertEquals(st.code, 0, err);
  return err;
}

Deno.test("exporter serves /metrics on a TCP socket passed by systemd-socket-activate", async () => {
  const port = freePort();
  const child = activated(`127.0.0.1:${port}`);
  let err = "";
  try {
    // systemd holds the socket from the start: the first request waits in its backlog until ceems serves it.
    assertMatch(await curl([`http://127.0.0.1:${port}/metrics`]), /ceems_cpu_seconds_total\{/);
  } finally {
    err = await stop(child);
  }
  assertMatch(err, /msg="Listening on" address=127\.0\.0\.1:\d+ .*systemd_socket_fd=3/);
});

Deno.test("exporter serves on a Unix socket passed by systemd-socket-activate", async () => {
  const dir = await Deno.makeTempDir();
  const sock = join(dir, "ceems.sock");
  const child = activated(sock);
  let err = "";
  try {
    assertEquals(await curl(["--unix-socket", sock, "http://localhost/health"]), "CEEMS Exporter is healthy");
  } finally {
    err = await stop(child);
    await Deno.remove(dir, { recursive: true });
  }
  // node's net layer does not name an adopted Unix socket: the log line names the descriptor.
  assertMatch(err, /msg="Listening on" address="fd 3" .*systemd_socket_fd=3/);
});
