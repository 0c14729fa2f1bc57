// The README's quick start from a root-owned, read-only copy of the checkout: run as another user it says in
// one line what to do until node_modules exists, then serves; its log never carries registry lines.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { freePort, repoRoot, worldExecutableDeno } from "../helpers/process.ts";

const NOBODY = 65534;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Copies the checkout's files (tracked and new, not ignored; no node_modules) to `dest`, as root, 0755/0644. */
function copyCheckout(dest: string): void {
  const out = new Deno.Command("git", {
    args: ["ls-files", "-co", "--exclude-standard", "-z"],
    cwd: repoRoot,
    stdout: "piped",
  }).outputSync();
  const files = new TextDecoder().decode(out.stdout).split("\0").filter((f) => f && !f.startsWith("node_modules/"));
  for (const f of files) {
    try {
      Deno.statSync(join(repoRoot, f));
    } catch {
      continue; // deleted in the working tree
    }
    Deno.mkdirSync(join(dest, f, ".."), { recursive: true, mode: 0o755 });
    Deno.copyFileSync(join(repoRoot, f), join(dest, f));
  }
  new Deno.Command("chmod", { args: ["-R", "go-w,a+rX", dest] }).outputSync();
}

/** `deno task <args>` in `cwd` as `uid` with a bare environment (no writable home for another user). */
function task(cwd: string, args: string[], uid?: number): Deno.Command {
  return new Deno.Command(uid === undefined ? Deno.execPath() : worldExecutableDeno(), {
    args: ["task", ...args],
    cwd,
    uid,
    gid: uid,
    clearEnv: true,
    env: {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      NO_COLOR: "1",
      ...(uid === undefined ? { HOME: Deno.env.get("HOME") ?? "/root" } : { HOME: "/nonexistent" }),
    },
    stdout: "null",
    stderr: "piped",
  });
}

/** Starts a task, waits for `url`, stops it with SIGTERM; returns its stderr. */
async function serveOnce(cmd: Deno.Command, url: string, check: (r: Response) => Promise<void>): Promise<string> {
  const child = cmd.spawn();
  const err = new Response(child.stderr).text();
  try {
    let answered = false;
    for (let i = 0; i < 300 && !answered; i++) {
      try {
        await check(await fetch(url));
        answered = true;
      } catch {
        await sleep(100);
      }
    }
    assert(answered, `no answer at ${url}`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
  return await err;
}

/** stderr without deno task's own "Task <name> <command>" echo. */
const ours = (stderr: string) => stderr.split("\n").filter((l) => l && !l.startsWith("Task "));

Deno.test({
  name: "quick start: a read-only checkout as another user says what to do, then serves without registry lines",
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "ceems-quickstart-" });
    await Deno.chmod(tmp, 0o755);
    const ck = join(tmp, "ceems");
    const data = join(tmp, "data");
    try {
      copyCheckout(ck);
      await Deno.mkdir(data);
      await Deno.chown(data, NOBODY, NOBODY);
      const cfg = join(tmp, "api.yml");
      await Deno.writeTextFile(cfg, `ceems_api_server:\n  data: {path: ${data}}\n`);

      // 1. Another user, no node_modules yet: one line naming what to run, as whom.
      let out = await task(ck, ["api", `--config.file=${cfg}`], NOBODY).output();
      assertEquals(out.code, 2);
      const lines = ours(new TextDecoder().decode(out.stderr));
      assertEquals(lines.length, 1, lines.join("\n"));
      assertMatch(
        lines[0],
        new RegExp(`^ceems: ${ck}/node_modules lacks .*: run 'deno install' in ${ck}/ as root once`),
      );

      // 2. Its owner runs the quick start once: node_modules is installed quietly and the exporter serves.
      const port = freePort();
      let err = await serveOnce(
        task(ck, [
          "exporter",
          `--web.listen-address=127.0.0.1:${port}`,
          "--collector.disable-defaults",
          "--collector.cpu",
        ]),
        `http://127.0.0.1:${port}/metrics`,
        async (r) => assertMatch(await r.text(), /ceems_cpu_seconds_total/),
      );
      assert(!/Download|registry\.npmjs/.test(err), err);

      // 3. The other user now: the API server (which loads npm packages) serves, nothing fetched, nothing written.
      const apiPort = freePort();
      err = await serveOnce(
        task(ck, ["api", `--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${apiPort}`], NOBODY),
        `http://127.0.0.1:${apiPort}/health`,
        async (r) => assertEquals(r.status, 200, await r.text()),
      );
      assert(!/Download|registry\.npmjs/.test(err), err);
      assert(/msg="ceems api started"/.test(err), err);

      // 4. No configuration: one line, before anything is created or listened on.
      out = await task(ck, ["api"], NOBODY).output();
      assertEquals(out.code, 2);
      assertEquals(ours(new TextDecoder().decode(out.stderr)), [
        "ceems api: error: --config.file: a configuration file is required (a sample: /etc/ceems/ceems_api_server.yml from the package, or packaging/config/ceems_api_server.yml)",
      ]);
      assert(!(await Array.fromAsync(Deno.readDir(ck))).some((e) => e.name === "data"), "no ./data in the checkout");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
