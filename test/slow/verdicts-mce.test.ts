// Machine checks on Xen's real path (model/os/common.ts mceEntry): the mce-path cells with local
// delivery (LMCE, AMD), where the handlers do not wait for each other (the barrier's own tests are in
// test/mce-barrier.test.ts). The default (broadcast) cells are the declared rows of
// the other verdict files.
import { describe, expect, it } from "vitest";
import { ContextKind, Ev } from "../../dist/model/events.js";
import { check } from "../../dist/properties/check.js";
import { evaluate, readLog } from "../../dist/properties/invariants.js";
import { decodeToken } from "../../dist/properties/token.js";
import { runInline } from "../../dist/workers/inline.js";
import { machineFor } from "../../dist/workers/setup.js";
import { expectVerdict, RUNS, SEEDS } from "../helpers/verdicts.js";

describe("mce-path with local delivery", () => {
  const local = { mceDelivery: "local" as const };

  it("no-mask: the #MC handler runs the half-written site (P1); the rest are hazards", async () => {
    await expectVerdict("no-mask", "mce-path", { violated: ["P1"], hazards: ["P3", "P4"] }, local);
  });

  it("nmi-rendezvous: an NMI taken inside an #MC handler holding mce_logout_lock deadlocks the rendezvous (P5)", async () => {
    await expectVerdict(
      "nmi-rendezvous",
      "mce-path",
      { violated: ["P1", "P5"], hazards: ["P3", "P4"] },
      local,
    );
  });

  it("linux-optprobe: only hazards", async () => {
    await expectVerdict("linux-optprobe", "mce-path", { violated: [], hazards: ["P3", "P4"] }, local);
  });

  it("int3-restartable: an #MC handler between two old prologue instructions meets the displacement (P1, found by PCT)", async () => {
    const v = await check({
      protocol: "int3-restartable",
      scenario: "mce-path",
      hardware: local,
      strategy: "pct",
      bound: 2,
      runs: RUNS,
      seeds: SEEDS,
      seed: 1,
      properties: ["P1"],
    });
    if (v.kind !== "violated") throw new Error(`expected P1 to fail, got ${v.kind}`);
    const p1 = v.properties[0];
    expect(p1.violation?.kind).toBe("torn-fetch");
    const { config, tape } = decodeToken(p1.token as string);
    const mem = runInline(config, { tape }).mem;
    const cpu = p1.violation?.cpu as number;
    // Torn inside an #MC handler: more #MCs delivered to that CPU than returned from.
    const log = readLog(mem);
    const mine = (kind: Ev) => log.filter((r) => r.cpu === cpu && r.kind === kind);
    const returned = mine(Ev.Iret).filter((r) => r.a === ContextKind.Mce).length;
    expect(mine(Ev.McDeliver).length).toBeGreaterThan(returned);
    expect(evaluate(machineFor(config), mem, "P1")).toEqual([p1.violation]);
  });
});
