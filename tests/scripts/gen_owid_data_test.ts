// Tests of the OWID table generator: latest year per ISO-3 code, ISO-2 mapping, aggregates dropped,
// and a rendered module that parses back to the same table.

import { buildOwidTable, renderOwidModule } from "../../scripts/gen_owid_data.ts";
import { owidCarbonIntensity } from "../../collectors/emissions/owid_data.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

const iso = JSON.stringify({
  "3166-1": [
    { alpha_2: "FR", alpha_3: "FRA", name: "France", numeric: "250" },
    { alpha_2: "DE", alpha_3: "DEU", name: "Germany", numeric: "276" },
  ],
});
const csv = `Entity,Code,Year,Carbon intensity of electricity - gCO2/kWh
ASEAN (Ember),,2024,572.1
France,FRA,2023,55.27541
France,FRA,2024,44.179085
France,FRA,2022,85
Germany,DEU,2021,400.5
World,OWID_WRL,2024,473.0065
Atlantis,ATL,2024,10
`;

Deno.test("buildOwidTable keeps each country's latest year and drops aggregates and unknown codes", () => {
  assertEquals(buildOwidTable(csv, iso), [
    { alpha2: "DE", name: "Germany", year: 2021, gCo2PerKWh: 400.5 },
    { alpha2: "FR", name: "France", year: 2024, gCo2PerKWh: 44.179 },
  ]);
  assertThrows(() => buildOwidTable("a,b\n", iso), /unexpected OWID CSV header/);
});

Deno.test("renderOwidModule output is valid TypeScript holding the same table", async () => {
  const src = renderOwidModule(buildOwidTable(csv, iso));
  const mod = await import(`data:application/typescript;base64,${btoa(src)}`);
  assertEquals(mod.owidCarbonIntensity, { DE: ["Germany", 400.5, 2021], FR: ["France", 44.179, 2024] });
  // The committed module has the shape the generator writes.
  assertEquals(owidCarbonIntensity.FR, ["France", 44.179, 2024]);
});
