// A stand-in for NVIDIA's DCGM exporter (not packaged for Debian; no GPU here): serves DCGM's metric names
// and labels for given GPU UUIDs (MIG instances with GPU_I_ID) with slowly varying values, so the GPU rules
// and dashboards have a GPU exporter to read. Values are simulated; names and labels are DCGM's.

/** A GPU (or MIG instance) the stand-in reports. */
export interface SimGpu {
  uuid: string;
  index: number;
  /** MIG GPU instance id, if this is one. */
  migInstance?: string;
}

const GAUGES: [string, (x: number) => number][] = [
  ["DCGM_FI_DEV_GPU_UTIL", (x) => 55 + 40 * x],
  ["DCGM_FI_DEV_FB_USED", (x) => 20000 + 15000 * x],
  ["DCGM_FI_DEV_FB_FREE", (x) => 60000 - 15000 * x],
  ["DCGM_FI_DEV_POWER_USAGE", (x) => 220 + 120 * x],
  ["DCGM_FI_DEV_POWER_USAGE_INSTANT", (x) => 220 + 120 * x],
  ["DCGM_FI_PROF_GR_ENGINE_ACTIVE", (x) => 0.55 + 0.4 * x],
  ["DCGM_FI_PROF_SM_ACTIVE", (x) => 0.5 + 0.4 * x],
  ["DCGM_FI_PROF_SM_OCCUPANCY", (x) => 0.3 + 0.25 * x],
  ["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", (x) => 0.2 + 0.15 * x],
  ["DCGM_FI_PROF_PIPE_FP64_ACTIVE", (x) => 0.1 + 0.08 * x],
  ["DCGM_FI_PROF_PIPE_FP32_ACTIVE", (x) => 0.3 + 0.2 * x],
  ["DCGM_FI_PROF_PIPE_FP16_ACTIVE", (x) => 0.15 + 0.1 * x],
  ["DCGM_FI_PROF_DRAM_ACTIVE", (x) => 0.4 + 0.3 * x],
  ["DCGM_FI_PROF_NVLINK_TX_BYTES", (x) => 2e9 + 1e9 * x],
  ["DCGM_FI_PROF_NVLINK_RX_BYTES", (x) => 1.8e9 + 1e9 * x],
  ["DCGM_FI_PROF_PCIE_TX_BYTES", (x) => 4e8 + 2e8 * x],
  ["DCGM_FI_PROF_PCIE_RX_BYTES", (x) => 3e8 + 2e8 * x],
];

/** The exposition text at time `tMs`: every metric for every GPU. */
export function dcgmText(gpus: SimGpu[], hostname: string, tMs = Date.now()): string {
  const lines: string[] = [];
  for (const [name, f] of GAUGES) {
    lines.push(`# HELP ${name} ${name} (simulated).`, `# TYPE ${name} gauge`);
    gpus.forEach((g, i) => {
      const x = Math.sin(tMs / 60_000 + i) * 0.5 + 0.5;
      const labels = [
        `gpu="${g.index}"`,
        `UUID="${g.uuid}"`,
        `device="nvidia${g.index}"`,
        `modelName="NVIDIA A100-SXM4-80GB"`,
        `Hostname="${hostname}"`,
        ...(g.migInstance === undefined ? [] : [`GPU_I_ID="${g.migInstance}"`, `GPU_I_PROFILE="1g.10gb"`]),
      ];
      lines.push(`${name}{${labels.join(",")}} ${f(x)}`);
    });
  }
  return lines.join("\n") + "\n";
}

/** Serves the stand-in on 127.0.0.1:`port` (0: any); resolves to its address and a stop function. */
export function startDcgmFixture(
  gpus: SimGpu[],
  hostname = Deno.hostname(),
  port = 0,
): { port: number; stop: () => Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/metrics"
        ? new Response(dcgmText(gpus, hostname), { headers: { "content-type": "text/plain; version=0.0.4" } })
        : new Response("DCGM exporter stand-in: /metrics\n"),
  );
  return { port: server.addr.port, stop: () => server.shutdown() };
}
