// Tests of the scrape runner and /metrics handler: failure isolation per collector, time budgets,
// the duration/success meta-metrics, and 503 beyond --web.max-requests concurrent scrapes.

import type { Collector, MetricSink } from "../../../collectors/framework/collector.ts";
import { NoDataError } from "../../../collectors/framework/collector.ts";
import { createMetricsHandler, exporterSelfMetrics } from "../../../collectors/exporter.ts";
import { scrapeCollectors } from "../../../collectors/framework/scrape.ts";
import { Logger } from "../../../common/log.ts";
import { assertEquals, assertMatch } from "../../helpers/assert.ts";
import { parseExposition } from "../../helpers/process.ts";

const good: Collector = {
  update(sink: MetricSink) {
    sink.gauge("test_good", "good", { a: "1" }, 42);
  },
};
const throwing: Collector = {
  update(sink: MetricSink) {
    sink.gauge("test_partial", "partial", {}, 1);
    throw new Error("broken file");
  },
};
const noData: Collector = {
  update() {
    throw new NoDataError("nothing yet");
  },
};
const hanging: Collector = {
  async update(sink: MetricSink) {
    await new Promise((r) => setTimeout(r, 300));
    sink.gauge("test_late", "late", {}, 1);
  },
};

Deno.test("scrape: a throwing, empty or overrunning collector gets success 0; the others keep theirs", async () => {
  const lines: string[] = [];
  const logger = new Logger("debug", "logfmt", {}, (l) => lines.push(l));
  const out = await scrapeCollectors(
    new Map([["good", good], ["throwing", throwing], ["nodata", noData], ["hanging", hanging]]),
    logger,
    100,
  );
  const success = Object.fromEntries(
    out.families.get("ceems_scrape_collector_success")!.samples.map((s) => [s.labels.collector, s.value]),
  );
  assertEquals(success, { good: 1, throwing: 0, nodata: 0, hanging: 0 });
  assertEquals(out.families.get("test_good")!.samples[0].value, 42);
  assertEquals(out.families.has("test_late"), false, "data from an overrun collector must be dropped");
  const durations = out.families.get("ceems_scrape_collector_duration_seconds")!.samples;
  assertEquals(durations.length, 4);
  const hang = durations.find((d) => d.labels.collector === "hanging")!;
  assertEquals(hang.value >= 0.09 && hang.value < 0.3, true, `hanging duration ${hang.value}`);
  assertEquals(lines.filter((l) => l.includes("level=error")).length, 2);
  assertMatch(lines.find((l) => l.includes("name=throwing"))!, /err="broken file"/);
  assertEquals(lines.some((l) => l.includes("level=debug") && l.includes("name=nodata")), true);
  await new Promise((r) => setTimeout(r, 250)); // let the hanging collector finish
});

Deno.test("metrics handler: scrapes beyond --web.max-requests get 503 and a slot frees afterwards", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow: Collector = {
    async update(sink: MetricSink) {
      await gate;
      sink.gauge("test_slow", "slow", {}, 7);
    },
  };
  const handler = createMetricsHandler(
    new Map([["slow", slow]]),
    new Logger("error", "logfmt", {}, () => {}),
    exporterSelfMetrics(true),
    1,
  );
  const first = handler();
  const second = await handler();
  assertEquals(second.status, 503);
  release();
  const body = await (await first).text();
  assertEquals(parseExposition(body).get("test_slow{}"), 7);
  const third = await handler();
  assertEquals(third.status, 200);
  await third.body?.cancel();
});
