// The `redfish` collector: chassis power from a BMC's Redfish API (ServiceRoot → Chassis → Power) as
// ceems_redfish_{current,min,max,avg}_watts per chassis, serving the last good reading when the BMC fails.

import type { FlagSet } from "../common/flags.ts";
import { parseDuration } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { isTimeout, TimeoutError } from "../common/timeout.ts";
import type { Collector, CollectorContext, MetricSink } from "./framework/collector.ts";
import { sanitizeMetricName } from "./framework/metric_sink.ts";
import { registerCollector } from "./framework/registry.ts";

/** The collector's configuration file, as CEEMS reads it. */
export interface RedfishConfig {
  protocol: string;
  hostname: string;
  port: number;
  username: string;
  password: string;
  useSessionToken: boolean;
  timeoutMs: number;
  externalUrl: string;
  caFile: string;
  /** Set in the file; Deno's fetch cannot skip verification per client, so this is only warned about. */
  insecureSkipVerify: boolean;
}

/** Replaces `${VAR}` and `$VAR` by the environment's values (empty when unset). */
export function expandEnv(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a, b) => env[a ?? b] ?? "");
}

/**
 * Parses the YAML text of a Redfish collector config; rejects with a one-line reason on bad input. The YAML
 * parser is loaded here, so exporters without the redfish collector never load it.
 */
export async function parseRedfishConfig(
  text: string,
  env: Record<string, string | undefined> = {},
): Promise<RedfishConfig> {
  const { parse: parseYaml } = await import("yaml");
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`invalid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null) throw new Error("empty or non-mapping config");
  const rootObj = doc as Record<string, unknown>;
  const sect = rootObj.redfish_collector ?? rootObj.redfish_web_config;
  if (typeof sect !== "object" || sect === null) {
    throw new Error("missing redfish_collector (or deprecated redfish_web_config) section");
  }
  const c = sect as Record<string, unknown>;
  const str = (k: string, d = ""): string => {
    const v = c[k];
    if (v === undefined || v === null) return d;
    if (typeof v !== "string" && typeof v !== "number") throw new Error(`${k}: expected a string`);
    return String(v);
  };
  const protocol = str("protocol", "https");
  if (!["http", "https"].includes(protocol)) throw new Error(`protocol: must be http or https, not ${protocol}`);
  const port = c.port === undefined ? (protocol === "https" ? 443 : 80) : Number(c.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`port: invalid ${String(c.port)}`);
  let timeoutMs = 5000;
  if (c.timeout !== undefined) {
    if (typeof c.timeout === "number") timeoutMs = c.timeout;
    else {
      try {
        timeoutMs = parseDuration(String(c.timeout));
      } catch {
        throw new Error(`timeout: invalid ${JSON.stringify(c.timeout)}`);
      }
    }
    if (!(timeoutMs > 0)) throw new Error("timeout: must be positive");
  }
  const tls = (c.tls_config ?? {}) as Record<string, unknown>;
  return {
    protocol,
    hostname: str("hostname", str("host")),
    port,
    username: env.REDFISH_WEB_USERNAME || str("username"),
    password: env.REDFISH_WEB_PASSWORD || str("password"),
    useSessionToken: c.use_session_token === undefined ? true : c.use_session_token === true,
    timeoutMs,
    externalUrl: str("external_url"),
    caFile: typeof tls.ca_file === "string" ? tls.ca_file : "",
    insecureSkipVerify: c.insecure_skip_verify === true || tls.insecure_skip_verify === true,
  };
}

/** Power readings of one chassis, summed over its PowerControl entries. */
export interface ChassisPower {
  current: number;
  min: number;
  max: number;
  avg: number;
}

/** Sums a Power resource's PowerControl readings; throws when the body has no PowerControl list. */
export function sumPowerControl(body: unknown): ChassisPower {
  const pc = (body as { PowerControl?: unknown })?.PowerControl;
  if (!Array.isArray(pc)) throw new Error("Power resource has no PowerControl list");
  const out = { current: 0, min: 0, max: 0, avg: 0 };
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  for (const e of pc as Record<string, unknown>[]) {
    const m = (e?.PowerMetrics ?? {}) as Record<string, unknown>;
    out.current += num(e?.PowerConsumedWatts);
    out.min += num(m.MinConsumedWatts);
    out.max += num(m.MaxConsumedWatts);
    out.avg += num(m.AverageConsumedWatts);
  }
  return out;
}

/** A minimal Redfish client: JSON GETs with a timeout, optional session token or basic auth. */
export class RedfishClient {
  #headers: Record<string, string> = { accept: "application/json" };
  #session?: string;
  readonly #endpoint: string;
  readonly #http?: Deno.HttpClient;

  constructor(private cfg: RedfishConfig, hostname: string) {
    const host = cfg.hostname.replaceAll("{hostname}", hostname);
    const target = `${cfg.protocol}://${host}:${cfg.port}`;
    this.#endpoint = cfg.externalUrl ? cfg.externalUrl.replace(/\/+$/, "") : target;
    if (cfg.externalUrl) this.#headers["X-Redfish-Url"] = target;
    if (cfg.caFile) this.#http = Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(cfg.caFile)] });
  }

  /** GETs a path and parses its JSON body. */
  async get(path: string): Promise<unknown> {
    return await this.#request("GET", path);
  }

  async #request(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = this.#endpoint + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: body ? { ...this.#headers, "content-type": "application/json" } : this.#headers,
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
        client: this.#http,
      });
    } catch (e) {
      const err = e as Error;
      if (isTimeout(err)) throw new TimeoutError(`${method} ${url}: no answer`, this.cfg.timeoutMs);
      throw new Error(`${method} ${url}: ${err.message}`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new Error(`${method} ${url}: reading body: ${(e as Error).message}`);
    }
    if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status}`);
    if (method === "POST") {
      const token = res.headers.get("x-auth-token");
      if (token) {
        this.#headers["X-Auth-Token"] = token;
        this.#session = res.headers.get("location") ?? undefined;
      }
    }
    if (method === "DELETE") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${method} ${url}: invalid JSON body`);
    }
  }

  /** Authenticates: a session token when configured and granted, else basic auth when credentials are set. */
  async login(root: unknown): Promise<void> {
    if (!this.cfg.username) return;
    if (this.cfg.useSessionToken) {
      const links = (root as { Links?: { Sessions?: { "@odata.id"?: string } } })?.Links;
      const path = links?.Sessions?.["@odata.id"] ?? "/redfish/v1/SessionService/Sessions";
      await this.#request("POST", path, { UserName: this.cfg.username, Password: this.cfg.password });
      if (this.#headers["X-Auth-Token"]) return;
    }
    this.#headers.authorization = "Basic " + btoa(`${this.cfg.username}:${this.cfg.password}`);
  }

  /** Releases the TLS client, if one was built for a custom CA. */
  close(): void {
    this.#http?.close();
  }

  /** Ends the session, if any (best effort). */
  async logout(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    delete this.#headers["X-Auth-Token"];
    if (!s) return;
    try {
      await this.#request("DELETE", s.replace(/^https?:\/\/[^/]+/, ""));
    } catch {
      // the BMC may already have dropped it
    }
  }
}

