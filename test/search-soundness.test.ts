// The reductions of the exhaustive search are sound: on generated small machines (2-3 CPUs, code
// writes, fetches of the bytes being written from normal context and from an NMI handler, waits,
// NMIs and #MCs, handlers ending in IRET, a branch choice), the reduced search reaches exactly the
// same set of distinct outcomes (final data words, site bytes, each CPU's hardware flags and per-CPU
// words, and which properties are violated) as an unreduced enumeration of every run within the same
// bounds. With symmetry, outcomes are compared up to swapping CPUs 1..n-1.
import { describe, expect, it } from "vitest";
import { DEFAULT_REDUCTIONS, NO_REDUCTIONS } from "../dist/workers/strategies/reductions.js";
import { machineOf, searchOutcomes as outcomes, RACY_MACHINE } from "./helpers/generated.js";
import { searchSoundness } from "./helpers/soundness.js";

/** The share of the generated machines the fast tier compares (test/slow/soundness.test.ts: all). */
const SCALE = 1 / 5;

searchSoundness(SCALE);

describe("exhaustive search: the reductions on machines built for them", () => {
  it("DPOR (only when named) misses outcomes under a preemption bound: why it is not a default", () => {
    // CPU 0 sends an NMI to every CPU; CPUs 1 and 2 write the site's first byte and add to a word; the
    // NMI handler calls the site. With one preemption, DPOR alone reaches 12 of the 14 outcomes.
    const d = machineOf({
      cpus: 3,
      mceDelivery: "broadcast",
      master: [{ k: "nmi", target: "all" }],
      others: [
        { k: "write", offset: 0 },
        { k: "add", word: 0 },
      ],
      handler: [{ k: "call" }],
    });
    const bounds = { preemptions: 1, events: 0, branches: 0, stale: 0 };
    const full = outcomes(d, bounds, NO_REDUCTIONS, false);
    const dpor = outcomes(d, bounds, { ...NO_REDUCTIONS, dpor: true }, false);
    expect(full.set.size).toBe(14);
    expect([...full.set].filter((o) => !dpor.set.has(o)).length).toBe(2);
    // The default reductions (symmetry among them: outcomes up to swapping CPUs 1 and 2) miss none.
    const fullUpToSwap = outcomes(d, bounds, NO_REDUCTIONS, true);
    const sound = outcomes(d, bounds, DEFAULT_REDUCTIONS, true);
    expect([...sound.set].sort()).toEqual([...fullUpToSwap.set].sort());
  });

  it("symmetry: an #MC to CPU 2 is the image of one to CPU 1, per-CPU words of its handler swapped too", () => {
    // CPU 0 writes the site's first byte; CPUs 1 and 2 call it. A local #MC to CPU 2 before either
    // runs sets softirq_pending.MACHINE_CHECK[2], then CPU 2 tears (P1). Symmetry explores only the
    // #MC to CPU 1, whose run is that one's image: the outcomes agree once per-CPU words move with
    // their CPU.
    const d = machineOf({
      cpus: 3,
      mces: 1,
      master: [{ k: "write", offset: 0 }],
      others: [{ k: "call" }, { k: "cli" }],
    });
    const bounds = { preemptions: 0, events: 1, branches: 0, stale: 0 };
    const full = outcomes(d, bounds, NO_REDUCTIONS, true);
    const reduced = outcomes(d, bounds, { ...NO_REDUCTIONS, symmetry: true }, true);
    expect(reduced.r.executions).toBeLessThan(full.r.executions);
    expect([...reduced.set].sort()).toEqual([...full.set].sort());
    expect([...full.set].filter((o) => o.endsWith('["P1"]]')).length).toBeGreaterThan(2);
  });

  it("the reductions do reduce: fewer executions on a generated machine with races", () => {
    const d = RACY_MACHINE;
    const bounds = { preemptions: 1, events: 1, branches: 0, stale: 0 };
    const full = outcomes(d, bounds, NO_REDUCTIONS, true);
    const reduced = outcomes(d, bounds, DEFAULT_REDUCTIONS, true);
    expect(full.r.complete && reduced.r.complete).toBe(true);
    expect(reduced.set).toEqual(full.set);
    expect(reduced.r.executions).toBeLessThan(full.r.executions / 2);
  });
});
