// SPEC §10, rows of the int3-based and NMI-context protocols: the real checker is run on each cell and
// must reach the declared verdict (see test/helpers/verdicts.ts).
import { describe, it } from "vitest";
import { declaredRows, expectVerdict } from "./helpers/verdicts.js";

declaredRows(["int3-restartable", "int3-debugger-applies", "nmi-rendezvous", "linux-text-poke"]);

describe("fetch models", () => {
  it("linux-text-poke holds on entry-pad also when fetches may be stale (H10)", async () => {
    await expectVerdict("linux-text-poke", "entry-pad", { violated: [] }, { fetch: "stale" });
  });
  it("with atomic fetch, the int3 protocols keep P1 on entry-pad no more (P3 and P4 remain)", async () => {
    // SPEC §10: the seed's option 2 tears the one-instruction site only because fetch is not atomic.
    await expectVerdict(
      "int3-restartable",
      "entry-pad",
      { violated: ["P3", "P4"] },
      { fetch: "atomic" },
      "#BP",
    );
    await expectVerdict(
      "int3-debugger-applies",
      "entry-pad",
      { violated: ["P3", "P4"] },
      { fetch: "atomic" },
      "#BP",
    );
  });
});
