// SPEC §10, rows of the int3-based and NMI-context protocols: the real checker is run on each cell and
// must reach the declared verdict (see test/helpers/verdicts.ts). The late-trapper schedule shows
// what the #BP handler's re-check is for, and what an unclaimed int3 does on each OS.
import { describe, expect, it } from "vitest";
import { Ev } from "../../dist/model/events.js";
import { Mark } from "../../dist/model/routine.js";
import type { OsName } from "../../dist/model/types.js";
import { resolveConfig } from "../../dist/properties/check.js";
import { evaluate, readLog } from "../../dist/properties/invariants.js";
import { decodeTape } from "../../dist/properties/token.js";
import { runInline } from "../../dist/workers/inline.js";
import { machineFor } from "../../dist/workers/setup.js";
import { declaredRows, expectVerdict } from "../helpers/verdicts.js";

declaredRows([
  "int3-restartable",
  "int3-debugger-applies",
  "int3-restartable-naive",
  "nmi-rendezvous",
  "nmi-rendezvous-anywhere",
]);

describe("fetch models", () => {
  it("with atomic fetch, the int3 protocols tear nothing on entry-pad (P3 remains)", async () => {
    // SPEC §10: the seed's option 2 tears the one-instruction site only because fetch is not atomic.
    for (const protocol of ["int3-restartable", "int3-debugger-applies"]) {
      await expectVerdict(protocol, "entry-pad", { violated: ["P3"] }, { fetch: "atomic" }, "#BP");
    }
  });
});

describe("a CPU that traps on the 0xCC just before the patcher finishes", () => {
  // On nmi-path: CPU 1's NMI handler fetches the seeded 0xCC at watchdog_kick and traps; before its
  // #BP handler looks at the handover, the master writes the rest of the jump and disarms it.
  const tape = decodeTape("1.4._2.1.2._2.1._68.1._7.1._27.2.1._22.1._6.2._2.1.2.0.1._6");
  const run = (protocol: string, os: OsName) => {
    const config = resolveConfig(protocol, "nmi-path", { os });
    const spec = machineFor(config);
    const mem = runInline(config, { tape }).mem;
    const site = spec.sites[0].address;
    const marks = readLog(mem).filter((r) => r.kind === Ev.Mark && r.cpu === 1);
    return { spec, mem, site, marks: marks.map((r) => [r.a, r.b - site]) };
  };

  it("the re-checking handler finds the 0xCC gone, backs up to the site and runs the jump", () => {
    for (const os of ["xen", "linux"] as const) {
      const r = run("int3-restartable", os);
      expect(r.marks).toContainEqual([Mark.Int3Removed, 0]);
      expect(evaluate(r.spec, r.mem).filter((v) => ["P1", "P4"].includes(v.property))).toEqual([]);
    }
  });

  it("the naive handler leaves it unclaimed: fatal on Linux (P4)", () => {
    const r = run("int3-restartable-naive", "linux");
    expect(evaluate(r.spec, r.mem, "P4").map((v) => [v.kind, v.cpu])).toEqual([["unhandled-int3", 1]]);
  });

  it("on Xen, do_int3 returns past it into the jump's displacement (P1 at site+1)", () => {
    const r = run("int3-restartable-naive", "xen");
    expect(r.marks).toContainEqual([Mark.EmbeddedBreakpoint, 0]);
    const p1 = evaluate(r.spec, r.mem, "P1");
    expect(p1.map((v) => [v.kind, v.cpu])).toEqual([["torn-fetch", 1]]);
    expect(p1[0].message).toMatch(/at watchdog_kick\+0x1:/);
    expect(evaluate(r.spec, r.mem, "P4")).toEqual([]);
  });
});
