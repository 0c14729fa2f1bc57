// Lays out the Debian package's files in a staging directory: the runtime and app under /usr/lib/ceems, the
// wrapper and CEEMS's binary names in /usr/bin, units, sysusers, sample configs, defaults, docs and man pages.

import { dirname, join } from "node:path";
import { PREBUILT_MARKER } from "../../collectors/units/ebpf.ts";
import type { Runtime } from "./runtime.ts";
import { type ManPage, renderManPage } from "./manpages.ts";

/** Directories of the product's code (tests, scripts and docs stay out). */
export const APP_DIRS = ["api_server", "cacct", "collectors", "common", "ffi", "lb", "privilege", "tool"];
/** CEEMS's binary names and the subcommand each runs; cacct only once the program has that subcommand. */
export const CEEMS_NAMES: [string, string][] = [
  ["ceems_exporter", "exporter"],
  ["ceems_api_server", "api"],
  ["ceems_lb", "lb"],
  ["ceems_tool", "tool"],
  ["cacct", "cacct"],
];
/** Sample configuration files installed in /etc/ceems (conffiles). */
export const SAMPLE_CONFIGS = ["web-config.yml", "ceems_api_server.yml", "ceems_lb.yml", "redfish-config.yml"];
/** The systemd units, each with its /etc/default file's variable and default port. */
export const UNITS: { unit: string; name: string; variable: string; port: number }[] = [
  { unit: "ceems_exporter", name: "ceems_exporter", variable: "CEEMS_EXPORTER_OPTIONS", port: 9010 },
  { unit: "ceems_api_server", name: "ceems_api_server", variable: "CEEMS_API_SERVER_OPTIONS", port: 9020 },
  { unit: "ceems_lb", name: "ceems_lb", variable: "CEEMS_LB_OPTIONS", port: 9030 },
];
/** The BPF objects the exporter's ebpf sub-collector loads (built by collectors/units/ebpf/build.ts). */
export const BPF_OBJECTS = ["io.bpf.o", "net.bpf.o"];

/** What {@link stagePackage} needs. */
export interface StageOptions {
  root: string;
  stage: string;
  runtime: Runtime;
  version: string;
  /** Subcommands main.ts dispatches (decides whether cacct gets its name). */
  subcommands: string[];
  /** `--help` text per subcommand ("" = ceems itself). */
  help: Record<string, string>;
  /** Date of the man pages and the changelog (of the source's last commit). */
  date: Date;
  revision: string;
}

function put(path: string, content: string | Uint8Array, mode = 0o644): void {
  Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (typeof content === "string") Deno.writeTextFileSync(path, content);
  else Deno.writeFileSync(path, content);
  Deno.chmodSync(path, mode);
}

function copy(from: string, to: string, mode?: number): void {
  Deno.mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  Deno.copyFileSync(from, to);
  Deno.chmodSync(to, mode ?? ((Deno.statSync(from).mode! & 0o111) ? 0o755 : 0o644));
}

/** gzip -9n (no name, no time stamp: reproducible), as Debian wants docs and man pages. */
function gzip(text: string): Uint8Array {
  const tmp = Deno.makeTempFileSync();
  try {
    Deno.writeTextFileSync(tmp, text);
    const r = new Deno.Command("gzip", { args: ["-9nc", tmp], stdout: "piped" }).outputSync();
    if (!r.success) throw new Error("gzip failed");
    return r.stdout;
  } finally {
    Deno.removeSync(tmp);
  }
}

/** Files of the app: tracked and new files of the product directories and the entry point. */
function appFiles(root: string): string[] {
  const out = new Deno.Command("git", { args: ["ls-files", "-co", "--exclude-standard", "-z"], cwd: root })
    .outputSync();
  if (!out.success) throw new Error("git ls-files failed: the package is built from a git checkout");
  return new TextDecoder().decode(out.stdout).split("\0").filter((f) =>
    f && (["main.ts", "deno.json", "deno.lock"].includes(f) || APP_DIRS.includes(f.split("/")[0])) &&
    !f.endsWith("/README.md")
  ).filter((f) => {
    try {
      return Deno.statSync(join(root, f)).isFile;
    } catch {
      return false; // deleted in the working tree
    }
  });
}

