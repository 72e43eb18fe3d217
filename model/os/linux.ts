// Linux x86-64 entry: NMI and #MC on IST stacks (idt.c ISTG), #BP on the regular stack through an
// interrupt gate (idt.c SYSG, IF cleared), and entry_64.S's nested-NMI guard: an NMI that arrives while
// an NMI handler is live ("NMI executing") rewrites the outer frame to repeat_nmi and returns, so the
// outer handler runs again instead of its frame being overwritten. exc_int3 in kernel mode runs with
// IRQs off (irqentry_nmi_enter) and dies on an int3 nobody claims (die("int3")).
import type { OsModel } from "../types.js";
import { bpEntry, irqEntry, mceEntry, nmiEntry } from "./common.js";

export const linux: OsModel = {
  name: "linux",
  unclaimedInt3Resumes: false,
  exceptionEntryEnablesIrqs: false,
  bpClearsIf: true,
  fred: false,
  nestedNmiGuard: true,
  istNmi: 2,
  istMce: 4,
  nmiHandler: nmiEntry,
  mceHandler: mceEntry,
  bpHandler: bpEntry,
  irqHandler: irqEntry,
};
