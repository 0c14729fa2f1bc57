// `promtool test rules` with many exporters per cluster: two CEEMS nodes that both report emission
// factors (CEEMS #592/#593), a DCGM exporter on each node, an emissions-only job; every series exactly once.

import { assert, assertEquals } from "../../helpers/assert.ts";
import type { RulesJob, RulesOptions } from "../../../tool/rules/types.ts";
import {
  ceemsNode,
  type Expectation,
  frFactors,
  gauge,
  names,
  promtoolTest,
  series,
  unitLabels,
} from "./promtool_fixture.ts";

const n = (i: string) => ({ instance: `${i}:9010`, job: "ceems", hostname: i });
const dcgm = (i: string, uuid: string, w: number) =>
  gauge(
    "DCGM_FI_DEV_POWER_USAGE_INSTANT",
    { instance: `${i}:9400`, job: "dcgm", Hostname: i, UUID: uuid, gpu: "0" },
    w,
  );

// Nodes n1 (IPMI 500 W, GPU-a 100 W held by n1-B) and n2 (IPMI 300 W, GPU-b 200 W held by n2-A); PUE 1;
// both exporters (and an emissions job) report FR owid 50 and rte 20 g/kWh.
// Host power: n1 500 − 100 = 400 → n1-A = 0.9×400/2 + 0.1×400/2 = 200, n1-B = 0.9×400/4 + 20 = 110;
//             n2 300 − 200 = 100 → n2-A = 45 + 5 = 50, n2-B = 22.5 + 5 = 27.5. Job host power 500 W.
// GPU power: n1-B 100, n2-A 200; job (dcgm) 300 W.
// Emissions = W / 3.6e6 × factor, once per provider: n1-A owid 200/3.6e6×50; job host owid 500/3.6e6×50.
const inputs = [
  ...ceemsNode("n1:9010", "n1", "ceems", "n1-"),
  ...ceemsNode("n2:9010", "n2", "ceems", "n2-"),
  gauge("ceems_ipmi_dcmi_current_watts", n("n1"), 500),
  gauge("ceems_ipmi_dcmi_current_watts", n("n2"), 300),
  ...frFactors(n("n1")),
  ...frFactors(n("n2")),
  ...frFactors({ instance: "e:9010", job: "emissions", hostname: "e" }),
  gauge(
    "ceems_compute_unit_gpu_index_flag",
    { ...unitLabels("n1:9010", "n1", "n1-B"), index: "0", gpuuuid: "GPU-a" },
    1,
  ),
  gauge(
    "ceems_compute_unit_gpu_index_flag",
    { ...unitLabels("n2:9010", "n2", "n2-A"), index: "0", gpuuuid: "GPU-b" },
    1,
  ),
  dcgm("n1", "GPU-a", 100),
  dcgm("n2", "GPU-b", 200),
];

const rj: RulesJob = {
  job: "ceems",
  series: names(inputs),
  scrapeIntervalMs: 15_000,
  hostPower: { kind: "ipmi", metric: "ceems_ipmi_dcmi_current_watts" },
  gpu: {
    kind: "dcgm",
    job: "dcgm",
    prefix: "",
    series: new Set(["DCGM_FI_DEV_POWER_USAGE_INSTANT"]),
    inHostPower: true,
  },
};
const opts: RulesOptions = {
  pue: 1,
  evalIntervalMs: 15_000,
  emissions: { kind: "providers", countryCode: "FR", providers: ["owid", "rte"] },
};

const u = (node: string, id: string) => unitLabels(`${node}:9010`, node, `${node}-${id}`);
const host: [Record<string, string>, number][] = [[u("n1", "A"), 200], [u("n1", "B"), 110], [u("n2", "A"), 50], [
  u("n2", "B"),
  27.5,
]];
const gpuUnits: [Record<string, string>, number][] = [
  [{ ...u("n1", "B"), index: "0", gpuuuid: "GPU-a" }, 100],
  [{ ...u("n2", "A"), index: "0", gpuuuid: "GPU-b" }, 200],
];
const emis = (name: string, units: [Record<string, string>, number][]): Expectation => ({
  expr: name,
  samples: units.flatMap(([l, w]) => [
    [series(name, { ...l, provider: "owid" }), w / 3.6e6 * 50] as [string, number],
    [series(name, { ...l, provider: "rte" }), w / 3.6e6 * 20] as [string, number],
  ]),
});
const EXPECT: Expectation[] = [
  {
    expr: "uuid:ceems_host_power_watts:pue",
    samples: host.map(([l, w]) => [series("uuid:ceems_host_power_watts:pue", l), w]),
  },
  {
    expr: "uuid:ceems_gpu_power_watts:pue",
    samples: gpuUnits.map(([l, w]) => [series("uuid:ceems_gpu_power_watts:pue", l), w]),
  },
  emis("uuid:ceems_host_emissions_g_s:pue", host),
  emis("uuid:ceems_gpu_emissions_g_s:pue", gpuUnits),
  {
    expr: "job:ceems_host_emissions_g_s:pue",
    samples: [
      [
        'job:ceems_host_emissions_g_s:pue{job="ceems",country_code="FR",country="France",provider="owid"}',
        500 / 3.6e6 * 50,
      ],
      [
        'job:ceems_host_emissions_g_s:pue{job="ceems",country_code="FR",country="France",provider="rte"}',
        500 / 3.6e6 * 20,
      ],
    ],
  },
  {
    expr: "job:ceems_gpu_emissions_g_s:pue",
    samples: [
      [
        'job:ceems_gpu_emissions_g_s:pue{job="dcgm",country_code="FR",country="France",provider="owid"}',
        300 / 3.6e6 * 50,
      ],
      [
        'job:ceems_gpu_emissions_g_s:pue{job="dcgm",country_code="FR",country="France",provider="rte"}',
        300 / 3.6e6 * 20,
      ],
    ],
  },
  {
    expr: "instance:ceems_gpu_power_watts:pue",
    samples: [
      ['instance:ceems_gpu_power_watts:pue{instance="n1:9010",job="ceems"}', 100],
      ['instance:ceems_gpu_power_watts:pue{instance="n2:9010",job="ceems"}', 200],
    ],
  },
];

Deno.test("rules with many exporters: factors from three exporters fold to one emissions series per provider", async () => {
  const r = await promtoolTest([rj], opts, inputs, EXPECT);
  assertEquals(r.code, 0, `${r.out}\n${[...r.rules.values()].join("\n")}`);
});

Deno.test("rules with many exporters: CEEMS's raw factor join (#592) leaves the emissions series empty", async () => {
  // Joining the raw factor series, as CEEMS's rules did, matches three series per provider: many-to-many,
  // so the rule fails at every evaluation and records nothing. The same expectations must then fail.
  const r = await promtoolTest([rj], opts, inputs, EXPECT.slice(2, 3), (t) => t.replaceAll("max by (provider) (", "("));
  assert(r.code !== 0, "the raw join must not produce the expected series");
  assert(r.out.includes("many-to-many matching not allowed"), r.out);
});
