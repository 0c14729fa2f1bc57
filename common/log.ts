// Structured logger in Go slog's logfmt and JSON shapes (what promslog prints), one line per record,
// written to stderr. Child loggers carry fixed key/value pairs such as collector=<name>.

/** Log levels, in order of severity. */
export type Level = "debug" | "info" | "warn" | "error";
/** Output formats accepted by --log.format. */
export type LogFormat = "logfmt" | "json";

const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Fixed or per-record attributes. */
export type Attrs = Record<string, unknown>;

/** A sink for log lines; stderr by default, replaceable in tests. */
export type LineWriter = (line: string) => void;

const encoder = new TextEncoder();
const stderrWriter: LineWriter = (line) => {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do.
  }
};

function fmtValue(v: unknown): string {
  let s: string;
  if (v instanceof Error) s = v.message;
  else if (typeof v === "string") s = v;
  else if (v === undefined) s = "<nil>";
  else if (typeof v === "object" && v !== null) s = JSON.stringify(v);
  else s = String(v);
  return s === "" || /[\s"=\\]/.test(s) ? JSON.stringify(s) : s;
}

/** A leveled structured logger. */
export class Logger {
  constructor(
    readonly level: Level = "info",
    readonly format: LogFormat = "logfmt",
    readonly attrs: Attrs = {},
    readonly write: LineWriter = stderrWriter,
  ) {}

  /** A logger that adds `attrs` to every record. */
  with(attrs: Attrs): Logger {
    return new Logger(this.level, this.format, { ...this.attrs, ...attrs }, this.write);
  }

  /** True when records of `level` are printed. */
  enabled(level: Level): boolean {
    return order[level] >= order[this.level];
  }

  /** Writes one record. */
  log(level: Level, msg: string, attrs: Attrs = {}): void {
    if (!this.enabled(level)) return;
    const all: Attrs = { time: new Date().toISOString(), level, msg, ...this.attrs, ...attrs };
    if (this.format === "json") {
      this.write(
        JSON.stringify(all, (_k, v) => v instanceof Error ? v.message : typeof v === "bigint" ? v.toString() : v),
      );
    } else {
      this.write(Object.entries(all).map(([k, v]) => `${k}=${fmtValue(v)}`).join(" "));
    }
  }

  /** Debug record. */
  debug(msg: string, attrs?: Attrs): void {
    this.log("debug", msg, attrs);
  }
  /** Info record. */
  info(msg: string, attrs?: Attrs): void {
    this.log("info", msg, attrs);
  }
  /** Warning record. */
  warn(msg: string, attrs?: Attrs): void {
    this.log("warn", msg, attrs);
  }
  /** Error record. */
  error(msg: string, attrs?: Attrs): void {
    this.log("error", msg, attrs);
  }
}

/** A logger that drops everything (for unit tests that do not look at logs). */
export const nullLogger = new Logger("error", "logfmt", {}, () => {});
