// PromQL literals as Prometheus's Go lexer reads them (string escapes, Go number syntax, durations)
// and their canonical ASCII spelling, so a printed query cannot be read two ways.

/** A query that does not parse, or uses something the load balancer does not print: answered with 400. */
export class PromQLSyntaxError extends Error {}

const fail = (msg: string): never => {
  throw new PromQLSyntaxError(msg);
};

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92 };
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function hexDigits(raw: string, at: number, n: number, base: 8 | 16): number {
  const digits = raw.slice(at, at + n);
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9a-fA-F]+$/;
  if (digits.length !== n || !re.test(digits)) fail(`invalid escape sequence in string ${JSON.stringify(raw)}`);
  return parseInt(digits, base);
}

/**
 * Decodes a PromQL string literal (`"…"`, `'…'` with Go escapes, or a raw `` `…` ``) exactly as
 * Prometheus does; refuses unknown escapes, surrogates, a missing end quote and invalid UTF-8.
 */
export function decodeStringLiteral(raw: string): string {
  const quote = raw[0];
  if (quote === "`") {
    if (raw.length < 2 || raw[raw.length - 1] !== "`") fail("unterminated raw string");
    const body = raw.slice(1, -1);
    if (!body.isWellFormed()) fail("string holds a lone surrogate");
    return body;
  }
  if (quote !== '"' && quote !== "'") fail(`not a string literal: ${JSON.stringify(raw)}`);
  const bytes: number[] = [];
  let i = 1;
  for (;;) {
    if (i >= raw.length) fail("unterminated quoted string");
    const c = raw[i];
    if (c === quote) {
      i++;
      break;
    }
    if (c === "\n") fail("newline in quoted string");
    if (c !== "\\") {
      const cp = raw.codePointAt(i)!;
      if (cp >= 0xd800 && cp <= 0xdfff) fail("string holds a lone surrogate");
      for (const b of utf8.encode(String.fromCodePoint(cp))) bytes.push(b);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = raw[i + 1];
    if (e === undefined) fail("escape sequence not terminated");
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e]);
      i += 2;
    } else if (e === quote) {
      bytes.push(quote.charCodeAt(0));
      i += 2;
    } else if (e >= "0" && e <= "7") {
      const v = hexDigits(raw, i + 1, 3, 8);
      if (v > 255) fail("octal escape sequence out of range");
      bytes.push(v);
      i += 4;
    } else if (e === "x") {
      bytes.push(hexDigits(raw, i + 2, 2, 16));
      i += 4;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const cp = hexDigits(raw, i + 2, n, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) fail("escape sequence is an invalid Unicode code point");
      for (const b of utf8.encode(String.fromCodePoint(cp))) bytes.push(b);
      i += 2 + n;
    } else {
      fail(`unknown escape sequence \\${e}`);
    }
  }
  if (i !== raw.length) fail("text after the end of a string");
  try {
    return strictUtf8.decode(Uint8Array.from(bytes));
  } catch {
    return fail("string is not valid UTF-8");
  }
}

const hex = (v: number, width: number) => v.toString(16).padStart(width, "0");

/** The canonical double-quoted, pure-ASCII spelling of `value` (Go escapes for everything else). */
export function quoteString(value: string): string {
  if (!value.isWellFormed()) fail("string holds a lone surrogate");
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (cp < 0x80) out += `\\x${hex(cp, 2)}`;
    else if (cp <= 0xffff) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return out + '"';
}

const INT64_MAX = (1n << 63n) - 1n;
const DECIMAL = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

function finite(v: number, text: string): number {
  if (!Number.isFinite(v)) fail(`number ${text} is out of range`);
  return v;
}

/**
 * Parses an unsigned PromQL number token as Prometheus does (Go's ParseInt with base prefix, then
 * ParseFloat): `010` is octal 8, `0x1f` hex, `Inf`/`NaN` in any case; underscores and durations refused.
 */
export function parseNumberLiteral(text: string): number {
  const lower = text.toLowerCase();
  if (lower === "inf") return Infinity;
  if (lower === "nan") return NaN;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) {
    const n = BigInt(text);
    if (n > INT64_MAX) fail(`number ${text} is out of range`);
    return Number(n);
  }
  if (/^0[0-7]+$/.test(text)) {
    const n = BigInt(`0o${text.slice(1)}`);
    if (n <= INT64_MAX) return Number(n);
  }
  if (DECIMAL.test(text)) return finite(Number(text), text);
  if (DURATION.test(text)) return fail(`duration ${text} where a number is expected`);
  return fail(`invalid number ${JSON.stringify(text)}`);
}

/** The canonical spelling of a number: `Inf`, `NaN`, or JavaScript's shortest round-trip decimal. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v < 0 || Object.is(v, -0)) return `-${formatNumber(-v)}`;
  if (v === Infinity) return "Inf";
  return String(v);
}

const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNITS: [string, number, boolean][] = [
  ["y", 365 * 86_400_000, true],
  ["w", 7 * 86_400_000, true],
  ["d", 86_400_000, false],
  ["h", 3_600_000, false],
  ["m", 60_000, false],
  ["s", 1_000, false],
  ["ms", 1, false],
];
/** The longest duration Go's time.Duration holds, in milliseconds. */
const MAX_DURATION_MS = 9_223_372_036_854;

/** Parses a duration with units (`5m`, `1h30m`, `1y2w`, `100ms`) into milliseconds, as Prometheus does. */
export function parseDurationLiteral(text: string): number {
  const m = DURATION.exec(text);
  if (!m || text === "") return fail(`${JSON.stringify(text)} is not a duration with units (e.g. 5m)`);
  let ms = 0n;
  for (let i = 0; i < UNITS.length; i++) if (m[i + 1] !== undefined) ms += BigInt(m[i + 1]) * BigInt(UNITS[i][1]);
  if (ms > BigInt(MAX_DURATION_MS)) fail(`duration ${text} is out of range`);
  return Number(ms);
}

/** The canonical spelling of a duration in milliseconds (Prometheus's model.Duration format, signed). */
export function formatDuration(ms: number): string {
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const [unit, mult, exact] of UNITS) {
    if (exact && rest % mult !== 0) continue;
    const v = Math.floor(rest / mult);
    if (v > 0) {
      out += `${v}${unit}`;
      rest -= v * mult;
    }
  }
  return out;
}

/** Label names Prometheus accepts without quotes. */
export const LEGACY_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const LEGACY_METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Words either lexer may read as something other than a name outside braces (keywords, aggregators,
 * preprocessors, Inf/NaN; matched without regard to case, as both lexers do).
 */
const RESERVED = new Set([
  "and",
  "or",
  "unless",
  "atan2",
  "sum",
  "avg",
  "count",
  "min",
  "max",
  "group",
  "stddev",
  "stdvar",
  "topk",
  "bottomk",
  "count_values",
  "quantile",
  "limitk",
  "limit_ratio",
  "offset",
  "smoothed",
  "anchored",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "fill",
  "fill_left",
  "fill_right",
  "bool",
  "start",
  "end",
  "step",
  "range",
  "inf",
  "nan",
]);

/** True when a metric name can be printed bare before `{` (otherwise it goes into `__name__="…"`). */
export function isPrintableMetricName(name: string): boolean {
  return LEGACY_METRIC_NAME.test(name) && !RESERVED.has(name.toLowerCase());
}

/** A label name: bare when Prometheus 2 accepts it, else quoted (Prometheus 3's UTF-8 syntax). */
export function formatLabelName(name: string): string {
  return LEGACY_LABEL_NAME.test(name) ? name : quoteString(name);
}
