// A root start that would hand the run-as user a way back to root refuses (exit 2, one line): a writable
// Deno cache descriptor, code loaded after the drop that the user could replace; and a start after kill -9
// removes the ACL entries the killed run added.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { probeTs, runProbe } from "../helpers/privilege.ts";
import { CEEMS_ENV, mainTs, runCeems } from "../helpers/process.ts";
import { readOnlyMounts } from "../helpers/systemd_unit.ts";

const dec = new TextDecoder();
const getfacl = (p: string) => dec.decode(new Deno.Command("getfacl", { args: ["-cpn", p] }).outputSync().stdout);

/** The lines of stderr that are not log lines (`time=...`): a refusal is exactly one. */
const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l && !l.startsWith("time="));

Deno.test("started as root with a writable Deno cache open: refuses, exit 2, one line naming it", async () => {
  const cache = Deno.makeTempDirSync({ prefix: "ceems-denodir-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--node-modules-dir=manual", mainTs, "exporter", "--collector.disable-defaults"],
      env: { ...CEEMS_ENV, DENO_DIR: cache },
      stdout: "null",
      stderr: "piped",
    }).output();
    const stderr = dec.decode(out.stderr);
    assertEquals(out.code, 2, stderr);
    const lines = errorLines(stderr);
    assertEquals(lines.length, 1, stderr);
    assertMatch(lines[0], new RegExp(`holding ${cache}/\\S+ open for writing.*DENO_DIR`));
  } finally {
    Deno.removeSync(cache, { recursive: true });
  }
});

