// Runs a systemd service unit's ExecStart without systemd, as systemd would for these directives: Environment,
// EnvironmentFile, $VAR expansion, WorkingDirectory, UMask, User/Group, DynamicUser, SupplementaryGroups,
// capabilities, and ProtectSystem=strict with ReadWritePaths for the system trees (see `readOnlyMounts`).

/** The [Service] directives of a unit file (continuation lines joined; a repeated key keeps every value). */
export function parseService(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = "";
  const lines = text.replace(/\\\n\s*/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1];
      continue;
    }
    if (section !== "Service") continue;
    const i = line.indexOf("=");
    if (i < 0) continue;
    const key = line.slice(0, i).trim();
    out.set(key, [...(out.get(key) ?? []), line.slice(i + 1).trim()]);
  }
  return out;
}

/** Splits a command line as systemd does: whitespace, with "double" and 'single' quoted words. */
export function splitWords(s: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = "";
      else if (c === "\\" && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/**
 * ExecStart's argv with variables expanded as systemd.service(5) says: a word that is exactly `$NAME` becomes the
 * variable's value split at whitespace (none when empty or unset); `${NAME}` inside a word is replaced in place.
 */
export function expandExecStart(execStart: string, env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const w of splitWords(execStart.replace(/^[-@:+!]+/, ""))) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (whole) out.push(...splitWords(env[whole[1]] ?? ""));
    else out.push(w.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n) => env[n] ?? ""));
  }
  return out;
}

/** Variables of an EnvironmentFile (KEY=VALUE lines, quotes removed; comments and blank lines skipped). */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m || line.trim().startsWith("#")) continue;
    const v = m[2].trim();
    env[m[1]] = /^(["']).*\1$/.test(v) ? v.slice(1, -1) : v;
  }
  return env;
}

/** The trees ProtectSystem=strict makes read-only here (/dev, /proc, /sys, /run and /tmp stay as they are). */
export const SYSTEM_TREES = ["/usr", "/etc", "/var", "/boot", "/opt", "/srv"];

/**
 * A command line (root) that gives the rest of its arguments a private mount namespace in which each existing
 * path of `readOnly` is read-only and each of `writable` is bound writable again, then execs them (same pid).
 * Mounts made outside later still reach it (slave propagation), as under systemd. Unlike systemd it is not
 * recursive (a filesystem mounted below one of `readOnly` keeps its own flags), and PrivateTmp= is not emulated.
 */
export function readOnlyMounts(readOnly: string[], writable: string[] = []): string[] {
  const q = (p: string) => `'${p.replaceAll("'", `'\\''`)}'`;
  const script = [
    `for d in ${readOnly.map(q).join(" ")}; do`,
    `  [ -d "$d" ] || continue`,
    `  mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" || exit 1`,
    "done",
    // A bind of a path below a read-only mount starts read-only too: made writable again explicitly.
    ...writable.map((p) => `mount --bind ${q(p)} ${q(p)} && mount -o remount,bind,rw ${q(p)} || exit 1`),
    // The working directory again, through the new mounts (as systemd enters it after setting them up).
    'cd "$PWD" || exit 1',
    'exec "$@"',
  ].join("\n");
  return ["unshare", "--mount", "--propagation", "slave", "sh", "-c", script, "sh"];
}

/** How a unit is started here. */
export interface UnitStart {
  /**
   * The command line run: sh for UMask=, the read-only system trees of ProtectSystem=strict, setpriv (identity,
   * capability sets), then ExecStart's argv.
   */
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  /** User the service runs as ("" = root). */
  user: string;
}

/** A system account standing in for DynamicUser=yes (systemd allocates one with a group of the same name). */
export function createDynamicUser(name: string): void {
  const r = new Deno.Command("useradd", {
    args: [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      name,
    ],
  }).outputSync();
  if (!r.success) throw new Error(`useradd ${name}: ${new TextDecoder().decode(r.stderr)}`);
}

/** Removes a stand-in dynamic user. */
export function removeDynamicUser(name: string): void {
  new Deno.Command("userdel", { args: [name] }).outputSync();
}

/** Capabilities this process may hand on (its bounding set), by name: systemd silently drops the others. */
function boundingSet(): Set<string> {
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(Deno.readTextFileSync("/proc/self/status"))![1];
  const out = new Deno.Command("capsh", { args: [`--decode=${hex}`], stdout: "piped" }).outputSync();
  return new Set(new TextDecoder().decode(out.stdout).trim().split("=")[1].split(","));
}

