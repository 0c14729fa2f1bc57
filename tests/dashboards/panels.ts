// Runs a dashboard's queries as Grafana would, without Grafana: variables interpolated, Prometheus targets
// sent through the CEEMS LB (range queries for time series, instant ones otherwise) and Infinity targets
// to the API server, each as the given user; a panel has data when every target returns some.

/** Where and as whom the queries go, and the values of the dashboard's variables. */
export interface PanelContext {
  lbUrl: string;
  apiUrl: string;
  user: string;
  cluster: string;
  /** Values of plain variables (jobid, provider, country_code, …). */
  vars: Record<string, string>;
  fromS: number;
  toS: number;
  /**
   * End of the API server's window: it rounds /usage/current's window down to 15 min (as CEEMS), so a range
   * ending now misses the last quarter's updates; a dashboard whose range ends later sees them.
   */
  apiToS?: number;
  /** Grafana's $__interval (the query step), in seconds. */
  intervalS: number;
  /** The scrape interval, for $__rate_interval. */
  scrapeS: number;
}

/** What one panel returned. */
export interface PanelResult {
  title: string;
  type: string;
  ok: boolean;
  /** Per target: what was asked and what came back. */
  targets: { query: string; ok: boolean; detail: string }[];
}

type Target = Record<string, unknown> & { expr?: string; url?: string; instant?: boolean };
type Panel = { title: string; type: string; targets?: Target[] };
type Variable = { name: string; type: string; query?: unknown; allValue?: string };

