// Lexer-differential security suite of `ceems lb`: queries built byte by byte (comments ended by every
// line-terminator candidate, every control character and Unicode space between tokens, string escapes,
// quoted names, numbers, durations, keywords as metric names, URL and form encodings) go through the
// real LB subprocess to a real Prometheus 2.42, as a user who owns exactly one unit. The inputs are
// not derived from the PromQL grammar: the LB's lexer (lezer-promql) and Prometheus's Go lexer must
// agree on every one of them, or the LB checks one query and Prometheus runs another.
//
// Oracle, for every request: the answer must carry no series, label name or label value of a foreign
// unit and no stored series without a unit. The fixture makes that detectable by construction
// (foreign values >= 1e15, foreign-only label values and a foreign-only label name, a non-unit series
// with distinctive labels) and a tap between the LB and Prometheus sends every forwarded request also
// to a second Prometheus that holds only the user's own series: any difference between the two
// answers means data the user does not own shaped the answer.
//
// LEXDIFF_REPORT=<file> writes the counts and every leaking input as JSON.

import { DatabaseSync } from "node:sqlite";
import { assert } from "../helpers/assert.ts";
import { type CeemsProcess, startCeems } from "../helpers/process.ts";
import {
  type BackfillSeries,
  type PrometheusServer,
  startPrometheus,
  toOpenMetrics,
} from "../helpers/prometheus_server.ts";

const CLUSTER = "slurm-0";
/** The user under test and the one unit (in CLUSTER) that is theirs. */
const USER = "ursula";
const OWN_UNIT = "7001";
/** Another user's units in CLUSTER, the same user's unit in another cluster, and a unit in no DB row. */
const FOREIGN_UNITS = ["8001", "8002", "8003", "8999"];
const ADMIN = "lexdiff-admin";
/** Any number at or above this in an answer to USER comes from a foreign or non-unit series. */
const FOREIGN_MAGNITUDE = 1e15;
/** Substrings only foreign and non-unit series carry (label values and the foreign-only label name). */
const MARKERS = ["xhost-", "GPU-x-", "xsecret-", "secret_foreign_label", "nonunit"];

const OWN = `ceems_cpu_usage{uuid="${OWN_UNIT}"}`;
const OWN2 = `ceems_mem_usage{uuid="${OWN_UNIT}"}`;

/** Names that are keywords, modifiers or functions in Prometheus 2.42 or in the LB's grammar. */
const KEYWORDS = [
  "sum",
  "by",
  "on",
  "offset",
  "bool",
  "start",
  "end",
  "inf",
  "nan",
  "atan2",
  "limitk",
  "limit_ratio",
  "anchored",
  "smoothed",
  "step",
  "range",
  "info",
  "without",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "avg",
  "count",
  "min",
  "max",
  "topk",
  "bottomk",
  "quantile",
  "count_values",
  "stddev",
  "stdvar",
  "group",
  "fill",
  "fill_left",
  "fill_right",
  "min_of",
  "max_of",
  "time",
  "vector",
  "rate",
  "absent",
];

/** Case variants of a keyword: lower, UPPER, Capitalized, aLtErNaTiNg. */
function caseVariants(k: string): string[] {
  const alt = [...k].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join("");
  return [...new Set([k, k.toUpperCase(), k[0].toUpperCase() + k.slice(1), alt])];
}

const KEYWORD_METRICS = [...new Set(KEYWORDS.flatMap(caseVariants))];

// ---------------------------------------------------------------------------------------------------
// Fixture: the API server's DB and the series of the two Prometheus servers.

/** Creates `<dir>/ceems.db` (CEEMS's units, users and admin_users tables) readable by `nobody`. */
function createDb(dir: string): void {
  const path = `${dir}/ceems.db`;
  const db = new DatabaseSync(path);
  db.exec(`
    CREATE TABLE units (id INTEGER PRIMARY KEY, resource_manager TEXT, cluster_id TEXT, uuid TEXT, name TEXT,
      project TEXT, groupname TEXT, username TEXT, created_at TEXT, started_at TEXT, ended_at TEXT,
      created_at_ts INTEGER, started_at_ts INTEGER, ended_at_ts INTEGER, elapsed TEXT, state TEXT,
      allocation TEXT DEFAULT '{}', tags TEXT DEFAULT '{}', ignore INTEGER DEFAULT 0, num_updates INTEGER DEFAULT 0,
      last_updated_at TEXT);
    CREATE INDEX idx_cluster_id_usr_uuid ON units (cluster_id, username, uuid);
    CREATE TABLE users (id INTEGER PRIMARY KEY, uid TEXT, cluster_id TEXT, resource_manager TEXT, name TEXT,
      projects TEXT DEFAULT '[]', tags TEXT DEFAULT '[]', last_updated_at TEXT);
    CREATE TABLE admin_users (id INTEGER PRIMARY KEY, uid TEXT DEFAULT '', cluster_id TEXT DEFAULT 'all',
      resource_manager TEXT DEFAULT '', name TEXT, projects TEXT DEFAULT '[]', tags TEXT DEFAULT '[]',
      last_updated_at TEXT);
  `);
  const unit = db.prepare(
    "INSERT INTO units (resource_manager, cluster_id, uuid, name, project, groupname, username, state) " +
      "VALUES ('slurm', ?, ?, 'job', ?, 'grp', ?, 'RUNNING')",
  );
  unit.run(CLUSTER, OWN_UNIT, "p-ursula", USER);
  unit.run(CLUSTER, "8001", "p-victor", "victor");
  unit.run(CLUSTER, "8002", "p-victor", "victor");
  unit.run("slurm-1", "8003", "p-ursula", USER); // hers, but in another cluster than the one queried
  const user = db.prepare("INSERT INTO users (cluster_id, resource_manager, name, projects) VALUES (?, 'slurm', ?, ?)");
  user.run(CLUSTER, USER, '["p-ursula"]');
  user.run(CLUSTER, "victor", '["p-victor"]');
  user.run("slurm-1", USER, '["p-ursula"]');
  db.prepare("INSERT INTO admin_users (name, tags) VALUES (?, '[\"ceems\"]')").run(ADMIN);
  db.close();
  Deno.chmodSync(path, 0o644);
}

function ownSeries(): BackfillSeries[] {
  return ["ceems_cpu_usage", "ceems_mem_usage", ...KEYWORD_METRICS].map((name) => ({
    name,
    labels: { uuid: OWN_UNIT, hostname: `ownhost-${OWN_UNIT}`, gpuuuid: `GPU-own-${OWN_UNIT}`, manager: "slurm" },
    value: (i: number) => 1 + (i % 10) / 10,
  }));
}

function foreignLabels(uuid: string) {
  return {
    uuid,
    hostname: `xhost-${uuid}`,
    gpuuuid: `GPU-x-${uuid}`,
    manager: "slurm",
    secret_foreign_label: `xsecret-${uuid}`,
  };
}

