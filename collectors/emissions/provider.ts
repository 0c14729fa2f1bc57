// Emission-factor providers of the emissions collector: the shared types, and a provider base that
// refreshes its factors in the background on a timer and serves the cached ones to scrapes.

import type { Logger } from "../../common/log.ts";

/** Carbon intensity of one country or grid zone. */
export interface EmissionFactor {
  /** ISO-2 code, grid zone or region (the `country_code` label). */
  countryCode: string;
  /** Human-readable name (the `country` label). */
  country: string;
  /** Grams of CO2-equivalent per kWh. */
  value: number;
}

/** A source of emission factors. */
export interface EmissionsProvider {
  /** Provider id, as in --collector.emissions.provider (the `provider` label). */
  readonly id: string;
  /** Display name (the `provider_name` label). */
  readonly name: string;
  /** The factors currently known (cached; never does I/O). */
  factors(): EmissionFactor[];
  /** Starts background refreshing (no-op for static providers). */
  start(): void;
  /** Stops background refreshing. */
  stop(): void;
}

/** What providers need from their surroundings; injectable for tests. */
export interface ProviderDeps {
  logger: Logger;
  /** Environment lookup (credentials, base URL overrides). */
  env: (name: string) => string | undefined;
  /** Per-request timeout. */
  requestTimeoutMs?: number;
}

/** A provider whose factors never change. */
export class StaticProvider implements EmissionsProvider {
  constructor(readonly id: string, readonly name: string, private readonly table: EmissionFactor[]) {}
  factors(): EmissionFactor[] {
    return this.table;
  }
  start(): void {}
  stop(): void {}
}

/** Timing of a refreshing provider. */
export interface RefreshTiming {
  /** Time between successful refreshes. */
  intervalMs: number;
  /** Time before retrying after a failed refresh. */
  retryMs: number;
  /** Cached factors older than this are dropped (a provider down for long reports nothing). */
  maxAgeMs: number;
}

/** A provider that fetches its factors off the scrape path, every intervalMs, and caches them. */
export abstract class RefreshingProvider implements EmissionsProvider {
  abstract readonly id: string;
  abstract readonly name: string;
  #cache: { at: number; factors: EmissionFactor[] } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #inflight: Promise<boolean> | undefined;
  #abort = new AbortController();
  #lastError = "";

  constructor(protected readonly deps: ProviderDeps, private readonly timing: RefreshTiming) {}

  /** Fetches the current factors once; throws on failure. */
  protected abstract fetchFactors(signal: AbortSignal): Promise<EmissionFactor[]>;

  factors(): EmissionFactor[] {
    if (!this.#cache) return [];
    if (Date.now() - this.#cache.at > this.timing.maxAgeMs) return [];
    return this.#cache.factors;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
  }

  /** Refreshes now (also used by tests); resolves to whether it succeeded, never rejects. */
  refresh(): Promise<boolean> {
    this.#inflight ??= this.#refreshOnce().finally(() => this.#inflight = undefined);
    return this.#inflight;
  }

  /** A fetch bounded by the request timeout and by stop(). */
  protected async fetchJson(url: string, init: RequestInit = {}): Promise<unknown> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.deps.requestTimeoutMs ?? 10_000)]);
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal });
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message?.replace(/ for url \([^)]*\)/, "");
      throw new Error(`${redact(url)}: ${(e as Error).message}${cause ? `: ${cause}` : ""}`);
    }
    const text = await res.text();
    if (!res.ok) throw new HttpError(res.status, `${redact(url)}: HTTP ${res.status} ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${redact(url)}: response is not JSON`);
    }
  }

  async #refreshOnce(): Promise<boolean> {
    try {
      const factors = await this.fetchFactors(this.#abort.signal);
      this.#cache = { at: Date.now(), factors };
      if (this.#lastError) this.deps.logger.info("emissions provider recovered", { provider: this.id });
      this.#lastError = "";
      return true;
    } catch (e) {
      if (this.#abort.signal.aborted) return false; // stopped: the failure is ours, not the provider's
      const msg = (e as Error).message;
      // Log each distinct error once at warn, repeats at debug, so a provider down for hours stays quiet.
      this.deps.logger.log(msg === this.#lastError ? "debug" : "warn", "emissions provider refresh failed", {
        provider: this.id,
        err: msg,
      });
      this.#lastError = msg;
      return false;
    }
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.refresh().then((ok) => this.#schedule(ok ? this.timing.intervalMs : this.timing.retryMs));
    }, delayMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}

/** An HTTP error status from a provider API. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** Drops query strings from URLs in messages (they may carry zone lists, never needed in logs). */
function redact(url: string): string {
  const i = url.indexOf("?");
  return i < 0 ? url : url.slice(0, i);
}
