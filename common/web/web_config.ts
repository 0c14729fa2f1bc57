// The Prometheus exporter-toolkit web configuration file (--web.config.file): TLS with an optional
// client CA, bcrypt basic-auth users and extra response headers, loaded and validated at start-up.

import { dirname, isAbsolute, join } from "../path.ts";

/** TLS settings of a web configuration. */
export interface TlsServerConfig {
  cert: string;
  key: string;
  clientCa?: string;
  clientAuthType: ClientAuthType;
  minVersion: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
  maxVersion: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
}

/** exporter-toolkit's client_auth_type values. */
export type ClientAuthType =
  | "NoClientCert"
  | "RequestClientCert"
  | "RequireAnyClientCert"
  | "VerifyClientCertIfGiven"
  | "RequireAndVerifyClientCert";

/** A parsed and validated web configuration. */
export interface WebConfig {
  tls?: TlsServerConfig;
  basicAuthUsers: Map<string, string>;
  headers: Record<string, string>;
}

/** An empty configuration: plain HTTP, no authentication. */
export const emptyWebConfig: WebConfig = { basicAuthUsers: new Map(), headers: {} };

const tlsVersions: Record<string, TlsServerConfig["minVersion"]> = {
  TLS10: "TLSv1",
  TLS11: "TLSv1.1",
  TLS12: "TLSv1.2",
  TLS13: "TLSv1.3",
};

const allowedHeaders = new Set([
  "Strict-Transport-Security",
  "X-Content-Type-Options",
  "X-Frame-Options",
  "X-XSS-Protection",
  "Content-Security-Policy",
]);

const topKeys = new Set(["tls_server_config", "http_server_config", "basic_auth_users"]);
const tlsKeys = new Set([
  "cert_file",
  "key_file",
  "cert",
  "key",
  "client_ca_file",
  "client_auth_type",
  "client_allowed_sans",
  "min_version",
  "max_version",
  "cipher_suites",
  "prefer_server_cipher_suites",
  "curve_preferences",
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses web-config YAML text; `baseDir` resolves relative file paths. Rejects with a clear reason. The YAML
 * parser, and bcryptjs when there are users, are loaded here (at start-up, before any privilege drop) and
 * only then: a node daemon without a web config never loads them.
 */
export async function parseWebConfig(text: string, baseDir: string): Promise<WebConfig> {
  const { parse } = await import("yaml");
  const cfg = webConfigFromDocument(parse(text) ?? {}, baseDir);
  if (cfg.basicAuthUsers.size) await import("bcryptjs"); // common/web/server.ts imports it again, from cache
  return cfg;
}

function webConfigFromDocument(doc: unknown, baseDir: string): WebConfig {
  if (!isObject(doc)) throw new Error("web config must be a YAML mapping");
  for (const k of Object.keys(doc)) {
    if (!topKeys.has(k)) throw new Error(`unknown key "${k}" in web config`);
  }
  const cfg: WebConfig = { basicAuthUsers: new Map(), headers: {} };
  const resolve = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const readPem = (p: string, what: string) => {
    try {
      return Deno.readTextFileSync(resolve(p));
    } catch (e) {
      throw new Error(`cannot read ${what} "${p}": ${(e as Error).message}`);
    }
  };

  if (doc.tls_server_config !== undefined && doc.tls_server_config !== null) {
    const t = doc.tls_server_config;
    if (!isObject(t)) throw new Error("tls_server_config must be a mapping");
    for (const k of Object.keys(t)) {
      if (!tlsKeys.has(k)) throw new Error(`unknown key "${k}" in tls_server_config`);
    }
  }
  // As exporter-toolkit: TLS is off while no certificate, key, client CA or client auth type is set (CEEMS's
  // packaged web-config.yml is `tls_server_config: {}`).
  const tlsSet = (t: Record<string, unknown>) =>
    ["cert", "cert_file", "key", "key_file", "client_ca_file", "client_auth_type"].some((k) => t[k]);
  if (isObject(doc.tls_server_config) && tlsSet(doc.tls_server_config)) {
    const t = doc.tls_server_config;
    const cert = typeof t.cert === "string" && t.cert
      ? t.cert
      : typeof t.cert_file === "string" && t.cert_file
      ? readPem(t.cert_file, "cert_file")
      : undefined;
    if (!cert) throw new Error("missing cert_file in tls_server_config");
    const key = typeof t.key === "string" && t.key
      ? t.key
      : typeof t.key_file === "string" && t.key_file
      ? readPem(t.key_file, "key_file")
      : undefined;
    if (!key) throw new Error("missing key_file in tls_server_config");
    const authType = (t.client_auth_type ?? "NoClientCert") as ClientAuthType;
    const authTypes: ClientAuthType[] = [
      "NoClientCert",
      "RequestClientCert",
      "RequireAnyClientCert",
      "VerifyClientCertIfGiven",
      "RequireAndVerifyClientCert",
    ];
    if (!authTypes.includes(authType)) {
      throw new Error(`invalid client_auth_type "${String(t.client_auth_type)}"`);
    }
    const clientCa = typeof t.client_ca_file === "string" && t.client_ca_file
      ? readPem(t.client_ca_file, "client_ca_file")
      : undefined;
    if (!clientCa && authType.includes("Verify")) {
      throw new Error(`client_auth_type ${authType} needs client_ca_file`);
    }
    const ver = (v: unknown, dflt: string, field: string) => {
      const s = (v ?? dflt) as string;
      if (!(s in tlsVersions)) throw new Error(`invalid ${field} "${s}" (TLS10..TLS13)`);
      return tlsVersions[s];
    };
    cfg.tls = {
      cert,
      key,
      clientCa,
      clientAuthType: clientCa && authType === "NoClientCert" ? "RequireAndVerifyClientCert" : authType,
      minVersion: ver(t.min_version, "TLS12", "min_version"),
      maxVersion: ver(t.max_version, "TLS13", "max_version"),
    };
  }

  if (doc.basic_auth_users !== undefined && doc.basic_auth_users !== null) {
    if (!isObject(doc.basic_auth_users)) throw new Error("basic_auth_users must be a mapping");
    for (const [user, hash] of Object.entries(doc.basic_auth_users)) {
      if (typeof hash !== "string" || !/^\$2[abxy]?\$\d\d\$/.test(hash)) {
        throw new Error(`basic_auth_users.${user} is not a bcrypt hash`);
      }
      cfg.basicAuthUsers.set(user, hash);
    }
  }

  const hsc = doc.http_server_config;
  if (hsc !== undefined && hsc !== null) {
    if (!isObject(hsc)) throw new Error("http_server_config must be a mapping");
    for (const k of Object.keys(hsc)) {
      if (k !== "headers" && k !== "http2") throw new Error(`unknown key "${k}" in http_server_config`);
    }
    if (hsc.headers !== undefined) {
      if (!isObject(hsc.headers)) throw new Error("http_server_config.headers must be a mapping");
      for (const [h, v] of Object.entries(hsc.headers)) {
        if (!allowedHeaders.has(h)) throw new Error(`header "${h}" is not allowed in http_server_config`);
        cfg.headers[h] = String(v);
      }
    }
  }
  return cfg;
}

/** Reads and parses the web config file at `path` ("" gives the empty configuration). */
export async function loadWebConfig(path: string): Promise<WebConfig> {
  if (!path) return emptyWebConfig;
  const text = Deno.readTextFileSync(path);
  return await parseWebConfig(text, dirname(path));
}
