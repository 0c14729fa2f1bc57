// The static emissions providers: `owid` (latest Our World in Data carbon intensity per country, shipped
// with the program) and `global` (the world average CEEMS uses, 475 gCO2/kWh).

import { owidCarbonIntensity } from "./owid_data.ts";
import { type EmissionFactor, StaticProvider } from "./provider.ts";

/** World-average carbon intensity CEEMS reports for country code ZZ. */
export const globalAverageGCo2PerKWh = 475;

/** The `owid` provider: one factor per ISO-2 country code. */
export function owidProvider(): StaticProvider {
  const table: EmissionFactor[] = Object.entries(owidCarbonIntensity).map(([code, [name, value]]) => ({
    countryCode: code,
    country: name,
    value,
  }));
  return new StaticProvider("owid", "OWID", table);
}

/** The `global` provider: the world average under country code ZZ. */
export function globalProvider(): StaticProvider {
  return new StaticProvider("global", "World Average", [
    { countryCode: "ZZ", country: "World", value: globalAverageGCo2PerKWh },
  ]);
}
