// Kingpin-compatible command-line flags: --name=value, --name value, --[no-]bool, repeatable flags,
// hidden and deprecated aliases, environment defaults, and one-line errors that name the flag.

/** Kinds of values a flag can hold. */
export type FlagKind = "bool" | "string" | "int" | "float" | "enum" | "strings" | "duration";

/** Declaration of one flag. */
export interface FlagSpec {
  name: string;
  help: string;
  kind: FlagKind;
  default?: string | boolean | number | string[];
  /** Allowed values for `enum` (and each value of `strings` when set). */
  choices?: string[];
  hidden?: boolean;
  /** Environment variable that supplies the default. */
  envar?: string;
  /** Placeholder shown in help, e.g. "PATH". */
  placeholder?: string;
  /** Check run on the value after parsing: returns an error message, or undefined. */
  validate?: (value: unknown) => string | undefined;
}

/** A flag error: the process must exit with status 2 and print `message`. */
export class FlagError extends Error {
  constructor(readonly flag: string, message: string) {
    super(message);
    this.name = "FlagError";
  }
}

type Value = string | boolean | number | string[] | undefined;

/** Parses `s` as a Go-style duration ("10s", "1m30s", "500ms", "2h") into milliseconds. */
export function parseDuration(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h|d|w|y)/g;
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    "µs": 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
    y: 31_536_000_000,
  };
  if (s === "0") return 0;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    if (m.index !== consumed) break;
    total += parseFloat(m[1]) * units[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== s.length || s.length === 0) throw new Error(`invalid duration "${s}"`);
  return total;
}

/** A set of flags for one subcommand. */
export class FlagSet {
  #specs = new Map<string, FlagSpec>();
  #aliases = new Map<string, { target: string; deprecated: boolean }>();
  #values = new Map<string, Value>();
  #explicit = new Set<string>();
  /** Warnings produced while parsing (deprecated spellings), to be logged once a logger exists. */
  readonly warnings: string[] = [];

  constructor(readonly command: string, readonly description: string) {}

  /** Declares a flag; throws if the name is taken (a programming error). */
  add(spec: FlagSpec): this {
    if (this.#specs.has(spec.name) || this.#aliases.has(spec.name)) {
      throw new Error(`flag --${spec.name} declared twice`);
    }
    this.#specs.set(spec.name, spec);
    return this;
  }

  /** Declares another spelling of `target`; a deprecated one logs a warning when used. */
  alias(name: string, target: string, deprecated = true): this {
    if (!this.#specs.has(target)) throw new Error(`alias --${name} targets unknown --${target}`);
    this.#aliases.set(name, { target, deprecated });
    return this;
  }

  /** True when a flag of that name is declared. */
  has(name: string): boolean {
    return this.#specs.has(name);
  }

  /** Parses argv; throws FlagError on the first problem. Returns positional arguments. */
  parse(argv: string[], env: Record<string, string | undefined> = {}): string[] {
    const positional: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      if (arg === "--") {
        positional.push(...argv.slice(i + 1));
        break;
      }
      if (!arg.startsWith("--")) {
        if (arg.startsWith("-") && arg.length > 1) {
          if (arg === "-h") {
            this.#setRaw("help", true);
            continue;
          }
          throw new FlagError(arg, `unknown short flag '${arg}'`);
        }
        positional.push(arg);
        continue;
      }
      const eq = arg.indexOf("=");
      let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
      let negated = false;
      let spec = this.#lookup(name);
      if (!spec && name.startsWith("no-")) {
        const base = this.#lookup(name.slice(3));
        if (base && base.kind === "bool") {
          spec = base;
          negated = true;
          name = name.slice(3);
        }
      }
      if (!spec) throw new FlagError(`--${name}`, `unknown long flag '--${name}'`);
      if (spec.kind === "bool") {
        let v = !negated;
        if (inline !== undefined) {
          if (negated) throw new FlagError(`--no-${name}`, `flag '--no-${name}' takes no value`);
          if (!["true", "false", "1", "0"].includes(inline)) {
            throw new FlagError(`--${name}`, `invalid boolean value '${inline}' for flag '--${name}'`);
          }
          v = inline === "true" || inline === "1";
        }
        this.#setRaw(spec.name, v);
        continue;
      }
      if (inline === undefined) {
        if (i + 1 >= argv.length) {
          throw new FlagError(`--${name}`, `expected argument for flag '--${name}'`);
        }
        inline = argv[++i];
      }
      this.#setParsed(spec, inline, `--${name}`);
    }
    // Environment defaults for flags not given on the command line.
    for (const spec of this.#specs.values()) {
      if (this.#explicit.has(spec.name) || !spec.envar) continue;
      const ev = env[spec.envar];
      if (ev !== undefined && ev !== "") this.#setParsed(spec, ev, `--${spec.name}`, false);
    }
    for (const spec of this.#specs.values()) {
      if (!spec.validate) continue;
      const msg = spec.validate(this.get(spec.name));
      if (msg) throw new FlagError(`--${spec.name}`, `invalid value for flag '--${spec.name}': ${msg}`);
    }
    return positional;
  }

  #lookup(name: string): FlagSpec | undefined {
    const spec = this.#specs.get(name);
    if (spec) return spec;
    const alias = this.#aliases.get(name);
    if (!alias) return undefined;
    if (alias.deprecated) {
      this.warnings.push(`flag --${name} is deprecated, use --${alias.target} instead`);
    }
    return this.#specs.get(alias.target);
  }

