// Entry point of `ceems cacct` (CEEMS's cacct): the running user's compute units with usage, energy and
// emissions from the API server as a table (or CSV, HTML, Markdown), a usage summary, and with --ts the
// units' time series as CSV files. The user is the process's real uid, never a flag or the environment.

import { parseFlags, StartupError } from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import { parsePasswd } from "../privilege/users.ts";
import { fetchStats, ForbiddenError } from "./api.ts";
import { readConfig } from "./config.ts";
import { FIELDS, selectFields } from "./fields.ts";
import { buildColumns } from "./report.ts";
import { renderBox, renderCsv, renderHtml, renderMarkdown } from "./table.ts";
import { exportTimeSeries } from "./timeseries.ts";

/** Parses YYYY-MM-DD[THH:MM[:SS]] in local time; returns Unix seconds. */
export function parseLocalTime(s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (!m) throw new Error(`invalid time ${JSON.stringify(s)}: valid format is YYYY-MM-DD[THH:MM[:SS]]`);
  const [y, mo, d, h = "0", mi = "0", se = "0"] = m.slice(1);
  const t = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  if (t.getMonth() !== Number(mo) - 1 || t.getDate() !== Number(d)) {
    throw new Error(`invalid date ${JSON.stringify(s)}`);
  }
  return t.getTime() / 1000;
}

/** The login name of the process's real uid (/etc/passwd, else NSS through /usr/bin/getent). */
export function currentUserName(uid = Deno.uid()!): string {
  try {
    const u = parsePasswd(Deno.readTextFileSync("/etc/passwd")).find((p) => p.uid === uid);
    if (u) return u.name;
  } catch {
    // fall through to getent
  }
  const o = new Deno.Command("/usr/bin/getent", { args: ["passwd", String(uid)], stdout: "piped", stderr: "null" })
    .outputSync();
  const name = new TextDecoder().decode(o.stdout).split(":")[0];
  if (!o.success || !name) throw new Error(`no user name for uid ${uid}`);
  return name;
}

function flags(): FlagSet {
  const fs = new FlagSet("cacct", "Energy, emissions and usage of your jobs from the CEEMS API server.");
  fs.add({ name: "help", kind: "bool", help: "Show context-sensitive help." });
  fs.add({ name: "version", kind: "bool", help: "Show application version." });
  const s = (name: string, help: string, def = "") => fs.add({ name, kind: "string", default: def, help });
  s("account", "Comma separated list of accounts to select jobs to display. By default, all accounts are selected.");
  s(
    "starttime",
    "Select jobs eligible after this time: YYYY-MM-DD[THH:MM[:SS]] (default: 00:00:00 of the current day).",
  );
  s("endtime", "Select jobs eligible before this time: YYYY-MM-DD[THH:MM[:SS]] (default: now).");
  s("job", "Comma separated list of jobs to display information. Default is all jobs in the period.");
  s("user", "Comma separated list of user names to select jobs to display ('all': every user; admins only).");
  s("format", "Comma separated list of fields (Use --helpformat for list of available fields).");
  fs.add({ name: "helpformat", kind: "bool", help: "List of available fields." });
  fs.add({ name: "long", kind: "bool", help: "Equivalent to specifying --format with every field." });
  fs.add({ name: "ts", kind: "bool", help: "Time series data of jobs are saved in CSV format (needs --job)." });
  s("ts.out-dir", "Directory to save time series data.", "out");
  fs.add({ name: "csv", kind: "bool", help: "Produce CSV output." });
  fs.add({ name: "html", kind: "bool", help: "Produce HTML output." });
  fs.add({ name: "markdown", kind: "bool", help: "Produce markdown output." });
  return fs;
}

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const write = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s));

/** Runs `ceems cacct <args>`. */
export async function cacctMain(args: string[]): Promise<void> {
  const fs = flags();
  parseFlags(fs, args, "cacct");
  if (fs.bool("helpformat")) {
    const cols = [{ title: "Field", sub: "", minW: 5, maxW: 20, values: [] as string[], footers: [] as string[] }, {
      title: "Description",
      sub: "",
      minW: 5,
      maxW: 80,
      values: [] as string[],
      footers: [] as string[],
    }];
    for (const k of Object.keys(FIELDS).sort()) {
      cols[0].values.push(FIELDS[k].name);
      cols[1].values.push(FIELDS[k].help);
    }
    write(renderBox(cols, true));
    return;
  }
  let selected: string[];
  try {
    selected = selectFields(fs.string("format"), fs.bool("long"));
  } catch (e) {
    throw new StartupError(`--format: ${(e as Error).message}`);
  }
  const jobs = list(fs.string("job"));
  if (fs.bool("ts") && !jobs.length) {
    throw new StartupError("explicit job IDs must be passed using --job when --ts is enabled");
  }
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  let fromS: number, toS: number;
  try {
    fromS = fs.string("starttime") ? parseLocalTime(fs.string("starttime")) : today.getTime() / 1000;
  } catch (e) {
    throw new StartupError(`--starttime: ${(e as Error).message}`);
  }
  try {
    toS = fs.string("endtime") ? parseLocalTime(fs.string("endtime")) : Date.now() / 1000;
  } catch (e) {
    throw new StartupError(`--endtime: ${(e as Error).message}`);
  }
  const currentUser = currentUserName();
  let users = list(fs.string("user"));
  if (users.length === 1 && users[0] === currentUser) users = [];
  let cfg;
  try {
    cfg = readConfig();
  } catch (e) {
    throw new StartupError(`failed to read config file: ${(e as Error).message}`, 1);
  }
  const fields = [...selected.map((f) => FIELDS[f].tag), "started_at_ts", "ended_at_ts"];
  let stats;
  try {
    stats = await fetchStats(cfg, {
      currentUser,
      users,
      accounts: list(fs.string("account")),
      jobs,
      fromS,
      toS,
      fields,
    });
  } catch (e) {
    if (e instanceof ForbiddenError) {
      throw new StartupError("forbidden. It is likely that the user is attempting to view statistics of others", 1);
    }
    throw new StartupError(`failed to fetch jobs: ${(e as Error).message}`, 1);
  }
  if (fs.bool("ts")) await exportTimeSeries(cfg, stats.units, fs.string("ts.out-dir"), currentUser);
  const cols = buildColumns(selected, stats.units, stats.usages);
  if (fs.bool("html")) write(renderHtml(cols));
  else if (fs.bool("csv")) write(renderCsv(cols));
  else if (fs.bool("markdown")) write(renderMarkdown(cols));
  else write(renderBox(cols));
}
