// Tests of SLURM hostlist expansion: ranges with zero padding, single indexes, suffixes after the
// brackets and plain host names mixed in.

import { expandHostlist } from "../../common/slurm_hostlist.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("expandHostlist expands ranges and lists, keeps padding and plain names", () => {
  assertEquals(expandHostlist("gpu[01-03,07],login1"), ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]);
  assertEquals(expandHostlist("compute-[0-2],gpu[08-09]"), ["compute-0", "compute-1", "compute-2", "gpu08", "gpu09"]);
  assertEquals(expandHostlist("/dev/nvidia[0-1]"), ["/dev/nvidia0", "/dev/nvidia1"]);
  assertEquals(expandHostlist("rack[1-2]-node"), ["rack1-node", "rack2-node"]);
  assertEquals(expandHostlist("single"), ["single"]);
  assertEquals(expandHostlist(""), []);
});
