// `promtool test rules` on the generated host rules, one test per node power source (IPMI, IPMI with
// RAPL and NVML GPUs, Redfish with two chassis, hwmon with IO/network, Cray, RAPL): values by hand.

import { assert } from "../../helpers/assert.ts";
import type { RulesJob } from "../../../tool/rules/types.ts";
import {
  ceemsNode,
  counter,
  type Expectation,
  expectPass,
  frFactors,
  gauge,
  N1,
  names,
  promtoolTest,
  rulesOpts,
  series,
  UNIT_A,
  UNIT_B,
} from "./promtool_fixture.ts";

const A = UNIT_A;
const B = UNIT_B;
const opts = rulesOpts;

function job(inputs: ReturnType<typeof ceemsNode>, hostPower: RulesJob["hostPower"], gpu?: RulesJob["gpu"]): RulesJob {
  return { job: "ceems", series: names(inputs), scrapeIntervalMs: 15_000, hostPower, gpu };
}

/** Usage expectations that hold on every `ceemsNode`. */
const USAGE: Expectation[] = [
  {
    expr: "uuid:ceems_cpu_usage:ratio_irate",
    samples: [[series("uuid:ceems_cpu_usage:ratio_irate", A), 50], [series("uuid:ceems_cpu_usage:ratio_irate", B), 50]],
  },
  {
    expr: "uuid:ceems_cpu_memory_usage:ratio",
    samples: [[series("uuid:ceems_cpu_memory_usage:ratio", A), 50], [
      series("uuid:ceems_cpu_memory_usage:ratio", B),
      75,
    ]],
  },
  // 2 busy CPUs of 4; 8 of 16 GB used.
  { expr: "job:ceems_cpu_usage:avg_ratio_irate", samples: [['job:ceems_cpu_usage:avg_ratio_irate{job="ceems"}', 50]] },
  {
    expr: "job:ceems_cpu_memory_usage:avg_ratio",
    samples: [['job:ceems_cpu_memory_usage:avg_ratio{job="ceems"}', 50]],
  },
];

const hostPower = (a: number, b: number): Expectation => ({
  expr: "uuid:ceems_host_power_watts:pue",
  samples: [[series("uuid:ceems_host_power_watts:pue", A), a], [series("uuid:ceems_host_power_watts:pue", B), b]],
});
const jobPower = (w: number): Expectation => ({
  expr: "job:ceems_host_power_watts:pue",
  samples: [['job:ceems_host_power_watts:pue{job="ceems"}', w]],
});

Deno.test("rules IPMI: 90 % of node power by CPU time, 10 % per unit; usage and job aggregates", async () => {
  // PUE 1.5 × 500 W = 750 W. A = 0.9×750×1/2 + 0.1×750/2 = 337.5 + 37.5 = 375; B = 0.9×750×1/4 + 37.5 = 206.25.
  const inputs = [...ceemsNode("n1:9010", "n1"), gauge("ceems_ipmi_dcmi_current_watts", N1, 500)];
  const rj = job(inputs, { kind: "ipmi", metric: "ceems_ipmi_dcmi_current_watts" });
  await expectPass([rj], opts(1.5), inputs, [
    ...USAGE,
    hostPower(375, 206.25),
    jobPower(750),
    {
      expr: "instance:ceems_ipmi_dcmi_current_watts:pue",
      samples: [[series("instance:ceems_ipmi_dcmi_current_watts:pue", N1), 750]],
    },
  ]);
  // The same test must catch a wrong split.
  const wrong = await promtoolTest(
    [rj],
    opts(1.5),
    inputs,
    [hostPower(375, 206.25)],
    (t) => t.replaceAll("0.1 *", "0.05 *"),
  );
  assert(wrong.code !== 0, "promtool test must fail on a wrong rule");
});

