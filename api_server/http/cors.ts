// CORS and per-client rate limiting for the API server, as CEEMS's middleware does them: CORS headers only
// for requests with an Origin, a fully anchored origin regex, and --web.max-requests per client per minute.

/** CORS headers for a request, or undefined when it carries no Origin (or the origin is not allowed). */
export function corsHeaders(origin: string | null, originRe: string, userHeaders: string[]): Headers | undefined {
  if (!origin) return undefined;
  const h = new Headers({
    "Access-Control-Allow-Headers": ["Accept", "Authorization", "Content-Type", "Origin", ...userHeaders].join(", "),
    "Access-Control-Allow-Methods": "GET",
    "Access-Control-Expose-Headers": "Date",
    "Vary": "Origin",
  });
  if (originRe === ".*") h.set("Access-Control-Allow-Origin", "*");
  else if (new RegExp(`^(?:${originRe})$`).test(origin)) h.set("Access-Control-Allow-Origin", origin);
  else return undefined;
  return h;
}

/** The client address used for rate limiting: True-Client-IP, X-Real-IP, first X-Forwarded-For, else the peer. */
export function clientIp(req: Request, remoteAddr: string): string {
  const xff = req.headers.get("X-Forwarded-For")?.split(",")[0].trim();
  return req.headers.get("True-Client-IP") ?? req.headers.get("X-Real-IP") ?? xff ?? remoteAddr;
}

/** Fixed one-minute window request counter per client (0 = unlimited). */
export class RateLimiter {
  #window = 0;
  #counts = new Map<string, number>();
  constructor(readonly perMinute: number) {}

  /** Counts a request from `ip`; false when it is over the limit. */
  allow(ip: string, now = Date.now()): boolean {
    if (this.perMinute <= 0) return true;
    const w = Math.floor(now / 60_000);
    if (w !== this.#window) {
      this.#window = w;
      this.#counts.clear();
    }
    const n = (this.#counts.get(ip) ?? 0) + 1;
    this.#counts.set(ip, n);
    return n <= this.perMinute;
  }
}
