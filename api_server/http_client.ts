// Request headers from a Prometheus-style HTTP client configuration (the `web:` blocks of clusters and
// updaters): basic_auth, authorization / bearer_token (inline or from a file) and http_headers.

import { encodeBase64 } from "./base64.ts";

function secret(o: Record<string, unknown>, key: string, where: string): string {
  if (typeof o[key] === "string" && o[key]) return o[key] as string;
  const file = o[`${key}_file`];
  if (typeof file === "string" && file) {
    try {
      return Deno.readTextFileSync(file).trim();
    } catch (e) {
      throw new Error(`${where}.${key}_file: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  return "";
}

/** Headers to send for the HTTP client config `web` (located at `where` for error messages). */
export function clientHeaders(web: Record<string, unknown>, where: string): Record<string, string> {
  const h: Record<string, string> = {};
  const ba = web.basic_auth as Record<string, unknown> | undefined;
  if (ba && typeof ba === "object") {
    const user = typeof ba.username === "string" ? ba.username : "";
    h["Authorization"] = "Basic " + encodeBase64(`${user}:${secret(ba, "password", `${where}.basic_auth`)}`);
  }
  const au = web.authorization as Record<string, unknown> | undefined;
  if (au && typeof au === "object") {
    const type = typeof au.type === "string" && au.type ? au.type : "Bearer";
    h["Authorization"] = `${type} ${secret(au, "credentials", `${where}.authorization`)}`;
  }
  const bearer = secret(web, "bearer_token", where);
  if (bearer) h["Authorization"] = `Bearer ${bearer}`;
  const hh = web.http_headers as Record<string, { values?: unknown[]; secrets?: unknown[] }> | undefined;
  if (hh && typeof hh === "object") {
    for (const [k, v] of Object.entries(hh)) {
      const vals = [...(v?.values ?? []), ...(v?.secrets ?? [])].map(String);
      if (vals.length) h[k] = vals.join(",");
    }
  }
  return h;
}
