// Checks NVML on a real NVIDIA host: samples one GPU's total-energy counter and power for a while under a
// CUDA load (ffi/cuda_burn.ts, in a child process) and compares the counter's delta with ∫ power dt.

/**
 * Usage: deno run -A scripts/check_nvml_gpu.ts [--seconds=20] [--interval-ms=20] [--gpu=0]
 *          [--load=auto|cuda|torch|none] [--library=libnvidia-ml.so.1]
 * Load: `cuda` runs an FMA kernel through libcuda (ffi/cuda_burn.ts) in a child process; `torch` runs bf16
 * matrix products with python3's PyTorch; `auto` tries cuda and falls back to torch if it fails.
 * Prints one line per figure and a final JSON line. Exit status 0 when the counter and the integral were
 * both measured, 1 when NVML or the GPU could not be read.
 */
import { burnGpu } from "../ffi/cuda_burn.ts";
import { Nvml } from "../ffi/nvml.ts";

function arg(name: string, def: string): string {
  const hit = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : def;
}

/** One sample: time (ms, monotonic), power (W), energy counter (J). */
interface Sample {
  t: number;
  watts: number;
  joules: number;
}

/** Trapezoidal ∫ power dt over the samples, in joules. */
export function integratePower(samples: Sample[]): number {
  let j = 0;
  for (let i = 1; i < samples.length; i++) {
    j += (samples[i].watts + samples[i - 1].watts) / 2 * (samples[i].t - samples[i - 1].t) / 1000;
  }
  return j;
}

/** bf16 matrix products on one GPU for N seconds (argv: gpu index, seconds). */
const torchLoad = `
import sys, time, torch
d = torch.device("cuda", int(sys.argv[1]))
a = torch.randn(8192, 8192, device=d, dtype=torch.bfloat16)
b = torch.randn_like(a)
end = time.time() + float(sys.argv[2])
n = 0
while time.time() < end:
    for _ in range(10):
        c = a @ b
    torch.cuda.synchronize(d)
    n += 10
print(f"{n} bf16 8192^3 matrix products")
`;

async function main(): Promise<number> {
  if (Deno.args.some((a) => a.startsWith("--burn-child="))) {
    // Child mode: only generate load.
    const r = burnGpu(Number(arg("gpu", "0")), Number(arg("burn-child", "10")));
    console.log(`load: ${r.kernels} kernels, ${r.iters} FMA iterations per thread per kernel`);
    return 0;
  }
  const seconds = Number(arg("seconds", "20"));
  const intervalMs = Number(arg("interval-ms", "20"));
  const gpu = Number(arg("gpu", "0"));
  const load = arg("load", "auto");
  const nvml = Nvml.open(arg("library", "libnvidia-ml.so.1"));
  try {
    const count = nvml.deviceCount();
    console.log(`driver ${nvml.driverVersion()}, ${count} GPU(s)`);
    for (let i = 0; i < count; i++) {
      const d = nvml.deviceByIndex(i);
      const mig = (() => {
        try {
          return nvml.migMode(d).current ? "MIG on" : "MIG off";
        } catch (e) {
          return `MIG ${(e as Error).message}`;
        }
      })();
      console.log(`gpu ${i}: ${nvml.name(d)} ${nvml.uuid(d)} ${mig}`);
    }
    const dev = nvml.deviceByIndex(gpu);
    const read = (): Sample => ({
      t: performance.now(),
      watts: nvml.powerMilliwatts(dev) / 1000,
      joules: Number(nvml.totalEnergyMillijoules(dev)) / 1000,
    });

    // The load runs in a child process so sampling here stays on time.
    const loadStarts: Record<string, (secs: number) => Deno.ChildProcess> = {
      cuda: (secs) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--no-config", new URL(import.meta.url).pathname, `--burn-child=${secs}`, `--gpu=${gpu}`],
          env: { CUDA_DEVICE_ORDER: "PCI_BUS_ID" },
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
      torch: (secs) =>
        new Deno.Command("python3", {
          args: ["-c", torchLoad, String(gpu), String(secs)],
          env: { CUDA_DEVICE_ORDER: "PCI_BUS_ID" },
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
    };
    const plan = load === "auto" ? ["cuda", "torch"] : load === "none" ? [] : [load];
    const notes: string[] = [];
    let child: { kind: string; proc: Deno.ChildProcess; done?: Deno.CommandOutput } | undefined;
    const startNext = (secs: number) => {
      const kind = plan.shift();
      if (!kind || secs < 2) return;
      const start = loadStarts[kind];
      if (!start) throw new Error(`unknown --load=${kind}`);
      try {
        const proc = start(secs);
        const c: { kind: string; proc: Deno.ChildProcess; done?: Deno.CommandOutput } = { kind, proc };
        proc.output().then(
          (o) => c.done = o,
          (e) =>
            c.done = {
              code: -1,
              stdout: new Uint8Array(),
              stderr: new TextEncoder().encode(String(e)),
            } as Deno.CommandOutput,
        );
        child = c;
      } catch (e) {
        notes.push(`${kind} load failed: ${(e as Error).message}`);
        startNext(secs);
      }
    };
    const describe = (c: { kind: string; done?: Deno.CommandOutput }) => {
      const o = c.done!;
      const text = (new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr)).trim();
      return o.code === 0
        ? `${c.kind} (${text.split("\n").at(-1)})`
        : `${c.kind} load failed: ${text.split("\n").slice(-2).join(" | ")}`;
    };
    const samples: Sample[] = [read()];
    const end = samples[0].t + seconds * 1000;
    const startLoadAt = samples[0].t + 1000;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, intervalMs));
      samples.push(read());
      const now = performance.now();
      const secsLeft = Math.floor((end - now) / 1000) - 1;
      if (!child && now >= startLoadAt) startNext(secsLeft);
      else if (child?.done && child.done.code !== 0 && plan.length) {
        notes.push(describe(child)); // failed early: try the next kind of load for the time left
        child = undefined;
        startNext(secsLeft);
      }
    }
    if (child) {
      while (!child.done) await new Promise((r) => setTimeout(r, 50));
      notes.push(describe(child));
    }
    const loadNote = notes.length ? notes.join("; ") : "none";
    const first = samples[0];
    const last = samples[samples.length - 1];
    const counterJ = last.joules - first.joules;
    const integralJ = integratePower(samples);
    const durationS = (last.t - first.t) / 1000;
    const maxW = Math.max(...samples.map((s) => s.watts));
    const result = {
      gpu,
      samples: samples.length,
      duration_s: Number(durationS.toFixed(3)),
      energy_counter_delta_j: Number(counterJ.toFixed(3)),
      power_integral_j: Number(integralJ.toFixed(3)),
      ratio_integral_over_counter: Number((integralJ / counterJ).toFixed(4)),
      mean_power_from_counter_w: Number((counterJ / durationS).toFixed(2)),
      max_power_w: maxW,
      load: loadNote,
    };
    console.log(`load: ${loadNote}`);
    console.log(`window ${durationS.toFixed(2)} s, ${samples.length} samples every ~${intervalMs} ms`);
    console.log(`energy counter delta: ${counterJ.toFixed(1)} J`);
    console.log(`∫ power dt:           ${integralJ.toFixed(1)} J`);
    console.log(`ratio ∫P dt / ΔE:     ${(integralJ / counterJ).toFixed(4)}`);
    console.log(`mean power (counter): ${(counterJ / durationS).toFixed(1)} W, max sampled power ${maxW} W`);
    console.log(JSON.stringify(result));
    return counterJ > 0 ? 0 : 1;
  } finally {
    nvml.close();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`check_nvml_gpu: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
