// The cacct configuration: the API server (cluster id, user header, URL and client settings) and the TSDB
// for time series with its queries, read from the first config file found in /etc/ceems or the user's
// config directory (CEEMS's places and names).

import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type HttpClientConfig, httpClientFromObject } from "../common/http_client_config.ts";

/** One HTTP endpoint: its URL and client. */
export interface Endpoint {
  url: string;
  http: HttpClientConfig;
}

/** A parsed cacct configuration. */
export interface CacctConfig {
  file: string;
  clusterId: string;
  userHeader: string;
  api: Endpoint;
  tsdb?: Endpoint;
  /** Name → PromQL with one `%s` for the unit's uuid. */
  queries: Record<string, string>;
}

/** Config file names tried in each directory, in order. */
export const CONFIG_NAMES = ["config.yml", "config.yaml", "cacct.yml", "cacct.yaml"];

/** Directories searched: /etc/ceems, then $XDG_CONFIG_HOME/ceems or ~/.config/ceems. */
export function configDirs(env: Record<string, string | undefined> = Deno.env.toObject()): string[] {
  const dirs = ["/etc/ceems"];
  const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : "");
  if (base) dirs.push(join(base, "ceems"));
  return dirs;
}

function endpoint(raw: unknown, key: string): Endpoint {
  if (!raw || typeof raw !== "object") throw new Error(`${key}: missing`);
  const web = raw as Record<string, unknown>;
  if (typeof web.url !== "string" || !web.url) throw new Error(`${key}.url: missing`);
  try {
    new URL(web.url);
  } catch {
    throw new Error(`${key}.url: invalid URL ${JSON.stringify(web.url)}`);
  }
  return { url: web.url.replace(/\/+$/, ""), http: httpClientFromObject(web) };
}

/** Parses a config document; errors name the key. */
export function parseConfig(text: string, file: string): CacctConfig {
  const doc = (parseYaml(text) ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const api = doc.ceems_api_server;
  if (!api) throw new Error("ceems_api_server: missing");
  const tsdb = doc.tsdb;
  const queries = (tsdb?.queries ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(queries)) {
    if (typeof v !== "string" || !v.includes("%s")) throw new Error(`tsdb.queries.${k}: a PromQL string with %s`);
  }
  return {
    file,
    clusterId: String(api.cluster_id ?? ""),
    userHeader: String(api.user_header_name ?? "X-Grafana-User"),
    api: endpoint(api.web, "ceems_api_server.web"),
    tsdb: tsdb?.web ? endpoint(tsdb.web, "tsdb.web") : undefined,
    queries: queries as Record<string, string>,
  };
}

/** Reads the first config file found in `dirs`; throws when none is found or it is invalid. */
export function readConfig(dirs: string[] = configDirs()): CacctConfig {
  for (const dir of dirs) {
    for (const name of CONFIG_NAMES) {
      const file = join(dir, name);
      let text: string;
      try {
        text = Deno.readTextFileSync(file);
      } catch {
        continue;
      }
      try {
        return parseConfig(text, file);
      } catch (e) {
        throw new Error(`${file}: ${(e as Error).message}`);
      }
    }
  }
  throw new Error(`config file not found (${CONFIG_NAMES.join(", ")} in ${dirs.join(", ")})`);
}
