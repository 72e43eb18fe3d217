// The three tape strategies over one engine: each finds the seed's headline failure, and its
// counterexample is a plain tape that replays to the same violation.
import { describe, expect, it } from "vitest";
import { check } from "../dist/properties/check.js";
import { evaluate } from "../dist/properties/invariants.js";
import { decodeToken } from "../dist/properties/token.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";

async function firstViolation(strategy: "random" | "bounded" | "pct", bound?: number) {
  const v = await check({
    protocol: "no-mask",
    scenario: "nmi-path",
    strategy,
    bound,
    properties: ["P1"],
    examples: false,
  });
  if (v.kind !== "violated") throw new Error(`${strategy}: expected a violation, got ${v.kind}`);
  const r = v.properties[0];
  if (!r.token || !r.violation || !r.tape) throw new Error(`${strategy}: no counterexample`);
  return r;
}

describe("strategies", () => {
  it.each([
    ["random", undefined],
    ["bounded", 2],
    ["pct", 3],
  ] as const)(
    "%s finds no-mask's torn fetch on nmi-path, and its token replays it",
    async (strategy, bound) => {
      const r = await firstViolation(strategy, bound);
      expect(r.violation?.kind).toBe("torn-fetch");
      const { config, tape } = decodeToken(r.token as string);
      const replayed = evaluate(machineFor(config), runInline(config, { tape }).mem, "P1")[0];
      expect(replayed).toEqual(r.violation);
    },
  );

  it("bounded keeps at most k non-zero choices (preemptions and events)", async () => {
    const r = await firstViolation("bounded", 2);
    expect(r.tape?.filter((v) => v !== 0).length).toBeLessThanOrEqual(2);
  });

  it("pct counterexamples are the choices PCT made, recorded as a tape", async () => {
    const r = await firstViolation("pct", 3);
    // A PCT run records a choice at every scheduling point, so its tape is dense, unlike sparse ones.
    expect(r.tape?.length).toBeGreaterThan(10);
  });
});