Deno.test("rules IPMI + RAPL + NVML GPU: GPU power off node power, rest split CPU/DRAM by RAPL; static emissions", async () => {
  // Node 1.5×500 = 750 W, GPU 1.5×100 = 150 W → host 600 W. RAPL package 60 W, DRAM 20 W → 3/4, 1/4.
  // A = 0.9×600×3/4×1/2 + 0.9×600×1/4×1/4 + 0.1×600/2 = 202.5 + 33.75 + 30 = 266.25
  // B = 0.9×600×3/4×1/4 + 0.9×600×1/4×3/4 + 30 = 101.25 + 101.25 + 30 = 232.5; B's GPU 150 W.
  // Emissions at 100 g/kWh: A 266.25×100/3.6e6 g/s; B's GPU 150×100/3.6e6; job 600×100/3.6e6.
  const gpu = { ...N1, index: "0", hindex: "n1/gpu-0", gpuuuid: "GPU-x" };
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    gauge("ceems_ipmi_dcmi_current_watts", N1, 500),
    counter("ceems_rapl_package_joules_total", { ...N1, index: "0", path: "/sys/class/powercap/intel-rapl:0" }, 900),
    counter("ceems_rapl_dram_joules_total", { ...N1, index: "0", path: "/sys/class/powercap/intel-rapl:0:0" }, 300),
    gauge("ceems_gpu_power_watts", gpu, 100),
    gauge("ceems_compute_unit_gpu_index_flag", { ...B, index: "0", hindex: "n1/gpu-0", gpuuuid: "GPU-x" }, 1),
  ];
  const rj = job(inputs, { kind: "ipmi", metric: "ceems_ipmi_dcmi_current_watts" }, {
    kind: "nvml",
    job: "ceems",
    prefix: "",
    series: names(inputs),
    inHostPower: true,
  });
  const em = { kind: "static", countryCode: "FR", provider: "custom", gCo2PerKWh: 100 } as const;
  const bGpu = { ...B, index: "0", hindex: "n1/gpu-0", gpuuuid: "GPU-x" };
  await expectPass([rj], opts(1.5, em), inputs, [
    hostPower(266.25, 232.5),
    jobPower(600),
    { expr: "uuid:ceems_gpu_power_watts:pue", samples: [[series("uuid:ceems_gpu_power_watts:pue", bGpu), 150]] },
    {
      expr: "instance:ceems_gpu_power_watts:pue",
      samples: [['instance:ceems_gpu_power_watts:pue{instance="n1:9010",job="ceems"}', 150]],
    },
    { expr: "job:ceems_gpu_power_watts:pue", samples: [['job:ceems_gpu_power_watts:pue{job="ceems"}', 150]] },
    {
      expr: 'uuid:ceems_host_emissions_g_s:pue{uuid="A"}',
      samples: [[series("uuid:ceems_host_emissions_g_s:pue", { ...A, provider: "custom" }), 266.25 / 3.6e6 * 100]],
    },
    {
      expr: "uuid:ceems_gpu_emissions_g_s:pue",
      samples: [[series("uuid:ceems_gpu_emissions_g_s:pue", { ...bGpu, provider: "custom" }), 150 / 3.6e6 * 100]],
    },
    {
      expr: "job:ceems_host_emissions_g_s:pue",
      samples: [[
        'job:ceems_host_emissions_g_s:pue{job="ceems",provider="custom",country_code="FR"}',
        600 * 100 / 3.6e6,
      ]],
    },
  ]);
});

