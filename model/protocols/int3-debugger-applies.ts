// The seed's variant of option 2 ("to combat bitrotting"): the patcher only seeds the site with 0xCC
// and executes int3 itself; the #BP handler does every write, for the patcher's own int3 and for any
// handler that reaches the seeded site. The handler re-checks the byte it trapped on, as
// int3-restartable's does.
import { int3, load, type Routine, store, writeCode } from "../routine.js";
import type { Protocol } from "../types.js";
import { claimSite, finishSite, type HandoverWords } from "./int3-restartable.js";
import { keepWords, protocolWords } from "./words.js";
import { allocRendezvous, masterAfterPatch, masterEnter, release, slave } from "./xen-rendezvous.js";

export const int3DebuggerApplies: Protocol = {
  name: "int3-debugger-applies",
  summary: "seed the site with int3 and execute int3: the #BP handler writes the jump (with the re-check)",
  origin: "seed (a) 2), last paragraph",
  os: "xen",
  expected: {
    "nmi-path": { violated: ["P1", "P3"] },
    // P3 is the protocol's here: an #MC handler reaches the seeded site, and the #BP handler's IRET
    // inside an NMI handler that the #MC interrupted lets a nested NMI in.
    "mce-path": { violated: ["P3"], hazards: ["P4"] },
    normal: { violated: [] },
    // P1 needs a few precise preemptions: the portfolio's PCT seeds find it, uniform random tapes do not.
    "entry-pad": { violated: ["P1", "P3"] },
  },
  setup(spec, table) {
    keepWords(spec, { ...allocRendezvous(table), armed: table.alloc("livepatch_handover.armed") });
    return undefined;
  },
  *master(ctx) {
    const w = protocolWords<HandoverWords>(ctx.spec);
    yield* masterEnter(ctx, w);
    // Each site of the payload in its order: seed it, then hand it to the #BP handler.
    for (const [index, site] of ctx.spec.sites.entries()) {
      yield store(w.armed, index + 1);
      yield writeCode(site.address, [0xcc]);
      yield int3(); // arch_livepatch_apply "just calls 'int 3'"
    }
    yield store(w.armed, 0);
    yield* masterAfterPatch();
    yield* release(ctx, w);
  },
  *poll(ctx) {
    yield* slave(ctx, protocolWords<HandoverWords>(ctx.spec));
  },
  *bpHandler(ctx): Routine<number> {
    const w = protocolWords<HandoverWords>(ctx.spec);
    if (ctx.frame.fromRealCode) return yield* claimSite(ctx, w, true);
    // The patcher's own int3: apply the jump of the site the handover names, if it is still armed.
    const armed = yield load(w.armed);
    if (armed === 0) return 0;
    yield* finishSite(ctx, ctx.spec.sites[armed - 1]);
    return 1;
  },
};
