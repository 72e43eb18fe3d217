// Seed option 1, by hand: a list of NMI/#MC functions that must never be patched, written by the
// developer. Patches outside the list go ahead unmasked. The list misses what the handlers reach
// indirectly (the #MC handler's event-channel send).
import type { Protocol } from "../types.js";
import { unmaskedPatch } from "./no-mask.js";
import { allocRendezvous, type RendezvousWords, slave } from "./xen-rendezvous.js";

const words = new WeakMap<object, RendezvousWords>();

export const blacklistAnnotated: Protocol = {
  name: "blacklist-annotated",
  summary: "refuse functions on a hand-written NMI/#MC list; patch the rest unmasked",
  origin: "seed (a) 1)",
  os: "xen",
  expected: {
    "nmi-path": { refused: true },
    // Refused (SPEC §10 said P1): on Xen's real #MC path the handler calls mcheck_mca_logout, which
    // is machine-check code the hand list names; the event-channel send it misses is deferred to a
    // softirq, where it is ordinary normal-context code.
    "mce-path": { refused: true },
    normal: { violated: [] },
    "entry-pad": { refused: true },
  },
  setup(spec, table) {
    words.set(spec, allocRendezvous(table));
    const target = spec.sites[0].target;
    if (spec.scenario.annotatedBlacklist.includes(target)) {
      return { reason: `'${target}' is on the hand-written NMI/#MC blacklist` };
    }
    return undefined;
  },
  *master(ctx) {
    yield* unmaskedPatch(ctx, words.get(ctx.spec) as RendezvousWords);
  },
  *poll(ctx) {
    yield* slave(ctx, words.get(ctx.spec) as RendezvousWords);
  },
};