/** Everything the user must never see: foreign units (huge values) and series without a unit. */
function foreignSeries(): BackfillSeries[] {
  const out: BackfillSeries[] = [];
  FOREIGN_UNITS.forEach((uuid, k) => {
    for (const name of ["ceems_cpu_usage", "ceems_mem_usage"]) {
      out.push({ name, labels: foreignLabels(uuid), value: (i) => (3 + k) * FOREIGN_MAGNITUDE + (i % 10) });
    }
  });
  const nonUnit = { instance: "nonunit-node:9100", job: "nonunit-job" };
  out.push({ name: "node_load1", labels: nonUnit, value: () => 4.4 * FOREIGN_MAGNITUDE });
  out.push({ name: "ceems_cpu_usage", labels: nonUnit, value: () => 5.5 * FOREIGN_MAGNITUDE });
  out.push({ name: "ceems_exporter_up", labels: nonUnit, value: () => 1 });
  for (const name of KEYWORD_METRICS) {
    out.push({ name, labels: foreignLabels("8001"), value: () => 6.6 * FOREIGN_MAGNITUDE });
    out.push({ name, labels: nonUnit, value: () => 7.7 * FOREIGN_MAGNITUDE });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Inputs, built character by character.

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
/** Every ASCII control character. */
const CONTROL = [...range(0, 0x1f), 0x7f].map((c) => String.fromCharCode(c));
/** Unicode spaces and line/paragraph separators (and NEL, BOM, Mongolian vowel separator). */
const UNICODE_SPACES = [0x85, 0xa0, 0x1680, ...range(0x2000, 0x200a), 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff]
  .concat([0x180e])
  .map((c) => String.fromCodePoint(c));
const ALL_CHARS = [...CONTROL, ...UNICODE_SPACES];
/** Line-terminator candidates that end a `#` comment in one lexer or another ("" = end of input). */
const NAMED_TERMINATORS = ["\n", "\r", "\r\n", "\n\r", "\v", "\f", "\u0085", "\u2028", "\u2029", "\0", ""];
/** The named terminators plus every other control character and Unicode space. */
const ALL_TERMINATORS = [...NAMED_TERMINATORS, ...ALL_CHARS.filter((c) => !NAMED_TERMINATORS.includes(c))];

/**
 * Template queries as token lists. Each starts from the user's own selector (or from an expression
 * with no selector at all) and the full text reads a foreign or non-unit selector, or hides the unit
 * matcher, depending on where a comment ends.
 */
const TEMPLATES: Record<string, string[]> = {
  ownOrNonUnit: ["ceems_cpu_usage", "{", "uuid", "=", `"${OWN_UNIT}"`, "}", "or", "node_load1"],
  ownOnly: ["ceems_cpu_usage", "{", "uuid", "=", `"${OWN_UNIT}"`, "}"],
  namePinned: ["{", "__name__", "=~", '"ceems_.+"', ",", "uuid", "=", `"${OWN_UNIT}"`, "}"],
  noSelectorOr: ["vector", "(", "1", ")", "or", "ceems_cpu_usage"],
  aggregate: [
    "sum",
    "by",
    "(",
    "uuid",
    ")",
    "(",
    "rate",
    "(",
    "ceems_cpu_usage",
    "{",
    "uuid",
    "=~",
    `"${OWN_UNIT}"`,
    "}",
    "[",
    "5m",
    "]",
    ")",
    ")",
    "+",
    "on",
    "(",
    ")",
    "group_left",
    "sum",
    "(",
    "ceems_mem_usage",
    ")",
  ],
  labelReplace: [
    "label_replace",
    "(",
    "ceems_cpu_usage",
    "{",
    "uuid",
    "=",
    `"${OWN_UNIT}"`,
    "}",
    ",",
    '"dst"',
    ",",
    '"$1"',
    ",",
    '"hostname"',
    ",",
    '"(.*)"',
    ")",
    "or",
    "ceems_mem_usage",
  ],
  subquery: [
    "max_over_time",
    "(",
    "ceems_cpu_usage",
    "{",
    "uuid",
    "=",
    `"${OWN_UNIT}"`,
    "}",
    "[",
    "10m",
    ":",
    "1m",
    "]",
    ")",
    "or",
    "{",
    "__name__",
    "=~",
    '".+"',
    "}",
  ],
};
/** Templates that get every terminator at every boundary and the hidden-span pairs. */
const SHORT_TEMPLATES = ["ownOrNonUnit", "ownOnly", "namePinned", "noSelectorOr"];

/** One input: the query text (or a raw request for the URL family) and the family it belongs to. */
interface Probe {
  family: string;
  input: string;
  raw?: RawRequest;
}

interface RawRequest {
  path: string;
  method: "GET" | "POST";
  /** Pre-encoded query string, sent as is. */
  search?: string;
  body?: string;
  contentType?: string;
}

const join = (toks: string[]) => toks.join(" ");

function commentProbes(): Probe[] {
  const out: Probe[] = [];
  for (const [name, toks] of Object.entries(TEMPLATES)) {
    const short = SHORT_TEMPLATES.includes(name);
    for (let i = 0; i <= toks.length; i++) {
      const left = join(toks.slice(0, i));
      const right = join(toks.slice(i));
      for (const t of ALL_TERMINATORS) out.push({ family: "comment", input: `${left}#${t}${right}` });
      if (!short) continue;
      for (const body of [" x", '"', "}", " ) or node_load1 "]) {
        for (const t of NAMED_TERMINATORS) out.push({ family: "comment", input: `${left} #${body}${t} ${right}` });
      }
    }
    if (!short) continue;
    // A comment that hides tokens i..j-1 from the lexer that does not end it at `t`, closed by a LF.
    for (let i = 0; i < toks.length; i++) {
      for (let j = i + 1; j <= toks.length; j++) {
        for (const t of NAMED_TERMINATORS) {
          if (t === "" || t === "\n") continue;
          out.push({
            family: "comment-span",
            input: `${join(toks.slice(0, i))} #${t}${join(toks.slice(i, j))}\n${join(toks.slice(j))}`,
          });
        }
      }
    }
  }
  // Comments at the very start and end, ended by every terminator.
  for (const t of ALL_TERMINATORS) {
    out.push({ family: "comment", input: `#${t}${OWN} or node_load1` });
    out.push({ family: "comment", input: `${OWN} #${t}` });
    out.push({ family: "comment", input: `${OWN}#${t}or node_load1#${t}` });
  }
  return out;
}

function whitespaceProbes(): Probe[] {
  const out: Probe[] = [];
  for (const name of ["ownOrNonUnit", "ownOnly", "namePinned", "noSelectorOr", "subquery"]) {
    const toks = TEMPLATES[name];
    for (let i = 0; i <= toks.length; i++) {
      for (const c of ALL_CHARS) {
        out.push({ family: "whitespace", input: join(toks.slice(0, i)) + c + join(toks.slice(i)) });
      }
    }
  }
  // Characters glued to the tokens (no ordinary space left anywhere) and doubled around a `#`.
  for (const c of ALL_CHARS) {
    out.push({ family: "whitespace", input: `ceems_cpu_usage${c}{uuid="${OWN_UNIT}"}${c}or${c}node_load1` });
    out.push({ family: "whitespace", input: `${OWN}${c}#${c}or node_load1` });
    out.push({ family: "whitespace", input: `ceems_cpu_usage${c}#${c}{uuid="${OWN_UNIT}"}` });
    out.push({ family: "whitespace", input: `${OWN}${c}` });
  }
  return out;
}

/** Printable ASCII and a few Unicode letters, digits, marks and invisible characters. */
const GLUE_CHARS = [
  ...range(0x21, 0x7e),
  ...[0xad, 0xe9, 0x301, 0x661, 0x200b, 0x200c, 0x200d, 0x2060, 0xff11, 0xff5b, 0xfffd, 0x1f600],
].map((c) => String.fromCodePoint(c));

/** Every printable character (and some Unicode ones) glued into every token boundary of the short templates. */
function glueProbes(): Probe[] {
  const out: Probe[] = [];
  for (const name of SHORT_TEMPLATES) {
    const toks = TEMPLATES[name];
    for (let i = 0; i <= toks.length; i++) {
      for (const c of GLUE_CHARS) {
        out.push({ family: "char", input: join(toks.slice(0, i)) + c + join(toks.slice(i)) });
      }
    }
  }
  return out;
}

const ESCAPES = [
  "\\a",
  "\\b",
  "\\f",
  "\\n",
  "\\r",
  "\\t",
  "\\v",
  "\\\\",
  '\\"',
  "\\'",
  "\\`",
  "\\x37",
  "\\x3",
  "\\xZZ",
  "\\x",
  "\\u0037",
  "\\u003",
  "\\u",
  "\\uD800",
  "\\U00000037",
  "\\U0000003",
  "\\U00110000",
  "\\U",
  "\\067",
  "\\67",
  "\\7",
  "\\8",
  "\\0",
  "\\400",
  "\\q",
  "\\#",
  "\\}",
  "\\ ",
  "\\\r",
  "\\\n",
  "\\\u2028",
  "\\",
];

function stringProbes(): Probe[] {
  const out: Probe[] = [];
  const add = (input: string) => out.push({ family: "string", input });
  for (const q of ['"', "'", "`"]) {
    const s = (body: string) => `${q}${body}${q}`;
    for (const e of ESCAPES) {
      add(`ceems_cpu_usage{uuid=${s(OWN_UNIT + e)}}`);
      add(`ceems_cpu_usage{uuid=${s(e + OWN_UNIT)}}`);
      add(`ceems_cpu_usage{hostname!=${s(e)}, uuid="${OWN_UNIT}"}`);
      add(`ceems_cpu_usage{hostname!=${s(`a${e}`)}} or node_load1 # ${q}, uuid="${OWN_UNIT}"}`);
      add(`ceems_cpu_usage{hostname!=${s(`a${e}`)}, uuid=~"${OWN_UNIT}|.+"} # ${q}, uuid="${OWN_UNIT}"}`);
      add(`label_replace(${OWN}, "dst", ${s(e)}, "hostname", "(.*)") or node_load1 # ${q})`);
      add(`label_replace(${OWN}, "dst", ${s(e)}, "hostname", "(.*)")`);
      add(`count_values(${s(e)}, ${OWN})`);
      add(`label_join(${OWN}, "dst", ${s(e)}, "hostname") or node_load1 #${q}`);
      add(`${OWN} or ${s(e)} or node_load1 # ${q}`);
    }
    // Strings holding a closing brace, a comment marker, the own selector or a line break.
    for (
      const body of [
        '"}',
        "#",
        '"} or node_load1 #',
        `"} or node_load1 # ${OWN}`,
        '\\"} or node_load1 #',
        "\\\\",
        "a\\",
        "\r",
        "\n",
        "a\rb",
        "#\r",
        "\u2028",
      ]
    ) {
      add(`ceems_cpu_usage{hostname!=${s(body)}, uuid="${OWN_UNIT}"}`);
      add(`ceems_cpu_usage{hostname!=${s(body)}} or node_load1 #${q}, uuid="${OWN_UNIT}"}`);
      add(`label_replace(${OWN}, "dst", ${s(body)}, "hostname", "(.*)")`);
      add(`${OWN} or ${q}${body}`);
    }
    // Unterminated strings.
    add(`${OWN} or ${q}`);
    add(`${OWN} or ${q}abc`);
    add(`${OWN} or ${q}abc\nnode_load1`);
    add(`${OWN} or ${q}abc\rnode_load1`);
    add(`ceems_cpu_usage{uuid=${q}${OWN_UNIT}`);
    add(`ceems_cpu_usage{uuid=${q}${OWN_UNIT}}`);
    add(`ceems_cpu_usage{uuid=${q}${OWN_UNIT}\n${q}}`);
    add(`ceems_cpu_usage{hostname=${q}x\n, uuid="${OWN_UNIT}"} or node_load1`);
    add(`label_replace(${OWN}, "dst", ${q}x\n, "hostname", "(.*)") or node_load1`);
    // Raw characters inside the unit value and inside another matcher's value.
    for (const c of ALL_CHARS) {
      add(`ceems_cpu_usage{uuid=${s(OWN_UNIT + c)}}`);
      add(`ceems_cpu_usage{hostname!=${s(c)}, uuid="${OWN_UNIT}"}`);
    }
  }
  return out;
}

function quotedNameProbes(): Probe[] {
  const out: Probe[] = [];
  const add = (input: string) => out.push({ family: "quoted-name", input });
  for (const q of ['"', "'", "`"]) {
    const s = (body: string) => `${q}${body}${q}`;
    for (const uuid of ["uuid", "uuid ", " uuid", "UUID", "uu\\x69d", "u\\u0075id", "uuid\\0", "__name__"]) {
      const n = s(uuid);
      add(`{${n}="${OWN_UNIT}"}`);
      add(`ceems_cpu_usage{${n}="${OWN_UNIT}"}`);
      add(`{"ceems_cpu_usage", ${n}="${OWN_UNIT}"}`);
      add(`{${n}="${OWN_UNIT}"} or node_load1`);
      add(`{${n}="${OWN_UNIT}", ${n}=~".+"}`);
      add(`{${n}=~"${OWN_UNIT}|8001"}`);
      add(`{__name__=~".+", ${n}="${OWN_UNIT}"}`);
      add(`ceems_cpu_usage{${n}="${OWN_UNIT}", uuid=~".*"}`);
    }
    add(`{${s("ceems_cpu_usage")}}`);
    add(`{${s("ceems_cpu_usage")}, uuid="${OWN_UNIT}"}`);
    add(`{${s("node_load1")}, uuid="${OWN_UNIT}"}`);
    add(`{${s("ceems_cpu_usage")}, ${s("uuid")}="${OWN_UNIT}"}`);
    add(`{${s("__name__")}="ceems_cpu_usage", uuid="${OWN_UNIT}"}`);
    add(`{${s("__name__")}=~".+", ${s("uuid")}="${OWN_UNIT}"}`);
    add(`{uuid="${OWN_UNIT}", ${s("node_load1")}}`);
    add(`{uuid="${OWN_UNIT}", ${s("uuid")}}`);
    add(`{${s("uuid")}}`);
    add(`{${s("ceems.cpu.usage")}, uuid="${OWN_UNIT}"}`);
    add(`{${s("ceems_cpu_usage")}, ${s("uuid")}="${OWN_UNIT}"} or {${s("node_load1")}}`);
    add(`sum by (${s("uuid")}) (${OWN})`);
    add(`${OWN} + on(${s("uuid")}) group_left(${s("hostname")}) ${OWN2}`);
    add(`${OWN} + on(${s("uuid")}) group_left(${s("hostname")}) ceems_mem_usage`);
    add(`label_replace(${OWN}, ${s("uuid")}, "8001", "", "")`);
    add(`count_values(${s("uuid")}, ${OWN})`);
    for (const c of ALL_CHARS) {
      add(`{${s(`uuid${c}`)}="${OWN_UNIT}"}`);
      add(`{${s(`uuid${c}`)}="8001", uuid="${OWN_UNIT}"}`);
      add(`{${s(`ceems_cpu_usage${c}`)}, uuid="${OWN_UNIT}"}`);
    }
  }
  return out;
}

const NUMBERS = [
  "0",
  "1",
  "01",
  "007",
  "010",
  "08",
  "0o7",
  "0b1",
  "0x1F",
  "0X1F",
  "0x1f",
  "0x",
  "0xg",
  "0x1_F",
  "1e1",
  "1E1",
  "1e+1",
  "1e-1",
  "1e",
  "1e+",
  "1.",
  "1.5",
  ".5",
  "..5",
  "1..5",
  "1_0",
  "1__0",
  "_1",
  "1_",
  "1_0e1",
  "+1",
  "-1",
  "--1",
  "+-1",
  "- 1",
  "Inf",
  "inf",
  "INF",
  "iNf",
  "+Inf",
  "-Inf",
  "NaN",
  "nan",
  "NAN",
  "nAn",
  "Infinity",
  "infinity",
  "1e1e1",
  "0x1p1",
  "1p1",
  "1e309",
  "\u0661",
  "\uff11",
  "1\u00a0",
  "123456789",
];

const DURATIONS = [
  "5m",
  "1h30m",
  "30m1h",
  "1y",
  "1w",
  "1d",
  "1ms",
  "1s1ms",
  "1ms1s",
  "0s",
  "0",
  "0m",
  "5M",
  "5mo",
  "1h1h",
  "5",
  "5.5m",
  "1y2w3d4h5m6s7ms",
  "1us",
  "1\u00b5s",
  "1ns",
  "1H",
  "1D",
  "1Y",
  "1W",
  "1S",
  "10000000000y",
  "1m0s",
  "01m",
  "0x5m",
  "1e1m",
  "1_0m",
  "+5m",
  "-5m",
  "5 m",
  "1h 30m",
  "5m5",
  "m5",
  "inf",
  "1m#\r",
];

function numberProbes(): Probe[] {
  const out: Probe[] = [];
  for (const n of NUMBERS) {
    for (
      const input of [
        `${OWN} > ${n}`,
        `${OWN} > ${n} or node_load1`,
        `${OWN} > ${n}or node_load1`,
        `${OWN} > ${n}#\ror node_load1`,
        `clamp_max(${OWN}, ${n})`,
        `topk(${n}, ${OWN})`,
        `${n} < ${OWN}`,
        `${OWN} @ ${n}`,
        `vector(${n}) or node_load1`,
        `${n}`,
      ]
    ) out.push({ family: "number", input });
  }
  for (const d of DURATIONS) {
    for (
      const input of [
        `${OWN} offset ${d}`,
        `${OWN} offset ${d} or node_load1`,
        `${OWN} offset ${d}or node_load1`,
        `rate(${OWN}[${d}])`,
        `rate(${OWN}[${d}]) or node_load1`,
        `max_over_time(${OWN}[${d}:1m])`,
        `max_over_time(${OWN}[10m:${d}])`,
        `max_over_time(${OWN}[${d}:${d}]) or node_load1`,
      ]
    ) out.push({ family: "duration", input });
  }
  return out;
}

function keywordProbes(): Probe[] {
  const out: Probe[] = [];
  for (const kw of KEYWORDS) {
    for (const k of caseVariants(kw)) {
      const all = k === kw;
      const inputs = [
        k,
        `${k}{uuid="${OWN_UNIT}"}`,
        `${OWN} or ${k}`,
        `${OWN} ${k} node_load1`,
        `${OWN} > ${k}`,
        `${k}(${OWN})`,
      ];
      if (all) {
        inputs.push(
          `${OWN} ${k} ${OWN2}`,
          `${k} by (uuid) (${OWN})`,
          `sum(${OWN}) ${k} (uuid)`,
          `${OWN} + on() group_left ${k}`,
          `${OWN} + ${k}{uuid="${OWN_UNIT}"}`,
          `rate(${OWN}[5m] ${k})`,
          `${OWN} offset 5m ${k}`,
          `${OWN} @ ${k}()`,
          `max_over_time(${OWN}[10m:${k}()])`,
          `${OWN} + ${k}(1) ${OWN2}`,
          `${k} ${OWN}`,
          `${OWN} / ${k}`,
          `{__name__="${k}", uuid="${OWN_UNIT}"}`,
          `${k}{uuid="${OWN_UNIT}"} or ${k}`,
          // the keyword as a label name
          `ceems_cpu_usage{${k}!="x", uuid="${OWN_UNIT}"}`,
          `sum by (${k}) (${OWN})`,
          `${OWN} + on(${k}) ${OWN2}`,
          `${OWN} + ignoring(${k}) group_left(${k}) ${OWN2} or node_load1`,
        );
      }
      for (const input of inputs) out.push({ family: "keyword", input });
    }
  }
  return out;
}

const enc = encodeURIComponent;

/** Percent-encoding tricks, repeated parameters and form bodies, as raw requests. */
function urlProbes(): Probe[] {
  const out: Probe[] = [];
  const ownE = enc(OWN);
  const evilE = "node_load1";
  const queryTricks = [
    `query=${ownE}%20%23%0D%20or%20node_load1`,
    `query=${ownE}+%23%0D+or+node_load1`,
    `query=${ownE}%23%0Dor%20node_load1`,
    `query=${ownE}%20%23%0D%0Aor%20node_load1`,
    `query=${ownE}%20%23%0A%0Dor%20node_load1`,
    `query=${ownE}%20%2523%250D%20or%20node_load1`,
    `query=${ownE}%20%25230D%20or%20node_load1`,
    `query=${ownE}%2520%2523%250Dor%2520node_load1`,
    `query=${ownE}%0Dor%20node_load1`,
    `query=${ownE}%0Aor%20node_load1`,
    `query=${ownE}%00or%20node_load1`,
    `query=${ownE}%20%23%00%0Dor%20node_load1`,
    `query=${ownE}&query=${evilE}`,
    `query=${evilE}&query=${ownE}`,
    `query=${ownE}&%71uery=${evilE}`,
    `%71uery=${evilE}&query=${ownE}`,
    `query=${ownE}&Query=${evilE}`,
    `query=${ownE}&query%00=${evilE}`,
    `query=${ownE}&query%20=${evilE}`,
    `query=${ownE}&query[]=${evilE}`,
    `query=${ownE};query=${evilE}`,
    `query=${evilE};query=${ownE}`,
    `query=${ownE}%3Bquery=${evilE}`,
    `query=${ownE}%26query=${evilE}`,
    `query=${ownE}&query`,
    `query&query=${ownE}`,
    `query=${ownE}&&query=${evilE}`,
    `query=${ownE}&=${evilE}`,
    `query=${ownE}%zz`,
    `query=${ownE}%`,
    `query=${ownE}%2`,
    `query=%${ownE}`,
    `query=${ownE}%20or%20node_load1%`,
    `query=${OWN.replace(/"/g, "%22")}+%23%0D+or+node_load1`,
    `query=${ownE}&time=1&time=2`,
    `query=${ownE}&time=${"9".repeat(40)}`,
    `query=${ownE}%20%23&query2=%0Dor%20node_load1`,
    `query=${ownE}%20or%20node_load1&query=${ownE}`,
  ];
  for (
    const x of ["%0B", "%0C", "%C2%85", "%E2%80%A8", "%E2%80%A9", "%C0%8D", "%C0%8A", "%ED%A0%80", "%FF", "%EF%BB%BF"]
  ) {
    queryTricks.push(
      `query=${ownE}%20%23${x}or%20node_load1`,
      `query=ceems_cpu_usage%23${x}${enc(`{uuid="${OWN_UNIT}"}`)}`,
    );
  }
  // Every byte, percent-encoded, as the end of a comment (bytes >= 0x80 alone are invalid UTF-8).
  for (let b = 0; b < 256; b++) {
    const x = `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    queryTricks.push(`query=${ownE}%20%23${x}or%20node_load1`);
  }
  const now = evalTime();
  const rangeP = `&start=${now - 600}&end=${now}&step=60`;
  for (const t of queryTricks) {
    const withTime = /(^|&)time=/.test(t) ? t : `${t}&time=${now}`;
    out.push({
      family: "url",
      input: `GET query?${t}`,
      raw: { path: "/api/v1/query", method: "GET", search: withTime },
    });
    out.push({
      family: "url",
      input: `POST query body ${t}`,
      raw: { path: "/api/v1/query", method: "POST", body: withTime, contentType: "application/x-www-form-urlencoded" },
    });
    out.push({
      family: "url",
      input: `GET query_range?${t}`,
      raw: { path: "/api/v1/query_range", method: "GET", search: t + rangeP },
    });
  }
  const matchTricks = [
    `match[]=${ownE}&match[]=${evilE}`,
    `match[]=${evilE}&match[]=${ownE}`,
    `match%5B%5D=${evilE}&match[]=${ownE}`,
    `match[]=${ownE}&match%5b%5d=${evilE}`,
    `match[]=${ownE}&match=${evilE}`,
    `match[]=${ownE}&match[0]=${evilE}`,
    `match[]=${ownE}&match[]%00=${evilE}`,
    `match[]=${ownE}&MATCH[]=${evilE}`,
    `match[]=${ownE}&match[]=`,
    `match[]=${ownE}&match[]`,
    `match[]=${ownE};match[]=${evilE}`,
    `match[]=${ownE}%26match[]=${evilE}`,
    `match[]=${ownE}%20%23%0D%20or%20node_load1`,
    `match[]=ceems_cpu_usage%23%0D${enc(`{uuid="${OWN_UNIT}"}`)}`,
    `match[]=ceems_cpu_usage%20%23%0D%20${enc(`{uuid="${OWN_UNIT}"}`)}`,
    `match[]=${enc(`{__name__=~".+", #\r uuid="${OWN_UNIT}"\n}`)}`,
    `match[]=${enc(`{__name__=~".+" #\r , uuid="${OWN_UNIT}"\n}`)}`,
    `match[]=${ownE}%zz`,
    `match[]=${ownE}%2`,
    `match[]=${ownE}+or+node_load1`,
  ];
  for (let b = 0; b < 256; b++) {
    const x = `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    matchTricks.push(`match[]=ceems_cpu_usage%23${x}${enc(`{uuid="${OWN_UNIT}"}`)}`);
  }
  for (const t of matchTricks) {
    for (
      const path of ["/api/v1/series", "/api/v1/labels", "/api/v1/label/uuid/values", "/api/v1/label/__name__/values"]
    ) {
      out.push({ family: "url", input: `GET ${path}?${t}`, raw: { path, method: "GET", search: t } });
    }
    out.push({
      family: "url",
      input: `POST series body ${t}`,
      raw: { path: "/api/v1/series", method: "POST", body: t, contentType: "application/x-www-form-urlencoded" },
    });
  }
  // Form bodies: raw bytes, URL and body mixed, content types Prometheus also parses.
  const form = "application/x-www-form-urlencoded";
  const bodies: [string, RawRequest][] = [
    ["raw CR in body", {
      path: "/api/v1/query",
      method: "POST",
      body: `query=${OWN} #\r or node_load1`,
      contentType: form,
    }],
    ["raw LF in body", {
      path: "/api/v1/query",
      method: "POST",
      body: `query=${OWN} #\n or node_load1`,
      contentType: form,
    }],
    ["raw + in body", {
      path: "/api/v1/query",
      method: "POST",
      body: `query=${OWN}+%23%0D+or+node_load1`,
      contentType: form,
    }],
    ["raw # in body", {
      path: "/api/v1/query",
      method: "POST",
      body: `query=${ownE}#&query=${evilE}`,
      contentType: form,
    }],
    ["URL own, body evil", {
      path: "/api/v1/query",
      method: "POST",
      search: `query=${ownE}`,
      body: `query=${evilE}`,
      contentType: form,
    }],
    ["URL evil, body own", {
      path: "/api/v1/query",
      method: "POST",
      search: `query=${evilE}`,
      body: `query=${ownE}`,
      contentType: form,
    }],
    ["charset param", {
      path: "/api/v1/query",
      method: "POST",
      body: `query=${ownE}%20%23%0Dor%20node_load1`,
      contentType: `${form}; charset=ISO-8859-1`,
    }],
    ["upper-case type", {
      path: "/api/v1/query",
      method: "POST",
      body: `query=${ownE}%20%23%0Dor%20node_load1`,
      contentType: form.toUpperCase(),
    }],
    ["multipart body, own in URL", {
      path: "/api/v1/query",
      method: "POST",
      search: `query=${ownE}`,
      body: `--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nnode_load1\r\n--b--\r\n`,
      contentType: "multipart/form-data; boundary=b",
    }],
    ["multipart, empty URL", {
      path: "/api/v1/query",
      method: "POST",
      body: `--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nnode_load1\r\n--b--\r\n`,
      contentType: "multipart/form-data; boundary=b",
    }],
    ["text/plain body", { path: "/api/v1/query", method: "POST", body: `query=${evilE}`, contentType: "text/plain" }],
    ["no content type", { path: "/api/v1/query", method: "POST", body: `query=${evilE}` }],
    ["form type, URL own", {
      path: "/api/v1/query",
      method: "POST",
      search: `query=${ownE}`,
      body: `time=${now}`,
      contentType: form,
    }],
    ["series raw CR", {
      path: "/api/v1/series",
      method: "POST",
      body: `match[]=ceems_cpu_usage#\r{uuid="${OWN_UNIT}"}`,
      contentType: form,
    }],
    ["series repeated, body and URL", {
      path: "/api/v1/series",
      method: "POST",
      search: `match[]=${ownE}`,
      body: `match[]=${evilE}`,
      contentType: form,
    }],
    ["labels raw CR", {
      path: "/api/v1/labels",
      method: "POST",
      body: `match[]=${OWN} #\r or node_load1`,
      contentType: form,
    }],
  ];
  for (const [name, raw] of bodies) {
    // Instant queries are pinned to one evaluation time, so the full and the own-only Prometheus agree on values.
    const isForm = raw.contentType?.toLowerCase().startsWith(form) ?? false;
    if (raw.path === "/api/v1/query" && isForm && !/(^|&)time=/.test(`${raw.body ?? ""}&${raw.search ?? ""}`)) {
      raw.body = `${raw.body ?? ""}&time=${now}`;
    }
    out.push({ family: "url", input: name, raw });
  }
  return out;
}

/** Variants the LB must let through (both lexers agree on them): each returns the own series. */
const BENIGN_SELECTORS = [
  OWN,
  `${OWN} # comment`,
  `${OWN} #\n`,
  `# leading comment\n${OWN}`,
  `${OWN}\n# trailing comment`,
  `${OWN} # or node_load1`,
  `${OWN} # or node_load1\n`,
  `ceems_cpu_usage # c\n{uuid="${OWN_UNIT}"}`,
  `ceems_cpu_usage{ # c\n uuid="${OWN_UNIT}" # c\n }`,
  ` \t\n${OWN}\n\t `,
  `ceems_cpu_usage\t{\tuuid\t=\t"${OWN_UNIT}"\t}`,
  `ceems_cpu_usage\n{\nuuid\n=\n"${OWN_UNIT}"\n}`,
  `ceems_cpu_usage\r\n{\r\nuuid="${OWN_UNIT}"\r\n}\r\n`,
  `${OWN} #c\r\n`,
  `ceems_cpu_usage {uuid="${OWN_UNIT}",}`,
  `ceems_cpu_usage{uuid='${OWN_UNIT}'}`,
  `ceems_cpu_usage{uuid=\`${OWN_UNIT}\`}`,
  `ceems_cpu_usage{uuid=~"${OWN_UNIT}"}`,
  `{__name__="ceems_cpu_usage", uuid="${OWN_UNIT}"}`,
  `{uuid="${OWN_UNIT}", __name__=~"ceems_.+"}`,
  OWN2,
  `ceems_cpu_usage{uuid="${OWN_UNIT}", hostname="ownhost-${OWN_UNIT}"}`,
  `ceems_cpu_usage{uuid="${OWN_UNIT}", hostname=~"own.*"}`,
  `ceems_cpu_usage{hostname!="a#b", uuid="${OWN_UNIT}"}`,
  `ceems_cpu_usage{hostname!="a\\"}", uuid="${OWN_UNIT}"}`,
];
const BENIGN_EXPRESSIONS = [
  `sum(${OWN})`,
  `sum #c\n(${OWN})`,
  `rate(${OWN}[5m])`,
  `rate(${OWN}[1h30m])`,
  `max_over_time(${OWN}[10m:1m])`,
  `${OWN} offset 1m`,
  `${OWN} + ${OWN2}`,
  `${OWN} * 2 # x`,
  `sum by (uuid) (${OWN}) # by`,
  `label_replace(${OWN}, "dst", "$1", "hostname", "(.*)")`,
  `${OWN} > 0x0`,
  `${OWN} > 1e-3`,
  `${OWN} > -Inf`,
  `${OWN} > bool 1`,
  `${OWN} or\n${OWN2}`,
];

// ---------------------------------------------------------------------------------------------------
// Requests, routes and the oracle.

let EVAL_TIME = 0;
/** The evaluation time of every instant query (seconds; fixed so both Prometheus servers agree). */
function evalTime(): number {
  if (!EVAL_TIME) EVAL_TIME = Math.floor(Date.now() / 60_000) * 60 - 120;
  return EVAL_TIME;
}

const ROUTES = [
  "query GET",
  "query POST",
  "query_range GET",
  "query_range POST",
  "series GET",
  "series POST",
  "labels GET",
  "label_values GET",
] as const;
type Route = typeof ROUTES[number];
/** Label names whose values the label_values route asks for (rotating). */
const VALUE_LABELS = ["uuid", "hostname", "__name__", "secret_foreign_label", "instance"];

/** The request of `route` for expression `q`. */
function requestFor(route: Route, q: string, k: number): RawRequest {
  const now = evalTime();
  const form = "application/x-www-form-urlencoded";
  const [kind, method] = route.split(" ") as [string, "GET" | "POST"];
  let path: string;
  let params: string;
  switch (kind) {
    case "query":
      path = "/api/v1/query";
      params = `query=${enc(q)}&time=${now}`;
      break;
    case "query_range":
      path = "/api/v1/query_range";
      params = `query=${enc(q)}&start=${now - 600}&end=${now}&step=60`;
      break;
    case "series":
      path = "/api/v1/series";
      params = `match[]=${enc(q)}&start=${now - 3600}&end=${now}`;
      break;
    case "labels":
      path = "/api/v1/labels";
      params = `match[]=${enc(q)}`;
      break;
    default:
      path = `/api/v1/label/${VALUE_LABELS[k % VALUE_LABELS.length]}/values`;
      params = `match[]=${enc(q)}`;
  }
  return method === "GET" ? { path, method, search: params } : { path, method, body: params, contentType: form };
}

/** What the tap saw for one forwarded request, and whether the two Prometheus answers differ. */
interface TapRecord {
  method: string;
  path: string;
  /** The `query` and `match[]` values Prometheus received (URL and form body). */
  forwarded: string[];
  status: number;
  divergence?: string;
}

interface Outcome {
  probe: Probe;
  route: string;
  /** The path the request went to. */
  path: string;
  status: number;
  kind: "refused" | "allowed" | "backend-error" | "lb-error";
  leaks: string[];
  forwarded?: string[];
  text: string;
}

/** Canonical form of a Prometheus API answer for comparing the two servers (order-insensitive). */
function canonical(status: number, text: string): string {
  let body: { status?: string; data?: unknown; errorType?: string; error?: string };
  try {
    body = JSON.parse(text);
  } catch {
    return `${status} ${text}`;
  }
  if (body.status !== "success") return `${status} error ${body.errorType}: ${body.error}`;
  const sortJson = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
  const d = body.data;
  if (Array.isArray(d)) return `${status} ${JSON.stringify(sortJson(d))}`;
  if (d && typeof d === "object" && "resultType" in d) {
    const r = (d as { resultType: string; result: unknown }).result;
    const res = Array.isArray(r) && (d as { resultType: string }).resultType !== "scalar" &&
        (d as { resultType: string }).resultType !== "string"
      ? sortJson(r)
      : r;
    return `${status} ${(d as { resultType: string }).resultType} ${JSON.stringify(res)}`;
  }
  return `${status} ${JSON.stringify(d)}`;
}

/**
 * Leaks the answer itself shows: foreign or non-unit markers in any string or object key (except the
 * markers the request itself typed, which an error message may echo), and inside `data` any foreign
 * unit id or any number of foreign magnitude.
 */
function answerLeaks(text: string, requestText: string): string[] {
  const markers = MARKERS.filter((m) => !requestText.includes(m));
  const leaks: string[] = [];
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    for (const m of markers) if (text.includes(m)) leaks.push(`marker ${m} in a non-JSON answer`);
    return leaks;
  }
  const str = (s: string, inData: boolean, where: string) => {
    for (const m of markers) if (s.includes(m)) leaks.push(`${where} ${JSON.stringify(s)}`);
    if (!inData) return;
    if (FOREIGN_UNITS.includes(s)) leaks.push(`foreign unit ${s}`);
    const n = Number(s);
    if (s.trim() !== "" && Number.isFinite(n) && Math.abs(n) >= FOREIGN_MAGNITUDE) leaks.push(`value ${s}`);
  };
  const visit = (v: unknown, inData: boolean) => {
    if (typeof v === "string") str(v, inData, "string");
    else if (typeof v === "number") {
      if (inData && Number.isFinite(v) && Math.abs(v) >= FOREIGN_MAGNITUDE) leaks.push(`value ${v}`);
    } else if (Array.isArray(v)) {
      for (const x of v) visit(x, inData);
    } else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        str(k, false, "label name");
        visit(x, inData);
      }
    }
  };
  const b = body as Record<string, unknown>;
  const data = b?.data as { resultType?: string } | undefined;
  for (const [k, v] of Object.entries(b ?? {})) {
    // A string result echoes a literal of the query: only markers count there.
    visit(v, k === "data" && data?.resultType !== "string");
  }
  return leaks;
}

