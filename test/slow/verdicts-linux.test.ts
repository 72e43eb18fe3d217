// SPEC §10, rows of Linux's protocols: text_poke_bp and jump-optimized kprobes. The real checker is
// run on each cell and must reach the declared verdict (test/helpers/verdicts.ts). Variants of the
// optprobe protocol with one step left out show what each step is for: the RCU Tasks grace period
// keeps out CPUs interrupted inside the old instructions, and it does not cover event handlers, which
// text_poke_bp's first sync keeps out instead.
import { beforeAll, describe, expect, it } from "vitest";
import { Ev } from "../../dist/model/events.js";
import { C } from "../../dist/model/memory.js";
import { registerProtocol } from "../../dist/model/protocols/index.js";
import { optprobeProtocol } from "../../dist/model/protocols/linux-optprobe.js";
import { Mark } from "../../dist/model/routine.js";
import { check, type PropertyResult } from "../../dist/properties/check.js";
import { readLog } from "../../dist/properties/invariants.js";
import { decodeToken } from "../../dist/properties/token.js";
import { runInline } from "../../dist/workers/inline.js";
import { declaredRows, expectVerdict, RUNS, SEEDS } from "../helpers/verdicts.js";

declaredRows(["linux-text-poke", "linux-optprobe"]);

describe("linux-text-poke", () => {
  it("refuses a site that spans several old instructions, naming them", async () => {
    for (const [scenario, target] of [
      ["nmi-path", "watchdog_kick"],
      ["mce-path", "mcheck_mca_logout"],
      ["normal", "vcpu_runstate_update"],
    ]) {
      await expectVerdict("linux-text-poke", scenario, {
        refused: new RegExp(
          `^${target}: the 5 bytes of the jump would replace 3 old instructions \\(push rbp, 1 byte; mov rbp,rsp, 3 bytes; sub rsp,10h, 4 bytes\\); text_poke_bp replaces exactly one instruction`,
        ),
      });
    }
  });
  it("holds on entry-pad also when fetches may be stale (H10)", async () => {
    await expectVerdict("linux-text-poke", "entry-pad", { violated: [] }, { fetch: "stale" });
  });
});

const noneDeclared = {
  "nmi-path": { violated: [] },
  "mce-path": { violated: [] },
  normal: { violated: [] },
  "entry-pad": { violated: [] },
};
const withoutGracePeriod = optprobeProtocol(
  {
    name: "linux-optprobe-without-grace-period",
    summary: "no synchronize_rcu_tasks()",
    expected: noneDeclared,
  },
  { gracePeriod: false, syncAfterInt3: true },
);
const withoutFirstSync = optprobeProtocol(
  {
    name: "linux-optprobe-without-first-sync",
    summary: "no sync after text_poke_bp's int3",
    expected: noneDeclared,
  },
  { gracePeriod: true, syncAfterInt3: false },
);

async function p1Of(protocol: string, scenario: string): Promise<PropertyResult> {
  const v = await check({ protocol, scenario, runs: RUNS, seeds: SEEDS, seed: 1, properties: ["P1"] });
  if (v.kind !== "violated") throw new Error(`${protocol}/${scenario}: expected P1 to fail, got ${v.kind}`);
  return v.properties[0];
}

describe("linux-optprobe: what each step is for", () => {
  beforeAll(() => {
    registerProtocol(withoutGracePeriod);
    registerProtocol(withoutFirstSync);
  });

  it("without the grace period, a CPU inside the old instructions in normal context meets the jump's tail (P1)", async () => {
    const p1 = await p1Of(withoutGracePeriod.name, "normal");
    expect(p1.violation?.kind).toBe("torn-fetch");
    const { config, tape } = decodeToken(p1.token as string);
    const mem = runInline(config, { tape }).mem;
    const cpu = p1.violation?.cpu as number;
    expect(cpu).toBeGreaterThan(0);
    expect(mem.cpuWord(cpu, C.depth)).toBe(1); // base context: no event handler involved
  });

  it("the grace period does not cover an NMI handler: without text_poke_bp's first sync, one inside the old instructions when it ends meets the tail (P1 on nmi-path)", async () => {
    const p1 = await p1Of(withoutFirstSync.name, "nmi-path");
    expect(p1.violation?.kind).toBe("torn-fetch");
    const { config, tape } = decodeToken(p1.token as string);
    const mem = runInline(config, { tape }).mem;
    const log = readLog(mem);
    const cpu = p1.violation?.cpu as number;
    expect(mem.cpuWord(cpu, C.depth)).toBeGreaterThan(1); // torn inside an event handler
    const crash = log.findIndex((r) => r.kind === Ev.Crash);
    const enteredAt = log.findLastIndex((r, i) => i < crash && r.cpu === cpu && r.kind === Ev.NmiDeliver);
    const graceEnd = log.findIndex((r) => r.kind === Ev.Mark && r.a === Mark.GracePeriodEnd);
    expect(graceEnd).toBeGreaterThan(-1);
    // The handler began before the grace period ended and was still in the old code after it.
    expect(enteredAt).toBeGreaterThan(-1);
    expect(enteredAt).toBeLessThan(graceEnd);
    expect(graceEnd).toBeLessThan(crash);
  });

  it("each variant fails only where its missing step matters", async () => {
    await expectVerdict(withoutGracePeriod.name, "nmi-path", { violated: [] });
    await expectVerdict(withoutFirstSync.name, "normal", { violated: [] });
  });
});