Deno.test("rules Redfish: only the chosen chassis is node power; live factors from two exporters, one series each", async () => {
  // Chassis_1 400 W (node), Chassis_2 1000 W (GPU tray, not chosen). PUE 1.5 → 600 W.
  // A = 0.9×600/2 + 0.1×600/2 = 300; B = 0.9×600/4 + 30 = 165.
  // (Expected values are written in the rules' order of operations, W / 3.6e6 × factor: promtool 2.42
  // compares floats exactly.)
  // Factors FR owid 50, rte 20 and DE owid 300, each reported by the node's exporter and an emissions job.
  const factors = (inst: Record<string, string>) => [
    ...frFactors(inst),
    gauge("ceems_emissions_gCo2_kWh", {
      ...inst,
      provider: "owid",
      provider_name: "OWID",
      country_code: "DE",
      country: "Germany",
    }, 300),
  ];
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    gauge("ceems_redfish_current_watts", { ...N1, chassis: "Chassis_1" }, 400),
    gauge("ceems_redfish_current_watts", { ...N1, chassis: "Chassis_2" }, 1000),
    ...factors(N1),
    ...factors({ instance: "e:9010", job: "emissions", hostname: "e" }),
  ];
  const rj = job(inputs, {
    kind: "redfish",
    metric: "ceems_redfish_current_watts",
    selectLabel: "chassis",
    selectValues: ["Chassis_1"],
  });
  const em = { kind: "providers", countryCode: "FR", providers: ["owid", "rte"] } as const;
  const emis = (l: Record<string, string>, w: number, f: number, p: string): [string, number] => [
    series("uuid:ceems_host_emissions_g_s:pue", { ...l, provider: p }),
    w / 3.6e6 * f,
  ];
  await expectPass([rj], opts(1.5, em), inputs, [
    hostPower(300, 165),
    jobPower(600),
    {
      expr: "uuid:ceems_host_emissions_g_s:pue",
      samples: [emis(A, 300, 50, "owid"), emis(A, 300, 20, "rte"), emis(B, 165, 50, "owid"), emis(B, 165, 20, "rte")],
    },
    {
      expr: "job:ceems_host_emissions_g_s:pue",
      samples: [
        [
          'job:ceems_host_emissions_g_s:pue{job="ceems",provider="owid",country_code="FR",country="France"}',
          600 / 3.6e6 * 50,
        ],
        [
          'job:ceems_host_emissions_g_s:pue{job="ceems",provider="rte",country_code="FR",country="France"}',
          600 / 3.6e6 * 20,
        ],
        [
          'job:ceems_host_emissions_g_s:pue{job="ceems",provider="owid",country_code="DE",country="Germany"}',
          600 / 3.6e6 * 300,
        ],
      ],
    },
  ]);
});

Deno.test("rules hwmon: the chosen chip's sensors summed; IO and network rates per unit and per job", async () => {
  // platform_acpi power1 200 W + power2 100 W = 300 W (nvme_0 not chosen), PUE 1.
  // A = 0.9×300/2 + 0.1×300/2 = 150; B = 0.9×300/4 + 15 = 82.5.
  // IO (/home): A reads 1500 B and writes 750 B per 15 s, B reads 3000 B → A 100 B/s, 50 B/s; B 200 B/s; job 300 B/s.
  // Network: A receives 3000 B and sends 15 packets per 15 s (tcp, ipv4) → 200 B/s and 1 pkt/s.
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    gauge(
      "ceems_hwmon_power_current_watts",
      { ...N1, chip: "platform_acpi", chip_name: "acpi", sensor: "power1" },
      200,
    ),
    gauge(
      "ceems_hwmon_power_current_watts",
      { ...N1, chip: "platform_acpi", chip_name: "acpi", sensor: "power2" },
      100,
    ),
    gauge("ceems_hwmon_power_current_watts", { ...N1, chip: "nvme_0", chip_name: "nvme", sensor: "power1" }, 10),
    counter("ceems_ebpf_read_bytes_total", { ...A, mountpoint: "/home" }, 1500),
    counter("ceems_ebpf_write_bytes_total", { ...A, mountpoint: "/home" }, 750),
    counter("ceems_ebpf_read_bytes_total", { ...B, mountpoint: "/home" }, 3000),
    counter("ceems_ebpf_write_bytes_total", { ...B, mountpoint: "/home" }, 0),
    counter("ceems_ebpf_ingress_bytes_total", { ...A, family: "ipv4", proto: "tcp" }, 3000),
    counter("ceems_ebpf_egress_packets_total", { ...A, family: "ipv4", proto: "tcp" }, 15),
  ];
  const rj = job(inputs, {
    kind: "hwmon",
    metric: "ceems_hwmon_power_current_watts",
    selectLabel: "chip",
    selectValues: ["platform_acpi"],
  });
  await expectPass([rj], opts(1), inputs, [
    hostPower(150, 82.5),
    jobPower(300),
    {
      expr: "uuid:ceems_io_read_bytes:irate",
      samples: [
        [series("uuid:ceems_io_read_bytes:irate", { ...A, mountpoint: "/home" }), 100],
        [series("uuid:ceems_io_read_bytes:irate", { ...B, mountpoint: "/home" }), 200],
      ],
    },
    {
      expr: 'uuid:ceems_io_write_bytes:irate{uuid="A"}',
      samples: [[series("uuid:ceems_io_write_bytes:irate", { ...A, mountpoint: "/home" }), 50]],
    },
    {
      expr: "job:ceems_io_read_bytes:sum_irate",
      samples: [['job:ceems_io_read_bytes:sum_irate{job="ceems",mountpoint="/home"}', 300]],
    },
    {
      expr: "uuid:ceems_net_ingress_bytes:irate",
      samples: [[series("uuid:ceems_net_ingress_bytes:irate", { ...A, family: "ipv4", proto: "tcp" }), 200]],
    },
    {
      expr: "job:ceems_net_egress_packets:sum_irate",
      samples: [['job:ceems_net_egress_packets:sum_irate{job="ceems",family="ipv4",proto="tcp"}', 1]],
    },
  ]);
});

