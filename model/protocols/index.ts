// The protocols of SPEC §5, one file each, and the registry the CLI and the engines look names up in.
import type { Protocol } from "../types.js";
import { blacklistAnnotated } from "./blacklist-annotated.js";
import { blacklistCallgraph } from "./blacklist-callgraph.js";
import { int3DebuggerApplies } from "./int3-debugger-applies.js";
import { int3Restartable } from "./int3-restartable.js";
import { int3RestartableNaive } from "./int3-restartable-naive.js";
import { linuxOptprobe } from "./linux-optprobe.js";
import { linuxTextPoke } from "./linux-text-poke.js";
import { nmiRendezvous } from "./nmi-rendezvous.js";
import { nmiRendezvousAnywhere } from "./nmi-rendezvous-anywhere.js";
import { nmiReplay } from "./nmi-replay.js";
import { noMask } from "./no-mask.js";
import { xen48 } from "./xen-4.8.js";

export const PROTOCOLS: Protocol[] = [
  xen48,
  noMask,
  blacklistAnnotated,
  blacklistCallgraph,
  int3Restartable,
  int3DebuggerApplies,
  int3RestartableNaive,
  nmiReplay,
  nmiRendezvous,
  nmiRendezvousAnywhere,
  linuxTextPoke,
  linuxOptprobe,
];

/** Adds a user protocol (from a module given with --module); a name may be registered once. */
export function registerProtocol(p: Protocol): void {
  for (const field of ["name", "summary", "os", "master", "expected"] as const) {
    if (!p || p[field] === undefined)
      throw new Error(`a protocol must have '${field}'${p?.name ? ` (protocol '${p.name}')` : ""}`);
  }
  if (PROTOCOLS.some((x) => x.name === p.name)) {
    if (PROTOCOLS.includes(p)) return;
    throw new Error(`protocol '${p.name}' is already defined`);
  }
  PROTOCOLS.push(p);
}

export function findProtocol(name: string): Protocol {
  const p = PROTOCOLS.find((x) => x.name === name);
  if (!p) {
    throw new Error(
      `unknown protocol '${name}'; the built-in protocols are: ${PROTOCOLS.map((x) => x.name).join(", ")}`,
    );
  }
  return p;
}