/** What of each npm package is left out: `find -name` patterns, or `-path` ones with a slash. */
const NOT_USED = [
  ".npmignore",
  ".gitignore",
  "README.md",
  "CHANGELOG.md",
  "LICENSE",
  "*.html",
  "*/bintrees/examples",
  "*/bcryptjs/bin",
  "*/yaml/bin.mjs",
];

/**
 * Copies node_modules as `deno install` laid it out (symlinks kept), without the packages of type checks and
 * of development tools (the dashboards' generator and what only it needs).
 */
function copyNodeModules(root: string, dest: string): void {
  const r = new Deno.Command("cp", { args: ["-a", join(root, "node_modules"), dest] }).outputSync();
  if (!r.success) throw new Error(`copying node_modules: ${new TextDecoder().decode(r.stderr)}`);
  const nm = join(dest, "node_modules");
  const typesOnly = /^(@types\+|undici-types@|@grafana\+grafana-foundation-sdk@|tslib@)/;
  const drop = [
    ".bin",
    "@types",
    "@grafana",
    ".deno/node_modules/undici-types",
    ".deno/node_modules/tslib",
    ".deno/.deno.lock",
  ];
  for (const e of Deno.readDirSync(join(nm, ".deno"))) if (typesOnly.test(e.name)) drop.push(`.deno/${e.name}`);
  // Not used by ceems: the packages' ignore files, docs (licenses are in the copyright file), command-line scripts.
  const r2 = new Deno.Command("find", {
    args: [nm, "(", ...NOT_USED.flatMap((p, i) => [...(i ? ["-o"] : []), p.includes("/") ? "-path" : "-name", p]), ")"]
      .concat(["-printf", "%P\\0"]),
    stdout: "piped",
  }).outputSync();
  drop.push(...new TextDecoder().decode(r2.stdout).split("\0").filter((f) => f));
  for (const p of drop) {
    try {
      Deno.removeSync(join(nm, p), { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** The package's files under `opts.stage` (DEBIAN/ excepted); returns the conffiles. */
export function stagePackage(opts: StageOptions): string[] {
  const { root, stage, runtime } = opts;
  const lib = join(stage, "usr/lib/ceems");
  // Runtime: postinst makes it 0750 root:ceems (dpkg-statoverride), as a file that may carry capabilities.
  copy(runtime.binary, join(lib, runtime.kind === "compiled" ? "ceems" : "deno"), 0o755);
  if (runtime.kind === "deno") {
    const app = join(lib, "app");
    for (const f of appFiles(root)) copy(join(root, f), join(app, f));
    copyNodeModules(root, app);
    for (const o of BPF_OBJECTS) copy(join(root, ".bpf", o), join(app, ".bpf", o), 0o644);
    put(join(app, ".bpf", PREBUILT_MARKER), "Built by deno task package: loaded as shipped, never rebuilt here.\n");
    // What postinst runs to fill Deno's caches of the app in /var/cache/ceems/deno (packaging/bin/ceems).
    copy(join(root, "scripts/package/fill_cache.ts"), join(lib, "fill_cache.ts"), 0o644);
  } else {
    for (const o of BPF_OBJECTS) copy(join(root, ".bpf", o), join(lib, "bpf", o), 0o644);
    put(join(lib, "bpf", PREBUILT_MARKER), "Built by deno task package: loaded as shipped, never rebuilt here.\n");
  }
  copy(join(root, "packaging/bin/ceems"), join(stage, "usr/bin/ceems"), 0o755);
  const names = CEEMS_NAMES.filter(([, sub]) => opts.subcommands.includes(sub));
  for (const [name] of names) Deno.symlinkSync("ceems", join(stage, "usr/bin", name));

  for (const u of UNITS) {
    copy(join(root, `packaging/systemd/${u.unit}.service`), join(stage, `lib/systemd/system/${u.unit}.service`));
  }
  copy(join(root, "packaging/systemd/ceems.sysusers.conf"), join(stage, "usr/lib/sysusers.d/ceems.conf"));
  const conffiles: string[] = [];
  for (const c of SAMPLE_CONFIGS) {
    copy(join(root, "packaging/config", c), join(stage, "etc/ceems", c), 0o644);
    conffiles.push(`/etc/ceems/${c}`);
  }
  const defaults = Deno.readTextFileSync(join(root, "packaging/debian/default.in"));
  for (const u of UNITS) {
    const text = defaults.replaceAll("@UNIT@", u.unit).replaceAll("@NAME@", u.name).replaceAll("@VAR@", u.variable)
      .replaceAll("@PORT@", String(u.port));
    put(join(stage, "etc/default", u.unit), text);
    conffiles.push(`/etc/default/${u.unit}`);
  }
  // postinst gives it to ceems, 0750 (dpkg-statoverride).
  Deno.mkdirSync(join(stage, "var/lib/ceems"), { recursive: true, mode: 0o755 });
  copy(join(root, "packaging/debian/lintian-overrides"), join(stage, "usr/share/lintian/overrides/ceems"));

  const doc = join(stage, "usr/share/doc/ceems");
  copy(join(root, "packaging/debian/copyright"), join(doc, "copyright"));
  put(join(doc, "README.md.gz"), gzip(Deno.readTextFileSync(join(root, "README.md"))));
  // The operator documentation beside it, as docs/ lays it out (README links into it).
  for (const dir of ["docs", "docs/flags"]) {
    for (const e of Deno.readDirSync(join(root, dir))) {
      if (e.isFile && e.name.endsWith(".md")) {
        put(join(doc, dir, `${e.name}.gz`), gzip(Deno.readTextFileSync(join(root, dir, e.name))));
      }
    }
  }
  put(join(doc, "changelog.gz"), gzip(changelog(opts.version, opts.revision, opts.date)));

  const day = opts.date.toISOString().slice(0, 10);
  const pages: ManPage[] = [
    { name: "ceems", subcommand: "", summary: "Compute Energy & Emissions Monitoring Stack" },
    { name: "ceems_exporter", subcommand: "exporter", summary: "Prometheus exporter for compute units and node power" },
    { name: "ceems_api_server", subcommand: "api", summary: "CEEMS API server: compute units, usage and energy" },
    { name: "ceems_lb", subcommand: "lb", summary: "CEEMS load balancer with access control for Prometheus" },
    { name: "ceems_tool", subcommand: "tool", summary: "CEEMS operator utilities" },
    { name: "cacct", subcommand: "cacct", summary: "usage and energy of a user's compute units" },
  ].filter((p) => p.subcommand === "" || names.some(([, s]) => s === p.subcommand));
  const all = pages.map((p) => p.name);
  for (const p of pages) {
    const text = renderManPage(p, opts.help[p.subcommand] ?? "", opts.version, day, all);
    put(join(stage, `usr/share/man/man1/${p.name}.1.gz`), gzip(text));
  }
  return conffiles;
}

/** The Debian changelog of this native package: one entry for the version built. */
export function changelog(version: string, revision: string, date: Date): string {
  const rfc = date.toUTCString().replace(/GMT$/, "+0000").replace(/^(\w+), (\d) /, "$1, 0$2 ");
  return `ceems (${version}) unstable; urgency=medium\n\n  * Built from source revision ${revision}.\n\n` +
    ` -- ceems maintainers <ceems@users.noreply.github.com>  ${rfc}\n`;
}
