// The mutation list of `npm run mutate` (scripts/mutations.ts) against the current sources: every
// mutation must still apply (its find text occurs exactly once), so that an edit that moves a rule's
// code shows up here, in `npm test`, rather than as an error at the next mutation run.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listProblems, mutantFiles } from "../dist/scripts/mutation-checks.js";
import { MUTATIONS, type Mutation, REQUIRED } from "../dist/scripts/mutations.js";

const root = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

describe("the mutation list", () => {
  it("is well formed and breaks every rule H1-H11, property P1-P6, real-code rule, OS entry rule, text_poke lookup, state cache and resume", () => {
    expect(listProblems(MUTATIONS, (path) => existsSync(join(root, path)))).toEqual([]);
    expect(REQUIRED).toEqual([
      ...["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8", "H9", "H10", "H11"],
      ...["P1", "P2", "P3", "P4", "P5", "P6"],
      ...["STACK", "FRAME", "IRETQ", "IF", "STI", "INDIRECT", "MCE-BROADCAST"],
      ...["XEN-INT3", "XEN-BP-STI", "MCE-BARRIER"],
      "TEXT-POKE-LOOKUP",
      "CACHE",
      "RESUME",
    ]);
  });

  it("applies to the current sources: each find text occurs exactly once", () => {
    const errors = MUTATIONS.map((m) => [m.id, mutantFiles(m, read)] as const)
      .filter(([, r]) => "error" in r)
      .map(([id, r]) => `${id}: ${"error" in r ? r.error : ""}`);
    expect(errors).toEqual([]);
  });

  it("reports a find text that is missing or ambiguous, naming the file", () => {
    const base: Mutation = {
      id: "H1-example",
      breaks: "H1",
      file: "model/cpu/delivery.ts",
      find: "text that is not in the file",
      replace: "",
      tests: ["test/litmus.test.ts"],
    };
    expect(mutantFiles(base, read)).toEqual({
      error:
        'find text not in model/cpu/delivery.ts (the source moved: update scripts/mutations.ts): "text that is not in the file"',
    });
    const twice = mutantFiles({ ...base, find: "w[o + C.if] = 0;" }, read);
    expect("error" in twice && twice.error).toMatch(
      /^find text occurs \d+ times in model\/cpu\/delivery\.ts: give it more context/,
    );
    const applied = mutantFiles(
      {
        ...base,
        file: "model/cpu/fetch.ts",
        find: "} while (!d.complete && cpu.atomicFetch);",
        replace: "}",
      },
      read,
    );
    if ("error" in applied) throw new Error(applied.error);
    expect(applied.files.get("model/cpu/fetch.ts")).not.toContain("while (!d.complete && cpu.atomicFetch)");
    expect(
      listProblems(
        [{ ...base, breaks: "X1", tests: ["test/none.test.ts", "test/slow/soundness.test.ts"] }],
        (p) => existsSync(join(root, p)),
      ),
    ).toEqual([
      "H1-example: breaks 'X1' is not a rule (H1), property (P1) or real-code rule (STACK)",
      "H1-example: the id must start with 'X1-'",
      "H1-example: test file 'test/none.test.ts' does not exist",
      "H1-example: test file 'test/slow/soundness.test.ts' is in the slow tier: name a test of the fast tier",
      ...REQUIRED.map((r) => `no mutation breaks ${r}`),
    ]);
  });
});
