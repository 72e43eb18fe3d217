// The properties of SPEC §7, judged on a finished run's event log and final state. A torn fetch (P1),
// #UD or shutdown (P4) ends the run as a crash, so P2, P5 and P6 are judged only on runs without one
// (nor after a second #MC onto the live #MC frame). Violations caused by a second #MC, or by an NMI
// that an #MC handler's IRET let in, are marked as hazards: the hardware's or the OS entry's, not the
// protocol's.
import { CONTEXT_NAMES, ContextKind, CrashKind, Ev, EventSource } from "../model/events.js";
import {
  H,
  LOG_RECORD_WORDS,
  type MachineMemory,
  ROUTINE_RESUME,
  ROUTINE_RETURN,
  RunStatus,
  STACK_BASE,
  UNKNOWN_VALUE,
  UNWRITTEN_SLOT,
} from "../model/memory.js";

/** What a value popped off the stack is, for a crash message. */
function describeValue(v: number): string {
  if (v === UNKNOWN_VALUE) return "a register value the model does not track";
  if (v === UNWRITTEN_SLOT) return "a slot nothing wrote";
  if (v === ROUTINE_RETURN || v === ROUTINE_RESUME) return "a routine's return marker";
  if (v >= STACK_BASE && v < 0x7000_0000) return "a stack address: a saved frame pointer";
  if ((v & ~0x2ff) === 0 && (v & 2) === 2) return "RFLAGS";
  return "not an address in the image";
}

import { Mark } from "../model/routine.js";
import { waiters } from "../model/schedule.js";
import type { MachineSpec } from "../model/types.js";
import { hex } from "../model/x86.js";

export const PROPERTIES = [
  { id: "P1", name: "atomic-patch" },
  { id: "P2", name: "nmi-replayed" },
  { id: "P3", name: "no-ist-clobber" },
  { id: "P4", name: "no-crash" },
  { id: "P5", name: "completes" },
  { id: "P6", name: "patched" },
] as const;
export type PropertyId = (typeof PROPERTIES)[number]["id"];
export const PROPERTY_IDS: PropertyId[] = PROPERTIES.map((p) => p.id);

export interface Violation {
  property: PropertyId;
  /** A short kind: torn-fetch, nmi-lost, ist-clobber(#BP), shutdown(nested #MC), deadlock, ... */
  kind: string;
  cpu: number;
  step: number;
  message: string;
  /**
   * Set when the violation is a hazard of the hardware or of the OS's entry code rather than of the
   * protocol: a second #MC (shutdown while MCIP is set, or onto the live #MC IST frame after MCIP was
   * cleared), or an NMI let onto the live NMI frame by an #MC handler's IRET (Xen has no nested-NMI
   * guard). Says what the hazard is.
   */
  hazard?: string;
}

/** The hazard of a second #MC (SDM §17.3.1.2: MCIP; one #MC IST stack per CPU). */
export const NESTED_MC = "a second machine check";
/** The hazard of an #MC inside an NMI handler on Xen: its IRET unblocks NMIs (H3), no nested-NMI guard. */
export const MC_IRET_IN_NMI = "an #MC handler's IRET inside an NMI handler";

/** Read-only view of one log record. */
export interface LogRecord {
  index: number;
  step: number;
  cpu: number;
  kind: Ev;
  addr: number;
  a: number;
  b: number;
  c: number;
  d: number;
}

export function readLog(mem: MachineMemory): LogRecord[] {
  const out: LogRecord[] = [];
  const log = mem.log;
  for (let i = 0; i < mem.header[H.logCount]; i++) {
    const o = i * LOG_RECORD_WORDS;
    out.push({
      index: i,
      step: log[o],
      cpu: log[o + 1],
      kind: log[o + 2],
      addr: log[o + 3],
      a: log[o + 4],
      b: log[o + 5],
      c: log[o + 6],
      d: log[o + 7],
    });
  }
  return out;
}

