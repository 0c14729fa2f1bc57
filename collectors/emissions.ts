// The `emissions` collector: carbon intensity of electricity from the providers chosen with
// --collector.emissions.provider, fetched in the background and served from cache as ceems_emissions_gCo2_kWh.

import type { FlagSet } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { type Collector, type CollectorContext, type MetricSink, NoDataError } from "./framework/collector.ts";
import { EmapsProvider } from "./emissions/emaps.ts";
import type { EmissionsProvider, ProviderDeps } from "./emissions/provider.ts";
import { RteProvider } from "./emissions/rte.ts";
import { globalProvider, owidProvider } from "./emissions/static.ts";
import { WattTimeProvider } from "./emissions/watttime.ts";
import { registerCollector } from "./framework/registry.ts";

/** Provider ids in CEEMS's order; `global` is always available too. */
export const emissionsProviderIds = ["owid", "emaps", "rte", "wt", "global"] as const;

const factories: Record<string, (deps: ProviderDeps) => EmissionsProvider> = {
  owid: () => owidProvider(),
  emaps: (d) => new EmapsProvider(d),
  rte: (d) => new RteProvider(d),
  wt: (d) => new WattTimeProvider(d),
  global: () => globalProvider(),
};

/**
 * Builds the selected providers (all when `selected` is empty). A provider that cannot be built
 * (missing credentials) is skipped with one log line; it never fails the exporter.
 */
export function buildProviders(selected: string[], deps: ProviderDeps): EmissionsProvider[] {
  const ids = selected.length ? [...new Set(selected)] : [...emissionsProviderIds];
  const out: EmissionsProvider[] = [];
  for (const id of ids) {
    const make = factories[id];
    if (!make) throw new Error(`unknown emissions provider ${id}`);
    try {
      out.push(make(deps));
    } catch (e) {
      deps.logger.info("emissions provider skipped", { provider: id, reason: (e as Error).message });
    }
  }
  return out;
}

/** Collects the cached factors of every provider. */
export class EmissionsCollector implements Collector {
  constructor(private readonly providers: EmissionsProvider[]) {
    for (const p of providers) p.start();
  }

  update(sink: MetricSink): void {
    let n = 0;
    for (const p of this.providers) {
      for (const f of p.factors()) {
        if (!(f.value > 0)) continue; // CEEMS emits only positive factors
        n++;
        sink.gauge(
          "ceems_emissions_gCo2_kWh",
          "Current emission factor in CO2eq grams per kWh",
          { provider: p.id, provider_name: p.name, country_code: f.countryCode, country: f.country },
          f.value,
        );
      }
    }
    if (n === 0) throw new NoDataError("no emission factors available (yet)");
  }

  stop(): void {
    for (const p of this.providers) p.stop();
  }
}

function registerFlags(fs: FlagSet): void {
  fs.add({
    name: "collector.emissions.provider",
    kind: "strings",
    choices: [...emissionsProviderIds],
    placeholder: "PROVIDER",
    help: "Emission factor providers (owid, emaps, rte, wt, global); repeatable. Default: all. " +
      "emaps needs EMAPS_API_TOKEN, wt needs WT_USERNAME, WT_PASSWORD and WT_REGION.",
  });
}

/** Builds the collector from the chosen providers (--collector.emissions.provider) and the environment. */
export function createEmissionsCollector(
  providerIds: string[],
  logger: Logger,
  env = (k: string) => Deno.env.get(k),
) {
  const providers = buildProviders(providerIds, { logger, env });
  logger.info("emissions providers", { providers: providers.map((p) => p.id).join(",") });
  return new EmissionsCollector(providers);
}

registerCollector({
  name: "emissions",
  defaultEnabled: false,
  help: "Carbon intensity of electricity from OWID, Electricity Maps, RTE, WattTime and a world average",
  registerFlags,
  options: (f) => ({ providers: f.strings("collector.emissions.provider") }),
  create: (ctx: CollectorContext, o: { providers: string[] }) => createEmissionsCollector(o.providers, ctx.logger),
});
