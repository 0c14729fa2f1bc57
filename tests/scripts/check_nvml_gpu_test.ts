// Tests of scripts/check_nvml_gpu.ts against the fake NVML: the trapezoidal power integral, and a short
// run whose energy counter moves mid-run, reported as counter delta, integral and their ratio.

import { integratePower } from "../../scripts/check_nvml_gpu.ts";
import { fakeNvml } from "../fakes/nvml.ts";
import { assert, assertAlmostEquals, assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";

Deno.test("integratePower integrates watts over milliseconds with the trapezoid rule", () => {
  assertEquals(integratePower([{ t: 0, watts: 100, joules: 0 }]), 0);
  assertAlmostEquals(
    integratePower([{ t: 0, watts: 100, joules: 0 }, { t: 500, watts: 300, joules: 0 }, {
      t: 1500,
      watts: 300,
      joules: 0,
    }]),
    100 + 300,
  );
});

Deno.test("check_nvml_gpu reports the counter delta and ∫P dt from NVML (fake library, no load)", async () => {
  const dir = Deno.makeTempDirSync();
  const { lib, config } = fakeNvml(dir, "gpu GPU-x 200000 1000000 0 0 NVIDIA H100 80GB HBM3\n");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${repoRoot}scripts/check_nvml_gpu.ts`, "--seconds=2", "--load=none", `--library=${lib}`],
    env: { FAKE_NVML_CONFIG: config },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Once the script has listed the GPUs (sampling starts right after), the counter moves by 300 J.
  const stderrText = new Response(child.stderr).text();
  let text = "";
  let moved = false;
  const dec = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += dec.decode(chunk, { stream: true });
    if (!moved && text.includes("gpu 0:")) {
      moved = true;
      await new Promise((r) => setTimeout(r, 400));
      Deno.writeTextFileSync(config, "gpu GPU-x 200000 1300000 0 0 NVIDIA H100 80GB HBM3\n");
    }
  }
  const status = await child.status;
  const stderr = await stderrText;
  Deno.removeSync(dir, { recursive: true });
  const result = JSON.parse(text.trim().split("\n").at(-1)!);
  assertEquals(status.code, 0, text + stderr);
  assertEquals(result.energy_counter_delta_j, 300);
  // 200 W over the ~2 s window.
  assertAlmostEquals(result.power_integral_j / result.duration_s, 200, 0.1);
  assert(result.samples > 10);
  assertEquals(result.load, "none");
});