Deno.test("rules Cray PM counters: cpu domain by CPU time, memory domain by memory, the rest per unit", async () => {
  // CEEMS fixture domains: node 873, cpu 83, memory 75, accel0..3 99+197+263+123 = 682; PUE 1.
  // Rest = 873 − (83 + 75 + 682) = 33. A = 83/2 + 75/4 + 33/2 = 76.75; B = 83/4 + 75×3/4 + 33/2 = 93.5.
  // Job host power (no accelerators) = 873 − 682 = 191.
  const domains: [string, number][] = [["node", 873], ["cpu", 83], ["memory", 75], ["accel0", 99], ["accel1", 197], [
    "accel2",
    263,
  ], ["accel3", 123]];
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    ...domains.map(([d, w]) => gauge("ceems_cray_pm_counters_power_watts", { ...N1, domain: d }, w)),
  ];
  const rj = job(inputs, { kind: "cray", metric: "ceems_cray_pm_counters_power_watts" });
  await expectPass([rj], opts(1), inputs, [hostPower(76.75, 93.5), jobPower(191)]);
});

Deno.test("rules RAPL only: package power by CPU time, DRAM power by memory share", async () => {
  // Package 900 J and DRAM 300 J per 15 s = 60 W and 20 W; PUE 1.2.
  // A = 1.2 × (60/2 + 20/4) = 42; B = 1.2 × (60/4 + 20×3/4) = 36; job 1.2 × 80 = 96.
  const inputs = [
    ...ceemsNode("n1:9010", "n1"),
    counter("ceems_rapl_package_joules_total", { ...N1, index: "0", path: "p0" }, 900),
    counter("ceems_rapl_dram_joules_total", { ...N1, index: "0", path: "p0d" }, 300),
  ];
  const rj = job(inputs, { kind: "rapl", metric: "ceems_rapl_package_joules_total" });
  // 5 min = 20 steps: the package counter reads 18000 J, times the PUE.
  await expectPass([rj], opts(1.2), inputs, [
    hostPower(42, 36),
    jobPower(96),
    {
      expr: "instance:ceems_rapl_package_joules_total:pue",
      samples: [[series("instance:ceems_rapl_package_joules_total:pue", { ...N1, index: "0", path: "p0" }), 21600]],
    },
  ]);
});
