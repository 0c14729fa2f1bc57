// CEEMS's `filter_labels` for TSDB backends: removes the configured labels from query, series and
// label answers. Only answers of backends that configure it are read whole and rewritten.

const LABEL_VALUES = /^\/api\/v1\/label\/([^/]+)\/values$/;

/** The percent-decoded path segment, or the segment itself when it is not valid percent-encoding. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Rewrites a successful JSON answer of `path` without `labels`; other answers pass unchanged. */
export async function filterLabels(path: string, resp: Response, labels: string[]): Promise<Response> {
  if (!labels.length || resp.status !== 200 || !(resp.headers.get("content-type") ?? "").includes("json")) return resp;
  const values = LABEL_VALUES.exec(path);
  const known = path === "/api/v1/query" || path === "/api/v1/query_range" || path === "/api/v1/series" ||
    path === "/api/v1/labels" || values;
  if (!known) return resp;
  const text = await resp.text();
  let body: { data?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    return new Response(text, { status: resp.status, headers: resp.headers });
  }
  const drop = (m: unknown) => {
    if (m && typeof m === "object") { for (const l of labels) delete (m as Record<string, unknown>)[l]; }
  };
  const data = body.data;
  if (path === "/api/v1/query" || path === "/api/v1/query_range") {
    const result = (data as { result?: unknown })?.result;
    if (Array.isArray(result)) { for (const s of result) drop((s as { metric?: unknown })?.metric); }
  } else if (path === "/api/v1/series") {
    if (Array.isArray(data)) { for (const s of data) drop(s); }
  } else if (path === "/api/v1/labels") {
    if (Array.isArray(data)) body.data = data.filter((l) => !labels.includes(l));
  } else if (values && labels.includes(safeDecode(values[1]))) {
    body.data = [];
  }
  const headers = new Headers(resp.headers);
  headers.delete("content-length");
  return new Response(JSON.stringify(body), { status: resp.status, statusText: resp.statusText, headers });
}