/** A chassis and where its Power resource lives. */
interface ChassisRef {
  id: string;
  powerPath: string;
}

function odataId(v: unknown): string | undefined {
  const id = (v as { "@odata.id"?: unknown })?.["@odata.id"];
  return typeof id === "string" ? id : undefined;
}

class RedfishCollector implements Collector {
  #chassis?: ChassisRef[];
  readonly #cache = new Map<string, ChassisPower>();

  constructor(private client: RedfishClient, private hostname: string, private logger: Logger) {}

  /** Fetches the service root, logs in and lists the chassis. */
  async connect(): Promise<void> {
    const root = await this.client.get("/redfish/v1/");
    await this.client.login(root);
    const collPath = odataId((root as Record<string, unknown>)?.Chassis) ?? "/redfish/v1/Chassis";
    const coll = await this.client.get(collPath);
    const members = (coll as { Members?: unknown })?.Members;
    if (!Array.isArray(members)) throw new Error(`${collPath}: no Members list`);
    const chassis: ChassisRef[] = [];
    for (const m of members) {
      const path = odataId(m);
      if (!path) continue;
      const ch = (await this.client.get(path)) as Record<string, unknown>;
      const id = typeof ch?.Id === "string" ? ch.Id : path.split("/").pop()!;
      chassis.push({ id: sanitizeMetricName(id), powerPath: odataId(ch?.Power) ?? `${path}/Power` });
    }
    this.#chassis = chassis;
  }

