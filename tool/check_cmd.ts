// `ceems tool check api-healthy | lb-healthy | web-config`: health of a running API server or load
// balancer (GET /health), and validation of exporter-toolkit web config files as the servers load them.

import { parseFlags, StartupError } from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import { loadWebConfig } from "../common/web/web_config.ts";
import { addHelpFlags, addServerFlags, serverFromFlags } from "./common.ts";

/** Runs `tool check api-healthy|lb-healthy <args>`; resolves to the exit status (0 healthy, 1 not). */
export async function checkHealthy(which: "api" | "lb", args: string[]): Promise<number> {
  const fs = new FlagSet(
    `tool check ${which}-healthy`,
    `Check if the CEEMS ${which === "api" ? "API" : "LB"} server is healthy.`,
  );
  addHelpFlags(fs);
  addServerFlags(
    fs,
    which === "api" ? "http://localhost:9020" : "http://localhost:9030",
    `CEEMS ${which.toUpperCase()} server`,
  );
  parseFlags(fs, args, "tool");
  const cfg = fs.string("http.config.file");
  if (cfg) {
    try {
      Deno.statSync(cfg);
    } catch {
      throw new StartupError(`--http.config.file: path '${cfg}' does not exist`);
    }
  }
  const { url, http } = serverFromFlags(fs);
  try {
    const r = await fetch(`${url}/health`, {
      headers: http.headers,
      client: http.client,
      signal: AbortSignal.timeout(10_000),
    } as RequestInit);
    const body = await r.text();
    if (r.status !== 200) {
      console.error(`check failed: URL=${url}, status=${r.status}`);
      return 1;
    }
    console.error(`  SUCCESS:  ${body}`);
    return 0;
  } catch (e) {
    console.error(`check failed: URL=${url}: ${(e as Error).message}`);
    return 1;
  }
}

/** Runs `tool check web-config <files…>`; resolves to the exit status (1 when any file is invalid). */
export async function checkWebConfig(args: string[]): Promise<number> {
  const fs = new FlagSet("tool check web-config", "Check if the web config files are valid or not.");
  addHelpFlags(fs);
  let files: string[];
  try {
    files = fs.parse(args, {});
  } catch (e) {
    throw new StartupError((e as Error).message);
  }
  if (fs.bool("help")) {
    Deno.stdout.writeSync(
      new TextEncoder().encode(fs.help() + "\nArgs:\n  <web-config-files>  The config files to check.\n"),
    );
    return 0;
  }
  if (!files.length) throw new StartupError("required argument 'web-config-files' not provided");
  for (const f of files) {
    try {
      Deno.statSync(f);
    } catch {
      throw new StartupError(`web-config-files: path '${f}' does not exist`);
    }
  }
  let failed = false;
  for (const f of files) {
    try {
      await loadWebConfig(f);
      console.error(`${f} SUCCESS`);
    } catch (e) {
      console.error(`${f} FAILED: ${(e as Error).message}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}
