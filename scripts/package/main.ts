// `deno task package`: builds dist/ceems_<version>_amd64.deb with dpkg-deb from this checkout: the runtime
// (compiled binary, or Deno from the npm registry), the app with its npm packages, units, configs, BPF objects.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERSION } from "../../common/version.ts";
import { controlText, installedSizeKiB, shlibDepends, writeDebian } from "./control.ts";
import { compiledRuntime, npmDenoRuntime, type Runtime } from "./runtime.ts";
import { BPF_OBJECTS, stagePackage } from "./stage.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
/** The Deno the package carries when it cannot compile: the one the project is built and tested with. */
export const PACKAGED_DENO = "2.9.6";

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = new Deno.Command(cmd, { args, cwd: root, env, stdout: "piped", stderr: "piped" }).outputSync();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${dec.decode(r.stderr).trim()}`);
  return dec.decode(r.stdout);
}

/** Subcommands main.ts dispatches (its `case "<name>":` lines). */
export function subcommandsOf(mainTs: string): string[] {
  return [...mainTs.matchAll(/^\s*case "([a-z]+)":/gm)].map((m) => m[1]).filter((n) =>
    !["help", "version"].includes(n)
  );
}

/** Builds the BPF objects when they are missing or stale (clang, bpftool, libbpf-dev); throws when it cannot. */
function ensureBpfObjects(): void {
  sh(Deno.execPath(), ["run", "-A", "collectors/units/ebpf/build.ts"]);
  for (const o of BPF_OBJECTS) Deno.statSync(join(root, ".bpf", o));
}

/** Chooses the runtime: the compiled binary when denort can be had, else Deno from the npm registry. */
function chooseRuntime(cache: string): Runtime {
  if (Deno.env.get("CEEMS_PACKAGE_RUNTIME") !== "deno") {
    const c = compiledRuntime(root, join(cache, "ceems"));
    if ("kind" in c) return c;
    console.error(`package: no single binary (${c.reason}); carrying Deno ${PACKAGED_DENO} from the npm registry`);
  }
  return npmDenoRuntime(PACKAGED_DENO, cache);
}

if (import.meta.main) {
  const started = Date.now();
  sh(Deno.execPath(), ["run", "-A", "scripts/ensure_node_modules.ts"]);
  ensureBpfObjects();
  const cache = join(root, "dist", ".cache");
  Deno.mkdirSync(cache, { recursive: true });
  const runtime = chooseRuntime(cache);
  const subcommands = subcommandsOf(Deno.readTextFileSync(join(root, "main.ts")));
  const help: Record<string, string> = {};
  for (const sub of ["", ...subcommands]) {
    help[sub] = sh(Deno.execPath(), ["run", "-A", "main.ts", ...(sub ? [sub] : []), "--help"], {
      DENO_DIR: "/dev/null",
      NO_COLOR: "1",
    });
  }
  const [epoch, revision] = sh("git", ["log", "-1", "--format=%ct %h"]).trim().split(" ");
  const stage = Deno.makeTempDirSync({ dir: join(root, "dist"), prefix: ".stage-" });
  try {
    Deno.chmodSync(stage, 0o755);
    const conffiles = stagePackage({
      root,
      stage,
      runtime,
      version: VERSION,
      subcommands,
      help,
      date: new Date(Number(epoch) * 1000),
      revision,
    });
    const runtimePath = `/usr/lib/ceems/${runtime.kind === "compiled" ? "ceems" : "deno"}`;
    const control = controlText({
      version: VERSION,
      depends: shlibDepends(runtime.binary),
      installedSizeKiB: installedSizeKiB(stage),
    });
    writeDebian(root, stage, { control, conffiles, runtimePath });
    const deb = join(root, "dist", `ceems_${VERSION}_amd64.deb`);
    // Root-owned files (ownership other than root comes from postinst's dpkg-statoverride).
    sh("dpkg-deb", ["--root-owner-group", "-Zxz", "-z6", "--build", stage, deb], { SOURCE_DATE_EPOCH: epoch });
    const size = (Deno.statSync(deb).size / 2 ** 20).toFixed(1);
    console.log(
      `package: wrote ${deb} (${size} MiB, runtime ${runtime.kind}, ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  } finally {
    Deno.removeSync(stage, { recursive: true });
  }
}
