// The exporter's own privilege state: started as root with collectors that need nothing it runs as
// nobody with an empty permitted set on every thread; --print-capabilities; unprivileged start; ACLs.

import { join } from "node:path";
import { maskOf } from "../../privilege/capset.ts";
import { threadCredentials } from "../../privilege/inspect.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { assertDropped, sampleEffective, startAs } from "../helpers/privilege.ts";
import { runCeems } from "../helpers/process.ts";

Deno.test("exporter started as root with cpu+meminfo runs as nobody with no capability on any thread", async () => {
  assertEquals(Deno.uid(), 0, "this test must run as root (CI does)");
  const p = await startAs(["exporter", "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo"]);
  try {
    assertDropped(threadCredentials(p.pid), p.pid, 0n);
    const scrapes = (async () => {
      for (let i = 0; i < 200; i++) {
        const r = await fetch(`${p.base}/metrics`);
        const text = await r.text();
        if (!text.includes('ceems_scrape_collector_success{collector="cpu"} 1')) throw new Error(text);
      }
    })();
    const s = await sampleEffective(p.pid, 0n, scrapes);
    assertEquals(s.violations, []);
    assertEquals(s.raisedSeen, 0);
    assertDropped(threadCredentials(p.pid), p.pid, 0n);
    assertMatch(p.stderr(), /msg="dropped privileges" user=nobody uid=65534 capabilities=none/);
  } finally {
    await p.stop();
  }
});

Deno.test("--print-capabilities prints the set and the systemd lines of a root start, no setcap for deno, exits 0", async () => {
  const r = await runCeems(["exporter", "--print-capabilities", "--collector.disable-defaults", "--collector.cpu"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^capabilities: none$/m);
  assertMatch(r.stdout, /^AmbientCapabilities=$/m);
  assertMatch(r.stdout, /^CapabilityBoundingSet=CAP_FOWNER CAP_SETGID CAP_SETPCAP CAP_SETUID$/m);
  assertEquals(r.stdout.split("\n").filter((l) => l.startsWith("setcap")), [], "no file capabilities for deno");
  assertEquals(r.stderr.includes("dropped privileges"), false, "must print before any drop");
});

Deno.test("started as nobody without capabilities: /metrics is served and every thread holds nothing", async () => {
  const p = await startAs(["exporter", "--collector.disable-defaults", "--collector.cpu"], { uid: 65534, gid: 65534 });
  try {
    const text = await (await fetch(`${p.base}/metrics`)).text();
    assertMatch(text, /ceems_scrape_collector_success\{collector="cpu"\} 1/);
    assertMatch(p.stderr(), /mode=unprivileged capabilities=none/);
    for (const t of threadCredentials(p.pid)) {
      assertEquals(t.uid, [65534, 65534, 65534, 65534]);
      assertEquals([t.capPrm, t.capEff], [0n, 0n]);
    }
  } finally {
    await p.stop();
  }
});

Deno.test("ACL entries for an unreachable --web.config.file are added at start and gone after SIGTERM", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-acl-" }); // 0700 root: nobody cannot enter
  const cfg = join(dir, "web.yml");
  Deno.writeTextFileSync(cfg, "{}\n");
  Deno.chmodSync(cfg, 0o600);
  const getfacl = (path: string) =>
    new TextDecoder().decode(new Deno.Command("getfacl", { args: ["-cp", path], stderr: "null" }).outputSync().stdout);
  const before = [getfacl(dir), getfacl(cfg)];
  assert(!before.join().includes("user:nobody"));
  try {
    const p = await startAs([
      "exporter",
      "--collector.disable-defaults",
      "--collector.cpu",
      `--web.config.file=${cfg}`,
    ]);
    let stopped;
    try {
      assertMatch(getfacl(dir), /^user:nobody:--x$/m); // search only: the directory is an ancestor
      assertMatch(getfacl(cfg), /^user:nobody:r--$/m);
      // cap_fowner is kept only to remove the entries at shutdown.
      assertDropped(threadCredentials(p.pid), p.pid, maskOf(["cap_fowner"]));
      assertMatch(p.stderr(), /acl_entries=2/);
    } finally {
      stopped = await p.stop("SIGTERM");
    }
    assertEquals(stopped.code, 0, stopped.stderr);
    assertMatch(stopped.stderr, /removed ACL entries.*count=2/);
    assertEquals([getfacl(dir), getfacl(cfg)], before);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an unknown --security.run-as-user stops start-up with one line naming the flag", async () => {
  const r = await runCeems(["exporter", "--security.run-as-user=no-such-user-xyz", "--web.listen-address=127.0.0.1:0"]);
  assertEquals(r.code, 2);
  assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  assertMatch(r.stderr, /--security.run-as-user: unknown user "no-such-user-xyz"/);
});

Deno.test("--security.disable-cap-awareness keeps the starting user and is hidden from --help", async () => {
  const p = await startAs([
    "exporter",
    "--collector.disable-defaults",
    "--collector.cpu",
    "--security.disable-cap-awareness",
  ]);
  try {
    const main = threadCredentials(p.pid).find((t) => t.tid === p.pid)!;
    assertEquals(main.uid, [0, 0, 0, 0]);
    assertMatch(p.stderr(), /capability awareness disabled/);
  } finally {
    await p.stop();
  }
  const help = await runCeems(["exporter", "--help"]);
  assertEquals(help.stdout.includes("disable-cap-awareness"), false);
  assertMatch(help.stdout, /--security.run-as-user/);
  assertMatch(help.stdout, /--\[no-\]print-capabilities/);
});
