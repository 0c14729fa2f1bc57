// The `rte` emissions provider: real-time carbon intensity of the French grid (RTE eCO2mix, national
// real-time dataset on RTE's Opendatasoft portal), refreshed every 30 minutes, as country FR.

import { type EmissionFactor, type ProviderDeps, RefreshingProvider } from "./provider.ts";

/** Default API root; `__RTE_BASE_URL` in the environment overrides it (tests). */
export const rteDefaultBaseUrl = "https://reseaux-energies-rte.opendatasoft.com";
const datasetPath = "/api/explore/v2.1/catalog/datasets/eco2mix-national-tr/records";

/** Today's date in Europe/Paris as YYYY-MM-DD (the dataset's time zone). */
export function parisDate(now: Date): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Paris" }).format(now);
}

/** The records URL CEEMS queries: latest non-null taux_co2 of today. */
export function rteUrl(base: string, now: Date): string {
  const q = new URLSearchParams({
    select: "taux_co2,date_heure",
    order_by: "date_heure desc",
    limit: "1",
    timezone: "Europe/Paris",
    where: `date_heure in [date'${parisDate(now)}' TO now()] and taux_co2 is not null`,
  });
  return `${base.replace(/\/$/, "")}${datasetPath}?${q}`;
}

/** Extracts the factor from an explore v2.1 `records` response: `{total_count, results: [{taux_co2, date_heure}]}`. */
export function parseRteRecords(body: unknown): EmissionFactor[] {
  const results = (body as { results?: unknown })?.results;
  if (!Array.isArray(results)) throw new Error("rte: response has no results array");
  if (results.length === 0) throw new Error("rte: no carbon-intensity record for today");
  const v = Number((results[0] as { taux_co2?: unknown }).taux_co2);
  if (!Number.isFinite(v)) throw new Error("rte: taux_co2 is not a number");
  return [{ countryCode: "FR", country: "France", value: v }];
}

/** The `rte` provider. */
export class RteProvider extends RefreshingProvider {
  readonly id = "rte";
  readonly name = "RTE eCO2 Mix";
  readonly #base: string;

  constructor(deps: ProviderDeps, timing = { intervalMs: 30 * 60_000, retryMs: 60_000, maxAgeMs: 2 * 3600_000 }) {
    super(deps, timing);
    this.#base = deps.env("__RTE_BASE_URL") || rteDefaultBaseUrl;
  }

  protected async fetchFactors(): Promise<EmissionFactor[]> {
    return parseRteRecords(await this.fetchJson(rteUrl(this.#base, new Date())));
  }
}
