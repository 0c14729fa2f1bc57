// A query of Grafana's Infinity datasource (yesoreyeram-infinity-datasource) on the CEEMS API server, built
// like the foundation SDK's own query builders so panels take it as a target: a JSON URL, its parameters,
// the rows' selector and the columns to read.

import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import type * as common from "@grafana/grafana-foundation-sdk/common";

/** One column read from each row: a JSON path, its title, its type. */
export interface InfinityColumn {
  selector: string;
  text: string;
  type: "string" | "number" | "timestamp";
}

/** The query as Grafana stores it in a panel's targets. */
export interface InfinityQuery extends cog.Dataquery {
  refId: string;
  datasource?: common.DataSourceRef;
  type: "json";
  source: "url";
  format: "table";
  parser: "backend";
  url: string;
  url_options: { method: "GET"; params: { key: string; value: string }[]; headers: { key: string; value: string }[] };
  root_selector: string;
  columns: InfinityColumn[];
  filters: unknown[];
}

/** Builds an Infinity query on an API server path. */
export class InfinityQueryBuilder implements cog.Builder<cog.Dataquery> {
  readonly #q: InfinityQuery;

  constructor(url: string) {
    this.#q = {
      _implementsDataqueryVariant() {},
      refId: "A",
      type: "json",
      source: "url",
      format: "table",
      parser: "backend",
      url,
      url_options: { method: "GET", params: [], headers: [] },
      root_selector: "data",
      columns: [],
      filters: [],
    };
  }

  /** Adds a query parameter (Grafana variables allowed in the value). */
  param(key: string, value: string): this {
    this.#q.url_options.params.push({ key, value });
    return this;
  }

  /** Adds a column read from each row. */
  column(selector: string, text: string, type: InfinityColumn["type"] = "number"): this {
    this.#q.columns.push({ selector, text, type });
    return this;
  }

  /** The JSON path of the rows (default `data`). */
  rootSelector(s: string): this {
    this.#q.root_selector = s;
    return this;
  }

  refId(id: string): this {
    this.#q.refId = id;
    return this;
  }

  datasource(ds: common.DataSourceRef): this {
    this.#q.datasource = ds;
    return this;
  }

  build(): cog.Dataquery {
    const { _implementsDataqueryVariant: _, ...plain } = this.#q;
    return plain as unknown as cog.Dataquery;
  }
}
