// Small builders for the PromQL text of recording rules: selectors with escaped label values, rate
// windows, and the label rewrites that join a GPU exporter's series to the CEEMS exporter's.

/** A PromQL string literal for `v` (double-quoted, escaped). */
export function str(v: string): string {
  return JSON.stringify(v);
}

/** `metric{m1,m2,…}`, leaving out empty matchers. */
export function sel(metric: string, ...matchers: (string | undefined)[]): string {
  return `${metric}{${matchers.filter(Boolean).join(",")}}`;
}

/** The `job="…"` matcher. */
export function jobIs(job: string): string {
  return `job=${str(job)}`;
}

/** `irate(<selector>[window])`. */
export function irate(selector: string, window: string): string {
  return `irate(${selector}[${window}])`;
}

/**
 * Adds a `host` label taken from `instance` without its port, the key that ties a GPU exporter's target
 * to the CEEMS exporter's target on the same node (as CEEMS matches jobs by instance host).
 */
export function withHost(v: string): string {
  return `label_replace(${v}, "host", "$1", "instance", "(.*):[0-9]+")`;
}

/** Drops the `host` label added by `withHost`. */
export function withoutHost(v: string): string {
  return `label_replace(${v}, "host", "", "", "")`;
}

/** Copies label `from` into label `to` when `from` is set (keeps `to` when it is not). */
export function copyLabel(v: string, from: string, to: string): string {
  return `label_replace(${v}, ${str(to)}, "$1", ${str(from)}, "(.+)")`;
}

/** Sets label `name` to `value` on every series. */
export function setLabel(v: string, name: string, value: string): string {
  return `label_replace(${v}, ${str(name)}, ${str(value)}, "", "")`;
}