/** Runs `fn` over `items` with at most `n` calls in flight. */
async function pool<T, R>(items: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

interface Stack {
  lb: CeemsProcess;
  full: PrometheusServer;
  clean: PrometheusServer;
  tap: Deno.HttpServer;
  records: Map<string, TapRecord>;
  unattributed: TapRecord[];
  dir: string;
}

/** Start of the leak text of an answer that differs from the own-only Prometheus's. */
const DIVERGENCE = "own-only Prometheus answered";

const API_PATH = /^\/api\/v1\/(query|query_range|series|labels|label\/[^/]+\/values)$/;

/** Between the LB and Prometheus: forwards to the full server, and to the own-only one to compare. */
function startTap(full: string, clean: string, records: Map<string, TapRecord>, unattributed: TapRecord[]) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : new Uint8Array(await req.arrayBuffer());
    const headers = new Headers();
    const ct = req.headers.get("content-type");
    if (ct) headers.set("content-type", ct);
    const send = async (base: string) => {
      const r = await fetch(base + url.pathname + url.search, {
        method: req.method,
        headers,
        body,
        redirect: "manual",
      });
      return { status: r.status, text: await r.text(), type: r.headers.get("content-type") };
    };
    const api = API_PATH.test(url.pathname);
    const [a, b] = await Promise.all([send(full), api ? send(clean) : Promise.resolve(undefined)]);
    const forwarded: string[] = [];
    const collect = (p: URLSearchParams) => {
      for (const [k, v] of p) if (k === "query" || k === "match[]") forwarded.push(v);
    };
    collect(url.searchParams);
    if (body && (ct ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      collect(new URLSearchParams(new TextDecoder().decode(body)));
    }
    const rec: TapRecord = { method: req.method, path: url.pathname, forwarded, status: a.status };
    if (b) {
      const ca = canonical(a.status, a.text);
      const cb = canonical(b.status, b.text);
      if (ca !== cb) rec.divergence = `${DIVERGENCE} ${cb.slice(0, 160)}; full: ${ca.slice(0, 160)}`;
    }
    const id = /lexdiff\/(\d+)/.exec(req.headers.get("user-agent") ?? "")?.[1];
    if (id) records.set(id, rec);
    else if (api) unattributed.push(rec);
    return new Response(a.text, { status: a.status, headers: { "content-type": a.type ?? "text/plain" } });
  });
}

