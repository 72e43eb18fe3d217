// Runs the real checker on one cell of the verdict matrix and asserts the protocol's declared verdict:
// the exact set of failing properties (or the refusal), the kind of each violation, and that each
// printed replay token reproduces the same violation. The checker runs its default strategy (the
// portfolio) with its default budget; a cell with violations is checked with two seeds.
import { describe, expect, it } from "vitest";
import { findProtocol } from "../../dist/model/protocols/index.js";
import type { Hardware } from "../../dist/model/types.js";
import { check, DEFAULT_RUNS, DEFAULT_SEEDS } from "../../dist/properties/check.js";
import { evaluate, type PropertyId } from "../../dist/properties/invariants.js";
import { decodeToken } from "../../dist/properties/token.js";
import { runInline } from "../../dist/workers/inline.js";
import { machineFor } from "../../dist/workers/setup.js";

/** The exploration budget of the verdict tests: the same as the CLI's default. */
export const RUNS = DEFAULT_RUNS;
export const SEEDS = DEFAULT_SEEDS;

/** What each property's violation must be when it is the protocol's, as SPEC §7 defines it. */
const KINDS: Record<PropertyId, RegExp> = {
  P1: /^torn-fetch$/,
  P2: /^nmi-lost$/,
  P3: /^ist-clobber\((#BP|os|NMI)\)$/,
  P4: /^(unhandled-int3|invalid-opcode|out-of-code|bad-return|stack-fault)$/,
  P5: /^(deadlock|step-bound)$/,
  P6: /^(not-patched|old-body)$/,
};

/** Violations that are hazards of the hardware or the OS's entry code (properties/invariants). */
const HAZARD_KINDS: Partial<Record<PropertyId, RegExp>> = {
  P3: /^ist-clobber\((#MC|nested #MC|NMI)\)$/,
  P4: /^shutdown\(nested #MC\)$/,
};

export type ExpectedVerdict = { violated: PropertyId[]; hazards?: PropertyId[] } | { refused: RegExp };

/**
 * Runs the checker on one cell and asserts the verdict: the properties the protocol violates, those
 * violated only through hazards, each violation's kind, and that each replay token reproduces it.
 * `p3Cause` pins the IRET a protocol's P3 violation must name.
 */

/** The fixed seeds a cell with violations is checked with. */
export const VERDICT_SEEDS = [1, 2];

export async function expectVerdict(
  protocol: string,
  scenario: string,
  expected: ExpectedVerdict,
  hardware: Partial<Hardware> = {},
  p3Cause?: "#BP" | "os",
): Promise<void> {
  const seeds = "violated" in expected && expected.violated.length > 0 ? VERDICT_SEEDS : [1];
  for (const seed of seeds)
    await expectVerdictWithSeed(protocol, scenario, expected, hardware, p3Cause, seed);
}

async function expectVerdictWithSeed(
  protocol: string,
  scenario: string,
  expected: ExpectedVerdict,
  hardware: Partial<Hardware>,
  p3Cause: "#BP" | "os" | undefined,
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
  const failing = verdict.properties.filter((p) => !p.holds);
  const faults = failing.filter((p) => !p.violation?.hazard).map((p) => p.property);
  const hazards = failing.filter((p) => p.violation?.hazard).map((p) => p.property);
  expect(faults, `${protocol}/${scenario}: properties the protocol violates (seed ${seed})`).toEqual(
    expected.violated,
  );
  expect(hazards, `${protocol}/${scenario}: properties violated only through hazards`).toEqual(
    expected.hazards ?? [],
  );
  for (const result of failing) {
    // Every verdict says how it was reached, and what the runs reached.
    expect(verdict.search?.coverageRuns).toBeGreaterThan(0);
    const v = result.violation;
    if (!v || !result.token) throw new Error(`${result.property} failed without a counterexample`);
    if (v.hazard) expect(v.kind).toMatch(HAZARD_KINDS[result.property] ?? /^$/);
    else expect(v.kind).toMatch(KINDS[result.property]);
    if (result.property === "P3" && !v.hazard && p3Cause) expect(v.kind).toBe(`ist-clobber(${p3Cause})`);
    if (["P1", "P2", "P3", "P4"].includes(result.property)) expect(v.cpu).toBeGreaterThanOrEqual(0);
    expect(v.step).toBeGreaterThan(0);
    // Shrinking never adds choices (preemptions, events): fast-check only drops and lowers them; an
    // exhaustive counterexample has the fewest choices within its bounds.
    if (result.how === "exhaustive") expect(result.minimal).toBe(true);
    else expect(result.shrunkChoices).toBeLessThanOrEqual(result.originalChoices ?? Number.POSITIVE_INFINITY);
    // The token alone reproduces the same violation, at the same CPU and step.
    const { config, tape } = decodeToken(result.token);
    const replay = evaluate(machineFor(config), runInline(config, { tape }).mem, result.property).find(
      (r) => (r.hazard !== undefined) === (v.hazard !== undefined),
    );
    expect(replay).toEqual(v);
  }
}

/** The declared verdict of a built-in protocol on a built-in scenario, as expectVerdict wants it. */
export function declared(protocol: string, scenario: string): ExpectedVerdict {
  const e = findProtocol(protocol).expected[scenario];
  if (!e) throw new Error(`${protocol} declares no verdict for ${scenario}`);
  return "refused" in e
    ? { refused: /./ }
    : { violated: e.violated as PropertyId[], hazards: (e.hazards ?? []) as PropertyId[] };
}

const SCENARIOS = ["nmi-path", "mce-path", "normal", "entry-pad"];

/**
 * One row of the matrix per protocol, one test per built-in scenario, each asserting the declared
 * verdict. A P3 violation that is the protocol's must name the #BP handler's IRET (the only one a
 * protocol adds inside an NMI handler); the #MC handler's is a hazard, checked by its kind.
 */
export function declaredRows(protocols: string[]): void {
  describe.each(protocols)("%s", (protocol) => {
    it.each(SCENARIOS)("on %s", async (scenario) => {
      await expectVerdict(protocol, scenario, declared(protocol, scenario), {}, "#BP");
    });
  });
}
