// The real checker on payloads of two sites for Linux's protocols (scenarios in
// test/helpers/linux-sites.ts): the declared verdicts, and a variant of linux-text-poke broken on
// purpose, whose violation is reported at the site where it happens.
import { beforeAll, describe, expect, it } from "vitest";
import { C } from "../../dist/model/memory.js";
import { registerProtocol } from "../../dist/model/protocols/index.js";
import { textPokeProtocol } from "../../dist/model/protocols/linux-text-poke.js";
import { check } from "../../dist/properties/check.js";
import { evaluate } from "../../dist/properties/invariants.js";
import { decodeToken } from "../../dist/properties/token.js";
import { runInline } from "../../dist/workers/inline.js";
import { machineFor } from "../../dist/workers/setup.js";
import { registerLinuxSiteScenarios } from "../helpers/linux-sites.js";
import { expectVerdict, RUNS, SEEDS } from "../helpers/verdicts.js";

// linux-text-poke with the sync after the int3s left out: a named variant, to show the checker reports
// a violation at the site where it happens.
const withoutFirstSync = textPokeProtocol(
  {
    name: "linux-text-poke-without-first-sync",
    summary: "text_poke_bp_batch without the sync after the int3s",
    expected: {},
  },
  { syncAfterInt3: false, syncAfterTails: true, syncAfterFirsts: true },
);

beforeAll(() => {
  registerLinuxSiteScenarios();
  registerProtocol(withoutFirstSync);
});

describe("linux-text-poke with two sites", () => {
  it("holds on both sites (the real checker)", async () => {
    await expectVerdict("linux-text-poke", "two-pads", { violated: [] });
    await expectVerdict("linux-text-poke", "two-pads-descending", { violated: [] });
  });

  it("without the sync after the int3s, tears at the second site, in an NMI handler, and the violation names that site", async () => {
    const verdict = await check({
      protocol: withoutFirstSync.name,
      scenario: "idle-pad-then-nmi-pad",
      properties: ["P1"],
      runs: RUNS,
      seeds: SEEDS,
      seed: 1,
    });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${JSON.stringify(verdict)}`);
    const v = verdict.properties[0].violation;
    expect(v?.kind).toBe("torn-fetch");
    expect(v?.cpu).toBeGreaterThan(0);
    expect(v?.message).toMatch(/ at watchdog_touch(\+0x[1-4])?: byte 0 old, /);
    // The token replays it: the CPU that tore was in its NMI handler
    const { config, tape } = decodeToken(verdict.properties[0].token as string);
    const mem = runInline(config, { tape }).mem;
    expect(evaluate(machineFor(config), mem, "P1")).toEqual([v]);
    expect(mem.cpuWord(v?.cpu as number, C.depth)).toBeGreaterThan(1);
  });
});

describe("linux-optprobe with two sites", () => {
  it("holds on both sites, and on a payload whose sites span several old instructions (the real checker)", async () => {
    await expectVerdict("linux-optprobe", "two-pads", { violated: [] });
    await expectVerdict("linux-optprobe", "two-prologues", { violated: [] });
  });
});
