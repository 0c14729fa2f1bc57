// Runs every enabled collector for one scrape, each timed and isolated: a collector that throws or
// overruns its budget reports ceems_scrape_collector_success 0 and never breaks the scrape.

import type { Logger } from "../../common/log.ts";
import { TimeoutError, withTimeout } from "../../common/timeout.ts";
import { type Collector, NoDataError } from "./collector.ts";
import { FamilySink } from "./metric_sink.ts";

/** Default time budget of one collector in one scrape. */
export const defaultCollectorTimeoutMs = 30_000;

/** Runs the collectors concurrently and returns their samples plus the scrape meta-metrics. */
export async function scrapeCollectors(
  collectors: Map<string, Collector>,
  logger: Logger,
  timeoutMs = defaultCollectorTimeoutMs,
): Promise<FamilySink> {
  const out = new FamilySink();
  const results = await Promise.all(
    [...collectors].map(async ([name, collector]) => {
      const sink = new FamilySink();
      const start = performance.now();
      let success = 1;
      try {
        await withTimeout(Promise.resolve().then(() => collector.update(sink)), timeoutMs, name);
      } catch (e) {
        success = 0;
        if (e instanceof NoDataError) {
          logger.debug("collector returned no data", { name, err: e.message });
        } else {
          logger.error("collector failed", { name, err: e });
        }
        if (e instanceof TimeoutError && e.what === name) sink.families.clear();
      }
      return { name, sink, success, seconds: (performance.now() - start) / 1000 };
    }),
  );
  for (const r of results) {
    out.merge(r.sink);
    out.gauge(
      "ceems_scrape_collector_duration_seconds",
      "ceems_exporter: Duration of a collector scrape.",
      { collector: r.name, subcollector: "" },
      r.seconds,
    );
    out.gauge(
      "ceems_scrape_collector_success",
      "ceems_exporter: Whether a collector succeeded.",
      { collector: r.name },
      r.success,
    );
  }
  return out;
}
