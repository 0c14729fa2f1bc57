// Local mock HTTP servers for the emissions providers' APIs, answering in each provider's documented
// response format (documented per handler below), and recording the requests they receive for assertions.

/** A running mock API. */
export interface MockApi {
  base: string;
  requests: Request[];
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 on a free port, recording each request. */
export function serveMock(handler: (req: Request, url: URL) => Response | Promise<Response>): MockApi {
  const requests: Request[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    requests.push(req);
    return handler(req, new URL(req.url));
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** JSON response helper. */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/**
 * Electricity Maps v3 (https://static.electricitymaps.com/api/docs/index.html):
 * - `GET /v3/zones` (no token needed) → `{"<zone key>": {"zoneName": "...", "countryName"?: "..."}, ...}`
 * - `GET /v3/carbon-intensity/latest?zone=<z>` with header `auth-token: <token>` →
 *   `{"zone": "DE", "carbonIntensity": 302, "datetime": "2026-11-27T00:00:00.000Z", "updatedAt": "...",
 *     "emissionFactorType": "lifecycle", "isEstimated": true, "estimationMethod": "TIME_SLICER_AVERAGE"}`;
 *   zones the token's plan does not cover answer 403 `{"status":"error","message":"..."}`.
 */
export function emapsMock(token: string, intensities: Record<string, number | null>, denied: string[] = []): MockApi {
  return serveMock((req, url) => {
    if (url.pathname === "/v3/zones") {
      return json({
        DE: { zoneName: "Germany" },
        FR: { zoneName: "France" },
        "US-CAL-CISO": { zoneName: "California Independent System Operator", countryName: "USA" },
        "IN-NO": { zoneName: "Northern India", countryName: "India" },
      });
    }
    if (url.pathname === "/v3/carbon-intensity/latest") {
      if (req.headers.get("auth-token") !== token) return json({ status: "error", message: "Invalid token" }, 401);
      const zone = url.searchParams.get("zone") ?? "";
      if (denied.includes(zone)) return json({ status: "error", message: `Zone ${zone} not in plan` }, 403);
      if (!(zone in intensities)) return json({ status: "error", message: "Zone not found" }, 404);
      return json({
        zone,
        carbonIntensity: intensities[zone],
        datetime: "2026-11-27T00:00:00.000Z",
        updatedAt: "2026-11-27T00:10:00.000Z",
        emissionFactorType: "lifecycle",
        isEstimated: true,
        estimationMethod: "TIME_SLICER_AVERAGE",
      });
    }
    return json({ status: "error", message: "not found" }, 404);
  });
}

/**
 * RTE eco2mix national real-time dataset on Opendatasoft, explore API v2.1:
 * `GET /api/explore/v2.1/catalog/datasets/eco2mix-national-tr/records?select=taux_co2,date_heure&...` →
 * `{"total_count": 92, "results": [{"taux_co2": 23, "date_heure": "2026-11-27T01:00:00+01:00"}]}`.
 */
export function rteMock(tauxCo2: number | null): MockApi {
  return serveMock((_req, url) => {
    if (url.pathname !== "/api/explore/v2.1/catalog/datasets/eco2mix-national-tr/records") {
      return json({ error_code: "NotFound" }, 404);
    }
    const results = tauxCo2 === null ? [] : [{ taux_co2: tauxCo2, date_heure: "2026-11-27T01:00:00+01:00" }];
    return json({ total_count: results.length, results });
  });
}

/**
 * WattTime API v3 (https://docs.watttime.org):
 * - `GET /login` with HTTP Basic credentials → `{"token": "<bearer token>"}` (valid 30 min)
 * - `GET /v3/historical?region=<r>&start=<iso>&end=<iso>&signal_type=co2_moer` with `Authorization: Bearer <t>` →
 *   `{"data": [{"point_time": "2026-11-27T00:00:00+00:00", "value": 870.0}, ...],
 *     "meta": {"region": "CAISO_NORTH", "signal_type": "co2_moer", "units": "lbs_co2_per_mwh",
 *              "data_point_period_seconds": 300, "warnings": [], "model": {"date": "2023-03-01"}}}`;
 *   an expired token answers 401.
 */
export function wattTimeMock(user: string, password: string, points: [string, number][]) {
  let issued = 0;
  const state = { expireNext: false, logins: 0 };
  const api = serveMock((req, url) => {
    if (url.pathname === "/login") {
      if (req.headers.get("authorization") !== "Basic " + btoa(`${user}:${password}`)) {
        return json({ error: "invalid credentials" }, 403);
      }
      state.logins++;
      return json({ token: `tok${++issued}` });
    }
    if (url.pathname === "/v3/historical") {
      if (req.headers.get("authorization") !== `Bearer tok${issued}` || state.expireNext) {
        state.expireNext = false;
        return json({ error: "expired token" }, 401);
      }
      return json({
        data: points.map(([t, v]) => ({ point_time: t, value: v })),
        meta: {
          region: url.searchParams.get("region"),
          signal_type: url.searchParams.get("signal_type"),
          units: "lbs_co2_per_mwh",
          data_point_period_seconds: 300,
          warnings: [],
          model: { date: "2023-03-01" },
        },
      });
    }
    return json({ error: "not found" }, 404);
  });
  return { ...api, state };
}