/** A value escaped as Grafana escapes multi-value variables for Prometheus (regex escape inside a PromQL string). */
function regexEscape(v: string): string {
  return v.replace(/\\/g, "\\\\\\\\").replace(/[$^*{}[\]'+?.()|]/g, "\\\\$&");
}

/** Replaces Grafana's variables in `text` (multi-value ones as a regex alternation, as for Prometheus). */
export function interpolate(text: string, ctx: PanelContext, multi: Record<string, string[]> = {}): string {
  const rangeS = Math.round(ctx.toS - ctx.fromS);
  const rate = Math.max(4 * ctx.scrapeS, ctx.intervalS + ctx.scrapeS);
  const builtins: Record<string, string> = {
    __range: `${rangeS}s`,
    __interval: `${ctx.intervalS}s`,
    __interval_ms: String(ctx.intervalS * 1000),
    __rate_interval: `${rate}s`,
    "__from:date:seconds": String(Math.floor(ctx.fromS)),
    "__to:date:seconds": String(Math.floor(ctx.toS)),
  };
  const value = (name: string): string | undefined => {
    if (name in builtins) return builtins[name];
    if (name in multi) {
      return multi[name].length === 1 ? regexEscape(multi[name][0]) : `(${multi[name].map(regexEscape).join("|")})`;
    }
    if (name === "cluster") return ctx.cluster;
    return ctx.vars[name];
  };
  return text.replace(/\$\{([^}]+)\}|\$(__\w+|\w+)/g, (m, braced, bare) => value(braced ?? bare) ?? m);
}

async function promData(ctx: PanelContext, path: string, params: Record<string, string>) {
  const r = await fetch(`${ctx.lbUrl}${path}`, {
    method: "POST",
    headers: {
      "X-Grafana-User": ctx.user,
      "X-Ceems-Cluster-Id": ctx.cluster,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams(params).toString(),
  });
  const text = await r.text();
  let body: { status?: string; data?: unknown; error?: string } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // an error text
  }
  return { status: r.status, body, text };
}

/** The values of a Prometheus `label_values(<selector>, <label>)` variable, through the LB. */
export async function labelValues(ctx: PanelContext, query: string): Promise<string[]> {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(interpolate(query, ctx).trim());
  if (!m) throw new Error(`not a label_values query: ${query}`);
  // GET, as Grafana asks for label values (Prometheus serves this endpoint by GET only).
  const params = new URLSearchParams({ "match[]": m[1], start: String(ctx.fromS), end: String(ctx.toS) });
  const r = await fetch(`${ctx.lbUrl}/api/v1/label/${m[2]}/values?${params}`, {
    headers: { "X-Grafana-User": ctx.user, "X-Ceems-Cluster-Id": ctx.cluster },
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`label_values ${query}: ${r.status} ${text.slice(0, 200)}`);
  return (JSON.parse(text).data as string[]) ?? [];
}

function finiteValues(
  data: { resultType: string; result: { value?: [number, string]; values?: [number, string][] }[] },
) {
  let n = 0;
  for (const s of data.result ?? []) {
    for (const [, v] of s.values ?? (s.value ? [s.value] : [])) if (Number.isFinite(Number(v))) n++;
  }
  return n;
}

async function runProm(ctx: PanelContext, t: Target, panelType: string, multi: Record<string, string[]>) {
  const query = interpolate(t.expr!, ctx, multi);
  const range = panelType === "timeseries" && !t.instant;
  const r = range
    ? await promData(ctx, "/api/v1/query_range", {
      query,
      start: String(ctx.fromS),
      end: String(ctx.toS),
      step: `${ctx.intervalS}s`,
    })
    : await promData(ctx, "/api/v1/query", { query, time: String(ctx.toS) });
  if (r.status !== 200 || r.body.status !== "success") {
    return { query, ok: false, detail: `HTTP ${r.status}: ${r.text.slice(0, 300)}` };
  }
  const data = r.body.data as { resultType: string; result: { value?: [number, string] }[] };
  const n = finiteValues(data);
  return { query, ok: n > 0, detail: `${data.result.length} series, ${n} values` };
}

function pick(row: unknown, path: string): unknown {
  let v: unknown = row;
  for (const k of path.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

async function runInfinity(base: PanelContext, t: Target) {
  const ctx = { ...base, toS: base.apiToS ?? base.toS };
  const opts = t.url_options as { params: { key: string; value: string }[] };
  const u = new URL(ctx.apiUrl + interpolate(t.url!, ctx));
  for (const p of opts.params) u.searchParams.append(p.key, interpolate(p.value, ctx));
  const query = `${u.pathname}${u.search}`;
  const r = await fetch(u, { headers: { "X-Grafana-User": ctx.user } });
  const text = await r.text();
  if (r.status !== 200) return { query, ok: false, detail: `HTTP ${r.status}: ${text.slice(0, 300)}` };
  const rows = pick(JSON.parse(text), String(t.root_selector ?? "data")) as unknown[];
  if (!Array.isArray(rows) || !rows.length) return { query, ok: false, detail: "no rows" };
  const columns = (t.columns as { selector: string; type: string }[]) ?? [];
  const empty = columns.filter((c) =>
    !rows.some((row) => {
      const v = pick(row, interpolate(c.selector, ctx));
      return c.type === "number" ? Number.isFinite(Number(v)) && v !== null && v !== "" : v !== undefined;
    })
  ).map((c) => c.selector);
  return {
    query,
    ok: empty.length === 0,
    detail: empty.length ? `${rows.length} rows, no value for ${empty.join(", ")}` : `${rows.length} rows`,
  };
}

/** The values of the dashboard's query variables (Prometheus label_values through the LB). */
export async function resolveVariables(dash: { templating?: { list: Variable[] } }, ctx: PanelContext) {
  const multi: Record<string, string[]> = {};
  for (const v of dash.templating?.list ?? []) {
    if (v.type !== "query" || typeof v.query !== "string") continue;
    multi[v.name] = await labelValues(ctx, v.query);
  }
  return multi;
}

/** Runs every panel of a dashboard; `multi` holds the query variables' values. */
export async function runPanels(
  dash: { panels: Panel[] },
  ctx: PanelContext,
  multi: Record<string, string[]>,
): Promise<PanelResult[]> {
  const out: PanelResult[] = [];
  for (const p of dash.panels) {
    const targets = [];
    for (const t of p.targets ?? []) {
      const ds = (t.datasource as { type?: string } | undefined)?.type;
      targets.push(ds === "prometheus" ? await runProm(ctx, t, p.type, multi) : await runInfinity(ctx, t));
    }
    out.push({
      title: interpolate(p.title, ctx),
      type: p.type,
      ok: targets.length > 0 && targets.every((t) => t.ok),
      targets,
    });
  }
  return out;
}