Deno.test("started as root with Deno's cache read-only but changeable by a user other than the run-as one: refuses", async () => {
  // Read-only for this start (a read-only bind, as ProtectSystem=strict gives), so no descriptor could write;
  // but its gen/ belongs to uid 12345, who could change what every later root start loads.
  const cache = Deno.makeTempDirSync({ prefix: "ceems-denodir-ro-" });
  try {
    Deno.chmodSync(cache, 0o755);
    Deno.mkdirSync(join(cache, "gen"), { mode: 0o755 });
    Deno.chownSync(join(cache, "gen"), 12345, 12345);
    const start = async (...program: string[]) => {
      const ro = readOnlyMounts([cache]);
      const out = await new Deno.Command(ro[0], {
        args: [...ro.slice(1), Deno.execPath(), "run", "-A", "--node-modules-dir=manual", ...program],
        env: { ...CEEMS_ENV, DENO_DIR: cache },
        stdout: "null",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: dec.decode(out.stderr) };
    };
    const refused = await start(mainTs, "exporter", "--collector.disable-defaults");
    assertEquals(refused.code, 2, refused.stderr);
    const lines = errorLines(refused.stderr);
    assertEquals(lines.length, 1, refused.stderr);
    assertMatch(lines[0], new RegExp(`refusing to start as root: ${cache}/gen belongs to uid 12345.*Deno's cache`));
    // The same cache, root's throughout: the start goes on (the probe runs the same set-up, then exits).
    Deno.chownSync(join(cache, "gen"), 0, 0);
    const ok = await start(probeTs, "exporter", "-");
    assertEquals(ok.code, 0, ok.stderr);
  } finally {
    Deno.removeSync(cache, { recursive: true });
  }
});

Deno.test("started as root with a library loaded after the drop that nobody can replace: refuses, exit 2", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-load-" });
  try {
    Deno.chmodSync(dir, 0o755);
    const lib = join(dir, "libnvidia-ml.so.1");
    Deno.writeTextFileSync(lib, "not loaded before the check");
    Deno.chmodSync(lib, 0o666);
    const args = [
      "exporter",
      "--collector.disable-defaults",
      "--collector.nvml",
      `--collector.nvml.library-path=${lib}`,
    ];
    const r = await runCeems(args);
    assertEquals(r.code, 2, r.stderr);
    const lines = errorLines(r.stderr);
    assertEquals(lines.length, 1, r.stderr);
    assertMatch(
      lines[0],
      new RegExp(`refusing to start as root: ${lib} is writable by others.*--security.run-as-user`),
    );
    // The same file, writable by root only, passes that check.
    Deno.chmodSync(lib, 0o644);
    const ok = await runProbe(["exporter", "-", `loadPath=${lib}`]);
    assertEquals(ok.code, 0, ok.stderr);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a Worker source the run-as user could replace stops a root start before the drop", async () => {
  const { repoRoot } = await import("../helpers/process.ts");
  const root = Deno.makeTempDirSync({ prefix: "ceems-wsrc-" });
  try {
    Deno.chmodSync(root, 0o755);
    for (const p of ["deno.json", "deno.lock", "common", "privilege", "ffi", "node_modules", "tests/privilege"]) {
      Deno.mkdirSync(join(root, p, ".."), { recursive: true });
      const cp = new Deno.Command("cp", { args: ["-a", join(repoRoot, p), join(root, p)] }).outputSync();
      assertEquals(cp.code, 0, dec.decode(cp.stderr));
    }
    Deno.chownSync(join(root, "privilege/capset.ts"), 65534, 65534);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--node-modules-dir=manual", join(root, "tests/privilege/probe.ts"), "exporter", "-"],
      env: CEEMS_ENV,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = dec.decode(out.stderr);
    assert(out.code !== 0, "must not start");
    assertMatch(stderr, /refusing to start as root: \S+\/privilege\/capset\.ts belongs to uid 65534/);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("a start after kill -9 removes the ACL entries the killed run added; a path changed since is left, with a warning", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-acl9-" }); // 0700: nobody needs a search entry
  try {
    const [f, g] = [join(dir, "a.yml"), join(dir, "b.yml")];
    for (const p of [f, g]) {
      Deno.writeTextFileSync(p, "x");
      Deno.chmodSync(p, 0o600);
    }
    const before = { dir: getfacl(dir), f: getfacl(f) };
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--node-modules-dir=manual", probeTs, "exporter", "-", `read=${f},${g}`, "wait=60000"],
      env: CEEMS_ENV,
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      for (let i = 0; i < 300; i++) {
        if (/^Uid:\s+65534/m.test(Deno.readTextFileSync(`/proc/${child.pid}/status`))) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const p of [f, g]) assertMatch(getfacl(p), /^user:65534:r--$/m);
      assertMatch(getfacl(dir), /^user:65534:--x$/m);
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    assertMatch(getfacl(f), /^user:65534:r--$/m, "kill -9 leaves the entries");
    // The operator changes g afterwards: whose entries are on it is no longer certain, so it is left alone.
    new Deno.Command("setfacl", { args: ["-m", "u:4242:r--", g] }).outputSync();
    const gBefore = getfacl(g);
    // Any later root start of a component that adds ACL entries repairs the leftovers first.
    const r = await runProbe(["exporter", "-"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(getfacl(dir), before.dir);
    assertEquals(getfacl(f), before.f);
    assertEquals(getfacl(g), gBefore);
    assertMatch(r.stderr, new RegExp(`ACL entry of a previous run left in place.*path=${g}`));
    assertEquals([...Deno.readDirSync("/run/ceems")].some((e) => e.name === `acl-${child.pid}.json`), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a tool run as root in a directory someone else can write is refused at start-up with one line", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-tooldir-" });
  try {
    const bin = join(dir, "bin");
    Deno.mkdirSync(bin);
    const tool = join(bin, "ipmitool");
    Deno.writeTextFileSync(tool, "#!/bin/sh\necho 'Instantaneous power reading: 1 Watts'\n");
    Deno.chmodSync(tool, 0o755);
    const args = [
      "exporter",
      "--collector.disable-defaults",
      "--collector.ipmi_dcmi",
      `--collector.ipmi_dcmi.cmd=${tool}`,
    ];
    for (const [mode, why] of [[0o757, "is writable by others"], [0o775, "is group-writable"]] as const) {
      Deno.chmodSync(bin, mode);
      const r = await runCeems(args);
      assertEquals(r.code, 1, r.stderr);
      const lines = errorLines(r.stderr);
      assertEquals(lines.length, 1, r.stderr);
      assertMatch(lines[0], new RegExp(`--collector.ipmi_dcmi.cmd: refusing to run ${tool} as root: ${bin} ${why}`));
    }
    // The same tool as the exporter's user (test mode) gains nothing from root: it is not refused.
    const test = await runCeems([...args, "--collector.ipmi_dcmi.test-mode", "--print-capabilities"]);
    assertEquals(test.code, 0, test.stderr);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
