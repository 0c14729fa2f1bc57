// Entry point of the single `ceems` program: dispatches to the exporter, API server, load balancer, cacct
// or tool subcommand and prints usage for anything else.

import { runMain } from "./common/cli.ts";
import { versionText } from "./common/version.ts";

const usage = `usage: ceems <command> [<flags>]

Compute Energy & Emissions Monitoring Stack.

Commands:
  exporter   Prometheus exporter for compute units and node power (default listen :9010)
  api        API server: compute units, usage, energy and emissions (default listen :9020)
  lb         Load balancer with access control for Prometheus and Pyroscope (:9030, :9040)
  cacct      Your jobs' usage, energy and emissions from the API server (CEEMS's cacct)
  tool       Utilities (CEEMS's ceems_tool): recording rules, relabel configs, updater queries, web configs, checks

Run 'ceems <command> --help' for the flags of a command.
`;

async function main(args: string[]): Promise<void> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "exporter": {
      const { exporterMain } = await import("./collectors/exporter.ts");
      return runMain("exporter", () => exporterMain(rest));
    }
    case "api": {
      const { apiMain } = await import("./api_server/cli.ts");
      return runMain("api", () => apiMain(rest));
    }
    case "lb": {
      const { lbMain } = await import("./lb/cli.ts");
      return runMain("lb", () => lbMain(rest));
    }
    case "cacct": {
      const { cacctMain } = await import("./cacct/cli.ts");
      return runMain("cacct", () => cacctMain(rest));
    }
    case "tool": {
      const { toolMain } = await import("./tool/cli.ts");
      return runMain("tool", () => toolMain(rest));
    }
    case "--version":
    case "version":
      console.log(versionText("ceems").trimEnd());
      return;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      Deno.stdout.writeSync(new TextEncoder().encode(usage));
      if (cmd === undefined) Deno.exit(2);
      return;
    default:
      Deno.stderr.writeSync(new TextEncoder().encode(`ceems: error: unknown command '${cmd}'\n${usage}`));
      Deno.exit(2);
  }
}

if (import.meta.main) await main(Deno.args);
