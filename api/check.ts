// check() for a user's protocol and scenario objects (or built-in ones by name): they are registered
// under their names, which replay tokens carry, and checked on the inline engine in this thread.
import { findProtocol, PROTOCOLS, registerProtocol } from "../model/protocols/index.js";
import { findScenario, registerScenario, SCENARIOS } from "../model/scenarios/index.js";
import type { Protocol, RunConfig, Scenario } from "../model/types.js";
import { type CheckOptions, check as checkByName, type Verdict } from "../properties/check.js";
import type { PropertyId } from "../properties/invariants.js";
import { renderCounterexample } from "../report/index.js";

/** What check() takes: the options of the command's single check, with objects or names. */
export interface CheckInput extends Omit<CheckOptions, "protocol" | "scenario" | "engine"> {
  protocol: Protocol | string;
  scenario: Scenario | string;
}

/**
 * Explores the protocol on the scenario and returns the verdict: refused, holds, or violated with a
 * shrunk counterexample and a replay token for each violated property (see `report`).
 */
export async function check(input: CheckInput): Promise<Verdict> {
  const { protocol, scenario, ...options } = input;
  return checkByName({
    ...options,
    protocol: use("protocol", protocol),
    scenario: use("scenario", scenario),
  });
}

/** The counterexample report of a tape (per-CPU timeline, patch-site fetches, replay token), without colour. */
export function report(config: RunConfig, tape: readonly number[], property?: PropertyId): string {
  return renderCounterexample(config, tape, { color: false, property });
}

/** Registers an object under its name (once; another object of a registered name is an error). */
function use(kind: "protocol" | "scenario", x: Protocol | Scenario | string): string {
  if (typeof x === "string") {
    if (kind === "protocol") findProtocol(x);
    else findScenario(x);
    return x;
  }
  if (typeof x !== "object" || x === null)
    throw new Error(
      `check: '${kind}' must be a ${kind} object or the name of a built-in one, not ${String(x)}`,
    );
  const registry: readonly { name: string }[] = kind === "protocol" ? PROTOCOLS : SCENARIOS;
  const same = registry.find((r) => r.name === x.name);
  if (same && same !== x)
    throw new Error(
      `check: another ${kind} named '${x.name}' is already defined${kind === "protocol" && PROTOCOLS.indexOf(same as Protocol) < BUILT_IN_PROTOCOLS ? " (a built-in one)" : ""}: give yours its own name`,
    );
  if (kind === "protocol") registerProtocol(x as Protocol);
  else registerScenario(x as Scenario);
  return x.name;
}

const BUILT_IN_PROTOCOLS = PROTOCOLS.length;
