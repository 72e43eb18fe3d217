// What protocols share about the sites of a payload.
import type { MachineSpec } from "../types.js";

/**
 * For protocols that patch one site (Linux's text_poke_bp, an optprobe): a payload of several is an
 * input error, not a verdict.
 */
export function oneSite(spec: MachineSpec): void {
  if (spec.sites.length !== 1)
    throw new Error(
      `protocol '${spec.protocol.name}' patches one site, and scenario '${spec.scenario.name}' has ${spec.sites.length} (${spec.sites.map((s) => s.target).join(", ")})`,
    );
}
