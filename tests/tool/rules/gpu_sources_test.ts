// `promtool test rules` on the generated GPU rules for NVIDIA's DCGM exporter (whole and MIG GPUs), AMD's
// device metrics exporter (partitions) and AMD's SMI exporter (two nodes, joined by node and index).

import type { GpuSource, RulesJob } from "../../../tool/rules/types.ts";
import {
  ceemsNode,
  type Expectation,
  expectPass,
  gauge,
  type InputSeries,
  N1,
  names,
  rulesOpts,
  series,
  UNIT_A,
  UNIT_B,
  unitLabels,
} from "./promtool_fixture.ts";

const A = UNIT_A;
const B = UNIT_B;
const opts = (pue: number) => rulesOpts(pue);

function rulesJob(inputs: InputSeries[], gpu: GpuSource, power = "ceems_ipmi_dcmi_current_watts"): RulesJob {
  return {
    job: "ceems",
    series: names(inputs),
    scrapeIntervalMs: 15_000,
    hostPower: { kind: "ipmi", metric: power },
    gpu,
  };
}

const hostPower = (a: number, b: number): Expectation => ({
  expr: "uuid:ceems_host_power_watts:pue",
  samples: [[series("uuid:ceems_host_power_watts:pue", A), a], [series("uuid:ceems_host_power_watts:pue", B), b]],
});

Deno.test("rules DCGM exporter: whole GPU and MIG instance joined by UUID/GPU_I_ID; GPU power off node power", async () => {
  // DCGM on n1:9400. GPU-a (whole) 200 W; GPU-m in MIG mode, 300 W reported on each instance (1 and 5).
  // B holds GPU-a (flag 1), A holds GPU-m instance 1 (flag 0.6). PUE 1.5:
  //   B's GPU = 1.5×200 = 300; A's GPU = 0.6 × 1.5×300 = 270; node GPUs = 300 + 450 = 750 W.
  //   Node 1.5×1000 = 1500 W − 750 = 750 W host: A = 0.9×750/2 + 0.1×750/2 = 375; B = 0.9×750/4 + 37.5 = 206.25.
  // Usage from GR_ENGINE_ACTIVE × 100: B 80, A 40. Memory: GPU-a 30 of 40 used → 75; MIG 1: 5 of 20 → 25.
  // Job: DEV_GPU_UTIL of the physical GPUs 80 and 50 → 65; memory (75 + 25)/2 = 50; power 750.
  const d = { instance: "n1:9400", job: "dcgm", Hostname: "n1", modelName: "NVIDIA H100" };
  const ga = { ...d, UUID: "GPU-a", gpu: "0", device: "nvidia0" };
  const gm = (iid: string) => ({ ...d, UUID: "GPU-m", gpu: "1", device: "nvidia1", GPU_I_ID: iid });
  const flagA = { ...A, index: "1", hindex: "n1/gpu-1", gpuuuid: "GPU-m", gpuiid: "1" };
  const flagB = { ...B, index: "0", hindex: "n1/gpu-0", gpuuuid: "GPU-a" };
  const dcgm = [
    gauge("DCGM_FI_DEV_POWER_USAGE_INSTANT", ga, 200),
    gauge("DCGM_FI_DEV_POWER_USAGE_INSTANT", gm("1"), 300),
    gauge("DCGM_FI_DEV_POWER_USAGE_INSTANT", gm("5"), 300),
    gauge("DCGM_FI_DEV_GPU_UTIL", ga, 80),
    gauge("DCGM_FI_DEV_GPU_UTIL", { ...d, UUID: "GPU-m", gpu: "1", device: "nvidia1" }, 50),
    gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", ga, 0.8),
    gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", gm("1"), 0.4),
    gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", gm("5"), 0.9),
    gauge("DCGM_FI_DEV_FB_USED", ga, 30),
    gauge("DCGM_FI_DEV_FB_FREE", ga, 10),
    gauge("DCGM_FI_DEV_FB_USED", gm("1"), 5),
    gauge("DCGM_FI_DEV_FB_FREE", gm("1"), 15),
  ];
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    gauge("ceems_ipmi_dcmi_current_watts", N1, 1000),
    gauge("ceems_compute_unit_gpu_index_flag", flagA, 0.6),
    gauge("ceems_compute_unit_gpu_index_flag", flagB, 1),
    ...dcgm,
  ];
  const rj = rulesJob(inputs, { kind: "dcgm", job: "dcgm", prefix: "", series: names(dcgm), inHostPower: true });
  await expectPass([rj], opts(1.5), inputs, [
    hostPower(375, 206.25),
    {
      expr: "uuid:ceems_gpu_power_watts:pue",
      samples: [[series("uuid:ceems_gpu_power_watts:pue", flagA), 270], [
        series("uuid:ceems_gpu_power_watts:pue", flagB),
        300,
      ]],
    },
    {
      expr: "uuid:ceems_gpu_usage:ratio",
      samples: [[series("uuid:ceems_gpu_usage:ratio", flagA), 40], [series("uuid:ceems_gpu_usage:ratio", flagB), 80]],
    },
    {
      expr: "uuid:ceems_gpu_gr_engine_active:ratio",
      samples: [[series("uuid:ceems_gpu_gr_engine_active:ratio", flagA), 40], [
        series("uuid:ceems_gpu_gr_engine_active:ratio", flagB),
        80,
      ]],
    },
    {
      expr: "uuid:ceems_gpu_memory_usage:ratio",
      samples: [[series("uuid:ceems_gpu_memory_usage:ratio", flagA), 25], [
        series("uuid:ceems_gpu_memory_usage:ratio", flagB),
        75,
      ]],
    },
    {
      expr: "instance:ceems_gpu_power_watts:pue",
      samples: [['instance:ceems_gpu_power_watts:pue{instance="n1:9010",job="ceems"}', 750]],
    },
    { expr: "job:ceems_gpu_power_watts:pue", samples: [['job:ceems_gpu_power_watts:pue{job="dcgm"}', 750]] },
    { expr: "job:ceems_gpu_usage:avg", samples: [['job:ceems_gpu_usage:avg{job="dcgm"}', 65]] },
    {
      expr: "job:ceems_gpu_memory_usage:avg_ratio",
      samples: [['job:ceems_gpu_memory_usage:avg_ratio{job="dcgm"}', 50]],
    },
    { expr: "job:ceems_host_power_watts:pue", samples: [['job:ceems_host_power_watts:pue{job="ceems"}', 750]] },
  ]);
});

