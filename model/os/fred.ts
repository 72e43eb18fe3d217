// FRED (Flexible Return and Event Delivery, Intel FRED spec rev. 7 §6): events use stack levels, not
// IST, and ERETS unblocks NMIs only when it returns from the NMI itself, so an IRET-equivalent ending a
// #BP inside an NMI handler leaves NMIs blocked.
import type { OsModel } from "../types.js";
import { bpEntry, irqEntry, mceEntry, nmiEntry } from "./common.js";

export const fred: OsModel = {
  name: "fred",
  unclaimedInt3Resumes: false,
  exceptionEntryEnablesIrqs: false,
  bpClearsIf: true,
  fred: true,
  nestedNmiGuard: false,
  istNmi: -1,
  istMce: -1,
  nmiHandler: nmiEntry,
  mceHandler: mceEntry,
  bpHandler: bpEntry,
  irqHandler: irqEntry,
};
