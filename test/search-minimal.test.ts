// Complete where claimed: for violated cells whose minimal number of choices is within a test's
// reach, exhaustive search with that many choices in all finds the violation (with exactly that many
// choices, marked minimal, and its tape replays it), and with one choice less it explores every run
// and reports the property as holding. int3-restartable/nmi-path P4 needs 3 choices (2 preemptions,
// 1 event) and about 300,000 executions: it is measured in bench/search.ts, not tested here.
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../dist/properties/check.js";
import { evaluate, type PropertyId } from "../dist/properties/invariants.js";
import { exhaustive } from "../dist/properties/search.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";
import { type Bounds, spentOf } from "../dist/workers/strategies/search-tree.js";

const CELLS: Array<[string, string, PropertyId, number, Bounds, string]> = [
  // An NMI lands while the patcher writes the handler's function byte by byte.
  ["no-mask", "nmi-path", "P1", 1, { preemptions: 1, events: 1, branches: 0, stale: 0 }, "torn-fetch"],
  // An NMI during the masked window is swallowed.
  ["xen-4.8", "nmi-path", "P2", 1, { preemptions: 1, events: 1, branches: 0, stale: 0 }, "nmi-lost"],
  // Two NMIs: the #BP handler's IRET inside the first NMI's handler lets the second onto the live stack.
  [
    "int3-restartable",
    "nmi-path",
    "P3",
    2,
    { preemptions: 0, events: 2, branches: 0, stale: 0 },
    "ist-clobber(#BP)",
  ],
];

describe("exhaustive search is complete where it claims to be", () => {
  it.each(CELLS)(
    "%s/%s %s: found with %i choices, none with one less",
    (protocol, scenario, property, choices, bounds, kind) => {
      const config = resolveConfig(protocol, scenario);
      const spec = machineFor(config);
      const below = exhaustive(spec, { bounds, total: choices - 1, properties: [property] });
      expect(below.complete).toBe(true);
      expect(below.level).toBe(choices - 1);
      expect(below.findings.has(property)).toBe(false);
      const at = exhaustive(spec, { bounds, total: choices, properties: [property] });
      const found = at.findings.get(property);
      if (!found)
        throw new Error(`${protocol}/${scenario}: no ${property} violation with ${choices} choices`);
      expect(found.minimal).toBe(true);
      expect(spentOf(found.cost)).toBe(choices);
      expect(found.violation.kind).toBe(kind);
      const replayed = evaluate(spec, runInline(config, { tape: found.tape }).mem, property)[0];
      expect(replayed).toEqual(found.violation);
    },
  );
});