Deno.test("rules AMD device metrics exporter: serial/partition join, power read on partition 0 only", async () => {
  // GPU S1 in two partitions; package power 250 W on partition 0, 0 on partition 1 (as the exporter reports).
  // A holds partition 0, B partition 1, each flag 0.5 → 125 W each (PUE 1). Node 600 W − 250 = 350 W:
  //   A = 0.9×350/2 + 0.1×350/2 = 175; B = 0.9×350/4 + 17.5 = 96.25.
  // gfx activity 60 and 20; VRAM 10 and 20 of 40 → 25 % and 50 %. Job: power 250, usage (60+20)/2 = 40.
  const g = (p: string) => ({ instance: "n1:9600", job: "amd", gpu_id: "0", gpu_partition_id: p, serial_number: "S1" });
  const amd = [
    gauge("gpu_package_power", g("0"), 250),
    gauge("gpu_package_power", g("1"), 0),
    gauge("gpu_gfx_activity", g("0"), 60),
    gauge("gpu_gfx_activity", g("1"), 20),
    gauge("gpu_used_vram", g("0"), 10),
    gauge("gpu_total_vram", g("0"), 40),
    gauge("gpu_used_vram", g("1"), 20),
    gauge("gpu_total_vram", g("1"), 40),
  ];
  const flagA = { ...A, index: "0", hindex: "n1/gpu-0", gpuuuid: "S1", gpuiid: "0" };
  const flagB = { ...B, index: "0", hindex: "n1/gpu-0", gpuuuid: "S1", gpuiid: "1" };
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    gauge("ceems_ipmi_dcmi_current_watts", N1, 600),
    gauge("ceems_compute_unit_gpu_index_flag", flagA, 0.5),
    gauge("ceems_compute_unit_gpu_index_flag", flagB, 0.5),
    ...amd,
  ];
  const rj = rulesJob(inputs, {
    kind: "amd-device-metrics",
    job: "amd",
    prefix: "",
    series: names(amd),
    inHostPower: true,
  });
  await expectPass([rj], opts(1), inputs, [
    hostPower(175, 96.25),
    {
      expr: "uuid:ceems_gpu_power_watts:pue",
      samples: [[series("uuid:ceems_gpu_power_watts:pue", flagA), 125], [
        series("uuid:ceems_gpu_power_watts:pue", flagB),
        125,
      ]],
    },
    {
      expr: "uuid:ceems_gpu_usage:ratio",
      samples: [[series("uuid:ceems_gpu_usage:ratio", flagA), 60], [series("uuid:ceems_gpu_usage:ratio", flagB), 20]],
    },
    {
      expr: "uuid:ceems_gpu_memory_usage:ratio",
      samples: [
        [series("uuid:ceems_gpu_memory_usage:ratio", { ...flagA, type: "vram" }), 25],
        [series("uuid:ceems_gpu_memory_usage:ratio", { ...flagB, type: "vram" }), 50],
      ],
    },
    { expr: "job:ceems_gpu_power_watts:pue", samples: [['job:ceems_gpu_power_watts:pue{job="amd"}', 250]] },
    { expr: "job:ceems_gpu_usage:avg", samples: [['job:ceems_gpu_usage:avg{job="amd"}', 40]] },
  ]);
});

