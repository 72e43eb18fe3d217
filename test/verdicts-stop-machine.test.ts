// SPEC §10, rows of the protocols built on Xen's stop-machine rendezvous: the real checker is run on
// each cell and must reach the declared verdict (see test/helpers/verdicts.ts).
import { describe, it } from "vitest";
import { declared, declaredRows, expectVerdict } from "./helpers/verdicts.js";

declaredRows(["xen-4.8", "no-mask", "nmi-replay"]);

describe("blacklists", () => {
  it("blacklist-annotated refuses what its hand list names", async () => {
    await expectVerdict("blacklist-annotated", "nmi-path", {
      refused: /'watchdog_kick' is on the hand-written/,
    });
    await expectVerdict("blacklist-annotated", "entry-pad", {
      refused: /'watchdog_touch' is on the hand-written/,
    });
  });
  it("blacklist-annotated misses the #MC handler's event-channel callee", async () => {
    await expectVerdict(
      "blacklist-annotated",
      "mce-path",
      declared("blacklist-annotated", "mce-path"),
      {},
      "#MC",
    );
    await expectVerdict("blacklist-annotated", "normal", declared("blacklist-annotated", "normal"));
  });
  it("blacklist-callgraph refuses with the call path from the handler", async () => {
    await expectVerdict("blacklist-callgraph", "nmi-path", {
      refused: /do_nmi_work -> nmi_watchdog_tick -> watchdog_kick$/,
    });
    await expectVerdict("blacklist-callgraph", "mce-path", {
      refused: /do_machine_check -> mce_send_event -> evtchn_send$/,
    });
    await expectVerdict("blacklist-callgraph", "entry-pad", {
      refused: /do_nmi_work -> nmi_watchdog_tick -> watchdog_touch$/,
    });
    await expectVerdict("blacklist-callgraph", "normal", { violated: [] });
  });
});
