// Test helpers for the fake NVML library: builds it and writes its config (the readings it answers with),
// starting from the real H100 of shared/data/nvml-h100.json.

import { buildFakeLibrary } from "./build.ts";

/** The H100 of nvml-h100.json (driver 580.159.04, idle, MIG off). */
export const h100 = "gpu GPU-083b8c1d-11cc-660b-aae2-23e15449cf91 105900 2264388 0 0 NVIDIA H100 80GB HBM3";

/** Writes a fake-NVML config and points the fake at it; returns the call log path. */
export function fakeNvml(dir: string, config: string): { lib: string; log: string; config: string } {
  const lib = buildFakeLibrary("fake_nvml.c", "libnvidia-ml.so.1");
  Deno.writeTextFileSync(`${dir}/nvml.conf`, config);
  Deno.env.set("FAKE_NVML_CONFIG", `${dir}/nvml.conf`);
  Deno.env.set("FAKE_NVML_LOG", `${dir}/nvml.log`);
  return { lib, log: `${dir}/nvml.log`, config: `${dir}/nvml.conf` };
}
