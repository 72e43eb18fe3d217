// Sites at `symbol+offset` (seed item c): Xen 4.17 patches after a function's ENDBR64, at `fn+4`. The
// boundary check, the P6 probe (which calls the containing function) and both blacklists (which judge
// the containing function) must all take such a site.
import { describe, expect, it } from "vitest";
import { DEFAULT_HARDWARE, defineMachine } from "../dist/model/machine.js";
import { findProtocol } from "../dist/model/protocols/index.js";
import { registerScenario, SCENARIOS } from "../dist/model/scenarios/index.js";
import { KERNEL_FUNCTIONS } from "../dist/model/scenarios/kernel-image.js";
import type { Scenario } from "../dist/model/types.js";
import { check } from "../dist/properties/check.js";

/** nmi-path with watchdog_kick starting with ENDBR64 (f3 0f 1e fa), as Xen's IBT builds do. */
function endbrScenario(name: string, target: string): Scenario {
  const nmiPath = SCENARIOS.find((s) => s.name === "nmi-path") as Scenario;
  return {
    ...nmiPath,
    name,
    summary: "nmi-path, with watchdog_kick beginning with ENDBR64 and patched after it",
    functions: KERNEL_FUNCTIONS.map((f) =>
      f.name === "watchdog_kick"
        ? {
            name: f.name,
            code: [
              "db f3 0f 1e fa",
              "push rbp",
              "mov rbp, rsp",
              "sub rsp, 16",
              "mov eax, 1",
              "add rsp, 16",
              "pop rbp",
              "ret",
            ],
          }
        : f,
    ),
    patch: { target, payload: "livepatch.watchdog_kick" },
  };
}

const machine = (protocol: string, target: string) =>
  defineMachine(
    { protocol, scenario: "endbr", hardware: DEFAULT_HARDWARE },
    findProtocol(protocol),
    endbrScenario("endbr", target),
  );

describe("a site at symbol+offset", () => {
  it("is refused inside ENDBR64 (+1..+3) and accepted after it (+4)", () => {
    for (const offset of [1, 2, 3]) {
      expect(() => machine("no-mask", `watchdog_kick+${offset}`)).toThrow(
        `'watchdog_kick+${offset}' is inside an instruction of 'watchdog_kick': choose an instruction boundary (+0 +4 +5 +8`,
      );
    }
    const spec = machine("no-mask", "watchdog_kick+4");
    expect(spec.sites[0]).toMatchObject({ target: "watchdog_kick+4", function: "watchdog_kick" });
    expect(spec.sites[0].address).toBe(spec.image.symbol("watchdog_kick").address + 4);
  });

  it("is refused by both blacklists when its function is NMI-reachable", () => {
    expect(machine("blacklist-annotated", "watchdog_kick+4").refusal?.reason).toBe(
      "'watchdog_kick+4' (in 'watchdog_kick') is on the hand-written NMI/#MC blacklist",
    );
    expect(machine("blacklist-callgraph", "watchdog_kick+4").refusal?.reason).toBe(
      "'watchdog_kick+4' (in 'watchdog_kick') is reachable from an event handler: do_nmi_work -> nmi_watchdog_tick -> watchdog_kick",
    );
  });

  it("is checked: the probe calls the containing function, and the tear is found at the site", async () => {
    registerScenario(endbrScenario("endbr-nmi-path", "watchdog_kick+4"));
    const verdict = await check({
      protocol: "no-mask",
      scenario: "endbr-nmi-path",
      properties: ["P1", "P6"],
      runs: 300,
      seeds: 3,
    });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${JSON.stringify(verdict)}`);
    const [p1, p6] = verdict.properties;
    expect(p1.property).toBe("P1");
    expect(p1.violation?.kind).toBe("torn-fetch");
    expect(p1.violation?.cpu).toBeGreaterThanOrEqual(0);
    expect(p1.violation?.message).toMatch(/ at watchdog_kick\+0x[4-8]: /);
    expect(p1.token).toMatch(/^v\d+\/no-mask\/endbr-nmi-path\//);
    // The probe ran the payload through the jump at +4: the patch took.
    expect(p6).toMatchObject({ property: "P6", holds: true });
  });
});
