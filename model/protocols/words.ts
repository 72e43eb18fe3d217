// Where a protocol keeps the data words its setup allocates: on the machine itself
// (`spec.protocolWords`), with their names, so that a variant derived from a built-in protocol
// (`{ ...int3Restartable, name: "mine", *master(ctx) { ... } }`) reads the same words as the routines
// it keeps (`protocolWords<HandoverWords>(ctx.spec).armed`).
import type { MachineSpec } from "../types.js";

/** Keeps `words` as the protocol words of `spec` (called from a protocol's setup) and returns them. */
export function keepWords<T extends object>(spec: MachineSpec, words: T): T {
  spec.protocolWords = words;
  return words;
}

/** The protocol words of `spec`, as its protocol's setup kept them. */
export function protocolWords<T extends object>(spec: MachineSpec): T {
  if (spec.protocolWords === undefined) {
    throw new Error(
      `protocol '${spec.protocol.name}' has no data words: its setup must allocate them and keep them with keepWords(spec, words)`,
    );
  }
  return spec.protocolWords as T;
}