/** Evaluates every property; `only` restricts to one (the checker explores each on its own). */
export function evaluate(spec: MachineSpec, mem: MachineMemory, only?: PropertyId): Violation[] {
  const log = readLog(mem);
  const status = mem.header[H.status] as RunStatus;
  const out: Violation[] = [];
  const want = (p: PropertyId) => only === undefined || only === p;
  const sym = (a: number) => spec.image.symbolize(a);
  const crash = log.find((r) => r.kind === Ev.Crash);

  if (crash && (want("P1") || want("P4"))) {
    if (crash.a === CrashKind.Torn) {
      if (want("P1")) out.push(tornViolation(spec, log, crash));
    } else if (want("P4")) {
      const what: Record<number, [string, string]> = {
        [CrashKind.InvalidOpcode]: ["invalid-opcode", `raised #UD at ${sym(crash.addr)}`],
        [CrashKind.Shutdown]: [
          "shutdown(nested #MC)",
          `took a second machine check while MCIP was set at ${sym(crash.addr)}: shutdown`,
        ],
        [CrashKind.UnhandledBp]: [
          "unhandled-int3",
          `hit an int3 at ${sym(crash.addr)} that no handler claimed`,
        ],
        [CrashKind.OutOfCode]: [
          "out-of-code",
          `fetched at 0x${crash.addr.toString(16)}, where no code is placed (outside the image, or in a function the scenario does not reach)`,
        ],
        [CrashKind.BadReturn]: [
          "bad-return",
          `executed the return at ${sym(crash.addr)}, which popped 0x${(crash.b >>> 0).toString(16)} (${describeValue(crash.b)}) from the stack slot at 0x${(crash.c >>> 0).toString(16)}: not a return address`,
        ],
        [CrashKind.StackFault]: [
          "stack-fault",
          `moved RSP to 0x${(crash.b >>> 0).toString(16)}, off its stacks, at ${sym(crash.addr)}`,
        ],
      };
      const [kind, text] = what[crash.a] ?? ["crash", "crashed"];
      out.push({
        property: "P4",
        kind,
        cpu: crash.cpu,
        step: crash.step,
        message: `CPU ${crash.cpu} ${text}`,
        ...(crash.a === CrashKind.Shutdown ? { hazard: NESTED_MC } : {}),
      });
    }
  }
  // An #MC onto the live #MC frame destroys the outer handler's return frame: nothing after it is
  // defined, as after a crash.
  const nestedMc = log.find((r) => r.kind === Ev.IstClobber && r.c === ContextKind.Mce);
  if (want("P3")) {
    // The first clobber the protocol is answerable for and the first hazard, each on its own, so that
    // a hazard does not hide a protocol's fault (properties/check explores them apart).
    let fault = false;
    let hazard = false;
    // An NMI handler's IRET can unblock NMIs under a live NMI frame only once NMIs have nested: such
    // a clobber follows from the CPU's earlier one and takes its cause.
    const earlier = new Map<number, Violation>();
    for (const r of log) {
      if (r.kind !== Ev.IstClobber) continue;
      const first = earlier.get(r.cpu);
      const own = istClobber(r);
      const v = r.b === ContextKind.Nmi && first ? { ...own, hazard: first.hazard } : own;
      if (!v.hazard) delete v.hazard;
      if (!first) earlier.set(r.cpu, own);
      if (v.hazard ? hazard : fault) continue;
      if (v.hazard) hazard = true;
      else fault = true;
      out.push(v);
      if (fault && hazard) break;
    }
  }
  if (crash || nestedMc || status === RunStatus.Error) return out;

  if (want("P2") && status === RunStatus.Finished) {
    // Each external NMI needs a service start on its CPU after it (coalescing is fine, H2).
    const lastService = new Map<number, number>();
    for (const r of log) if (r.kind === Ev.Mark && r.a === Mark.NmiService) lastService.set(r.cpu, r.index);
    const lost = log.find(
      (r) =>
        r.kind === Ev.NmiArrive && r.a === EventSource.External && (lastService.get(r.cpu) ?? -1) < r.index,
    );
    if (lost) {
      const swallowed = log.find(
        (r) => r.index > lost.index && r.cpu === lost.cpu && r.kind === Ev.Mark && r.a === Mark.NmiSwallowed,
      );
      const how = swallowed ? ` (swallowed by the mask callback at step ${swallowed.step})` : "";
      out.push({
        property: "P2",
        kind: "nmi-lost",
        cpu: lost.cpu,
        step: lost.step,
        message: `the NMI sent to CPU ${lost.cpu} at step ${lost.step} was never serviced${how}`,
      });
    }
  }
  if (want("P5") && (status === RunStatus.Deadlock || status === RunStatus.StepBound)) {
    const why =
      status === RunStatus.Deadlock
        ? `deadlock: ${waiters(mem, (w) => spec.words.name(w)).join("; ")}`
        : `the step bound (${spec.config.hardware.stepBound}) was reached before every CPU finished`;
    out.push({
      property: "P5",
      kind: status === RunStatus.Deadlock ? "deadlock" : "step-bound",
      cpu: -1,
      step: mem.header[H.step],
      message: why,
    });
  }
  if (want("P6") && status === RunStatus.Finished && !spec.refusal) {
    for (const [index, site] of spec.sites.entries()) {
      const now = Array.from(mem.codeBytes(site.address, site.newBytes.length));
      if (now.some((b, i) => b !== site.newBytes[i])) {
        out.push({
          property: "P6",
          kind: "not-patched",
          cpu: 0,
          step: mem.header[H.step],
          message: `${site.target} holds ${hex(now)} at the end, not the new ${hex(site.newBytes)}`,
        });
        continue;
      }
      const payload = spec.image.symbol(site.payload);
      let probing = false;
      let reached = false;
      for (const r of log) {
        if (r.cpu !== 0) continue;
        // Only this site's probe (its marks carry the site's index): each site is judged on its own.
        if (r.kind === Ev.Mark && r.a === Mark.ProbeBegin) probing = r.b === index;
        if (r.kind === Ev.Mark && r.a === Mark.ProbeEnd) probing = false;
        if (
          probing &&
          r.kind === Ev.Exec &&
          r.addr >= payload.address &&
          r.addr < payload.address + payload.size
        )
          reached = true;
      }
      if (!reached) {
        out.push({
          property: "P6",
          kind: "old-body",
          cpu: 0,
          step: mem.header[H.step],
          message: `a call of ${site.function}${site.target === site.function ? "" : ` (patched at ${site.target})`} after the patch did not run ${site.payload}`,
        });
      }
    }
  }
  return out;
}

