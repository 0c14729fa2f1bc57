// The shipped systemd units: `systemd-analyze verify` passes, each grants exactly the capabilities its
// ExecStart flags need (plus the start-up switch), and each is less exposed than CEEMS's exporter unit.

import { join } from "node:path";
import { SLURM_TOOL_CONTEXT } from "../../api_server/managers/slurm.ts";
import { exporterFlags, exporterSecurity } from "../../collectors/exporter.ts";
import { gatherSecurity } from "../../privilege/declare.ts";
import type { Capability } from "../../privilege/ops.ts";
import { rootStartBoundingSet } from "../../privilege/print.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

const unitDir = join(repoRoot, "packaging/systemd");
const UNITS = ["ceems_exporter", "ceems_api_server", "ceems_lb"];

/** Copies a unit into `dir` with its ExecStart binary replaced by a real executable copy of packaging/bin/ceems. */
function stage(dir: string, unitPath: string): string {
  const bin = join(dir, "ceems");
  Deno.copyFileSync(join(repoRoot, "packaging/bin/ceems"), bin);
  Deno.chmodSync(bin, 0o755);
  const text = Deno.readTextFileSync(unitPath).replace(/^ExecStart=\S+/m, `ExecStart=${bin}`);
  const out = join(dir, unitPath.split("/").pop()!);
  Deno.writeTextFileSync(out, text);
  return out;
}

function analyze(args: string[]): { code: number; out: string } {
  const r = new Deno.Command("systemd-analyze", { args, stdout: "piped", stderr: "piped" }).outputSync();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

function exposure(unit: string): number {
  const r = analyze(["security", "--offline=yes", unit]);
  const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.out);
  if (!m) throw new Error(`no exposure level:\n${r.out}`);
  return Number(m[1]);
}

function directive(text: string, key: string): string[] {
  const m = new RegExp(`^${key}=(.*)$`, "m").exec(text);
  if (!m) throw new Error(`${key} missing`);
  return m[1].split(/\s+/).filter((s) => s);
}

/** The subcommand of a unit's ExecStart and its flags. */
function execFlags(text: string): { sub: string; args: string[] } {
  const [, sub, ...args] = directive(text, "ExecStart");
  return { sub, args };
}

/** What a unit's ExecStart flags need, as the subcommand gathers it from the declarations. */
function unitRequired(sub: string, args: string[]): string[] {
  if (sub === "api") return [...gatherSecurity([{ contexts: [SLURM_TOOL_CONTEXT] }]).required.keys()];
  if (sub !== "exporter") return [];
  const fs = exporterFlags();
  // The IPMI tool may not be installed here: a root-owned stand-in gives the same declarations.
  fs.parse(
    args.map((a) => a.replace(/^--collector\.ipmi_dcmi\.cmd=.*/, "--collector.ipmi_dcmi.cmd=/usr/bin/true")),
    {},
  );
  return [...exporterSecurity(fs).required.keys()];
}

Deno.test("systemd-analyze verify accepts the three units", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-units-" });
  try {
    for (const u of UNITS) {
      // Documentation= names the man pages the package installs (the deployment test verifies them installed).
      const r = analyze(["verify", "--man=no", stage(dir, join(unitDir, `${u}.service`))]);
      assertEquals(r, { code: 0, out: "" }, u);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("each unit's capability lines match what its ExecStart flags declare", () => {
  for (const u of UNITS) {
    const text = Deno.readTextFileSync(join(unitDir, `${u}.service`));
    const { sub, args } = execFlags(text);
    const component = sub === "exporter" ? "exporter" : sub === "api" ? "api" : "lb";
    // The API unit is for a SLURM cluster; the exporter also runs its default collectors.
    const req = unitRequired(sub, args).map((c) => c.toUpperCase());
    const rootStart = !/^(User|DynamicUser)=/m.test(text);
    // A root start keeps what the switch uses (--print-capabilities prints the same line).
    const expected = new Set(
      rootStart ? rootStartBoundingSet(component, req.map((c) => c.toLowerCase() as Capability)) : req,
    );
    if (rootStart) {
      // /usr/bin/ceems chooses Deno's caches (read-only ones, or none): a unit that sets DENO_DIR could hand a
      // root start a cache it writes after the drop.
      assert(!/^Environment=.*\bDENO_DIR=/m.test(text), `${u} leaves DENO_DIR to /usr/bin/ceems`);
      assertEquals(directive(text, "NoNewPrivileges"), ["yes"], u);
    }
    assertEquals(new Set(directive(text, "CapabilityBoundingSet")), expected, u);
    assertEquals(directive(text, "AmbientCapabilities"), [], u);
    for (const k of ["ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "ProtectKernelModules=yes"]) {
      assert(text.includes(`\n${k}\n`), `${u}: ${k}`);
    }
    assert(text.includes("\nProtectControlGroups=yes\n") && text.includes("\nRestrictAddressFamilies="), u);
    assert(!/^MemoryDenyWriteExecute=yes/m.test(text), `${u}: MemoryDenyWriteExecute breaks V8`);
  }
});

Deno.test("every unit is less exposed than the exporter unit CEEMS ships", () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-units-" });
  try {
    const reference = exposure(stage(dir, join(unitDir, "reference/ceems_exporter.service")));
    const ours = Object.fromEntries(UNITS.map((u) => [u, exposure(stage(dir, join(unitDir, `${u}.service`)))]));
    console.log(`systemd-analyze security exposure: CEEMS exporter ${reference}, ${JSON.stringify(ours)}`);
    for (const [u, e] of Object.entries(ours)) assert(e < reference, `${u}: ${e} >= ${reference}`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
