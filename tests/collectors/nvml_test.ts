// Tests of the nvml collector against the fake NVML library: per-GPU and per-MIG metrics and units,
// unsupported values, a missing library, --collector.gpu.type handling, and the exporter end to end.

import { existsSync } from "node:fs";
import { registeredCollectors } from "../../collectors/framework/registry.ts";
import "../../collectors/nvml.ts";
import { NoDataError } from "../../collectors/framework/collector.ts";
import { FamilySink } from "../../collectors/framework/metric_sink.ts";
import { FlagSet } from "../../common/flags.ts";
import { Logger } from "../../common/log.ts";
import { InlineSecurityManager } from "../../privilege/security.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { parseExposition, parseTypes, startCeems } from "../helpers/process.ts";
import { fakeNvml, h100 } from "../fakes/nvml.ts";

const def = registeredCollectors().find((d) => d.name === "nvml")!;

function flags(args: string[], declareGpuType = false): FlagSet {
  const fs = new FlagSet("t", "t");
  if (declareGpuType) fs.add({ name: "collector.gpu.type", kind: "string", help: "x" });
  def.registerFlags!(fs);
  fs.parse(args);
  return fs;
}

async function create(fs: FlagSet, lines: string[] = []) {
  return await def.create({
    logger: new Logger("debug", "logfmt", {}, (l) => lines.push(l)),
    paths: { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup" },
    hostname: "node1",
    security: new InlineSecurityManager(),
  }, def.options!(fs));
}

async function noData(update: () => unknown): Promise<string> {
  try {
    await update();
  } catch (e) {
    assert(e instanceof NoDataError, String(e));
    return e.message;
  }
  throw new Error("expected NoDataError");
}

Deno.test("nvml collector: watts and joules per GPU and per MIG instance, rising energy, info metric", async () => {
  const dir = Deno.makeTempDirSync();
  const mig =
    "gpu GPU-bbbb 250000 9000000 1 7 NVIDIA H100 80GB HBM3\nmig 1 0 MIG-1111 1 E3 E3\nmig 1 3 MIG-3333 4 31000 700000\n";
  const { lib, config, log } = fakeNvml(dir, `driver 580.159.04\n${h100}\n${mig}`);
  const c = await create(flags([`--collector.nvml.library-path=${lib}`]));
  try {
    const s1 = new FamilySink();
    await c.update(s1);
    const power = s1.families.get("ceems_gpu_power_watts")!;
    const energy = s1.families.get("ceems_gpu_energy_joules_total")!;
    assertEquals(power.type, "gauge");
    assertEquals(energy.type, "counter");
    const base = {
      hostname: "node1",
      index: "0",
      hindex: "node1/gpu-0",
      gpuuuid: "GPU-083b8c1d-11cc-660b-aae2-23e15449cf91",
    };
    assertEquals(power.samples[0], { labels: { ...base, gpuiid: "" }, value: 105.9 });
    assertEquals(energy.samples[0], { labels: { ...base, gpuiid: "" }, value: 2264.388 });
    // MIG instance 1 has no power/energy support: only its info series; instance 4 reports both.
    const migLabels = { hostname: "node1", index: "1", hindex: "node1/gpu-1", gpuuuid: "GPU-bbbb", gpuiid: "4" };
    assertEquals(power.samples.map((s) => s.labels.gpuiid), ["", "", "4"]);
    assertEquals(power.samples[2], { labels: migLabels, value: 31 });
    assertEquals(energy.samples[2], { labels: migLabels, value: 700 });
    const info = s1.families.get("ceems_gpu_info")!.samples;
    assertEquals(info.length, 4);
    assertEquals(info[2].labels.miguuid, "MIG-1111");
    assertEquals(info[0].labels.driver_version, "580.159.04");
    // 8 s of ~690 W later: the counter moves by 5514.5 J (the recorded H100 load of data/README.md).
    Deno.writeTextFileSync(config, `${h100.replace("105900 2264388", "690000 7778888")}\n`);
    const s2 = new FamilySink();
    await c.update(s2);
    const e2 = s2.families.get("ceems_gpu_energy_joules_total")!.samples[0].value;
    assertEquals(Math.round((e2 - 2264.388) * 10) / 10, 5514.5);
  } finally {
    await c.stop?.();
  }
  assertEquals(Deno.readTextFileSync(log), "init\nshutdown\n");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("nvml collector: missing library logs once and reports no data; lost GPU fails the scrape", async () => {
  const dir = Deno.makeTempDirSync();
  const lines: string[] = [];
  const c = await create(flags([`--collector.nvml.library-path=${dir}/nope.so`]), lines);
  assertEquals(await noData(() => c.update(new FamilySink())), "NVML not loaded");
  assertEquals(lines.filter((l) => l.includes("NVML not available")).length, 1);
  await c.stop?.();

  const { lib, config } = fakeNvml(dir, `${h100}\n`);
  const c2 = await create(flags([`--collector.nvml.library-path=${lib}`]), lines);
  try {
    await c2.update(new FamilySink());
    Deno.writeTextFileSync(config, "gpu GPU-x E15 E15 0 0 Lost\n"); // reads now answer GPU_IS_LOST
    let err: unknown;
    try {
      await c2.update(new FamilySink());
    } catch (e) {
      err = e;
    }
    assert(err instanceof Error && !(err instanceof NoDataError), String(err));
    assert(/gpu 0: .*GPU is lost \(15\)/.test((err as Error).message), String(err));
    assertEquals(lines.filter((l) => l.includes("NVML device read failed")).length, 1);
    Deno.writeTextFileSync(config, ""); // no GPU at all
    assertEquals(await noData(() => c2.update(new FamilySink())), "no GPU found by NVML");
  } finally {
    await c2.stop?.();
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("nvml collector stays idle when --collector.gpu.type is declared and not nvidia", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib, log } = fakeNvml(dir, `${h100}\n`);
  const idle = await create(flags([`--collector.nvml.library-path=${lib}`, "--collector.gpu.type=amd"], true));
  assertEquals(await noData(() => idle.update(new FamilySink())), "--collector.gpu.type=amd");
  assert(!existsSync(log), "NVML must not be loaded");
  const on = await create(flags([`--collector.nvml.library-path=${lib}`, "--collector.gpu.type=nvidia"], true));
  const s = new FamilySink();
  await on.update(s);
  assertEquals(s.families.get("ceems_gpu_power_watts")!.samples.length, 1);
  await on.stop?.();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("exporter exposes NVML GPU metrics through --collector.nvml with the library path override", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeNvml(dir, `${h100}\n`);
  // Started as root the exporter drops to nobody, and the fake library reads its config at every call.
  Deno.chmodSync(dir, 0o755);
  Deno.chmodSync(`${dir}/nvml.conf`, 0o644);
  const ceems = await startCeems(
    ["exporter", "--collector.disable-defaults", "--collector.nvml", `--collector.nvml.library-path=${lib}`],
    { env: { FAKE_NVML_CONFIG: `${dir}/nvml.conf` } },
  );
  try {
    const text = await (await fetch(`${ceems.base}/metrics`)).text();
    const m = parseExposition(text);
    const host = [...m.keys()].find((k) => k.startsWith("ceems_gpu_power_watts"))!;
    assert(host, text);
    assertEquals(m.get(host), 105.9);
    assertEquals(parseTypes(text).get("ceems_gpu_energy_joules_total"), "counter");
    assertEquals(m.get('ceems_scrape_collector_success{collector="nvml"}'), 1);
  } finally {
    const { stderr } = await ceems.stop();
    assert(stderr.includes("NVML loaded"), stderr);
    Deno.removeSync(dir, { recursive: true });
  }
});
