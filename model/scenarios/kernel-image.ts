// The code image every built-in scenario runs: a small hypervisor's NMI, #MC and normal paths, with
// real prologues (push rbp; mov rbp,rsp; sub rsp,16), so that a 5-byte patch site spans several old
// instructions as in Xen livepatch, and one function that starts with a 5-byte NOP pad (as Linux's
// __fentry__ pads and text_poke sites). Payload functions carry their own symbols (seed item g).
import type { FunctionDesc } from "../image.js";

const prologue = ["push rbp", "mov rbp, rsp", "sub rsp, 16"];
const epilogue = ["add rsp, 16", "pop rbp", "ret"];

export const KERNEL_FUNCTIONS: FunctionDesc[] = [
  // NMI path: do_nmi's real work -> watchdog tick -> the functions it kicks.
  { name: "do_nmi_work", code: ["push rbp", "mov rbp, rsp", "call nmi_watchdog_tick", "pop rbp", "ret"] },
  {
    name: "nmi_watchdog_tick",
    code: ["push rbp", "mov rbp, rsp", "call watchdog_kick", "call watchdog_touch", "pop rbp", "ret"],
  },
  { name: "watchdog_kick", code: [...prologue, "mov eax, 1", ...epilogue] },
  { name: "watchdog_touch", code: ["nop5", "push rbp", "mov rbp, rsp", "mov eax, 2", "pop rbp", "ret"] },
  // #MC path: the handler sends an event channel to dom0, so it reaches normal event-channel code.
  { name: "do_machine_check", code: ["push rbp", "mov rbp, rsp", "call mce_send_event", "pop rbp", "ret"] },
  { name: "mce_send_event", code: ["push rbp", "mov rbp, rsp", "call evtchn_send", "pop rbp", "ret"] },
  { name: "evtchn_send", code: [...prologue, "mov eax, 3", ...epilogue] },
  // Normal context: what every CPU does between checks for livepatch work.
  {
    name: "normal_work",
    code: ["push rbp", "mov rbp, rsp", "call evtchn_send", "call vcpu_runstate_update", "pop rbp", "ret"],
  },
  { name: "vcpu_runstate_update", code: [...prologue, "mov eax, 4", ...epilogue] },
  // The payload: the new bodies (loaded beside the running code before the patch is applied).
  {
    name: "livepatch.watchdog_kick",
    payload: true,
    code: ["push rbp", "mov rbp, rsp", "mov eax, 11", "pop rbp", "ret"],
  },
  {
    name: "livepatch.watchdog_touch",
    payload: true,
    code: ["push rbp", "mov rbp, rsp", "mov eax, 12", "pop rbp", "ret"],
  },
  {
    name: "livepatch.evtchn_send",
    payload: true,
    code: ["push rbp", "mov rbp, rsp", "mov eax, 13", "pop rbp", "ret"],
  },
  {
    name: "livepatch.vcpu_runstate_update",
    payload: true,
    code: ["push rbp", "mov rbp, rsp", "mov eax, 14", "pop rbp", "ret"],
  },
];

/** Roots of NMI and #MC handling in this image. */
export const EVENT_ROOTS = ["do_nmi_work", "do_machine_check"];

/** What a developer annotates by hand as "NMI/#MC code" (seed option 1): the handlers' own functions. */
export const ANNOTATED = [
  "do_nmi_work",
  "nmi_watchdog_tick",
  "watchdog_kick",
  "watchdog_touch",
  "do_machine_check",
  "mce_send_event",
];
