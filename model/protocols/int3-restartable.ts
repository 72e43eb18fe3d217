// Seed option 2: restartable patching. The master seeds the site with int3 (0xCC), writes the
// displacement bytes 1..4, then replaces the 0xCC with 0xE9 in one single-byte write. NMIs are not
// masked: an NMI or #MC handler that reaches the seeded site traps, and the #BP handler, seeing
// RIP-1 is the armed site, writes the trampoline itself and returns to the site to run it.
import { load, Mark, mark, memcpyCode, type Routine, store, writeCode } from "../routine.js";
import type { Protocol, RoutineContext } from "../types.js";
import {
  allocRendezvous,
  masterAfterPatch,
  masterEnter,
  type RendezvousWords,
  release,
  slave,
} from "./xen-rendezvous.js";

export interface HandoverWords extends RendezvousWords {
  /** The livepatch -> debugger handover structure of the seed: 1 while the site is seeded. */
  armed: number;
}

/** Displacement first, then the opcode over the 0xCC ("CC 00 23 00 10 - then a single write"). */
export function* finishSite(ctx: RoutineContext): Routine {
  const site = ctx.spec.sites[0];
  yield* memcpyCode(site.address + 1, site.newBytes.slice(1));
  yield writeCode(site.address, [site.newBytes[0]]);
}

/** The #BP handler extension: claim an int3 at the armed site, finish the jump, restart at the site. */
export function* claimSite(ctx: RoutineContext, w: HandoverWords): Routine<number> {
  const site = ctx.spec.sites[0];
  if (!ctx.frame.fromRealCode || ctx.frame.rip - 1 !== site.address) return 0;
  if ((yield load(w.armed)) === 0) return 0;
  yield mark(Mark.BpSite, site.address);
  yield* finishSite(ctx);
  ctx.frame.rip = site.address; // return to the site, which now holds the jump
  return 1;
}

export const handover = new WeakMap<object, HandoverWords>();

export const int3Restartable: Protocol = {
  name: "int3-restartable",
  summary: "seed the site with int3, write the displacement, then E9 over the CC; #BP finishes the job",
  origin: "seed (a) 2)",
  os: "xen",
  expected: {
    // P4 (beyond SPEC §10): a handler that trapped on the 0xCC finds the handover disarmed, because
    // the patcher finished and disarmed it meanwhile: the int3 is unclaimed and fatal. It takes an NMI
    // and two preemptions in windows of a few steps; exhaustive search finds it with those 3 choices
    // (about 300,000 executions, bench/search.ts), random and PCT search in about 2,000-15,000 runs:
    // beyond the default budget, so its example tapes stay declared here. So does mce-path's P1 (an
    // #MC and a preemption, 2 choices, which the portfolio finds with some seeds only).
    "nmi-path": { violated: ["P1", "P3", "P4"], examples: ["_19.6._6.7._67.1._13.1._10.1._8.1.0.1"] },
    "mce-path": {
      violated: ["P1", "P3", "P4"],
      examples: ["_45.2._3.9.11._22.1._4.1", "_45.24._10.1._21.1._2.1"],
    },
    normal: { violated: [] },
    "entry-pad": { violated: ["P1", "P3", "P4"] },
  },
  setup(spec, table) {
    handover.set(spec, { ...allocRendezvous(table), armed: table.alloc("livepatch_handover.armed") });
    return undefined;
  },
  *master(ctx) {
    const w = handover.get(ctx.spec) as HandoverWords;
    const site = ctx.spec.sites[0];
    yield* masterEnter(ctx, w);
    yield store(w.armed, 1);
    yield writeCode(site.address, [0xcc]);
    yield* finishSite(ctx);
    yield store(w.armed, 0);
    yield* masterAfterPatch();
    yield* release(ctx, w);
  },
  *poll(ctx) {
    yield* slave(ctx, handover.get(ctx.spec) as HandoverWords);
  },
  *bpHandler(ctx) {
    return yield* claimSite(ctx, handover.get(ctx.spec) as HandoverWords);
  },
};
