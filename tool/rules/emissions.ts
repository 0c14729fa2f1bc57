// Emissions rules: a power series (W) turned into an emissions rate (g/s) with live factors from the
// exporter's emissions collector or a static factor. Every exporter that runs the emissions collector
// reports the same factors, so they are folded per provider (and country) before the join: joining the
// raw series, as CEEMS did before #593, is a many-to-many match that leaves the result empty.

import { jobIs, sel, setLabel, str } from "./promql.ts";
import type { EmissionsSource, Rule } from "./types.ts";

const FACTOR = "ceems_emissions_gCo2_kWh";

/** Per-unit emissions: one rule per provider, each series labelled with its `provider`. */
export function unitEmissionsRules(record: string, power: string, job: string, em: EmissionsSource): Rule[] {
  const perJoule = `${sel(power, jobIs(job))} / 3.6e+06`;
  if (em.kind === "providers") {
    return em.providers.map((p) => ({
      record,
      labels: { provider: p },
      comment:
        `Emissions rate (g/s) with the ${p} factor for ${em.countryCode}; factors of all exporters folded by max.`,
      expr: `${setLabel(perJoule, "provider", p)}\n  * on (provider) group_left ()\n    max by (provider) (${
        sel(FACTOR, `country_code=${str(em.countryCode)}`, `provider=${str(p)}`)
      })`,
    }));
  }
  if (em.kind === "static") {
    return [{
      record,
      comment: `Emissions rate (g/s) with a static factor of ${em.gCo2PerKWh} g/kWh (${em.provider}` +
        `${em.countryCode ? `, ${em.countryCode}` : ""}).`,
      expr: `${setLabel(perJoule, "provider", em.provider)} * ${em.gCo2PerKWh}`,
    }];
  }
  return [];
}

/**
 * Emissions of a whole scrape job from its `job:` power series: with live factors one series per
 * country, provider (every country the exporters report, as CEEMS records them); with a static factor one.
 */
export function jobEmissionsRules(record: string, power: string, job: string, em: EmissionsSource): Rule[] {
  const perJoule = `${sel(power, jobIs(job))} / 3.6e+06`;
  if (em.kind === "providers") {
    return [{
      record,
      comment: "Emissions rate (g/s) of all hosts of the job, per country and provider of emission factor.",
      expr: `sum by (job, country_code, country, provider) (\n  ${perJoule}\n    * on (job) group_right ()\n` +
        `      ${setLabel(`max by (country_code, country, provider) (${FACTOR})`, "job", job)}\n)`,
    }];
  }
  if (em.kind === "static") {
    return [{
      record,
      comment: `Emissions rate (g/s) of all hosts of the job with a static factor of ${em.gCo2PerKWh} g/kWh.`,
      expr: setLabel(
        setLabel(`${em.gCo2PerKWh} * ${perJoule}`, "provider", em.provider),
        "country_code",
        em.countryCode,
      ),
    }];
  }
  return [];
}
