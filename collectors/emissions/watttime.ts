// The `wt` emissions provider: WattTime's marginal operating emissions rate (co2_moer) of one grid
// region, from /v3/historical over the last 15 minutes, refreshed every 2 minutes with a cached login token.

import { type EmissionFactor, HttpError, type ProviderDeps, RefreshingProvider } from "./provider.ts";

/** Default API root; `__WT_BASE_URL` overrides it (as in CEEMS, for tests). */
export const wattTimeDefaultBaseUrl = "https://api.watttime.org";
/** Pounds per MWh to grams per kWh. */
export const lbPerMWhToGPerKWh = 0.453592;
/** How long a login token is reused (WattTime tokens live 30 minutes). */
const tokenTtlMs = 25 * 60_000;

/** Parses /v3/historical: `{data: [{point_time, value}], meta: {units: "lbs_co2_per_mwh", ...}}` → g/kWh of the latest point. */
export function parseWattTimeHistorical(body: unknown): number {
  const data = (body as { data?: unknown })?.data;
  if (!Array.isArray(data)) throw new Error("wt: response has no data array");
  let latest: { t: number; v: number } | undefined;
  for (const p of data as { point_time?: string; value?: unknown }[]) {
    const t = Date.parse(p?.point_time ?? "");
    const v = Number(p?.value);
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    if (!latest || t > latest.t) latest = { t, v };
  }
  if (!latest) throw new Error("wt: no data point in the last 15 minutes");
  const units = (body as { meta?: { units?: string } }).meta?.units;
  if (units && units !== "lbs_co2_per_mwh") throw new Error(`wt: unexpected units ${units}`);
  return latest.v * lbPerMWhToGPerKWh;
}

/** The `wt` provider; construct only with WT_USERNAME, WT_PASSWORD and WT_REGION set. */
export class WattTimeProvider extends RefreshingProvider {
  readonly id = "wt";
  readonly name = "Watt Time";
  readonly #base: string;
  readonly #user: string;
  readonly #password: string;
  readonly #region: string;
  #token: { value: string; at: number } | undefined;

  constructor(deps: ProviderDeps, timing = { intervalMs: 2 * 60_000, retryMs: 60_000, maxAgeMs: 30 * 60_000 }) {
    super(deps, timing);
    this.#base = (deps.env("__WT_BASE_URL") || wattTimeDefaultBaseUrl).replace(/\/$/, "");
    const missing = ["WT_USERNAME", "WT_PASSWORD", "WT_REGION"].filter((k) => !deps.env(k));
    if (missing.length) throw new Error(`${missing.join(", ")} not set`);
    this.#user = deps.env("WT_USERNAME")!;
    this.#password = deps.env("WT_PASSWORD")!;
    this.#region = deps.env("WT_REGION")!;
  }

  async #login(): Promise<string> {
    if (this.#token && Date.now() - this.#token.at < tokenTtlMs) return this.#token.value;
    const body = await this.fetchJson(`${this.#base}/login`, {
      headers: { authorization: "Basic " + btoa(`${this.#user}:${this.#password}`) },
    });
    const token = (body as { token?: unknown })?.token;
    if (typeof token !== "string" || !token) throw new Error("wt: login response has no token");
    this.#token = { value: token, at: Date.now() };
    return token;
  }

  protected async fetchFactors(): Promise<EmissionFactor[]> {
    const end = new Date();
    const start = new Date(end.getTime() - 15 * 60_000);
    const q = new URLSearchParams({
      region: this.#region,
      start: start.toISOString(),
      end: end.toISOString(),
      signal_type: "co2_moer",
    });
    const get = async () =>
      this.fetchJson(`${this.#base}/v3/historical?${q}`, {
        headers: { authorization: `Bearer ${await this.#login()}` },
      });
    let body: unknown;
    try {
      body = await get();
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 401)) throw e;
      this.#token = undefined; // expired or revoked: log in again once
      body = await get();
    }
    const value = parseWattTimeHistorical(body);
    return [{ countryCode: this.#region, country: this.#region, value }];
  }
}
