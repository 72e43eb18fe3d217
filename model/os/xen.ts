// Xen x86-64 entry: NMI and #MC on IST stacks (xen/include/asm-x86/processor.h: IST_NMI=2, IST_MCE=3
// in 4.8), #BP through an interrupt gate without IST (traps.c set_swint_gate), and no nested-NMI
// guard: an IRET inside the NMI handler lets a second NMI onto the live NMI stack. Exception entry
// (entry.S handle_exception) re-enables IRQs when the interrupted code had them on, and do_int3 in
// hypervisor context returns past an int3 nobody claims ("Hit embedded breakpoint").
import type { OsModel } from "../types.js";
import { bpEntry, irqEntry, mceEntry, nmiEntry } from "./common.js";

export const xen: OsModel = {
  name: "xen",
  unclaimedInt3Resumes: true,
  exceptionEntryEnablesIrqs: true,
  bpClearsIf: true,
  fred: false,
  nestedNmiGuard: false,
  istNmi: 2,
  istMce: 3,
  nmiHandler: nmiEntry,
  mceHandler: mceEntry,
  bpHandler: bpEntry,
  irqHandler: irqEntry,
};