function istClobber(r: LogRecord): Violation {
  if (r.c === ContextKind.Mce) {
    return {
      property: "P3",
      kind: "ist-clobber(nested #MC)",
      cpu: r.cpu,
      step: r.step,
      message: `CPU ${r.cpu}: a second #MC delivered on IST stack ${r.a}, which holds the live frame of the first (its handler had cleared MCIP but not returned)`,
      hazard: NESTED_MC,
    };
  }
  const by = r.b === ContextKind.Base ? "the OS's own" : `the ${CONTEXT_NAMES[r.b]} handler's`;
  const cause = r.b === ContextKind.Base ? "os" : CONTEXT_NAMES[r.b];
  return {
    property: "P3",
    kind: `ist-clobber(${cause})`,
    cpu: r.cpu,
    step: r.step,
    message: `CPU ${r.cpu}: ${CONTEXT_NAMES[r.c]} delivered on IST stack ${r.a}, which holds a live NMI frame; ${by} IRET had unblocked NMIs inside the NMI handler`,
    ...(r.b === ContextKind.Mce ? { hazard: MC_IRET_IN_NMI } : {}),
  };
}

function tornViolation(spec: MachineSpec, log: LogRecord[], crash: LogRecord): Violation {
  const length = crash.b;
  const fetches: LogRecord[] = [];
  for (let i = crash.index - 1; i >= 0 && fetches.length < length; i--) {
    const r = log[i];
    if (r.cpu === crash.cpu && r.kind === Ev.Fetch && r.addr >= crash.addr && r.addr < crash.addr + length)
      fetches.unshift(r);
  }
  const bytes = fetches.map((f) => f.a);
  const parts = fetches.map((f, i) => {
    if (f.b < 0) return `byte ${i} old`;
    const write = log.find((r) => r.kind === Ev.CodeWrite && r.addr === f.addr && r.b === f.c);
    return `byte ${i} written by CPU ${f.b}${write ? ` at step ${write.step}` : ""}`;
  });
  const expect = spec.siteOracle.expectation(crash.addr);
  const show = (b: number[] | null) =>
    b ? `\`${spec.image.disassemble(b, crash.addr)}\` (${hex(b)})` : "no instruction starting";
  return {
    property: "P1",
    kind: "torn-fetch",
    cpu: crash.cpu,
    step: crash.step,
    message: `CPU ${crash.cpu} decoded \`${spec.image.disassemble(bytes, crash.addr)}\` (${hex(bytes)}) at ${spec.image.symbolize(crash.addr)}: ${parts.join(", ")}; the old code has ${show(expect.old)} here and the new code ${show(expect.new)}`,
  };
}
