// Seed option 2: restartable patching. The master seeds the site with int3 (0xCC), writes the
// displacement bytes 1..4, then replaces the 0xCC with 0xE9 in one single-byte write. NMIs are not
// masked: an NMI or #MC handler that reaches the seeded site traps, and the #BP handler, seeing
// RIP-1 is the armed site, writes the trampoline itself and returns to the site to run it. A handler
// that finds the handover already disarmed re-checks the byte it trapped on: the patcher has replaced
// the 0xCC meanwhile, so it backs up to the site and runs the jump (as Linux kprobes does).
import { load, Mark, mark, memcpyCode, type Routine, readCode, store, writeCode } from "../routine.js";
import type { Protocol, RoutineContext, Site } from "../types.js";
import { keepWords, protocolWords } from "./words.js";
import {
  allocRendezvous,
  masterAfterPatch,
  masterEnter,
  type RendezvousWords,
  release,
  slave,
} from "./xen-rendezvous.js";

export interface HandoverWords extends RendezvousWords {
  /**
   * The livepatch -> debugger handover structure of the seed: the number of the site being seeded
   * (its index in the payload + 1, so 1 for a single site), 0 when none is.
   */
  armed: number;
}

/** Displacement first, then the opcode over the 0xCC ("CC 00 23 00 10 - then a single write"). */
export function* finishSite(ctx: RoutineContext, site: Site = ctx.spec.sites[0]): Routine {
  yield* memcpyCode(site.address + 1, site.newBytes.slice(1));
  yield writeCode(site.address, [site.newBytes[0]]);
}

/**
 * The #BP handler extension: claim an int3 at the armed site, finish the jump, restart at the site.
 * Without `recheck` (the naive handler) an int3 at the site is given up once the handover is
 * disarmed; with it, the handler then looks at the byte it trapped on, as Linux's kprobe_int3_handler
 * does (arch/x86/kernel/kprobes/core.c: "The breakpoint instruction was removed right after we hit
 * it ... Back up over the (now missing) int3 and run the original instruction").
 */
export function* claimSite(ctx: RoutineContext, w: HandoverWords, recheck: boolean): Routine<number> {
  if (!ctx.frame.fromRealCode) return 0;
  const at = ctx.frame.rip - 1;
  const index = ctx.spec.sites.findIndex((s) => s.address === at);
  if (index >= 0 && (yield load(w.armed)) === index + 1) {
    const site = ctx.spec.sites[index];
    yield mark(Mark.BpSite, site.address);
    yield* finishSite(ctx, site);
    ctx.frame.rip = site.address; // return to the site, which now holds the jump
    return 1;
  }
  if (!recheck) return 0;
  // kprobe_int3_handler: `else if (*addr != INT3_INSN_OPCODE) { regs->ip = (unsigned long)addr; return 1; }`
  if ((yield readCode(at)) === 0xcc) return 0;
  yield mark(Mark.Int3Removed, at);
  ctx.frame.rip = at;
  return 1;
}

/** Seed option 2's patcher and #BP handler; `recheck` says whether the handler re-checks the byte. */
export function restartableProtocol(
  p: Pick<Protocol, "name" | "summary" | "origin" | "expected">,
  recheck: boolean,
): Protocol {
  return {
    ...p,
    os: "xen",
    setup(spec, table) {
      keepWords(spec, { ...allocRendezvous(table), armed: table.alloc("livepatch_handover.armed") });
      return undefined;
    },
    *master(ctx) {
      const w = protocolWords<HandoverWords>(ctx.spec);
      yield* masterEnter(ctx, w);
      // Each site of the payload in its order: seed it, hand it over, finish it.
      for (const [index, site] of ctx.spec.sites.entries()) {
        yield store(w.armed, index + 1);
        yield writeCode(site.address, [0xcc]);
        yield* finishSite(ctx, site);
      }
      yield store(w.armed, 0);
      yield* masterAfterPatch();
      yield* release(ctx, w);
    },
    *poll(ctx) {
      yield* slave(ctx, protocolWords<HandoverWords>(ctx.spec));
    },
    *bpHandler(ctx) {
      return yield* claimSite(ctx, protocolWords<HandoverWords>(ctx.spec), recheck);
    },
  };
}

export const int3Restartable: Protocol = restartableProtocol(
  {
    name: "int3-restartable",
    summary:
      "seed the site with int3, write the displacement, then E9 over the CC; #BP finishes the job, or backs up once the int3 is gone",
    origin: "seed (a) 2); re-check as Linux kprobe_int3_handler",
    expected: {
      "nmi-path": { violated: ["P1", "P3"] },
      // No P1 (SPEC §10 said P1): a broadcast #MC stops the patcher too, and the handlers meet in
      // mce_trap_bar after they have run the site; the patcher's own #MC handler finds the 0xCC
      // (always written first) and finishes the jump. With local delivery P1 is back
      // (test/slow/verdicts-mce). P3 is the protocol's: an #MC handler that interrupted an NMI handler
      // traps on the 0xCC, and the #BP handler's IRET lets a nested NMI in.
      "mce-path": { violated: ["P3"], hazards: ["P4"] },
      normal: { violated: [] },
      // P1 needs a few precise preemptions: the portfolio's PCT seeds find it, uniform random tapes do not.
      "entry-pad": { violated: ["P1", "P3"] },
    },
  },
  true,
);
