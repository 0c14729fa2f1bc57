// Entry point of `ceems tool` (CEEMS's ceems_tool): dispatches its subcommands; so far
// `tsdb create-recording-rules`.

import { StartupError } from "../common/cli.ts";

export { parseTime } from "./common.ts";

const usage = `usage: ceems tool <command> [<flags>]

Tooling for CEEMS.

Commands:
  tsdb create-recording-rules            Write Prometheus recording rules for usage, power and emissions

Run 'ceems tool <command> --help' for the flags of a command.
`;

/** Runs `ceems tool <args>`; exits with the command's status. */
export async function toolMain(args: string[]): Promise<void> {
  const [group, cmd, ...rest] = args;
  switch (`${group} ${cmd}`) {
    case "tsdb create-recording-rules": {
      const { createRecordingRules } = await import("./recording_rules_cmd.ts");
      return await createRecordingRules(rest);
    }
  }
  if (group === undefined || group === "--help" || group === "-h" || group === "help") {
    Deno.stdout.writeSync(new TextEncoder().encode(usage));
    return;
  }
  throw new StartupError(`unknown command '${[group, cmd].filter(Boolean).join(" ")}'`);
}
