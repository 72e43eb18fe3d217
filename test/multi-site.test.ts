// A payload that replaces several functions (Xen's livepatch_func array): the protocol applies the
// sites in the payload's order, P1 and P6 are judged per site, and the blacklists refuse a payload
// when any of its sites is NMI-reachable.
import { describe, expect, it } from "vitest";
import { defineProtocol, defineScenario, noMask } from "../dist/api/index.js";
import { Ev } from "../dist/model/events.js";
import { registerProtocol } from "../dist/model/protocols/index.js";
import { protocolWords } from "../dist/model/protocols/words.js";
import { masterAfterPatch, masterEnter, release } from "../dist/model/protocols/xen-rendezvous.js";
import { memcpyCode } from "../dist/model/routine.js";
import { registerScenario } from "../dist/model/scenarios/index.js";
import { EVENT_ROOTS, KERNEL_FUNCTIONS } from "../dist/model/scenarios/kernel-image.js";
import { check, resolveConfig } from "../dist/properties/check.js";
import { readLog } from "../dist/properties/invariants.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";

// First a function only normal context calls, then one the NMI handler's watchdog tick calls.
const twoSites = defineScenario({
  name: "two-sites",
  summary: "vcpu_runstate_update, then watchdog_kick (NMI path), in one payload",
  image: { functions: KERNEL_FUNCTIONS },
  patches: [
    { target: "vcpu_runstate_update", payload: "livepatch.vcpu_runstate_update" },
    { target: "watchdog_kick", payload: "livepatch.watchdog_kick" },
  ],
  workload: "normal_work",
  nmiService: "do_nmi_work",
  eventRoots: EVENT_ROOTS,
  annotatedBlacklist: ["do_nmi_work", "nmi_watchdog_tick", "watchdog_kick"],
});
registerScenario(twoSites);

// Applies the first site of the payload and forgets the second.
const firstOnly = defineProtocol({
  ...noMask,
  name: "multi-site-first-only",
  summary: "no-mask, but it writes the first site only",
  *master(ctx) {
    const w = protocolWords<{ semaphore: number; ready: number }>(ctx.spec);
    yield* masterEnter(ctx, w);
    yield* memcpyCode(ctx.spec.sites[0].address, ctx.spec.sites[0].newBytes);
    yield* masterAfterPatch();
    yield* release(ctx, w);
  },
});
registerProtocol(firstOnly);

describe("a payload of two sites", () => {
  it("is applied in the payload's order", () => {
    const config = resolveConfig("no-mask", "two-sites");
    const spec = machineFor(config);
    expect(spec.sites.map((s) => [s.target, s.function])).toEqual([
      ["vcpu_runstate_update", "vcpu_runstate_update"],
      ["watchdog_kick", "watchdog_kick"],
    ]);
    const writes = readLog(runInline(config, { tape: [] }).mem)
      .filter((r) => r.kind === Ev.CodeWrite)
      .map((r) => spec.sites.findIndex((s) => r.addr >= s.address && r.addr < s.address + 5));
    expect(writes).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  });

  it("tears at the second site, and the violation names it", async () => {
    const verdict = await check({
      protocol: "no-mask",
      scenario: "two-sites",
      properties: ["P1", "P6"],
      runs: 300,
    });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${JSON.stringify(verdict)}`);
    const [p1, p6] = verdict.properties;
    expect(p1.violation?.kind).toBe("torn-fetch");
    expect(p1.violation?.cpu).toBeGreaterThanOrEqual(0);
    expect(p1.violation?.message).toMatch(/ at watchdog_kick(\+0x[1-4])?: /);
    expect(p6.holds).toBe(true); // each probe ran its own payload
  });

  it("judges P6 per site: a protocol that forgets the second site fails on that site", async () => {
    const verdict = await check({
      protocol: "multi-site-first-only",
      scenario: "two-sites",
      properties: ["P6"],
      runs: 20,
      seeds: 1,
    });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${JSON.stringify(verdict)}`);
    expect(verdict.properties[0].violation).toMatchObject({ property: "P6", kind: "not-patched", cpu: 0 });
    expect(verdict.properties[0].violation?.message).toMatch(
      /^watchdog_kick holds 55 48 89 e5 48 at the end, not the new e9 /,
    );
  });

  it("is refused by both blacklists for its second site", async () => {
    const annotated = await check({ protocol: "blacklist-annotated", scenario: "two-sites" });
    expect(annotated).toMatchObject({
      kind: "refused",
      reason: "'watchdog_kick' is on the hand-written NMI/#MC blacklist",
    });
    const callgraph = await check({ protocol: "blacklist-callgraph", scenario: "two-sites" });
    expect(callgraph).toMatchObject({
      kind: "refused",
      reason:
        "'watchdog_kick' is reachable from an event handler: do_nmi_work -> nmi_watchdog_tick -> watchdog_kick",
    });
  });

  it("is applied by int3-restartable site by site", async () => {
    const verdict = await check({
      protocol: "int3-restartable",
      scenario: "two-sites",
      properties: ["P6"],
      runs: 50,
      seeds: 1,
    });
    expect(verdict.kind).toBe("holds");
  });

  it("is refused by linux-text-poke for its first site that is not one instruction", async () => {
    const verdict = await check({ protocol: "linux-text-poke", scenario: "two-sites" });
    expect(verdict).toMatchObject({ kind: "refused" });
    if (verdict.kind === "refused")
      expect(verdict.reason).toMatch(
        /^vcpu_runstate_update: the 5 bytes of the jump would replace 3 old instructions \(push rbp, 1 byte; /,
      );
  });

  it("may not patch one function twice", () => {
    expect(() =>
      defineScenario({
        name: "twice",
        image: { functions: KERNEL_FUNCTIONS },
        patches: [
          { target: "watchdog_kick", payload: "livepatch.watchdog_kick" },
          { target: "watchdog_kick+1", payload: "livepatch.watchdog_touch" },
        ],
        workload: "normal_work",
        nmiService: "do_nmi_work",
      }),
    ).toThrow(
      "scenario 'twice': patches[1].target 'watchdog_kick+1' is in 'watchdog_kick', which patches[0] patches already: a payload replaces each function once",
    );
  });
});
