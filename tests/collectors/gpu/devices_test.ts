// Tests of GPU inventory parsing: the XML reader, nvidia-smi XML (a real H100 capture and MIG devices),
// vGPU query text, rocm-smi CSV, amd-smi JSON, bus id normalisation and --collector.slurm.gpu-order-map.

import {
  applyOrderMap,
  normalizeBusId,
  parseAmdSmiJson,
  parseNvidiaSmiXml,
  parseNvidiaVgpuQuery,
  parseRocmSmiCsv,
} from "../../../collectors/gpu/devices.ts";
import { smCountForModel } from "../../../collectors/gpu/sm_table.ts";
import { parseXml, textAt } from "../../../collectors/gpu/xml.ts";
import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";
import { ceemsE2eDir } from "../ceems_fixtures.ts";

const gpuXml = (minor: number, bus: string, mig = "") =>
  `<gpu id="${bus}"><product_name>NVIDIA A100</product_name><mig_mode><current_mig>${
    mig ? "Enabled" : "Disabled"
  }</current_mig></mig_mode><mig_devices>${mig || "None"}</mig_devices><uuid>GPU-${minor}</uuid>` +
  `<minor_number>${minor}</minor_number></gpu>`;
const migXml = (gi: number, sms: number) =>
  `<mig_device><index>0</index><gpu_instance_id>${gi}</gpu_instance_id><device_attributes><shared>` +
  `<multiprocessor_count>${sms}</multiprocessor_count></shared></device_attributes></mig_device>`;
const doc = (gpus: string) =>
  `<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "x.dtd">\n<nvidia_smi_log>${gpus}</nvidia_smi_log>`;

Deno.test("parseXml: elements, attributes, entities; malformed documents throw", () => {
  const r = parseXml(`<a x='1' y="&lt;2&gt;"><b>t &amp; u</b><c/><!-- c --></a>`);
  assertEquals(r.attrs, { x: "1", y: "<2>" });
  assertEquals(textAt(r, "b"), "t & u");
  assertThrows(() => parseXml("<a><b></a>"), /unexpected/);
  assertThrows(() => parseXml("<a>"), /not closed/);
  assertThrows(() => parseXml("not xml at all"), /one root/);
  assertThrows(() => parseXml("<a>1 < 2</a>"), /invalid XML/);
});

Deno.test("nvidia-smi XML: devices sorted by minor, MIG instances flattened with SM shares", () => {
  const devs = parseNvidiaSmiXml(doc(
    gpuXml(1, "00000000:15:00.0") + gpuXml(0, "00000000:10:00.0", migXml(1, 42) + migXml(5, 14) + migXml(13, 14)),
  ));
  assertEquals(devs.map((d) => [d.index, d.minor, d.instanceId, d.busId]), [
    ["0", "0", "1", "0000:10:00.0"],
    ["1", "0", "5", "0000:10:00.0"],
    ["2", "0", "13", "0000:10:00.0"],
    ["3", "1", "", "0000:15:00.0"],
  ]);
  assertEquals(devs.map((d) => d.fraction), [0.6, 0.2, 0.2, 1]);
  // MIG instances carry their own SM counts; a whole A100 has the model's 108.
  assertEquals(devs.map((d) => d.smCount), [42, 14, 14, 108]);
  assertThrows(() => parseNvidiaSmiXml("<other/>"), /unexpected root/);
  assertThrows(() => parseNvidiaSmiXml(doc("<gpu id='1'><uuid>x</uuid></gpu>")), /minor_number/);
});

Deno.test("nvidia-smi XML: the real H100 capture parses to one full device", () => {
  const e2e = ceemsE2eDir();
  if (!e2e) {
    console.warn("CEEMS e2e data absent: H100 capture test skipped");
    return;
  }
  const text = Deno.readTextFileSync(`${e2e}/tools/h100-real_nvidia-smi_-q_-x.xml`);
  const devs = parseNvidiaSmiXml(text);
  assertEquals(devs.length, 1);
  assertEquals(devs[0].uuid, "GPU-60e1a46c-579b-4ad7-ef40-976cb2cb4a26");
  assertEquals([devs[0].index, devs[0].instanceId, devs[0].busId, devs[0].fraction], ["0", "", "0000:00:06.0", 1]);
  assertEquals(devs[0].smCount, 132, "NVIDIA H100 80GB HBM3 (SXM) has 132 SMs");
});

Deno.test("SM counts by NVIDIA model name: specific variants before families, unknown models 0", () => {
  const cases: [string, number][] = [
    ["NVIDIA H100 80GB HBM3", 132],
    ["NVIDIA H100 PCIe", 114],
    ["NVIDIA A100-PCIE-40GB", 108],
    ["NVIDIA A100-SXM4-80GB", 108],
    ["NVIDIA A10", 72],
    ["Tesla V100-SXM2-32GB", 80],
    ["NVIDIA L40S", 142],
    ["NVIDIA L4", 58],
    ["Tesla T4", 40],
    ["NVIDIA GeForce GTX 1080", 0],
  ];
  for (const [name, n] of cases) assertEquals(smCountForModel(name), n, name);
});

Deno.test("vGPU query, rocm-smi CSV and amd-smi JSON parsing; bus id normalisation", () => {
  const v = parseNvidiaVgpuQuery(
    "GPU 00000000:21:00.0\n    Active vGPUs : 2\n    vGPU ID : 1\n        MDEV UUID : AB-CD\n" +
      "        GPU Instance ID : 5\n    vGPU ID : 2\n        MDEV UUID : ef\n        GPU Instance ID : N/A\n",
  );
  assertEquals(v, [
    { busId: "0000:21:00.0", mdevUuid: "ab-cd", instanceId: "5" },
    { busId: "0000:21:00.0", mdevUuid: "ef", instanceId: "" },
  ]);
  const r = parseRocmSmiCsv("device,Serial Number,PCI Bus\ncard0,S0,0000:C5:00.0\ncard3,S3,0000:8D:00.0\n");
  assertEquals(r.map((d) => [d.index, d.uuid, d.busId]), [["0", "S0", "0000:c5:00.0"], ["3", "S3", "0000:8d:00.0"]]);
  assertThrows(() => parseRocmSmiCsv("garbage"), /no CSV header/);
  const a = parseAmdSmiJson(JSON.stringify([{ gpu: 1, asic: { asic_serial: "0xABC" }, bus: { bdf: "0000:c1:00.0" } }]));
  assertEquals([a[0].index, a[0].uuid, a[0].busId], ["1", "0xABC", "0000:c1:00.0"]);
  assertThrows(() => parseAmdSmiJson("{"));
  assertEquals(normalizeBusId("00000000:8A:00.0"), "0000:8a:00.0");
});

Deno.test("gpu-order-map re-indexes full devices and MIG instances; malformed maps are rejected", () => {
  const devs = parseNvidiaSmiXml(
    doc(gpuXml(0, "00000000:10:00.0") + gpuXml(1, "00000000:15:00.0", migXml(3, 10) + migXml(9, 10))),
  );
  const m = applyOrderMap(devs, "0:1.9,1:0,2:1.3");
  assertEquals(m.map((d) => [d.index, d.minor, d.instanceId, d.fraction]), [
    ["0", "1", "9", 0.5],
    ["1", "0", "", 1],
    ["2", "1", "3", 0.5],
  ]);
  assertEquals(applyOrderMap(devs, ""), devs);
  let err = "";
  try {
    applyOrderMap(devs, "0:1,x");
  } catch (e) {
    err = (e as Error).message;
  }
  assert(err.includes("gpu-order-map"), err);
});
