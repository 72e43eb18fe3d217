// The code image every built-in scenario runs: a small hypervisor's NMI, #MC and normal paths, with
// real prologues (push rbp; mov rbp,rsp; sub rsp,16), so that a 5-byte patch site spans several old
// instructions as in Xen livepatch, and one function that starts with a 5-byte NOP pad (as Linux's
// __fentry__ pads and text_poke sites). Payload functions carry their own symbols (seed item g).
//
// The machine-check code follows Xen's real path (xen/arch/x86/cpu/mcheck): the #MC handler
// (mcheck_cmn_handler, model/os/common.ts) logs synchronously through mcheck_mca_logout (which
// reserves a telemetry entry, mctelem_reserve) and mctelem_defer, and leaves the rest to
// MACHINE_CHECK_SOFTIRQ: mce_softirq processes the deferred telemetry and sends VIRQ_MCA to dom0
// (send_global_virq -> event-channel code). The MCA poller (mce_checkregs, run on every CPU from a
// timer in normal context) calls the same mcheck_mca_logout, then commits and sends the VIRQ itself.
import type { FunctionDesc } from "../image.js";

const prologue = ["push rbp", "mov rbp, rsp", "sub rsp, 16"];
const epilogue = ["add rsp, 16", "pop rbp", "ret"];
/** A small leaf: a frame and a result. */
const leaf = (result: number) => ["push rbp", "mov rbp, rsp", `mov eax, ${result}`, "pop rbp", "ret"];
/** A frame around calls. */
const calls = (...callees: string[]) => [
  "push rbp",
  "mov rbp, rsp",
  ...callees.map((c) => `call ${c}`),
  "pop rbp",
  "ret",
];

export const KERNEL_FUNCTIONS: FunctionDesc[] = [
  // NMI path: do_nmi's real work -> watchdog tick -> the functions it kicks.
  { name: "do_nmi_work", code: calls("nmi_watchdog_tick") },
  { name: "nmi_watchdog_tick", code: calls("watchdog_kick", "watchdog_touch") },
  { name: "watchdog_kick", code: [...prologue, "mov eax, 1", ...epilogue] },
  { name: "watchdog_touch", code: ["nop5", "push rbp", "mov rbp, rsp", "mov eax, 2", "pop rbp", "ret"] },
  // #MC path, synchronous (mce.c mcheck_mca_logout -> mctelem.c mctelem_reserve; mctelem_defer).
  { name: "mcheck_mca_logout", code: [...prologue, "call mctelem_reserve", "mov eax, 3", ...epilogue] },
  { name: "mctelem_reserve", code: leaf(5) },
  { name: "mctelem_defer", code: leaf(6) },
  // Deferred to MACHINE_CHECK_SOFTIRQ (mce.c mce_softirq): telemetry, then the VIRQ to dom0.
  { name: "mce_softirq", code: calls("mctelem_process_deferred", "send_global_virq") },
  { name: "mctelem_process_deferred", code: calls("mctelem_commit") },
  { name: "mctelem_commit", code: leaf(7) },
  // Event channels (common/event_channel.c): send_global_virq -> the port's send.
  { name: "send_global_virq", code: calls("evtchn_send") },
  { name: "evtchn_send", code: [...prologue, "mov eax, 8", ...epilogue] },
  // The MCA poller (non-fatal.c mce_checkregs): normal context, the same logout as the #MC handler.
  { name: "mce_checkregs", code: calls("mcheck_mca_logout", "mctelem_commit", "send_global_virq") },
  // Normal context: what every CPU does between checks for livepatch work.
  { name: "normal_work", code: calls("mce_checkregs", "vcpu_runstate_update") },
  { name: "vcpu_runstate_update", code: [...prologue, "mov eax, 4", ...epilogue] },
  // The payload: the new bodies (loaded beside the running code before the patch is applied).
  { name: "livepatch.watchdog_kick", payload: true, code: leaf(11) },
  { name: "livepatch.watchdog_touch", payload: true, code: leaf(12) },
  { name: "livepatch.mcheck_mca_logout", payload: true, code: leaf(13) },
  { name: "livepatch.vcpu_runstate_update", payload: true, code: leaf(14) },
];

/** Real code the NMI and #MC handlers run (roots of the call graph for blacklists). */
export const EVENT_ROOTS = ["do_nmi_work", "mcheck_mca_logout", "mctelem_defer"];

/**
 * What a developer annotates by hand as "NMI/#MC code" (seed option 1): the NMI watchdog's functions
 * and everything under xen/arch/x86/cpu/mcheck/ (mce.c, mctelem.c, non-fatal.c), which is where the
 * machine-check code lives. Not on it: event-channel code (send_global_virq, evtchn_send in
 * common/event_channel.c), which is generic; on Xen's real #MC path only the softirq reaches it.
 */
export const ANNOTATED = [
  "do_nmi_work",
  "nmi_watchdog_tick",
  "watchdog_kick",
  "watchdog_touch",
  "mcheck_mca_logout",
  "mctelem_reserve",
  "mctelem_defer",
  "mce_softirq",
  "mctelem_process_deferred",
  "mctelem_commit",
  "mce_checkregs",
];
