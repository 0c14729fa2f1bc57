// The DEBIAN/ directory of the package: control (with Depends from dpkg-shlibdeps), conffiles, md5sums and the
// maintainer scripts of packaging/debian/ filled in with the runtime's path and the configuration files.

import { join } from "node:path";

function run(cmd: string, args: string[], cwd?: string): string {
  const r = new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).outputSync();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  return new TextDecoder().decode(r.stdout);
}

/** The shared-library dependencies of an ELF binary, as dpkg-shlibdeps computes them (e.g. "libc6 (>= 2.34)"). */
export function shlibDepends(binary: string): string {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.mkdirSync(join(dir, "debian"));
    Deno.writeTextFileSync(join(dir, "debian/control"), "Source: ceems\n\nPackage: ceems\nArchitecture: amd64\n");
    const out = run("dpkg-shlibdeps", ["-O", "--warnings=0", `-e${binary}`], dir);
    const m = /^shlibs:Depends=(.*)$/m.exec(out);
    if (!m) throw new Error(`dpkg-shlibdeps printed no Depends for ${binary}`);
    return m[1].trim();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Size of the staged files in KiB, as Installed-Size counts it (DEBIAN/ excluded). */
export function installedSizeKiB(stage: string): number {
  const out = run("du", ["-sk", "--apparent-size", "--exclude=./DEBIAN", "."], stage);
  return Number(out.split("\t")[0]);
}

/** Fields of the control file. */
export interface ControlFields {
  version: string;
  depends: string;
  installedSizeKiB: number;
}

/** The control file. */
export function controlText(f: ControlFields): string {
  return [
    "Package: ceems",
    `Version: ${f.version}`,
    "Architecture: amd64",
    "Maintainer: ceems maintainers <ceems@users.noreply.github.com>",
    `Installed-Size: ${f.installedSizeKiB}`,
    `Depends: ${f.depends}, acl`,
    "Recommends: libbpf1",
    "Suggests: prometheus, slurm-client, freeipmi-tools",
    "Section: admin",
    "Priority: optional",
    "Homepage: https://github.com/ceems-dev/ceems",
    "Description: Compute Energy & Emissions Monitoring Stack (CEEMS) in TypeScript",
    " Monitors per compute unit (SLURM job, libvirt VM, Kubernetes pod) CPU, memory,",
    " IO, network, GPU, energy and emissions for HPC centres and clouds: a Prometheus",
    " exporter (ceems_exporter), an API server keeping units and their usage",
    " (ceems_api_server) and a load balancer that lets users query only their own",
    " units (ceems_lb). Flags, metrics, configuration files and API answers follow",
    " CEEMS, whose binary names and systemd units this package provides.",
    "",
  ].join("\n");
}

/** md5sums of every staged regular file but DEBIAN/'s, as dpkg wants them. */
export function md5sums(stage: string): string {
  const files = run("find", [".", "-path", "./DEBIAN", "-prune", "-o", "-type", "f", "-printf", "%P\\0"], stage)
    .split("\0").filter((f) => f).sort();
  const out: string[] = [];
  for (let i = 0; i < files.length; i += 500) out.push(run("md5sum", ["--", ...files.slice(i, i + 500)], stage));
  return out.join("");
}

/** Writes DEBIAN/ into the staging tree: control, conffiles, md5sums, maintainer scripts. */
export function writeDebian(
  root: string,
  stage: string,
  opts: { control: string; conffiles: string[]; runtimePath: string },
): void {
  const dir = join(stage, "DEBIAN");
  Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
  Deno.writeTextFileSync(join(dir, "control"), opts.control);
  Deno.writeTextFileSync(join(dir, "conffiles"), opts.conffiles.join("\n") + "\n");
  const yml = opts.conffiles.filter((c) => c.endsWith(".yml")).join(" ");
  for (const s of ["postinst", "prerm", "postrm"]) {
    const text = Deno.readTextFileSync(join(root, "packaging/debian", s)).replaceAll("@RUNTIME@", opts.runtimePath)
      .replaceAll("@CONFFILES_YML@", yml);
    Deno.writeTextFileSync(join(dir, s), text);
    Deno.chmodSync(join(dir, s), 0o755);
  }
  for (const f of ["control", "conffiles"]) Deno.chmodSync(join(dir, f), 0o644);
  Deno.writeTextFileSync(join(dir, "md5sums"), md5sums(stage));
  Deno.chmodSync(join(dir, "md5sums"), 0o644);
}
