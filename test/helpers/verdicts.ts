// Runs the real checker on one cell of the verdict matrix and asserts the protocol's declared verdict:
// the exact set of failing properties (or the refusal), the kind of each violation, and that each
// printed replay token reproduces the same violation. The checker runs its default strategy (the
// portfolio) with its default budget; a cell with violations is checked with two seeds.
import { describe, expect, it } from "vitest";
import { findProtocol } from "../../model/protocols/index.js";
import type { Hardware } from "../../model/types.js";
import { check, DEFAULT_RUNS, DEFAULT_SEEDS } from "../../properties/check.js";
import { evaluate, type PropertyId } from "../../properties/invariants.js";
import { decodeToken } from "../../properties/token.js";
import { runInline } from "../../workers/inline.js";
import { machineFor } from "../../workers/setup.js";

/** The exploration budget of the verdict tests: the same as the CLI's default. */
export const RUNS = DEFAULT_RUNS;
export const SEEDS = DEFAULT_SEEDS;

/** What each property's violation must be, as SPEC §7 defines it. */
const KINDS: Record<PropertyId, RegExp> = {
  P1: /^torn-fetch$/,
  P2: /^nmi-lost$/,
  P3: /^ist-clobber\((#BP|#MC|os)\)$/,
  P4: /^(unhandled-int3|invalid-opcode|shutdown|out-of-code)$/,
  P5: /^(deadlock|step-bound)$/,
  P6: /^(not-patched|old-body)$/,
};

/** The fixed seeds a cell with violations is checked with. */
export const VERDICT_SEEDS = [1, 2];

export async function expectVerdict(
  protocol: string,
  scenario: string,
  expected: { violated: PropertyId[] } | { refused: RegExp },
  hardware: Partial<Hardware> = {},
  p3Cause?: "#BP" | "#MC",
): Promise<void> {
  const seeds = "violated" in expected && expected.violated.length > 0 ? VERDICT_SEEDS : [1];
  for (const seed of seeds)
    await expectVerdictWithSeed(protocol, scenario, expected, hardware, p3Cause, seed);
}

async function expectVerdictWithSeed(
  protocol: string,
  scenario: string,
  expected: { violated: PropertyId[] } | { refused: RegExp },
  hardware: Partial<Hardware>,
  p3Cause: "#BP" | "#MC" | undefined,
  seed: number,
): Promise<void> {
  const verdict = await check({ protocol, scenario, runs: RUNS, seeds: SEEDS, seed, hardware });
  if ("refused" in expected) {
    expect(verdict.kind).toBe("refused");
    if (verdict.kind === "refused") expect(verdict.reason).toMatch(expected.refused);
    return;
  }
  if (verdict.kind === "refused" || verdict.kind === "error") {
    throw new Error(`${protocol}/${scenario}: expected a verdict, got ${JSON.stringify(verdict)}`);
  }
  const failing = verdict.properties.filter((p) => !p.holds).map((p) => p.property);
  expect(failing, `${protocol}/${scenario} failing properties (seed ${seed})`).toEqual(expected.violated);
  // Every verdict says how it was reached, and what the runs reached.
  expect(verdict.search?.coverageRuns).toBeGreaterThan(0);
  for (const result of verdict.properties.filter((p) => !p.holds)) {
    const v = result.violation;
    if (!v || !result.token) throw new Error(`${result.property} failed without a counterexample`);
    expect(v.kind).toMatch(KINDS[result.property]);
    if (result.property === "P3" && p3Cause) expect(v.kind).toBe(`ist-clobber(${p3Cause})`);
    if (["P1", "P2", "P3", "P4"].includes(result.property)) expect(v.cpu).toBeGreaterThanOrEqual(0);
    expect(v.step).toBeGreaterThan(0);
    // Shrinking never adds choices (preemptions, events): fast-check only drops and lowers them; an
    // exhaustive counterexample has the fewest choices within its bounds.
    if (result.how === "exhaustive") expect(result.minimal).toBe(true);
    else expect(result.shrunkChoices).toBeLessThanOrEqual(result.originalChoices ?? Number.POSITIVE_INFINITY);
    // The token alone reproduces the same violation, at the same CPU and step.
    const { config, tape } = decodeToken(result.token);
    const replay = evaluate(machineFor(config), runInline(config, { tape }).mem, result.property)[0];
    expect(replay).toEqual(v);
  }
}

/** The declared verdict of a built-in protocol on a built-in scenario, as expectVerdict wants it. */
export function declared(
  protocol: string,
  scenario: string,
): { violated: PropertyId[] } | { refused: RegExp } {
  const e = findProtocol(protocol).expected[scenario];
  if (!e) throw new Error(`${protocol} declares no verdict for ${scenario}`);
  return "refused" in e ? { refused: /./ } : { violated: e.violated as PropertyId[] };
}

const SCENARIOS = ["nmi-path", "mce-path", "normal", "entry-pad"];

/**
 * One row of the matrix per protocol, one test per built-in scenario, each asserting the declared
 * verdict. A P3 violation must name the IRET that let the nested NMI in: the #MC handler's on mce-path
 * (the only scenario with a machine check), the #BP handler's elsewhere.
 */
export function declaredRows(protocols: string[]): void {
  describe.each(protocols)("%s", (protocol) => {
    it.each(SCENARIOS)("on %s", async (scenario) => {
      await expectVerdict(
        protocol,
        scenario,
        declared(protocol, scenario),
        {},
        scenario === "mce-path" ? "#MC" : "#BP",
      );
    });
  });
}