async function startStack(): Promise<Stack> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-lexdiff-" });
  await Deno.chmod(dir, 0o755);
  createDb(dir);
  const now = Date.now();
  const from = now - 3600e3;
  const to = now + 1800e3;
  const full = await startPrometheus({
    openMetrics: toOpenMetrics([...ownSeries(), ...foreignSeries()], from, to, 60e3),
  });
  let clean: PrometheusServer | undefined;
  let tap: Deno.HttpServer | undefined;
  try {
    clean = await startPrometheus({ openMetrics: toOpenMetrics(ownSeries(), from, to, 60e3) });
    const records = new Map<string, TapRecord>();
    const unattributed: TapRecord[] = [];
    tap = startTap(full.url, clean.url, records, unattributed);
    const cfg = `${dir}/lb.yml`;
    await Deno.writeTextFile(
      cfg,
      `ceems_lb:
  backends: [{id: ${CLUSTER}, tsdb: [{web: {url: "http://127.0.0.1:${(tap.addr as Deno.NetAddr).port}"}}]}]
ceems_api_server:
  data: {path: "${dir}"}
`,
    );
    await Deno.chmod(cfg, 0o644);
    const lb = await startCeems(["lb", `--config.file=${cfg}`], { readyTimeoutMs: 30_000 });
    return { lb, full, clean, tap, records, unattributed, dir };
  } catch (e) {
    await tap?.shutdown();
    await clean?.stop();
    await full.stop();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

let nextId = 0;

/** Sends one request to the LB as `user` and classifies the answer. */
async function send(stack: Stack, probe: Probe, route: string, raw: RawRequest, user = USER): Promise<Outcome> {
  const id = String(++nextId);
  const headers = new Headers({
    "X-Grafana-User": user,
    "X-Ceems-Cluster-Id": CLUSTER,
    "user-agent": `lexdiff/${id}`,
  });
  if (raw.contentType) headers.set("content-type", raw.contentType);
  const url = `${stack.lb.base}${raw.path}${raw.search !== undefined ? `?${raw.search}` : ""}`;
  let status = 0;
  let text = "";
  try {
    const r = await fetch(url, { method: raw.method, headers, body: raw.body, signal: AbortSignal.timeout(20_000) });
    status = r.status;
    text = await r.text();
  } catch (e) {
    text = `request failed: ${(e as Error).message}`;
  }
  const rec = stack.records.get(id);
  stack.records.delete(id);
  let kind: Outcome["kind"];
  if (rec) kind = status === 200 ? "allowed" : "backend-error";
  else if ([400, 401, 403, 405, 413, 415].includes(status)) kind = "refused";
  else if (status === 200) kind = "allowed";
  else kind = "lb-error";
  // Markers the request typed itself may come back in an echo of it (an error message).
  const requestText = [probe.input, decodeLoose(raw.search ?? ""), decodeLoose(raw.body ?? "")].join("\n");
  const leaks = answerLeaks(text, requestText);
  if (rec?.divergence) leaks.push(rec.divergence);
  return { probe, route, path: raw.path, status, kind, leaks, forwarded: rec?.forwarded, text };
}

/** Best-effort form decoding (for finding what a request typed). */
function decodeLoose(s: string): string {
  try {
    return [...new URLSearchParams(s)].map(([k, v]) => `${k}=${v}`).join("&") + "\n" + s;
  } catch {
    return s;
  }
}

interface Counts {
  tried: number;
  refused: number;
  allowed: number;
  backendError: number;
  lbError: number;
  leaked: number;
}
const zero = (): Counts => ({ tried: 0, refused: 0, allowed: 0, backendError: 0, lbError: 0, leaked: 0 });

function tally(outcomes: Outcome[]): { total: Counts; byFamily: Record<string, Counts> } {
  const total = zero();
  const byFamily: Record<string, Counts> = {};
  for (const o of outcomes) {
    for (const c of [total, byFamily[o.probe.family] ??= zero()]) {
      c.tried++;
      if (o.kind === "refused") c.refused++;
      else if (o.kind === "allowed") c.allowed++;
      else if (o.kind === "backend-error") c.backendError++;
      else c.lbError++;
      if (o.leaks.length) c.leaked++;
    }
  }
  return { total, byFamily };
}

function describe(o: Outcome): string {
  return `[${o.probe.family}] ${o.route}: input ${JSON.stringify(o.probe.input)}` +
    (o.forwarded ? ` -> Prometheus got ${JSON.stringify(o.forwarded)}` : "") +
    ` -> ${o.status}; leaked ${o.leaks.slice(0, 3).join(" | ")}`;
}

/** Every probe of the adversarial families, each on GET /api/v1/query and on one rotating other route. */
function adversarialRequests(): { probe: Probe; route: string; raw: RawRequest }[] {
  const probes = [
    ...commentProbes(),
    ...whitespaceProbes(),
    ...glueProbes(),
    ...stringProbes(),
    ...quotedNameProbes(),
    ...numberProbes(),
    ...keywordProbes(),
  ];
  const seen = new Set<string>();
  const out: { probe: Probe; route: string; raw: RawRequest }[] = [];
  const others = ROUTES.filter((r) => r !== "query GET");
  let k = 0;
  for (const p of probes) {
    if (seen.has(p.input)) continue;
    seen.add(p.input);
    k++;
    out.push({ probe: p, route: "query GET", raw: requestFor("query GET", p.input, k) });
    const r = others[k % others.length];
    out.push({ probe: p, route: r, raw: requestFor(r, p.input, k >> 3) });
  }
  for (const p of urlProbes()) out.push({ probe: p, route: `${p.raw!.method} ${p.raw!.path}`, raw: p.raw! });
  return out;
}

Deno.test({
  name: "lb lexer differential: byte-level query variants leak no foreign or non-unit series",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const stack = await startStack();
    try {
      await t.step("the fixture holds foreign data and the oracle sees it (admin through the LB)", async () => {
        const probe: Probe = { family: "self-test", input: '{__name__=~".+"}' };
        const all = await send(stack, probe, "query GET", requestFor("query GET", probe.input, 0), ADMIN);
        assert(all.status === 200, `admin query: ${all.status} ${all.text.slice(0, 200)}`);
        for (const m of MARKERS) assert(all.leaks.some((l) => l.includes(m)), `oracle misses marker ${m}`);
        assert(all.leaks.some((l) => l.startsWith("value ")), "oracle misses foreign values");
        assert(all.leaks.some((l) => l.startsWith("foreign unit")), "oracle misses foreign unit ids");
        // An answer with no foreign label or value in it, shaped by foreign data: only the tap sees it.
        const cnt: Probe = { family: "self-test", input: "count(ceems_cpu_usage)" };
        const c = await send(stack, cnt, "query GET", requestFor("query GET", cnt.input, 0), ADMIN);
        assert(c.status === 200 && c.leaks.some((l) => l.startsWith(DIVERGENCE)), c.leaks.join("; "));
        const series: Probe = { family: "self-test", input: "node_load1" };
        const s = await send(stack, series, "series GET", requestFor("series GET", series.input, 0), ADMIN);
        assert(s.leaks.some((l) => l.includes("nonunit")), `series oracle: ${s.text.slice(0, 200)}`);
      });

      await t.step("benign variants are allowed and answer with the own series only", async () => {
        const jobs: { probe: Probe; route: Route; raw: RawRequest }[] = [];
        let k = 0;
        for (const q of BENIGN_SELECTORS) {
          for (const r of ROUTES) {
            jobs.push({ probe: { family: "benign", input: q }, route: r, raw: requestFor(r, q, k++) });
          }
        }
        for (const q of BENIGN_EXPRESSIONS) {
          for (const r of ["query GET", "query POST", "query_range GET", "query_range POST"] as const) {
            jobs.push({ probe: { family: "benign", input: q }, route: r, raw: requestFor(r, q, k++) });
          }
        }
        const outs = await pool(jobs, 6, (j) => send(stack, j.probe, j.route, j.raw));
        const bad = outs.filter((o) => o.leaks.length);
        assert(bad.length === 0, `benign variants leaked:\n${bad.slice(0, 10).map(describe).join("\n")}`);
        const good = outs.filter((o) => o.status === 200 && ownAnswer(o));
        const failed = outs.filter((o) => !good.includes(o));
        console.log(
          `benign: ${outs.length} requests, ${good.length} allowed with the own series` +
            (failed.length
              ? `; not: ${
                failed.slice(0, 8).map((o) => `${o.route} ${JSON.stringify(o.probe.input)} ${o.status}`).join(", ")
              }`
              : ""),
        );
        // The plain selector must work on every route, and most harmless variants too.
        for (const o of outs.filter((o) => o.probe.input === OWN)) {
          assert(good.includes(o), `plain own selector on ${o.route}: ${o.status} ${o.text.slice(0, 200)}`);
        }
        assert(good.length >= 0.8 * outs.length, `only ${good.length} of ${outs.length} benign requests allowed`);
      });

      await t.step("adversarial byte-level variants through the LB leak nothing", async () => {
        const jobs = adversarialRequests();
        const started = Date.now();
        const outs = await pool(jobs, 6, (j) => send(stack, j.probe, j.route, j.raw));
        const { total, byFamily } = tally(outs);
        console.log(`lexer differential: ${JSON.stringify(total)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        for (const [f, c] of Object.entries(byFamily)) console.log(`  ${f}: ${JSON.stringify(c)}`);
        const leaking = outs.filter((o) => o.leaks.length);
        // One line per distinct input (its first leaking request), then the routes it leaked on.
        const distinct = new Map<string, Outcome[]>();
        for (const o of leaking) distinct.set(o.probe.input, [...distinct.get(o.probe.input) ?? [], o]);
        console.log(`leaking: ${leaking.length} requests, ${distinct.size} distinct inputs`);
        // Each leaking query again on every route, to report every path it leaks through.
        const confirmJobs = [...distinct.values()].map((os) => os[0].probe).filter((p) => !p.raw)
          .flatMap((p) => ROUTES.map((r, i) => ({ probe: p, route: r, raw: requestFor(r, p.input, i) })));
        const confirm = await pool(confirmJobs, 6, (j) => send(stack, j.probe, j.route, j.raw));
        const leakRoutes = new Map<string, string[]>();
        for (const o of [...leaking, ...confirm].filter((o) => o.leaks.length)) {
          const rs = leakRoutes.get(o.probe.input) ?? [];
          if (!rs.includes(o.route)) rs.push(o.route);
          leakRoutes.set(o.probe.input, rs);
        }
        if (confirm.length) console.log(`leaking queries on all routes: ${JSON.stringify(tally(confirm).total)}`);
        // Forwarded requests the tap could not tie to a client request (no user-agent): still checked.
        const unattributed = stack.unattributed.filter((r) => r.divergence);
        if (stack.unattributed.length) {
          console.log(
            `unattributed forwarded requests: ${stack.unattributed.length}, diverged: ${unattributed.length}`,
          );
        }
        const lbErrors = outs.filter((o) => o.kind === "lb-error");
        if (lbErrors.length) {
          console.log(`LB errors (first 5):\n${lbErrors.slice(0, 5).map((o) => describe(o) + o.text.slice(0, 120))}`);
        }
        const report = Deno.env.get("LEXDIFF_REPORT");
        if (report) {
          await Deno.writeTextFile(
            report,
            JSON.stringify(
              {
                total,
                byFamily,
                leakingInputs: [...distinct.values()].map((os) => ({
                  family: os[0].probe.family,
                  input: os[0].probe.input,
                  raw: os[0].probe.raw,
                  forwarded: os[0].forwarded,
                  routes: leakRoutes.get(os[0].probe.input),
                  leaks: os[0].leaks.filter((l) => !l.startsWith(DIVERGENCE)).slice(0, 6),
                })),
                leaking: leaking.map((o) => ({
                  family: o.probe.family,
                  route: o.route,
                  input: o.probe.input,
                  raw: o.probe.raw,
                  forwarded: o.forwarded,
                  status: o.status,
                  leaks: o.leaks.filter((l) => !l.startsWith(DIVERGENCE)).slice(0, 6),
                  divergence: o.leaks.find((l) => l.startsWith(DIVERGENCE)),
                })),
              },
              null,
              1,
            ),
          );
        }
        // A suite that refuses everything proves nothing: a share of the variants must reach Prometheus.
        assert(total.allowed + total.backendError >= 200, `only ${total.allowed} allowed: ${JSON.stringify(total)}`);
        assert(total.lbError === 0, `${total.lbError} LB errors`);
        assert(
          unattributed.length === 0,
          `forwarded requests of unknown origin leaked: ${unattributed.slice(0, 5).map((r) => JSON.stringify(r))}`,
        );
        assert(
          leaking.length === 0,
          `${leaking.length} of ${outs.length} requests (${distinct.size} distinct inputs) leaked foreign or ` +
            `non-unit data; first ones:\n` +
            [...distinct.values()].slice(0, 25).map((os) =>
              `${describe(os[0])} (leaks on: ${leakRoutes.get(os[0].probe.input)?.join(", ")})`
            ).join("\n"),
        );
      });
    } finally {
      await stack.lb.stop();
      await stack.tap.shutdown();
      await stack.clean.stop();
      await stack.full.stop();
      await Deno.remove(stack.dir, { recursive: true });
    }
  },
});

/** True when a benign answer holds the own unit's data (a series, its labels or label values). */
function ownAnswer(o: Outcome): boolean {
  let body: { data?: unknown };
  try {
    body = JSON.parse(o.text);
  } catch {
    return false;
  }
  const d = body.data;
  if (Array.isArray(d)) {
    if (o.route.startsWith("series")) return d.some((s) => (s as Record<string, string>).uuid === OWN_UNIT);
    if (o.route.startsWith("labels")) return d.includes("uuid");
    // label values: the rotating label may be one the own series lack (empty is then right)
    return /\/(secret_foreign_label|instance)\//.test(o.path) ? d.length === 0 : d.length > 0;
  }
  const r = (d as { result?: unknown[] } | undefined)?.result;
  return Array.isArray(r) && r.length > 0;
}
