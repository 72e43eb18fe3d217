// The exhaustive search resumes each execution from a snapshot taken where its branch point was
// created (buffer run state, each CPU's contexts with their routines made again from their inputs,
// the search's own state), instead of re-executing the run from the start. That must change nothing
// but the work done: the same executions in the same order, each with the same choices, event log
// and final state, and the same counts and verdicts.
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../dist/properties/check.js";
import { machineFor } from "../dist/workers/setup.js";
import { DEFAULT_REDUCTIONS, NO_REDUCTIONS } from "../dist/workers/strategies/reductions.js";
import { resumeOnGeneratedMachines, same } from "./helpers/resume.js";

describe("resuming executions from snapshots", () => {
  it("on the first executions of a built-in cell, each resumed routine made again (a budget small enough that a resume gone wrong fails at once)", () => {
    // A routine the snapshot does not hold must be made again and handed its inputs: one that kept
    // running the generator it had would go on from where the previous execution left it.
    const spec = machineFor(resolveConfig("no-mask", "nmi-path", {}));
    const resumed = same(spec, { preemptions: 1, events: 1, branches: 0, stale: 0 }, NO_REDUCTIONS, 40);
    expect(resumed).toBeGreaterThan(20);
  });

  // The fast tier: 8 machines each (test/slow/resume.test.ts: 25).
  resumeOnGeneratedMachines(8, 300);

  it("with stale fetch and branch choices on a built-in cell (value choices inside steps)", () => {
    const spec = machineFor(resolveConfig("no-mask", "nmi-path", { fetch: "stale" }));
    const resumed = same(
      spec,
      { preemptions: 1, events: 1, branches: 1, stale: 1 },
      DEFAULT_REDUCTIONS,
      1_500,
    );
    expect(resumed).toBeGreaterThan(1_000);
  });

  it("on a Linux cell whose int3 handler rewrites its frame's return address, with state caching", () => {
    // A routine made again must start from the frame it was first made with, not the one it rewrote.
    const spec = machineFor(resolveConfig("linux-optprobe", "normal", {}));
    const resumed = same(
      spec,
      { preemptions: 1, events: 1, branches: 0, stale: 0 },
      { ...DEFAULT_REDUCTIONS, stateCaching: true },
      3_000,
    );
    expect(resumed).toBeGreaterThan(1_000);
  });

  it("on a broadcast #MC cell with IST frames and state caching", () => {
    const spec = machineFor(resolveConfig("int3-restartable", "mce-path", {}));
    const resumed = same(
      spec,
      { preemptions: 1, events: 2, branches: 0, stale: 0 },
      { ...DEFAULT_REDUCTIONS, stateCaching: true },
      1_500,
    );
    expect(resumed).toBeGreaterThan(1_000);
  });
});
