// The built-in scenarios of SPEC §6: one image, four choices of what is patched and which events run.
import type { Scenario } from "../types.js";
import { ANNOTATED, EVENT_ROOTS, KERNEL_FUNCTIONS } from "./kernel-image.js";

const common = {
  functions: KERNEL_FUNCTIONS,
  nmiService: "do_nmi_work",
  mceService: "do_machine_check",
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
      "the patched function (evtchn_send) is reached from the #MC handler, which sends an event channel",
    patch: { target: "evtchn_send", payload: "livepatch.evtchn_send" },
    mces: 1,
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

export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) {
    throw new Error(
      `unknown scenario '${name}'; the built-in scenarios are: ${SCENARIOS.map((x) => x.name).join(", ")}`,
    );
  }
  return s;
}
