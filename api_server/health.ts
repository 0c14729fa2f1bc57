// Health of the API server beyond "the database answers": the start-up integrity check and update windows
// that keep failing, as /health reports them (503 with the reason).

/** Consecutive failed attempts of a cluster before /health reports it. */
export const FAILURES_BEFORE_UNHEALTHY = 3;

/** What /health knows besides a live ping. */
export class HealthState {
  #integrity: string | undefined;
  readonly #failures = new Map<string, { count: number; error: string }>();

  /** Records the outcome of the integrity check (problems found, or none). */
  integrity(problems: string[]): void {
    this.#integrity = problems.length ? `database integrity check failed: ${problems.join("; ")}` : undefined;
  }

  /** Records an update attempt of a cluster: success clears its failures. */
  update(clusterId: string, error?: unknown): void {
    if (error === undefined) {
      this.#failures.delete(clusterId);
      return;
    }
    const f = this.#failures.get(clusterId);
    const msg = error instanceof Error ? error.message : String(error);
    this.#failures.set(clusterId, { count: (f?.count ?? 0) + 1, error: msg });
  }

  /** Consecutive failures of a cluster's updates. */
  failures(clusterId: string): number {
    return this.#failures.get(clusterId)?.count ?? 0;
  }

  /** Why the server is unhealthy, or undefined. */
  reason(): string | undefined {
    if (this.#integrity) return this.#integrity;
    for (const [c, f] of this.#failures) {
      if (f.count >= FAILURES_BEFORE_UNHEALTHY) {
        return `cluster ${c}: ${f.count} consecutive update failures: ${f.error}`;
      }
    }
    return undefined;
  }
}