  #setRaw(name: string, v: Value, explicit = true) {
    this.#values.set(name, v);
    if (explicit) this.#explicit.add(name);
  }

  #setParsed(spec: FlagSpec, raw: string, shown: string, explicit = true) {
    const bad = (what: string) => new FlagError(shown, `invalid value '${raw}' for flag '${shown}': ${what}`);
    switch (spec.kind) {
      case "string":
        this.#setRaw(spec.name, raw, explicit);
        break;
      case "int": {
        if (!/^-?\d+$/.test(raw)) throw bad("expected an integer");
        this.#setRaw(spec.name, parseInt(raw, 10), explicit);
        break;
      }
      case "float": {
        const n = Number(raw);
        if (raw.trim() === "" || !Number.isFinite(n)) throw bad("expected a number");
        this.#setRaw(spec.name, n, explicit);
        break;
      }
      case "duration": {
        try {
          this.#setRaw(spec.name, parseDuration(raw), explicit);
        } catch {
          throw bad("expected a duration like 10s or 5m");
        }
        break;
      }
      case "enum": {
        if (!spec.choices!.includes(raw)) throw bad(`must be one of ${spec.choices!.join(", ")}`);
        this.#setRaw(spec.name, raw, explicit);
        break;
      }
      case "strings": {
        if (spec.choices && !spec.choices.includes(raw)) {
          throw bad(`must be one of ${spec.choices.join(", ")}`);
        }
        const prev = this.#explicit.has(spec.name) ? (this.#values.get(spec.name) as string[]) : [];
        this.#setRaw(spec.name, [...prev, raw], explicit);
        break;
      }
      case "bool":
        this.#setRaw(spec.name, raw === "true" || raw === "1", explicit);
    }
  }

  /** True when the flag was given on the command line (or through an alias). */
  isExplicit(name: string): boolean {
    return this.#explicit.has(name);
  }

  /** Current value of a flag (its default when not given). */
  get(name: string): Value {
    const spec = this.#specs.get(name);
    if (!spec) throw new Error(`unknown flag --${name} requested`);
    if (this.#values.has(name)) return this.#values.get(name);
    if (spec.default !== undefined) return spec.default;
    switch (spec.kind) {
      case "bool":
        return false;
      case "strings":
        return [];
      case "int":
      case "float":
      case "duration":
        return 0;
      default:
        return "";
    }
  }

  /** Typed accessors. */
  bool(name: string): boolean {
    return this.get(name) as boolean;
  }
  /** String value of a flag. */
  string(name: string): string {
    return this.get(name) as string;
  }
  /** Numeric value of a flag (durations are milliseconds). */
  number(name: string): number {
    return this.get(name) as number;
  }
  /** Values of a repeatable flag. */
  strings(name: string): string[] {
    return this.get(name) as string[];
  }

  /** Sets a flag's value from code (e.g. --collector.disable-defaults turning collectors off). */
  set(name: string, v: Value): void {
    this.#values.set(name, v);
  }

  /** Every declared flag, in declaration order. */
  specs(): FlagSpec[] {
    return [...this.#specs.values()];
  }

  /** Help text listing every visible flag with its default. */
  help(): string {
    const lines = [`usage: ceems ${this.command} [<flags>]`, "", this.description, "", "Flags:"];
    const rows: [string, string][] = [];
    for (const s of this.#specs.values()) {
      if (s.hidden) continue;
      const ph = s.placeholder ?? (s.kind === "bool" ? "" : s.kind.toUpperCase());
      const left = s.kind === "bool" ? `--[no-]${s.name}` : `--${s.name}=${ph}`;
      let right = s.help;
      if (s.envar) right += ` ($${s.envar})`;
      const d = s.default;
      if (d !== undefined && d !== "" && !(Array.isArray(d) && d.length === 0)) {
        const shown = Array.isArray(d)
          ? d.join(", ")
          : typeof d === "number" && s.kind === "duration"
          ? `${d / 1000}s`
          : String(d);
        right += ` (default: ${shown})`;
      }
      if (s.choices) right += ` [${s.choices.join("|")}]`;
      rows.push([left, right]);
    }
    const width = Math.min(60, Math.max(...rows.map((r) => r.length ? r[0].length : 0)));
    for (const [l, r] of rows) lines.push(`  ${l.padEnd(width)}  ${r}`);
    return lines.join("\n") + "\n";
  }
}
