// Builds the single `ceems` binary with `deno compile` into dist/. deno compile needs Deno's
// `denort` runtime: it downloads it where it can, or uses the file named by DENORT_BIN.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EXPORTER_V8_FLAGS } from "../common/v8_flags.ts";

const root = fileURLToPath(new URL("../", import.meta.url));

/** Worker modules are loaded at run time by URL, so deno compile must be told to embed them. */
function workerModules(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(join(root, dir))) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory) walk(rel);
      else if (/worker.*\.ts$/.test(e.name)) out.push(rel);
    }
  };
  for (const dir of ["privilege", "collectors", "api_server", "lb"]) {
    try {
      walk(dir);
    } catch {
      // folder absent
    }
  }
  return out;
}

const output = Deno.args[0] ?? join(root, "dist", "ceems");
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    Deno.statSync(denort);
  } catch {
    console.error(`build: DENORT_BIN=${denort} does not exist`);
    Deno.exit(1);
  }
}
Deno.mkdirSync(join(output, ".."), { recursive: true });
// One binary serves every subcommand, so the exporter's heap settings apply to api and lb too (harmless there).
const args = ["compile", "-A", `--v8-flags=${EXPORTER_V8_FLAGS}`, "--output", output];
for (const w of workerModules()) args.push("--include", w);
args.push("main.ts");
console.error(`build: ${Deno.execPath()} ${args.join(" ")}${denort ? ` (DENORT_BIN=${denort})` : ""}`);
const out = new Deno.Command(Deno.execPath(), { args, cwd: root, stdout: "inherit", stderr: "piped" }).outputSync();
const err = new TextDecoder().decode(out.stderr);
Deno.stderr.writeSync(out.stderr);
if (out.code !== 0) {
  // deno compile leaves its partial output (<output>.tmp-<hex>, often empty) behind when it fails.
  const dir = join(output, "..");
  const base = output.slice(dir.length + 1);
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.startsWith(`${base}.tmp-`)) Deno.removeSync(join(dir, e.name));
  }
  if (/denort|download|dns|connect/i.test(err)) {
    console.error(
      "build: deno compile could not obtain its denort runtime. On a machine without access to Deno's\n" +
        "download server, fetch denort-x86_64-unknown-linux-gnu.zip for Deno " + Deno.version.deno +
        " elsewhere, unzip it, and run again with DENORT_BIN=/path/to/denort.",
    );
  }
  Deno.exit(out.code);
}
console.error(`build: wrote ${output}`);
