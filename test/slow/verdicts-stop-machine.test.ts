// SPEC §10, rows of the protocols built on Xen's stop-machine rendezvous: the real checker is run on
// each cell and must reach the declared verdict (see test/helpers/verdicts.ts).
import { describe, it } from "vitest";
import { declared, declaredRows, expectVerdict } from "../helpers/verdicts.js";

declaredRows(["xen-4.8", "no-mask", "nmi-replay"]);

describe("blacklists", () => {
  it("blacklist-annotated refuses what its hand list names, machine-check code included", async () => {
    await expectVerdict("blacklist-annotated", "nmi-path", {
      refused: /'watchdog_kick' is on the hand-written/,
    });
    await expectVerdict("blacklist-annotated", "entry-pad", {
      refused: /'watchdog_touch' is on the hand-written/,
    });
    await expectVerdict("blacklist-annotated", "mce-path", {
      refused: /'mcheck_mca_logout' is on the hand-written/,
    });
    await expectVerdict("blacklist-annotated", "normal", declared("blacklist-annotated", "normal"));
  });
  it("blacklist-callgraph refuses with the call path from the handler", async () => {
    await expectVerdict("blacklist-callgraph", "nmi-path", {
      refused: /do_nmi_work -> nmi_watchdog_tick -> watchdog_kick$/,
    });
    await expectVerdict("blacklist-callgraph", "mce-path", {
      refused: /reachable from an event handler: mcheck_mca_logout$/,
    });
    await expectVerdict("blacklist-callgraph", "entry-pad", {
      refused: /do_nmi_work -> nmi_watchdog_tick -> watchdog_touch$/,
    });
    await expectVerdict("blacklist-callgraph", "normal", { violated: [] });
  });
});
