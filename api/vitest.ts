// livepatch-check/vitest: a check as a vitest test, in the manner of @fast-check/vitest (`test.prop`
// registers a property as a test, `fc.assert` runs one inside any test). The test fails with the
// shrunk counterexample's report (per-CPU timeline, patch-site fetches) and its replay token.
//
//   import { test } from "vitest";
//   import { checkProtocol } from "livepatch-check/vitest";
//   checkProtocol(test, { protocol: mine, scenario: myScenario });
//
// vitest is not imported here: the caller passes its own `test` (or `it`, `test.concurrent`).
//
// With `module` (the file that exports the protocol and scenario), the check runs as the command's
// do: in a worker thread that loads that module, under the watchdog, which stops a routine that
// never yields and names its CPU, routine and step. Without it, the check runs in the test's thread.
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Expected, Protocol, Scenario } from "../model/types.js";
import type { PropertyResult, Verdict } from "../properties/check.js";
import { PROPERTIES } from "../properties/invariants.js";
import { expectedCell, matchesExpected, verdictCell } from "../report/index.js";
import { CheckerSession, SessionError } from "../session/session.js";
import { type CheckInput, check, report } from "./check.js";

/** What checkProtocol and assertProtocol take: check()'s input, and the verdict wanted. */
export interface ProtocolCheck extends CheckInput {
  /**
   * The verdict the check must reach (default: every property holds, `{ violated: [] }`). A known
   * failure is pinned as `{ violated: ["P2"] }`, a refusal as `{ refused: true }`.
   */
  expected?: Expected;
  /**
   * The module that exports the protocol and scenario (a path, or a file URL such as
   * `new URL("./patch.js", import.meta.url)`). The check then runs in a worker thread that loads it,
   * under the watchdog, and a failure's replay command names it (`--module FILE`).
   */
  module?: string | URL;
  /**
   * With `module`: seconds of its thread's own CPU time (time waiting for a core on a busy machine
   * does not count) a check may make no progress before the watchdog stops it (default 5).
   */
  watchdogSeconds?: number;
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
  const { expected = { violated: [] }, module, watchdogSeconds, ...input } = options;
  if (module === undefined) {
    const verdict = await check(input);
    if (verdict.kind === "error") throw new CheckFailure(`livepatch-check: ${verdict.message}`, verdict);
    if (matchesExpected(verdict, expected)) return verdict;
    const reportOf = async (p: PropertyResult) => report(verdict.config, p.tape ?? [], p.property);
    throw new CheckFailure(await failureMessage(verdict, expected, undefined, input, reportOf), verdict);
  }
  const path = modulePath(module);
  // The command's checker session, with one worker thread that loads the module.
  const session = new CheckerSession({
    workers: 1,
    modules: [path],
    watchdogMs: watchdogSeconds === undefined ? undefined : watchdogSeconds * 1000,
  });
  try {
    const { protocol, scenario, ...options } = input;
    const names = { protocol: nameOf(protocol), scenario: nameOf(scenario) };
    const verdict = await helperErrors(session.check({ ...options, ...names }));
    if (verdict.kind === "error") throw new CheckFailure(`livepatch-check: ${verdict.message}`, verdict);
    if (matchesExpected(verdict, expected)) return verdict;
    const reportOf = async (p: PropertyResult) =>
      (await helperErrors(session.report(verdict.config, p.tape ?? [], { property: p.property }))).text;
    throw new CheckFailure(await failureMessage(verdict, expected, path, input, reportOf), verdict);
  } finally {
    await session.close();
  }
}

/** The session's work; the watchdog, a module that fails to load and a bad configuration are errors. */
async function helperErrors<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    if (e.kind === "stuck")
      throw new Error(
        `livepatch-check: the watchdog stopped the check: ${e.message}. Nothing was judged: ${
          e.culprit === "module"
            ? "fix the protocol"
            : "the code that made no progress is livepatch-check's own, not the module's: please report it"
        } (or, if the machine is only very slow, raise watchdogSeconds).`,
      );
    if (e.kind === "build")
      throw new Error(
        `livepatch-check: cannot build ${e.cell?.protocol} on ${e.cell?.scenario}: ${e.message}`,
      );
    throw new Error(`livepatch-check: ${e.message}`);
  }
}

function modulePath(module: string | URL): string {
  const path = module instanceof URL ? fileURLToPath(module) : module;
  return isAbsolute(path) ? path : resolve(path);
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

async function failureMessage(
  verdict: Exclude<Verdict, { kind: "error" }>,
  expected: Expected,
  module: string | undefined,
  input: CheckInput,
  reportOf: (p: PropertyResult) => Promise<string>,
): Promise<string> {
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
      (await reportOf(p)).trimEnd(),
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
