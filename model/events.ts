// Kinds of event-log records. A record is (step, cpu, kind, addr, a, b, c, d); the meaning of a..d
// is given per kind. Both engines write identical records.
export enum Ev {
  /** A byte fetched for an instruction: addr, a=value, b=writer CPU (-1 = image), c=write seq. */
  Fetch = 1,
  /** An instruction executed: addr, a=length, b=mnemonic (iced-x86), c=context kind. */
  Exec = 2,
  /** A byte written to code: addr, a=value, b=write seq, c=store width. */
  CodeWrite = 3,
  /** An NMI arrives at a CPU: a=source (EventSource), b=1 if it was coalesced into a pending one. */
  NmiArrive = 4,
  /** An NMI is delivered (handler entered): a=IST stack, b=1 if nested under a live NMI frame. */
  NmiDeliver = 5,
  /** A machine check arrives: a=1 if broadcast to every CPU, b=the CPU that saw it. */
  McArrive = 6,
  McDeliver = 7,
  /** #BP raised: addr=address of the int3 (-1 for a routine's own int3). */
  BpDeliver = 8,
  /** An IPI arrives: a=vector. */
  IpiArrive = 9,
  IrqDeliver = 10,
  /** IRET: a=kind of context popped, b=1 if it cleared NMI blocking, c=1 if an NMI frame stays live. */
  Iret = 11,
  /** A serializing event: a=how (0 cpuid, 1 serialize, 2 iret-to-self, 3 instruction). */
  Serialize = 12,
  /** A data-word store: addr=word, a=value. */
  Store = 13,
  /** A routine mark (model/routine Mark): a=mark, b=value. */
  Mark = 14,
  /** An event delivered onto an IST stack that holds a live frame (P3): a=IST, b=kind of the IRET that unblocked NMIs. */
  IstClobber = 15,
  /** The run crashed: a=CrashKind, addr=where, b..d = details (see CrashKind). */
  Crash = 16,
  Cli = 17,
  Sti = 18,
  /** The run ended: a=RunStatus. */
  End = 19,
  /** A Linux nested NMI turned into a repeat of the outer handler. */
  NmiNested = 20,
  /** mcip cleared by the #MC handler. */
  McipClear = 21,
  /** Real code loaded an indirect branch's target: addr=data word, a=value, b=address of the branch. */
  Load = 22,
}

export enum EventSource {
  External = 0, // from the run's event budget (the world)
  Ipi = 1, // sent by a routine (NMI IPI, self-NMI)
}

export enum CrashKind {
  Torn = 1, // P1: an instruction at a patch site that is neither old nor new (b=length, c..d = bytes 0-7)
  InvalidOpcode = 2, // P4: #UD (H11)
  Shutdown = 3, // P4: #MC while mcip (H5)
  UnhandledBp = 4, // P4: an int3 nobody claimed
  OutOfCode = 5, // P4: RIP left the image
  BadReturn = 6, // P4: ret/iret popped a value that is not a code address (b=value, c=stack slot address)
  StackFault = 7, // P4: RSP left the CPU's stacks (b=RSP)
}

export enum ContextKind {
  Base = 0,
  Nmi = 1,
  Mce = 2,
  Bp = 3,
  Irq = 4,
}

export const CONTEXT_NAMES = ["base", "NMI", "#MC", "#BP", "IRQ"];
