// The seed's variant of option 2 ("to combat bitrotting"): the patcher only seeds the site with 0xCC
// and executes int3 itself; the #BP handler does every write, for the patcher's own int3 and for any
// handler that reaches the seeded site.
import { int3, load, type Routine, store, writeCode } from "../routine.js";
import type { Protocol } from "../types.js";
import { claimSite, finishSite, type HandoverWords } from "./int3-restartable.js";
import { allocRendezvous, masterAfterPatch, masterEnter, release, slave } from "./xen-rendezvous.js";

const handover = new WeakMap<object, HandoverWords>();

export const int3DebuggerApplies: Protocol = {
  name: "int3-debugger-applies",
  summary: "seed the site with int3 and execute int3: the #BP handler writes the jump",
  origin: "seed (a) 2), last paragraph",
  os: "xen",
  expected: {
    // P4 (beyond SPEC §10): a handler that trapped on the 0xCC finds the handover disarmed, because
    // the patcher finished and disarmed it meanwhile: the int3 is unclaimed and fatal. As for
    // int3-restartable, random and PCT search need more runs than the default budget on nmi-path and
    // mce-path, so those example tapes stay declared.
    "nmi-path": { violated: ["P1", "P3", "P4"], examples: ["_23.33._10.1._22.1._7.1"] },
    "mce-path": { violated: ["P1", "P3", "P4"], examples: ["_45.33._13.1._21.1.0.18"] },
    normal: { violated: [] },
    "entry-pad": { violated: ["P1", "P3", "P4"] },
  },
  setup(spec, table) {
    handover.set(spec, { ...allocRendezvous(table), armed: table.alloc("livepatch_handover.armed") });
    return undefined;
  },
  *master(ctx) {
    const w = handover.get(ctx.spec) as HandoverWords;
    yield* masterEnter(ctx, w);
    yield store(w.armed, 1);
    yield writeCode(ctx.spec.sites[0].address, [0xcc]);
    yield int3(); // arch_livepatch_apply "just calls 'int 3'"
    yield store(w.armed, 0);
    yield* masterAfterPatch();
    yield* release(ctx, w);
  },
  *poll(ctx) {
    yield* slave(ctx, handover.get(ctx.spec) as HandoverWords);
  },
  *bpHandler(ctx): Routine<number> {
    const w = handover.get(ctx.spec) as HandoverWords;
    if (ctx.frame.fromRealCode) return yield* claimSite(ctx, w);
    // The patcher's own int3: apply the jump if the handover is still armed.
    if ((yield load(w.armed)) === 0) return 0;
    yield* finishSite(ctx);
    return 1;
  },
};
