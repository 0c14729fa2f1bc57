// Flags and helpers shared by the `ceems tool` subcommands: --url, --http.config.file and the --start/--end
// window of the Prometheus ones, time parsing as CEEMS's ceems_tool does, and the Prometheus client they build.

import { parseFlags, StartupError } from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import { type HttpClientConfig, loadHttpClientConfig, PrometheusApi } from "./prometheus_api.ts";

/** Parses a time given as RFC 3339 or Unix seconds; returns Unix seconds. */
export function parseTime(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`invalid time ${JSON.stringify(s)} (RFC 3339 or Unix seconds)`);
  return t / 1000;
}

/** Adds --help and --version. */
export function addHelpFlags(fs: FlagSet): void {
  fs.add({ name: "help", kind: "bool", help: "Show context-sensitive help." });
  fs.add({ name: "version", kind: "bool", help: "Show application version." });
}

/** Adds --url (with its default) and --http.config.file. */
export function addServerFlags(fs: FlagSet, defaultUrl: string, what: string): void {
  fs.add({ name: "url", kind: "string", default: defaultUrl, help: `The URL of the ${what}.` });
  fs.add({
    name: "http.config.file",
    kind: "string",
    default: "",
    placeholder: "<filename>",
    help: `HTTP client configuration file (basic_auth, authorization, tls_config) to connect to the ${what}.`,
  });
}

/** Adds --start and --end (CEEMS's discovery window, default the last 3 h). */
export function addWindowFlags(fs: FlagSet): void {
  fs.add({
    name: "start",
    kind: "string",
    default: "",
    help: "Start of the discovery window: RFC 3339 or Unix timestamp (default: 3 hours ago).",
  });
  fs.add({ name: "end", kind: "string", default: "", help: "End of the discovery window (default: now)." });
}

/** The --start/--end window in Unix seconds; throws StartupError naming the flag. */
export function windowFromFlags(fs: FlagSet): { start: number; end: number } {
  let end: number, start: number;
  try {
    end = fs.string("end") ? parseTime(fs.string("end")) : Date.now() / 1000;
  } catch (e) {
    throw new StartupError(`--end: ${(e as Error).message}`);
  }
  try {
    start = fs.string("start") ? parseTime(fs.string("start")) : end - 3 * 3600;
  } catch (e) {
    throw new StartupError(`--start: ${(e as Error).message}`);
  }
  if (start >= end) throw new StartupError("--start must be before --end");
  return { start, end };
}

/** The HTTP client described by --http.config.file; throws StartupError naming the flag. */
export function httpClientFromFlags(fs: FlagSet): HttpClientConfig {
  const path = fs.string("http.config.file");
  try {
    return loadHttpClientConfig(path);
  } catch (e) {
    throw new StartupError(`--http.config.file: ${path}: ${(e as Error).message}`);
  }
}

/** --url checked as an http(s) URL; throws StartupError naming the flag. */
export function urlFromFlags(fs: FlagSet): string {
  const raw = fs.string("url");
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new StartupError(`--url: invalid URL ${JSON.stringify(raw)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new StartupError(`--url: not an http(s) URL: ${raw}`);
  if (u.username && fs.string("http.config.file")) {
    throw new StartupError("--url: credentials in the URL and --http.config.file cannot be used together");
  }
  return u.toString().replace(/\/$/, "");
}

/** --url and --http.config.file as a base URL without credentials and the client (URL credentials → basic auth). */
export function serverFromFlags(fs: FlagSet): { url: string; http: HttpClientConfig } {
  const u = new URL(urlFromFlags(fs));
  const http = httpClientFromFlags(fs);
  if (u.username) {
    http.headers.Authorization = "Basic " +
      btoa(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`);
    u.username = "";
    u.password = "";
  }
  return { url: u.toString().replace(/\/$/, ""), http };
}

/** The Prometheus client of a subcommand with --url and --http.config.file. */
export function prometheusFromFlags(fs: FlagSet): PrometheusApi {
  const { url, http } = serverFromFlags(fs);
  return new PrometheusApi(url, http);
}

/** A Prometheus subcommand's parsed flags (--url, --http.config.file, --start, --end), window and client. */
export function prometheusCommand(
  name: string,
  description: string,
  args: string[],
): { fs: FlagSet; api: PrometheusApi; start: number; end: number } {
  const fs = new FlagSet(`tool ${name}`, description);
  addHelpFlags(fs);
  addServerFlags(fs, "http://localhost:9090", "Prometheus server");
  addWindowFlags(fs);
  parseFlags(fs, args, "tool");
  return { fs, api: prometheusFromFlags(fs), ...windowFromFlags(fs) };
}
