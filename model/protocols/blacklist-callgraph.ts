// Seed option 1, computed: refuse any function reachable through direct calls and jumps from the NMI
// and #MC entry points, found by decoding the image (an ELF scenario's whole file) with iced-x86,
// indirect sites of unknown target followed to every address-taken function; the refusal names the
// call path, and says when it is an over-approximation. What cannot be bounded is refused as unknown.
import type { Protocol } from "../types.js";
import { siteInFunction } from "./blacklist-annotated.js";
import { unmaskedPatch } from "./no-mask.js";
import { keepWords, protocolWords } from "./words.js";
import { allocRendezvous, type RendezvousWords, slave } from "./xen-rendezvous.js";

export const blacklistCallgraph: Protocol = {
  name: "blacklist-callgraph",
  summary: "refuse functions reachable from the NMI/#MC entry points (call graph by decoding)",
  origin: "seed (a) 1), 'MCE ... touches normal event channel code'",
  os: "xen",
  expected: {
    "nmi-path": { refused: true },
    "mce-path": { refused: true },
    normal: { violated: [] },
    "entry-pad": { refused: true },
  },
  setup(spec, table) {
    keepWords(spec, allocRendezvous(table));
    // The call graph reaches functions: a site at `fn+4` is judged by the function that contains it.
    // A payload is refused when any of its sites may be reachable. An indirect call or jump whose
    // target is not given is followed to every address-taken function: a blacklist that ignored it
    // would let a handler reach a patched function (Xen's do_machine_check calls `*mce_callbacks`).
    // An ELF scenario's image places only some of the file's functions, so the graph is the whole
    // file's (Scenario.reachability): what an indirect call reaches need not be placed.
    const roots = spec.scenario.eventRoots;
    const graph = spec.scenario.reachability?.(roots) ?? spec.image.callGraphOverApproximated(roots);
    for (const site of spec.sites) {
      const path = graph.paths.get(site.function);
      if (path) return { reason: reachable(siteInFunction(site), path) };
    }
    if (graph.unknown.length > 0)
      return {
        reason: `reachability unknown: ${graph.unknown.join("; ")}: so ${spec.sites.map(siteInFunction).join(", ")} may be reachable from an event handler`,
      };
    return undefined;
  },
  *master(ctx) {
    yield* unmaskedPatch(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
  *poll(ctx) {
    yield* slave(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
};

/**
 * The refusal of a site whose function `path` reaches: an over-approximation, saying so, when the path
 * goes through an indirect site of unknown target.
 */
function reachable(site: string, path: readonly string[]): string {
  const through = path.flatMap((step) => {
    const m = /^\[indirect (call|jump) at (\S+) -> /.exec(step);
    return m ? [`the indirect ${m[1]} at ${m[2]}`] : [];
  });
  if (through.length === 0) return `${site} is reachable from an event handler: ${path.join(" -> ")}`;
  return (
    `${site} may be reachable from an event handler: ${path.join(" -> ")} (an over-approximation through ` +
    `${through.join(" and ")}, whose targets are unknown: each is taken to call any address-taken function)`
  );
}
