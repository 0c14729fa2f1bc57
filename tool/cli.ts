// Entry point of `ceems tool` (CEEMS's ceems_tool): dispatches its seven subcommands (health and web
// config checks, web config creation, recording rules, relabel configs, TSDB updater queries).

import { StartupError } from "../common/cli.ts";

export { parseTime } from "./common.ts";

const usage = `usage: ceems tool <command> [<flags>]

Tooling for CEEMS.

Commands:
  check api-healthy                      Check if the CEEMS API server is healthy
  check lb-healthy                       Check if the CEEMS LB server is healthy
  check web-config <files>...            Check if web config files are valid
  config create-web-config               Create a web config file (basic auth, self-signed TLS)
  tsdb create-recording-rules            Write Prometheus recording rules for usage, power and emissions
  tsdb create-relabel-configs            Print metric_relabel_configs for GPU exporters
  tsdb create-ceems-tsdb-updater-queries Print the API server's TSDB updater queries

Run 'ceems tool <command> --help' for the flags of a command.
`;

/** Runs `ceems tool <args>`; exits with the command's status. */
export async function toolMain(args: string[]): Promise<void> {
  const [group, cmd, ...rest] = args;
  const exit = (code: number) => {
    if (code !== 0) Deno.exit(code);
  };
  switch (`${group} ${cmd}`) {
    case "check api-healthy":
    case "check lb-healthy": {
      const { checkHealthy } = await import("./check_cmd.ts");
      return exit(await checkHealthy(cmd === "api-healthy" ? "api" : "lb", rest));
    }
    case "check web-config": {
      const { checkWebConfig } = await import("./check_cmd.ts");
      return exit(await checkWebConfig(rest));
    }
    case "config create-web-config": {
      const { createWebConfig } = await import("./web_config_cmd.ts");
      return await createWebConfig(rest);
    }
    case "tsdb create-recording-rules": {
      const { createRecordingRules } = await import("./recording_rules_cmd.ts");
      return await createRecordingRules(rest);
    }
    case "tsdb create-relabel-configs": {
      const { createRelabelConfigs } = await import("./relabel_cmd.ts");
      return await createRelabelConfigs(rest);
    }
    case "tsdb create-ceems-tsdb-updater-queries": {
      const { createUpdaterQueries } = await import("./updater_queries_cmd.ts");
      return await createUpdaterQueries(rest);
    }
  }
  if (group === undefined || group === "--help" || group === "-h" || group === "help") {
    Deno.stdout.writeSync(new TextEncoder().encode(usage));
    return;
  }
  throw new StartupError(`unknown command '${[group, cmd].filter(Boolean).join(" ")}'`);
}
