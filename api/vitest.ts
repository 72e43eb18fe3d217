// livepatch-check/vitest: a check as a vitest test, in the manner of @fast-check/vitest (`test.prop`
// registers a property as a test, `fc.assert` runs one inside any test). The test fails with the
// shrunk counterexample's report (per-CPU timeline, patch-site fetches) and its replay token.
//
//   import { test } from "vitest";
//   import { checkProtocol } from "livepatch-check/vitest";
//   checkProtocol(test, { protocol: mine, scenario: myScenario });
//
// vitest is not imported here: the caller passes its own `test` (or `it`, `test.concurrent`).
import type { Expected, Protocol, Scenario } from "../model/types.js";
import type { Verdict } from "../properties/check.js";
import { PROPERTIES } from "../properties/invariants.js";
import { expectedCell, matchesExpected, verdictCell } from "../properties/report.js";
import { type CheckInput, check, report } from "./check.js";

/** What checkProtocol and assertProtocol take: check()'s input, and the verdict wanted. */
export interface ProtocolCheck extends CheckInput {
  /**
   * The verdict the check must reach (default: every property holds, `{ violated: [] }`). A known
   * failure is pinned as `{ violated: ["P2"] }`, a refusal as `{ refused: true }`.
   */
  expected?: Expected;
  /**
   * The module that exports the protocol and scenario (a path), named in the replay command of a
   * failure so that `npx livepatch-check replay TOKEN --module FILE` finds them.
   */
  module?: string;
}

/** The `test` (or `it`) of vitest, as far as checkProtocol uses it. */
export type TestFunction = (name: string, fn: () => Promise<void>, timeout?: number) => unknown;

/** How long a registered check may take, in ms (a check explores thousands of runs). */
export const CHECK_TIMEOUT_MS = 300_000;

/**
 * Registers a test named `protocol on scenario` that runs the check and fails, with the
 * counterexample's report and replay token, when the verdict is not the one expected.
 */
export function checkProtocol(
  test: TestFunction,
  options: ProtocolCheck & { name?: string; timeout?: number },
): void {
  if (typeof test !== "function")
    throw new Error(
      "checkProtocol takes vitest's test (or it) first: checkProtocol(test, { protocol, scenario })",
    );
  const { name, timeout, ...rest } = options;
  test(
    name ?? `${nameOf(options.protocol)} on ${nameOf(options.scenario)}`,
    async () => {
      await assertProtocol(rest);
    },
    timeout ?? CHECK_TIMEOUT_MS,
  );
}

/**
 * Runs the check and throws a CheckFailure when the verdict is not the one expected (inside any
 * test, as fc.assert is). Resolves to the verdict otherwise.
 */
export async function assertProtocol(options: ProtocolCheck): Promise<Verdict> {
  const { expected = { violated: [] }, module, ...input } = options;
  const verdict = await check(input);
  if (verdict.kind === "error") throw new CheckFailure(`livepatch-check: ${verdict.message}`, verdict);
  if (matchesExpected(verdict, expected)) return verdict;
  throw new CheckFailure(failureMessage(verdict, expected, module, input), verdict);
}

/** A check whose verdict is not the one expected; the message carries every counterexample. */
export class CheckFailure extends Error {
  readonly verdict: Verdict;
  constructor(message: string, verdict: Verdict) {
    super(message);
    this.name = "CheckFailure";
    this.verdict = verdict;
  }
}

function failureMessage(
  verdict: Exclude<Verdict, { kind: "error" }>,
  expected: Expected,
  module: string | undefined,
  input: CheckInput,
): string {
  const { protocol, scenario } = verdict.config;
  const head = `livepatch-check: ${protocol} on ${scenario}: ${verdictCell(verdict)}, expected ${expectedCell(expected)}`;
  if (verdict.kind === "refused") return `${head}\nrefused: ${verdict.reason}`;
  const lines = [head];
  const own = typeof input.protocol !== "string" || typeof input.scenario !== "string";
  for (const p of verdict.properties) {
    if (p.holds || !p.violation || !p.token) continue;
    const v = p.violation;
    const name = PROPERTIES.find((x) => x.id === p.property)?.name ?? "";
    lines.push(
      "",
      `━━ ${p.property} ${name} violated (${v.kind})${v.cpu >= 0 ? ` on CPU ${v.cpu}` : ""} at step ${v.step}${v.hazard ? `, only through a hazard: ${v.hazard}` : ""}`,
      report(verdict.config, p.tape ?? [], p.property).trimEnd(),
    );
    if (module) lines.push(`replay: npx livepatch-check replay ${p.token} --module ${module}`);
    else if (own)
      lines.push(
        "(the protocol or scenario is your own: add --module FILE, a module that exports them, to replay the token)",
      );
  }
  return lines.join("\n");
}

function nameOf(x: Protocol | Scenario | string): string {
  return typeof x === "string" ? x : x.name;
}
