// The patch's checks, run in CI with `npm test`. Each is a vitest test that fails with the shrunk
// counterexample (a per-CPU timeline and the instructions fetched at the patch site) and its replay
// token: `npx livepatch-check replay TOKEN --module patch.js`. Given the module, a check runs in a
// worker thread that loads it, under the watchdog (a routine that never yields is stopped and named).
import type { Verdict } from "livepatch-check";
import { assertProtocol, checkProtocol } from "livepatch-check/vitest";
import { expect, test } from "vitest";
import { mceHandlerCall, nmiHookCall, serialized } from "./patch.js";

const module = new URL("./patch.js", import.meta.url);
const runs = 300;

// Our protocol holds on our patch.
checkProtocol(test, { protocol: serialized, scenario: mceHandlerCall, runs, module });

// Xen 4.8's NMI mask loses NMIs here too: a known failure, pinned.
checkProtocol(test, {
  protocol: "xen-4.8",
  scenario: mceHandlerCall,
  expected: { violated: ["P2"] },
  runs,
  module,
});

// The call graph from the NMI handler reaches hook_b: blacklist-callgraph refuses a site inside it.
test("blacklist-callgraph refuses hook_b+4", async () => {
  const verdict: Verdict = await assertProtocol({
    protocol: "blacklist-callgraph",
    scenario: nmiHookCall,
    expected: { refused: true },
  });
  expect(verdict.kind === "refused" && verdict.reason).toBe(
    "'hook_b+4' (in 'hook_b') is reachable from an event handler: hook_b",
  );
});
