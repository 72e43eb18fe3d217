// Seed option 1, by hand: a list of NMI/#MC functions that must never be patched, written by the
// developer. Patches outside the list go ahead unmasked. The list misses what the handlers reach
// indirectly (the #MC handler's event-channel send).
import type { Protocol, Site } from "../types.js";
import { unmaskedPatch } from "./no-mask.js";
import { keepWords, protocolWords } from "./words.js";
import { allocRendezvous, type RendezvousWords, slave } from "./xen-rendezvous.js";

/** A site as a refusal names it: `'fn'`, or `'fn+4' (in 'fn')` for a site at an offset. */
export function siteInFunction(site: Site): string {
  return site.target === site.function ? `'${site.target}'` : `'${site.target}' (in '${site.function}')`;
}

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
    keepWords(spec, allocRendezvous(table));
    // The list names functions: a site at `fn+4` is judged by the function that contains it. A
    // payload is refused when any of its sites is listed.
    const site = spec.sites.find((s) => spec.scenario.annotatedBlacklist.includes(s.function));
    if (site) return { reason: `${siteInFunction(site)} is on the hand-written NMI/#MC blacklist` };
    return undefined;
  },
  *master(ctx) {
    yield* unmaskedPatch(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
  *poll(ctx) {
    yield* slave(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
};