  async update(sink: MetricSink): Promise<void> {
    const errors: string[] = [];
    if (!this.#chassis) {
      try {
        await this.connect();
      } catch (e) {
        errors.push(`connecting to Redfish: ${(e as Error).message}`);
      }
    }
    const readings = new Map<string, ChassisPower>(this.#cache);
    let reconnect = false;
    for (const ch of this.#chassis ?? []) {
      try {
        const p = sumPowerControl(await this.client.get(ch.powerPath));
        readings.set(ch.id, p);
        this.#cache.set(ch.id, p);
      } catch (e) {
        errors.push(`chassis ${ch.id}: ${(e as Error).message}`);
        reconnect = true;
      }
    }
    for (const [id, p] of readings) {
      for (const kind of ["current", "min", "max", "avg"] as const) {
        if (p[kind] > 0) {
          sink.gauge(
            `ceems_redfish_${kind}_watts`,
            `${
              { current: "Current", min: "Minimum", max: "Maximum", avg: "Average" }[kind]
            } Power consumption in watts`,
            { hostname: this.hostname, chassis: id },
            p[kind],
          );
        }
      }
    }
    if (reconnect) {
      // As CEEMS: drop the session and list the chassis again on the next scrape.
      await this.client.logout();
      this.#chassis = undefined;
    }
    if (errors.length) {
      const cached = readings.size > 0 ? " (serving last good readings)" : "";
      throw new Error(errors.join("; ") + cached);
    }
  }

  async stop(): Promise<void> {
    this.logger.debug("logging out of Redfish");
    await this.client.logout();
    this.client.close();
  }
}

function registerFlags(fs: FlagSet): void {
  fs.add({
    name: "collector.redfish.config.file",
    kind: "string",
    default: "",
    envar: "CEEMS_EXPORTER_REDFISH_COLL_CONFIG_FILE",
    placeholder: "PATH",
    help: "Path to Redfish collector configuration file.",
  });
  fs.alias("collector.redfish.web-config", "collector.redfish.config.file");
  fs.add({
    name: "collector.redfish.config.file.expand-env-vars",
    kind: "bool",
    help: "Expand ${VAR} environment variables in the Redfish configuration file.",
  });
}

/** The redfish flags. */
interface RedfishOptions {
  file: string;
  expandEnv: boolean;
}

async function create(ctx: CollectorContext, o: RedfishOptions): Promise<Collector> {
  let file = o.file;
  const legacyEnv = Deno.env.get("CEEMS_EXPORTER_REDFISH_COLL_WEB_CONFIG_FILE");
  if (!file && legacyEnv) {
    ctx.logger.warn(
      "environment variable CEEMS_EXPORTER_REDFISH_COLL_WEB_CONFIG_FILE is deprecated, use CEEMS_EXPORTER_REDFISH_COLL_CONFIG_FILE",
    );
    file = legacyEnv;
  }
  if (!file) throw new Error("--collector.redfish.config.file: a configuration file is required");
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new Error(`--collector.redfish.config.file: ${(e as Error).message}`);
  }
  const env = Deno.env.toObject();
  if (o.expandEnv) text = expandEnv(text, env);
  let cfg: RedfishConfig;
  try {
    cfg = await parseRedfishConfig(text, env);
  } catch (e) {
    throw new Error(`--collector.redfish.config.file ${file}: ${(e as Error).message}`);
  }
  if (!cfg.hostname) {
    throw new Error(
      `--collector.redfish.config.file ${file}: hostname is empty and BMC discovery through IPMI is not implemented in this build`,
    );
  }
  if (cfg.insecureSkipVerify) {
    ctx.logger.warn("insecure_skip_verify is not supported: the BMC certificate is verified; use tls_config.ca_file");
  }
  const collector = new RedfishCollector(
    new RedfishClient(cfg, Deno.hostname()),
    ctx.hostname,
    ctx.logger,
  );
  try {
    await collector.connect();
  } catch (e) {
    // Not fatal: the BMC may come up later; each scrape retries.
    ctx.logger.warn("Redfish BMC not reachable at start-up, will retry at each scrape", {
      err: (e as Error).message,
    });
  }
  return collector;
}

registerCollector({
  name: "redfish",
  defaultEnabled: false,
  help: "Chassis power from a Redfish BMC",
  registerFlags,
  options: (f): RedfishOptions => ({
    file: f.string("collector.redfish.config.file"),
    expandEnv: f.bool("collector.redfish.config.file.expand-env-vars"),
  }),
  // The configuration is read at start-up, before the drop; no capability: BMC discovery through IPMI (what
  // CEEMS needs cap_dac_override for) is not implemented, a config without a hostname stops start-up.
  create,
});
