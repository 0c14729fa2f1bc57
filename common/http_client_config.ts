// Prometheus-style HTTP client configuration (basic_auth, authorization, http_headers, tls_config) for the
// clients of `ceems tool` and `ceems cacct`: request headers and a Deno HTTP client with the CA and client cert.

import { parse as parseYaml } from "yaml";

/** Credentials and TLS settings read from an HTTP client config file. */
export interface HttpClientConfig {
  headers: Record<string, string>;
  client?: Deno.HttpClient;
}

function readSecret(inline: unknown, file: unknown, what: string): string {
  if (typeof file === "string" && file) return Deno.readTextFileSync(file).trim();
  if (inline === undefined || inline === null) return "";
  if (typeof inline !== "string") throw new Error(`${what} must be a string`);
  return inline;
}

/** Loads an HTTP client config file (YAML); an empty path is no config. */
export function loadHttpClientConfig(path: string): HttpClientConfig {
  if (!path) return { headers: {} };
  const doc = parseYaml(Deno.readTextFileSync(path)) ?? {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a YAML mapping");
  return httpClientFromObject(doc as Record<string, unknown>);
}

/** basic_auth, authorization/bearer_token, http_headers and tls_config (ca_file, cert_file, key_file) of a mapping. */
export function httpClientFromObject(raw: Record<string, unknown>): HttpClientConfig {
  const doc = raw as Record<string, Record<string, unknown> | undefined>;
  const headers: Record<string, string> = {};
  const ba = doc.basic_auth;
  if (ba) {
    const pw = readSecret(ba.password, ba.password_file, "basic_auth.password");
    headers.Authorization = "Basic " + btoa(`${ba.username ?? ""}:${pw}`);
  }
  const az = doc.authorization;
  if (az) {
    const cred = readSecret(az.credentials, az.credentials_file, "authorization.credentials");
    headers.Authorization = `${az.type ?? "Bearer"} ${cred}`;
  }
  const hh = (doc as Record<string, unknown>).http_headers as Record<string, Record<string, unknown>> | undefined;
  for (const [name, h] of Object.entries(hh ?? {})) {
    const vals = [...(h?.values as string[] ?? []), ...(h?.secrets as string[] ?? [])];
    for (const f of h?.files as string[] ?? []) vals.push(Deno.readTextFileSync(f).trim());
    if (vals.length) headers[name] = vals.join(", ");
  }
  const bearer = (doc as Record<string, unknown>).bearer_token;
  if (typeof bearer === "string") headers.Authorization = `Bearer ${bearer}`;
  const tls = doc.tls_config;
  let client: Deno.HttpClient | undefined;
  if (tls) {
    const caCerts = typeof tls.ca_file === "string" ? [Deno.readTextFileSync(tls.ca_file)] : undefined;
    client = typeof tls.cert_file === "string" && typeof tls.key_file === "string"
      ? Deno.createHttpClient({
        caCerts,
        cert: Deno.readTextFileSync(tls.cert_file),
        key: Deno.readTextFileSync(tls.key_file),
      })
      : Deno.createHttpClient({ caCerts });
  }
  return { headers, client };
}
