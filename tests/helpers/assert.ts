// Re-exports node:assert/strict under the names the tests use, since JSR's @std/assert is not
// reachable from these machines.

import assert from "node:assert/strict";

/** Asserts deep equality. */
export const assertEquals: <T>(actual: unknown, expected: T, msg?: string) => void = assert.deepStrictEqual;
/** Asserts truthiness. */
export function assert_(v: unknown, msg?: string): asserts v {
  assert.ok(v, msg);
}
export { assert_ as assert };
/** Asserts that `fn` throws an error whose message matches `re`. */
export function assertThrows(fn: () => unknown, re?: RegExp): void {
  assert.throws(fn, re ?? /(?:)/);
}
/** Asserts that the promise rejects with a message matching `re`. */
export async function assertRejects(fn: () => Promise<unknown>, re?: RegExp): Promise<void> {
  await assert.rejects(fn, re ?? /(?:)/);
}
/** Asserts `s` matches `re`. */
export function assertMatch(s: string, re: RegExp, msg?: string): void {
  assert.match(s, re, msg);
}
/** Asserts |a-b| <= tol. */
export function assertAlmostEquals(a: number, b: number, tol = 1e-7, msg?: string): void {
  assert.ok(Math.abs(a - b) <= tol, msg ?? `${a} is not within ${tol} of ${b}`);
}
