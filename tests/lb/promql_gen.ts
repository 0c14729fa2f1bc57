// Seeded random PromQL generator for the access-control tests: builds queries from the grammar's
// constructs and tracks, independently of the analyser, whether each one is safe for the user.

/** A generated query and the generator's own verdict. */
export interface GeneratedQuery {
  query: string;
  /** True when every selector is pinned to the user's units and no unit label is forged. */
  safe: boolean;
}

/** Mulberry32: a small deterministic PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Part {
  text: string;
  safe: boolean;
}

/** Generator of queries for a user owning `own` units, with `foreign` units of others. */
export class QueryGenerator {
  #r: () => number;
  constructor(seed: number, readonly own: string[], readonly foreign: string[]) {
    this.#r = rng(seed);
  }

  #pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.#r() * xs.length)];
  }

  #chance(p: number): boolean {
    return this.#r() < p;
  }

  /** One uuid matcher and whether it pins the selector to owned units. */
  #uuidMatcher(): Part {
    const own = this.#pick(this.own);
    const other = this.#pick(this.foreign);
    const q = this.#pick(['"', '"', "'", "`"]);
    const cases: Part[] = [
      { text: `uuid=${q}${own}${q}`, safe: true },
      { text: `uuid=~${q}${this.own.join("|")}${q}`, safe: true },
      { text: `uuid=~${q}${own}${q}`, safe: true },
      { text: `uuid=${q}${other}${q}`, safe: false },
      { text: `uuid=~${q}${own}|${other}${q}`, safe: false },
      { text: `uuid=~${q}.+${q}`, safe: false },
      { text: `uuid=~${q}${own.slice(0, 2)}.*${q}`, safe: false },
      { text: `uuid!=${q}${other}${q}`, safe: false },
      { text: `uuid!~${q}${other}${q}`, safe: false },
      { text: `uuid=${q}${q}`, safe: false },
      { text: `uuid=~${q}${own}|${q}`, safe: false },
      { text: `uuid=~${q}(${own})${q}`, safe: false },
      { text: `uuid=~${q}${own}|${own.slice(0, -1)}.${q}`, safe: false },
    ];
    if (q === '"') {
      // Escape sequences: the analyser decodes them as Prometheus does (and forwards the decoded value), so an
      // escaped owned id is safe, and an escaped `|` is a regex metacharacter that is not a plain alternation.
      cases.push({ text: `uuid="\\u0031${own.slice(1)}"`, safe: true });
      cases.push({ text: `uuid="\\x3${other.slice(0, 1)}${other.slice(1)}"`, safe: false });
      cases.push({ text: `uuid=~"${own}\\\\|${other}"`, safe: false });
    }
    return this.#pick(cases);
  }

  /** A vector selector. */
  selector(): Part {
    const name = this.#pick(["ceems_cpu_usage", "ceems_mem_usage", "node_load1", "", ""]);
    const ms: Part[] = [];
    const n = Math.floor(this.#r() * 3) + (name === "" ? 1 : 0);
    let uuidMatchers = 0;
    for (let i = 0; i < n; i++) {
      if (this.#chance(0.6)) {
        ms.push(this.#uuidMatcher());
        uuidMatchers++;
      } else {
        ms.push(this.#pick<Part>([
          { text: 'hostname=~"node-.*"', safe: true },
          { text: 'manager="slurm"', safe: true },
          { text: '__name__="ceems_cpu_usage"', safe: true },
          { text: '__name__=~"ceems_.+"', safe: true },
          { text: `gpuuuid="GPU-${this.#pick(this.foreign)}"`, safe: true },
          { text: 'instance!=""', safe: true },
        ]));
      }
    }
    if (name === "" && ms.length === 0) ms.push({ text: '__name__=~".+"', safe: true });
    const text = `${name}{${ms.map((m) => m.text).join(", ")}}`;
    return { text, safe: uuidMatchers > 0 && ms.every((m) => m.safe) };
  }

  #range(): string {
    return this.#pick(["1m", "5m", "10m"]);
  }

  #modifiers(t: string): string {
    let out = t;
    if (this.#chance(0.15)) out += ` offset ${this.#pick(["1m", "5m", "-2m"])}`;
    if (this.#chance(0.1)) out += ` @ ${this.#pick(["end()", "start()", String(Math.floor(Date.now() / 1000))])}`;
    return out;
  }

  /** An instant-vector expression of at most `depth` levels. */
  expr(depth = 3): Part {
    const leafOnly = depth <= 0;
    const k = leafOnly ? this.#pick([0, 0, 1, 9]) : Math.floor(this.#r() * 12);
    switch (k) {
      case 0: {
        const s = this.selector();
        return { text: this.#modifiers(s.text), safe: s.safe };
      }
      case 1: {
        const s = this.selector();
        const fn = this.#pick(["rate", "avg_over_time", "max_over_time", "sum_over_time", "increase", "changes"]);
        return { text: `${fn}(${this.#modifiers(`${s.text}[${this.#range()}]`)})`, safe: s.safe };
      }
      case 2: {
        const e = this.expr(depth - 1);
        const agg = this.#pick(["sum", "avg", "max", "min", "count", "group"]);
        const grouping = this.#pick(["", " by (uuid)", " without (hostname)", " by (__name__)"]);
        return { text: `${agg}${grouping} (${e.text})`, safe: e.safe };
      }
      case 3:
      case 4: {
        const a = this.expr(depth - 1);
        const b = this.expr(depth - 1);
        const op = this.#pick(["+", "-", "*", "/", "and", "or", "unless", ">", "== bool"]);
        const match = this.#pick(["", "", " on(uuid)", " ignoring(hostname)", " on()"]);
        const group = match && !["and", "or", "unless"].includes(op) && this.#chance(0.2) ? " group_left()" : "";
        return { text: `(${a.text}) ${op}${match}${group} (${b.text})`, safe: a.safe && b.safe };
      }
      case 5: {
        const e = this.expr(depth - 1);
        const sub = this.#modifiers(`(${e.text})[${this.#range()}:${this.#pick(["30s", "1m", ""])}]`);
        return { text: `max_over_time(${sub})`, safe: e.safe };
      }
      case 6: {
        const e = this.expr(depth - 1);
        const dst = this.#pick(["uuid", "uuid", "foo", "hostname"]);
        const q = this.#pick(['"', "'"]);
        return {
          text: `label_replace(${e.text}, ${q}${dst}${q}, "$1", "hostname", "node-(.*)")`,
          safe: e.safe && dst !== "uuid",
        };
      }
      case 7: {
        const e = this.expr(depth - 1);
        const dst = this.#pick(["uuid", "joined"]);
        return { text: `label_join(${e.text}, "${dst}", "-", "hostname", "manager")`, safe: e.safe && dst !== "uuid" };
      }
      case 8: {
        const e = this.expr(depth - 1);
        const dst = this.#pick(["uuid", "value"]);
        return { text: `count_values("${dst}", ${e.text})`, safe: e.safe && dst !== "uuid" };
      }
      case 9:
        return this.#pick<Part>([
          { text: "vector(1)", safe: true },
          { text: "time()", safe: true },
          { text: "2", safe: true },
        ]);
      case 10: {
        const e = this.expr(depth - 1);
        const fn = this.#pick(["topk(1, ", "bottomk(2, ", "sort_desc(", "abs(", "absent(", "clamp_max(", "scalar("]);
        const tail = fn === "clamp_max(" ? ", 10)" : ")";
        return { text: `${fn}${e.text}${tail}`, safe: e.safe };
      }
      default: {
        const e = this.expr(depth - 1);
        return { text: `(${e.text}) * ${this.#pick(["2", "0.5", "10"])}`, safe: e.safe };
      }
    }
  }

  /** One whole query. */
  next(): GeneratedQuery {
    const e = this.expr(this.#pick([1, 2, 3]));
    return { query: e.text, safe: e.safe };
  }
}
