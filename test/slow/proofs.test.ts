// A "holds" cell proven beyond the main job's bound (every run with at most one choice): nmi-replay on
// nmi-path, whose NMI handler calls the patched function, explored completely at two preemptions and
// at one preemption with one NMI, with state caching (workers/strategies/state-cache.ts), with its
// coverage witness. The larger bounds per cell are measured by `npm run bench:search proofs` (docs/measurements.md).
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../dist/properties/check.js";
import { SITUATIONS } from "../../dist/properties/coverage.js";
import { exhaustive } from "../../dist/properties/search.js";
import { machineFor } from "../../dist/workers/setup.js";
import { DEFAULT_REDUCTIONS } from "../../dist/workers/strategies/reductions.js";
import type { Bounds } from "../../dist/workers/strategies/search-tree.js";

const WITH_CACHING = { ...DEFAULT_REDUCTIONS, stateCaching: true };

describe("nmi-replay/nmi-path is proven beyond one choice", () => {
  const spec = machineFor(resolveConfig("nmi-replay", "nmi-path"));
  const reached = (coverage: number[]) => SITUATIONS.filter((_, i) => coverage[i] > 0).map((s) => s.id);

  it.each([
    [{ preemptions: 2, events: 0, branches: 0, stale: 0 }, []],
    // The NMI lands while the patch is applied and is delivered inside a handler; no handler fetches
    // the site mid-write (the mask callback only records the NMI, replayed by a self-NMI after unmasking).
    [{ preemptions: 1, events: 1, branches: 0, stale: 0 }, ["event-during-patch", "event-in-handler"]],
  ] as Array<[Bounds, string[]]>)("within %o: every run explored, no violation", (bounds, situations) => {
    const r = exhaustive(spec, {
      bounds,
      reductions: WITH_CACHING,
      deepening: false,
      stopWhenAllViolated: false,
    });
    expect(r.complete).toBe(true);
    expect([...r.findings.keys()]).toEqual([]);
    expect(r.pruned.cache).toBeGreaterThan(0);
    expect(reached(r.coverage)).toEqual(situations);
  });
});
