// What the CEEMS dashboards share: their two datasources (Prometheus through the CEEMS LB, the CEEMS API
// server through Infinity), the cluster/provider/country variables, and panel builders that set each
// panel's datasource, targets, unit and size in one call.

import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as gauge from "@grafana/grafana-foundation-sdk/gauge";
import * as piechart from "@grafana/grafana-foundation-sdk/piechart";
import * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as table from "@grafana/grafana-foundation-sdk/table";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import { InfinityQueryBuilder } from "./infinity.ts";

/** Prometheus datasource: the CEEMS LB (it sends X-Grafana-User and X-Ceems-Cluster-Id). */
export const PROM = { type: "prometheus", uid: "${DS_CEEMS_LB}" };
/** Infinity datasource on the CEEMS API server (with Grafana's user header). */
export const API = { type: "yesoreyeram-infinity-datasource", uid: "${DS_CEEMS_API}" };

/** The import inputs every dashboard declares for its datasources. */
export const INPUTS = [
  {
    name: "DS_CEEMS_LB",
    label: "CEEMS LB (Prometheus)",
    description: "Prometheus datasource on the CEEMS LB, with X-Ceems-Cluster-Id and the user header",
    type: "datasource",
    pluginId: "prometheus",
    pluginName: "Prometheus",
  },
  {
    name: "DS_CEEMS_API",
    label: "CEEMS API server (Infinity)",
    description: "Infinity datasource whose base URL is the CEEMS API server, with the user header",
    type: "datasource",
    pluginId: "yesoreyeram-infinity-datasource",
    pluginName: "Infinity",
  },
];

/** The cluster id (a backend id of the LB and a cluster of the API server). */
export function clusterVariable(): dashboard.CustomVariableBuilder {
  return new dashboard.CustomVariableBuilder("cluster").label("Cluster").values("slurm-0").current({
    text: "slurm-0",
    value: "slurm-0",
  });
}

/** Emission factor provider of the emissions panels. */
export function providerVariable(): dashboard.CustomVariableBuilder {
  return new dashboard.CustomVariableBuilder("provider").label("Emission factor").values(
    "OWID : owid, RTE eCO2 Mix : rte, Electricity Maps : emaps, Watt Time : wt, World average : global",
  ).current({ text: "OWID", value: "owid" });
}

/** A Prometheus target. */
export function prom(expr: string, legend = "", instant = false): cog.Builder<cog.Dataquery> {
  const q = new prometheus.DataqueryBuilder().expr(expr).legendFormat(legend).datasource(PROM);
  return instant ? q.instant() : q.range();
}

/** An Infinity target on an API server path, with the cluster and (when `window`) the time range. */
export function api(path: string, window = true): InfinityQueryBuilder {
  const q = new InfinityQueryBuilder(path).datasource(API).param("cluster_id", "${cluster}");
  return window ? q.param("from", "${__from:date:seconds}").param("to", "${__to:date:seconds}") : q;
}

type Targets = cog.Builder<cog.Dataquery>[];

function withTargets<B extends { withTarget(t: cog.Builder<cog.Dataquery>): B }>(b: B, targets: Targets): B {
  targets.forEach((t, i) => {
    const q = t as unknown as { refId?: (id: string) => unknown };
    q.refId?.(String.fromCharCode(65 + i));
    b.withTarget(t);
  });
  return b;
}

/** A time series panel. */
export function ts(title: string, unit: string, targets: Targets, span = 12, ds = PROM): timeseries.PanelBuilder {
  return withTargets(
    new timeseries.PanelBuilder().title(title).unit(unit).datasource(ds).height(8).span(span).fillOpacity(10),
    targets,
  );
}

const reduce = (calc: string) => new common.ReduceDataOptionsBuilder().calcs([calc]).values(false);

/** A stat panel: each query's values summed (API rows per account, or one Prometheus value). */
export function single(title: string, unit: string, targets: Targets, span = 6, ds = PROM): stat.PanelBuilder {
  return withTargets(
    new stat.PanelBuilder().title(title).unit(unit).datasource(ds).height(5).span(span).reduceOptions(reduce("sum")),
    targets,
  );
}

/** A gauge panel, 0–100 %. */
export function percent(title: string, targets: Targets, span = 6, ds = PROM): gauge.PanelBuilder {
  return withTargets(
    new gauge.PanelBuilder().title(title).unit("percent").min(0).max(100).datasource(ds).height(5).span(span)
      .reduceOptions(reduce("mean")),
    targets,
  );
}

/** A pie chart. */
export function pie(title: string, unit: string, targets: Targets, span = 8, ds = PROM): piechart.PanelBuilder {
  return withTargets(
    new piechart.PanelBuilder().title(title).unit(unit).datasource(ds).height(8).span(span)
      .reduceOptions(reduce("sum")),
    targets,
  );
}

/** A table panel. */
export function grid(title: string, targets: Targets, span = 24, ds = API): table.PanelBuilder {
  return withTargets(new table.PanelBuilder().title(title).datasource(ds).height(10).span(span), targets);
}
