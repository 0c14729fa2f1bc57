// The `emaps` emissions provider: Electricity Maps' latest carbon intensity of every zone the token may
// read (zone list from /v3/zones, then /v3/carbon-intensity/latest per zone), refreshed every 30 minutes.

import { type EmissionFactor, HttpError, type ProviderDeps, RefreshingProvider } from "./provider.ts";

/** Default API root; `__EMAPS_BASE_URL` overrides it (as in CEEMS, for tests). */
export const emapsDefaultBaseUrl = "https://api.electricitymap.org";
/** Environment variable holding the API token (as in CEEMS). */
export const emapsTokenEnv = "EMAPS_API_TOKEN";

/** A zone of the /v3/zones response: `{"<zone>": {"zoneName": "...", "countryName"?: "..."}}`. */
export interface EmapsZone {
  zone: string;
  label: string;
}

/** Parses the /v3/zones response into zones and their labels ("<countryName> <zoneName>"). */
export function parseEmapsZones(body: unknown): EmapsZone[] {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new Error("emaps: zones response is not an object");
  }
  const out: EmapsZone[] = [];
  for (const [zone, v] of Object.entries(body as Record<string, { zoneName?: string; countryName?: string }>)) {
    const label = [v?.countryName, v?.zoneName].filter((s) => typeof s === "string" && s).join(" ") || zone;
    out.push({ zone, label });
  }
  return out.sort((a, b) => a.zone.localeCompare(b.zone));
}

/** Parses /v3/carbon-intensity/latest: `{zone, carbonIntensity, datetime, ...}`; undefined when null. */
export function parseEmapsLatest(body: unknown): number | undefined {
  const v = (body as { carbonIntensity?: unknown })?.carbonIntensity;
  if (v === null || v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error("emaps: carbonIntensity is not a number");
  return n;
}

/** The `emaps` provider; construct only with a token. */
export class EmapsProvider extends RefreshingProvider {
  readonly id = "emaps";
  readonly name = "Electricity Maps";
  readonly #base: string;
  readonly #token: string;
  #zones: EmapsZone[] | undefined;

  constructor(
    deps: ProviderDeps,
    timing = { intervalMs: 30 * 60_000, retryMs: 60_000, maxAgeMs: 2 * 3600_000 },
    private readonly concurrency = 8,
  ) {
    super(deps, timing);
    this.#base = (deps.env("__EMAPS_BASE_URL") || emapsDefaultBaseUrl).replace(/\/$/, "");
    const token = deps.env(emapsTokenEnv);
    if (!token) throw new Error(`${emapsTokenEnv} is not set`);
    this.#token = token;
  }

  protected async fetchFactors(): Promise<EmissionFactor[]> {
    // The zone list rarely changes: fetch it once (retrying on the next refresh if it failed).
    this.#zones ??= parseEmapsZones(await this.fetchJson(`${this.#base}/v3/zones`));
    const zones = this.#zones;
    const out: EmissionFactor[] = [];
    let firstError: Error | undefined;
    let next = 0;
    const worker = async () => {
      while (next < zones.length) {
        const z = zones[next++];
        try {
          const body = await this.fetchJson(
            `${this.#base}/v3/carbon-intensity/latest?zone=${encodeURIComponent(z.zone)}`,
            {
              headers: { "auth-token": this.#token },
            },
          );
          const v = parseEmapsLatest(body);
          if (v !== undefined) out.push({ countryCode: z.zone, country: z.label, value: v });
        } catch (e) {
          // Tokens of the free tier may read only some zones: 401/403 for the others is expected.
          if (!(e instanceof HttpError && (e.status === 401 || e.status === 403))) firstError ??= e as Error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, zones.length) }, worker));
    if (out.length === 0) throw firstError ?? new Error("emaps: no zone readable with this token");
    return out.sort((a, b) => a.countryCode.localeCompare(b.countryCode));
  }
}