/** setpriv's "+name" list of a unit's capability line, limited to what this process has. */
function caps(v: string | undefined, have: Set<string>): string[] {
  return (v ?? "").split(/\s+/).filter((c) => have.has(c.toLowerCase())).map((c) =>
    `+${c.toLowerCase().replace(/^cap_/, "")}`
  );
}

/**
 * How systemd would start the unit: its environment (Environment=, EnvironmentFile=, `extraEnv` standing in for
 * the manager's own), identity through setpriv (User=/Group= with the user's groups, or the `dynamicUser` stand-in
 * with SupplementaryGroups=), capability bounding and ambient sets, no_new_privs, the working directory.
 */
export function unitStart(
  unitText: string,
  opts: { dynamicUser?: string; extraEnv?: Record<string, string>; protectSystem?: boolean } = {},
) {
  const svc = parseService(unitText);
  const one = (k: string) => svc.get(k)?.at(-1);
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    ...opts.extraEnv,
  };
  for (const e of svc.get("Environment") ?? []) {
    for (const w of splitWords(e)) {
      const i = w.indexOf("=");
      if (i > 0) env[w.slice(0, i)] = w.slice(i + 1);
    }
  }
  for (const f of svc.get("EnvironmentFile") ?? []) {
    const path = f.replace(/^-/, "");
    try {
      Object.assign(env, parseEnvironmentFile(Deno.readTextFileSync(path)));
    } catch (e) {
      if (!f.startsWith("-")) throw e;
    }
  }
  const exec = expandExecStart(one("ExecStart") ?? "", env);
  const setpriv: string[] = ["setpriv"];
  const have = boundingSet();
  let user = one("User") ?? "";
  const dynamic = one("DynamicUser") === "yes";
  if (dynamic) {
    if (!opts.dynamicUser) throw new Error("DynamicUser=yes needs a stand-in user");
    user = opts.dynamicUser;
  }
  if (user) {
    const group = dynamic ? user : one("Group") ?? user;
    setpriv.push(`--reuid=${user}`, `--regid=${group}`);
    const extra = (svc.get("SupplementaryGroups") ?? []).flatMap((g) => g.split(/\s+/)).filter((g) => g);
    setpriv.push(extra.length ? `--groups=${[group, ...extra].join(",")}` : "--init-groups");
    const amb = caps(one("AmbientCapabilities"), have);
    if (amb.length) setpriv.push(`--inh-caps=${amb.join(",")}`, `--ambient-caps=${amb.join(",")}`);
  }
  const bounding = one("CapabilityBoundingSet");
  if (bounding !== undefined) setpriv.push(`--bounding-set=${["-all", ...caps(bounding, have)].join(",")}`);
  if (one("NoNewPrivileges") === "yes") setpriv.push("--no-new-privs");
  // UMask= is the process's from the start: a shell sets it, then execs the rest (same pid).
  const umask = one("UMask");
  const pre = umask ? ["sh", "-c", `umask ${umask} && exec "$@"`, "sh"] : [];
  // ProtectSystem=strict (unless `protectSystem: false` asks for a start without it): the system trees read-only,
  // ReadWritePaths= (a "-" prefix: skipped when missing) writable again.
  if (one("ProtectSystem") === "strict" && opts.protectSystem !== false) {
    const rw = (svc.get("ReadWritePaths") ?? []).flatMap((v) => splitWords(v)).flatMap((p) => {
      const path = p.replace(/^-/, "");
      if (!p.startsWith("-")) return [path];
      try {
        Deno.statSync(path);
        return [path];
      } catch {
        return [];
      }
    });
    pre.push(...readOnlyMounts(SYSTEM_TREES, rw));
  }
  return { argv: [...pre, ...setpriv, "--", ...exec], env, cwd: one("WorkingDirectory"), user } satisfies UnitStart;
}

/** A unit running here: its process, its log (stdout and stderr, as the journal would hold them), its stop. */
export interface RunningUnit {
  pid: number;
  log(): string;
  /** SIGTERM (as systemctl stop) and the exit status. */
  stop(): Promise<number>;
}

/** Starts a unit as {@link unitStart} describes it. */
export function startUnit(start: UnitStart): RunningUnit {
  const child = new Deno.Command(start.argv[0], {
    args: start.argv.slice(1),
    env: start.env,
    clearEnv: true,
    cwd: start.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: Uint8Array[] = [];
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) chunks.push(c);
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const log = () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return {
    pid: child.pid,
    log,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      const st = await child.status;
      await drained;
      return st.code;
    },
  };
}
