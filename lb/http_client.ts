// Backend HTTP client settings in Prometheus's common `http_client_config` shape (basic auth,
// authorization, bearer token, TLS, extra headers): credentials the load balancer adds itself.

import { dirname, isAbsolute, join } from "node:path";

/** The subset of Prometheus's HTTP client config the load balancer honours. */
export interface HttpClientConfig {
  basic_auth?: { username?: string; username_file?: string; password?: string; password_file?: string };
  authorization?: { type?: string; credentials?: string; credentials_file?: string };
  bearer_token?: string;
  bearer_token_file?: string;
  tls_config?: {
    ca?: string;
    ca_file?: string;
    cert?: string;
    cert_file?: string;
    key?: string;
    key_file?: string;
    server_name?: string;
    insecure_skip_verify?: boolean;
  };
  http_headers?: Record<string, { values?: string[]; secrets?: string[]; files?: string[] }>;
  follow_redirects?: boolean;
  enable_http2?: boolean;
}

const UNSUPPORTED = ["oauth2", "proxy_url", "proxy_from_environment", "proxy_connect_header", "no_proxy"];

/** A fetch with the configured credentials, headers and TLS settings. */
export interface HttpBackendClient {
  /** Headers added to every request (credentials included). */
  headers: [string, string][];
  fetch(url: string, init?: RequestInit): Promise<Response>;
  close(): void;
}

function readText(path: string, baseDir: string): string {
  return Deno.readTextFileSync(isAbsolute(path) ? path : join(baseDir, path)).trim();
}

/** Checks the shape of a client config; throws an Error naming the bad key. */
export function validateHttpClientConfig(cfg: Record<string, unknown>, where: string): void {
  for (const k of UNSUPPORTED) {
    if (cfg[k] !== undefined) throw new Error(`${where}.${k}: not supported by this load balancer`);
  }
  const c = cfg as HttpClientConfig;
  const auths = [c.basic_auth, c.authorization, c.bearer_token ?? c.bearer_token_file].filter((x) => x !== undefined);
  if (auths.length > 1) {
    throw new Error(`${where}: at most one of basic_auth, authorization and bearer_token may be configured`);
  }
  if (c.tls_config?.insecure_skip_verify) {
    throw new Error(`${where}.tls_config.insecure_skip_verify: not supported; give ca_file instead`);
  }
  if (c.basic_auth && c.basic_auth.password && c.basic_auth.password_file) {
    throw new Error(`${where}.basic_auth: at most one of password and password_file may be configured`);
  }
}

/** Builds a client from `cfg`; relative file names are resolved against `configFile`'s directory. */
export function createHttpBackendClient(cfg: HttpClientConfig, configFile = ""): HttpBackendClient {
  const baseDir = configFile ? dirname(configFile) : Deno.cwd();
  const headers: [string, string][] = [];
  if (cfg.basic_auth) {
    const user = cfg.basic_auth.username_file
      ? readText(cfg.basic_auth.username_file, baseDir)
      : cfg.basic_auth.username ?? "";
    const pass = cfg.basic_auth.password_file
      ? readText(cfg.basic_auth.password_file, baseDir)
      : cfg.basic_auth.password ?? "";
    const bytes = new TextEncoder().encode(`${user}:${pass}`);
    headers.push(["Authorization", `Basic ${btoa(String.fromCharCode(...bytes))}`]);
  } else if (cfg.authorization) {
    const cred = cfg.authorization.credentials_file
      ? readText(cfg.authorization.credentials_file, baseDir)
      : cfg.authorization.credentials ?? "";
    headers.push(["Authorization", `${cfg.authorization.type || "Bearer"} ${cred}`]);
  } else if (cfg.bearer_token || cfg.bearer_token_file) {
    const tok = cfg.bearer_token_file ? readText(cfg.bearer_token_file, baseDir) : cfg.bearer_token!;
    headers.push(["Authorization", `Bearer ${tok}`]);
  }
  for (const [name, h] of Object.entries(cfg.http_headers ?? {})) {
    for (const v of [...(h.values ?? []), ...(h.secrets ?? [])]) headers.push([name, v]);
    for (const f of h.files ?? []) headers.push([name, readText(f, baseDir)]);
  }
  const tls = cfg.tls_config;
  let client: Deno.HttpClient | undefined;
  if (tls && (tls.ca || tls.ca_file || tls.cert || tls.cert_file)) {
    const caCerts = tls.ca ? [tls.ca] : tls.ca_file ? [readText(tls.ca_file, baseDir)] : undefined;
    const cert = tls.cert ?? (tls.cert_file ? readText(tls.cert_file, baseDir) : undefined);
    const key = tls.key ?? (tls.key_file ? readText(tls.key_file, baseDir) : undefined);
    client = Deno.createHttpClient(cert && key ? { caCerts, cert, key } : { caCerts });
  }
  return {
    headers,
    fetch(url: string, init: RequestInit = {}) {
      const h = new Headers(init.headers);
      for (const [k, v] of headers) h.set(k, v);
      return fetch(url, { ...init, headers: h, ...(client ? { client } : {}) } as RequestInit);
    },
    close() {
      client?.close();
    },
  };
}
