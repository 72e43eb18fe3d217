// Scenarios of payloads of two sites for Linux's protocols (test/multi-site-linux.test.ts and
// test/slow/verdicts-multi-site-linux.test.ts): the built-in image with two more padded functions.
import { defineScenario } from "../../dist/api/index.js";
import type { TextPokeWords } from "../../dist/model/protocols/linux-text-poke.js";
import { protocolWords } from "../../dist/model/protocols/words.js";
import {
  call,
  eq,
  ge,
  Mark,
  mark,
  type Routine,
  sendNmi,
  store,
  waitUntil,
} from "../../dist/model/routine.js";
import { registerScenario } from "../../dist/model/scenarios/index.js";
import { EVENT_ROOTS, KERNEL_FUNCTIONS } from "../../dist/model/scenarios/kernel-image.js";
import type { RoutineContext, Scenario } from "../../dist/model/types.js";

// The built-in image with two more functions that start with a 5-byte NOP pad, laid out first (below
// watchdog_touch, the NMI path's padded function): one called from normal context, one nobody calls
// (only the P6 probe, after the patch).
const FUNCTIONS = [
  {
    name: "vcpu_runstate_reset",
    code: ["nop5", "push rbp", "mov rbp, rsp", "mov eax, 10", "pop rbp", "ret"],
  },
  {
    name: "vcpu_runstate_account",
    code: ["nop5", "push rbp", "mov rbp, rsp", "mov eax, 9", "pop rbp", "ret"],
  },
  ...KERNEL_FUNCTIONS.map((f) =>
    f.name === "normal_work"
      ? {
          name: "normal_work",
          code: [
            "push rbp",
            "mov rbp, rsp",
            "call mce_checkregs",
            "call vcpu_runstate_account",
            "pop rbp",
            "ret",
          ],
        }
      : f,
  ),
  { name: "livepatch.vcpu_runstate_account", payload: true, code: ["mov eax, 19", "ret"] },
  { name: "livepatch.vcpu_runstate_reset", payload: true, code: ["mov eax, 20", "ret"] },
];

const ACCOUNT = { target: "vcpu_runstate_account", payload: "livepatch.vcpu_runstate_account" };
const TOUCH = { target: "watchdog_touch", payload: "livepatch.watchdog_touch" };

function padsScenario(name: string, summary: string, patches: Array<typeof ACCOUNT>): Scenario {
  return defineScenario({
    name,
    summary,
    image: { functions: FUNCTIONS },
    patches,
    workload: "normal_work",
    nmiService: "do_nmi_work",
    eventRoots: EVENT_ROOTS,
  });
}

// Both sites are one instruction (the pad); the second is on the NMI path.
export const twoPads = padsScenario(
  "two-pads",
  "vcpu_runstate_account (normal context), then watchdog_touch (NMI path), both 5-byte NOP pads",
  [ACCOUNT, TOUCH],
);
// A site no CPU runs while the patch is applied, then the NMI path's: only the second can tear.
export const idleThenNmi = padsScenario(
  "idle-pad-then-nmi-pad",
  "vcpu_runstate_reset (not called until the patch is applied), then watchdog_touch (NMI path)",
  [{ target: "vcpu_runstate_reset", payload: "livepatch.vcpu_runstate_reset" }, TOUCH],
);
// Two functions with real prologues, the first only in normal context, the second on the NMI path: the
// jump replaces three old instructions at each.
export const twoPrologues = padsScenario(
  "two-prologues",
  "vcpu_runstate_update (normal context), then watchdog_kick (NMI path), each a 3-instruction prologue",
  [
    { target: "vcpu_runstate_update", payload: "livepatch.vcpu_runstate_update" },
    { target: "watchdog_kick", payload: "livepatch.watchdog_kick" },
  ],
);
// The same sites in the other order: the second lies below the first.
export const twoPadsDescending = padsScenario(
  "two-pads-descending",
  "watchdog_touch, then vcpu_runstate_account, which lies below it",
  [TOUCH, ACCOUNT],
);

/**
 * While int3 is on every site of the last batch (its first sync has begun: each batch before it took
 * three), CPU 1 sends itself an NMI, whose handler runs watchdog_touch, and CPU 2 calls
 * vcpu_runstate_account.
 */
function* trapInLastBatch(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  const { common } = spec;
  const w = protocolWords<TextPokeWords>(spec);
  if (ctx.cpu === 0) {
    yield mark(Mark.PatchBegin);
    yield* spec.protocol.master(ctx);
    yield mark(Mark.PatchEnd);
    yield store(common.patchDone, 1);
    // The P6 probe, as the default program does: a call of each patched function
    for (const [i, site] of spec.sites.entries()) {
      yield mark(Mark.ProbeBegin, i);
      yield call(spec.image.symbol(site.function).address);
      yield mark(Mark.ProbeEnd, i);
    }
    return;
  }
  yield waitUntil(ge(w.syncRound, 1 + 3 * (w.batches.length - 1)));
  if (ctx.cpu === 1) yield sendNmi("self");
  if (ctx.cpu === 2) yield call(spec.image.symbol("vcpu_runstate_account").address);
  yield waitUntil(eq(common.patchDone, 1));
}
export const trapped: Scenario = {
  ...padsScenario("two-pads-trapped", "two-pads, with a trap at each site while both hold int3", [
    ACCOUNT,
    TOUCH,
  ]),
  program: trapInLastBatch,
};
export const trappedDescending: Scenario = {
  ...padsScenario(
    "two-pads-descending-trapped",
    "two-pads-descending, with a trap at vcpu_runstate_account while the second batch holds int3",
    [TOUCH, ACCOUNT],
  ),
  program: trapInLastBatch,
};

/** Registers the scenarios above (once; a second call finds them registered). */
export function registerLinuxSiteScenarios(): void {
  for (const s of [twoPads, twoPadsDescending, twoPrologues, idleThenNmi, trapped, trappedDescending])
    registerScenario(s);
}
