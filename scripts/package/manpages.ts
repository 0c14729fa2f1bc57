// Manual pages of the Debian package, generated from each command's --help output so they cannot drift from
// the flags: ceems(1) and one page per CEEMS binary name (ceems_exporter(1), ceems_api_server(1), …).

/** One page: its name, the subcommand whose --help it carries ("" for ceems itself), a one-line summary. */
export interface ManPage {
  name: string;
  subcommand: string;
  summary: string;
}

/** Escapes text for a roff no-fill block: backslashes, minus signs, and lines starting with a control character. */
export function roffEscape(text: string): string {
  return text.split("\n").map((l) => {
    const e = l.replaceAll("\\", "\\e").replaceAll("-", "\\-");
    return /^[.']/.test(e) ? `\\&${e}` : e;
  }).join("\n");
}

/** The page's roff source: NAME, SYNOPSIS, the --help text verbatim as DESCRIPTION, SEE ALSO. */
export function renderManPage(page: ManPage, help: string, version: string, date: string, seeAlso: string[]): string {
  const invocation = page.subcommand ? `${page.name} [<flags>]` : "ceems <command> [<flags>]";
  const see = seeAlso.filter((n) => n !== page.name).map((n) => `.BR ${n} (1)`).join(",\n");
  return [
    `.TH ${page.name.toUpperCase().replaceAll("_", "\\_")} 1 "${date}" "ceems ${version}" "User Commands"`,
    ".SH NAME",
    `${page.name.replaceAll("-", "\\-")} \\- ${roffEscape(page.summary)}`,
    ".SH SYNOPSIS",
    `.B ${roffEscape(invocation)}`,
    ".SH DESCRIPTION",
    page.subcommand
      ? `Runs \\fBceems ${page.subcommand}\\fR; the same program under CEEMS's binary name. Its flags, as \\fB\\-\\-help\\fR prints them:`
      : "One program for the CEEMS services; CEEMS's binary names run its subcommands. Usage, as it prints it:",
    ".PP",
    ".nf",
    roffEscape(help.trimEnd()),
    ".fi",
    ".SH FILES",
    ".TP",
    ".I /etc/ceems/",
    "sample configuration files (web-config.yml, ceems_api_server.yml, ceems_lb.yml, redfish-config.yml)",
    ".TP",
    ".I /etc/default/ceems_exporter, /etc/default/ceems_api_server, /etc/default/ceems_lb",
    "extra flags of the systemd units",
    ".SH SEE ALSO",
    see,
    "",
  ].join("\n");
}