Deno.test("rules AMD SMI exporter: GPUs joined by node and index, so index 0 of two nodes never mix", async () => {
  // n1: GPU 0 100 W (A), GPU 1 50 W (B); n2: GPU 0 200 W (unit n2-A). Power in µW, PUE 1.
  // Use 70, 30 and 80 %; memory 10, 20 and 40 %. Job power 350 W, usage (70+30+80)/3 = 60.
  const smi = (inst: string, i: string, m: string, v: number) =>
    gauge(`amd_${m}`, { instance: inst, job: "amdsmi", [m]: i }, v);
  const amd = [
    smi("n1:9500", "0", "gpu_power", 100e6),
    smi("n1:9500", "1", "gpu_power", 50e6),
    smi("n2:9500", "0", "gpu_power", 200e6),
    smi("n1:9500", "0", "gpu_use_percent", 70),
    smi("n1:9500", "1", "gpu_use_percent", 30),
    smi("n2:9500", "0", "gpu_use_percent", 80),
    smi("n1:9500", "0", "gpu_memory_use_percent", 10),
    smi("n1:9500", "1", "gpu_memory_use_percent", 20),
    smi("n2:9500", "0", "gpu_memory_use_percent", 40),
  ];
  const A2 = unitLabels("n2:9010", "n2", "n2-A");
  const flagA = { ...A, index: "0", hindex: "n1/gpu-0" };
  const flagB = { ...B, index: "1", hindex: "n1/gpu-1" };
  const flagA2 = { ...A2, index: "0", hindex: "n2/gpu-0" };
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    ...ceemsNode("n2:9010", "n2", "ceems", "n2-"),
    gauge("ceems_ipmi_dcmi_current_watts", N1, 500),
    gauge("ceems_ipmi_dcmi_current_watts", { instance: "n2:9010", job: "ceems", hostname: "n2" }, 300),
    gauge("ceems_compute_unit_gpu_index_flag", flagA, 1),
    gauge("ceems_compute_unit_gpu_index_flag", flagB, 1),
    gauge("ceems_compute_unit_gpu_index_flag", flagA2, 1),
    ...amd,
  ];
  const rj = rulesJob(inputs, { kind: "amd-smi", job: "amdsmi", prefix: "", series: names(amd), inHostPower: false });
  const s = (name: string, l: Record<string, string>, v: number): [string, number] => [series(name, l), v];
  await expectPass([rj], opts(1), inputs, [
    {
      expr: "uuid:ceems_gpu_power_watts:pue",
      samples: [
        s("uuid:ceems_gpu_power_watts:pue", flagA, 100),
        s("uuid:ceems_gpu_power_watts:pue", flagB, 50),
        s("uuid:ceems_gpu_power_watts:pue", flagA2, 200),
      ],
    },
    {
      expr: "uuid:ceems_gpu_usage:ratio",
      samples: [
        s("uuid:ceems_gpu_usage:ratio", flagA, 70),
        s("uuid:ceems_gpu_usage:ratio", flagB, 30),
        s("uuid:ceems_gpu_usage:ratio", flagA2, 80),
      ],
    },
    {
      expr: "uuid:ceems_gpu_memory_usage:ratio",
      samples: [
        s("uuid:ceems_gpu_memory_usage:ratio", flagA, 10),
        s("uuid:ceems_gpu_memory_usage:ratio", flagB, 20),
        s("uuid:ceems_gpu_memory_usage:ratio", flagA2, 40),
      ],
    },
    { expr: "job:ceems_gpu_power_watts:pue", samples: [['job:ceems_gpu_power_watts:pue{job="amdsmi"}', 350]] },
    { expr: "job:ceems_gpu_usage:avg", samples: [['job:ceems_gpu_usage:avg{job="amdsmi"}', 60]] },
  ]);
});
