// The built-in scenarios of SPEC §6: one image, four choices of what is patched and which events run.
import type { Scenario } from "../types.js";
import { ANNOTATED, EVENT_ROOTS, KERNEL_FUNCTIONS } from "./kernel-image.js";

const common = {
  functions: KERNEL_FUNCTIONS,
  nmiService: "do_nmi_work",
  mceService: ["mcheck_mca_logout", "mctelem_defer"],
  mceSoftirq: "mce_softirq",
  workload: "normal_work",
  eventRoots: EVENT_ROOTS,
  annotatedBlacklist: ANNOTATED,
  iterations: 2,
  nmis: 3,
};

export const SCENARIOS: Scenario[] = [
  {
    ...common,
    name: "nmi-path",
    summary: "the patched function (watchdog_kick) is called by the real NMI handler's watchdog tick",
    patch: { target: "watchdog_kick", payload: "livepatch.watchdog_kick" },
    mces: 0,
  },
  {
    ...common,
    name: "mce-path",
    summary:
      "the patched function (mcheck_mca_logout) is called synchronously by the #MC handler and by the MCA poller in normal context; up to 2 #MCs",
    patch: { target: "mcheck_mca_logout", payload: "livepatch.mcheck_mca_logout" },
    // Two, so that a second #MC while MCIP is set (shutdown) and one after MCIP is cleared but before
    // the IRET (on the live #MC IST frame) are explored: hardware hazards, marked as such.
    mces: 2,
  },
  {
    ...common,
    name: "normal",
    summary: "the patched function (vcpu_runstate_update) is called only from normal context",
    patch: { target: "vcpu_runstate_update", payload: "livepatch.vcpu_runstate_update" },
    mces: 0,
  },
  {
    ...common,
    name: "entry-pad",
    summary:
      "as nmi-path, but the patched function (watchdog_touch) starts with a 5-byte NOP pad: the site is one instruction",
    patch: { target: "watchdog_touch", payload: "livepatch.watchdog_touch" },
    mces: 0,
  },
];

/**
 * Adds a user scenario (from a module given with --module, or the public API's check); a name may be
 * registered once. The scenario is assumed valid: defineScenario (api/) checks it against its image.
 */
export function registerScenario(s: Scenario): void {
  if (!s || typeof s.name !== "string" || s.name === "") throw new Error("a scenario must have a 'name'");
  if (SCENARIOS.some((x) => x.name === s.name)) {
    if (SCENARIOS.includes(s)) return;
    throw new Error(`scenario '${s.name}' is already defined`);
  }
  SCENARIOS.push(s);
}

export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) {
    throw new Error(
      `unknown scenario '${name}'; the built-in scenarios are: ${SCENARIOS.map((x) => x.name).join(", ")}`,
    );
  }
  return s;
}
