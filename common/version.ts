// Version and build information of the ceems program, shown by --version and exported as
// <component>_build_info.

/** Release version of this program. */
export const VERSION = "0.1.0";
/** Source revision, filled in by scripts/build.ts for compiled binaries. */
export const REVISION = "unknown";
/** Branch the binary was built from. */
export const BRANCH = "main";

/** The text printed by --version. */
export function versionText(component: string): string {
  return `ceems ${component}, version ${VERSION} (branch: ${BRANCH}, revision: ${REVISION})\n` +
    `  build runtime: deno ${Deno.version.deno}, v8 ${Deno.version.v8}\n` +
    `  platform:      ${Deno.build.os}/${Deno.build.arch}\n`;
}

/** Labels of <component>_build_info, with CEEMS's label names. */
export function buildInfoLabels(): Record<string, string> {
  return {
    branch: BRANCH,
    goarch: Deno.build.arch === "x86_64" ? "amd64" : Deno.build.arch === "aarch64" ? "arm64" : Deno.build.arch,
    goos: Deno.build.os,
    goversion: `deno${Deno.version.deno}`,
    revision: REVISION,
    tags: "",
    version: VERSION,
  };
}
