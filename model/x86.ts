// The one place that talks to iced-x86: decoding with a cache keyed by the bytes, and formatting.
import {
  Code,
  Decoder,
  DecoderError,
  DecoderOptions,
  FlowControl,
  Formatter,
  FormatterSyntax,
  Instruction,
  InstructionInfoFactory,
  Mnemonic,
  OpAccess,
  OpKind,
  Register,
} from "iced-x86";

/**
 * What an instruction does to the stack and the registers the model tracks (RSP, RBP, IF). Other
 * registers are abstract: their values are unknown, and a push of one stores an unknown value.
 */
export type StackEffect =
  | { k: "none" }
  /** push: `what` is rbp / rsp (their tracked values), imm (the immediate), flags (pushf), or other. */
  | { k: "push"; what: "rbp" | "rsp" | "imm" | "flags" | "other"; imm: number }
  /** pop: into rbp (tracked), flags (popf: IF from bit 9), or another register (value dropped). */
  | { k: "pop"; into: "rbp" | "flags" | "other" }
  | { k: "leave" }
  /** dest := src + disp (mov, lea, add, sub on RSP/RBP); src "unknown" makes dest unknown. */
  | { k: "set"; dest: "rsp" | "rbp"; src: "rsp" | "rbp" | "unknown"; disp: number }
  | { k: "cli" }
  | { k: "sti" }
  | { k: "iret" }
  /** ret, with the extra bytes `ret imm16` releases. */
  | { k: "ret"; release: number }
  /** An instruction that writes RSP in a way the model does not follow (`and rsp, -16`, `pop rsp`). */
  | { k: "unmodelled"; what: string };

/** Where an indirect call or jump takes its target from. */
export type IndirectTarget =
  /** Through memory at an address: `rel` relative to the instruction (RIP-relative), or `abs`. */
  | { k: "memory"; rel: number | null; abs: number | null }
  /** Through a register or a computed address: not resolvable by the model. */
  | { k: "unresolvable" };

/** What execution needs to know about a decoded instruction, detached from the wasm object. */
export interface Decoded {
  /** false while the bytes are a strict prefix of an instruction (iced-x86 says NoMoreBytes). */
  complete: boolean;
  invalid: boolean;
  length: number;
  flow: FlowControl;
  mnemonic: Mnemonic;
  /** rel target relative to the instruction's own address, for near branches and calls. */
  relTarget: number;
  /**
   * Whether it branches to a near target (`relTarget`): false for instructions iced-x86 gives the
   * flow of a call or a jump that leave the code for another world (vmlaunch, vmresume, vmcall, syscall).
   */
  nearBranch: boolean;
  isInt3: boolean;
  isUd2: boolean;
  isHlt: boolean;
  isIret: boolean;
  isSerializing: boolean;
  stack: StackEffect;
  /** For indirect calls and jumps (flow IndirectCall / IndirectBranch). */
  indirect: IndirectTarget | null;
  /** Intel-syntax text at the fixed decode address (for error messages). */
  text: string;
}

const INCOMPLETE: Decoded = Object.freeze<Decoded>({
  complete: false,
  invalid: false,
  length: 0,
  flow: FlowControl.Next,
  mnemonic: Mnemonic.INVALID,
  relTarget: 0,
  nearBranch: false,
  isInt3: false,
  isUd2: false,
  isHlt: false,
  isIret: false,
  isSerializing: false,
  stack: { k: "none" },
  indirect: null,
  text: "(incomplete)",
});

// Decoding is position independent here: every instruction is decoded at a fixed address and
// near-branch targets are kept relative, so one cache entry serves any address.
// 4 GiB: far from 0 and from 2^64, so a rel32 branch or RIP-relative operand never wraps (±2 GiB).
const DECODE_IP = 0x1_0000_0000n;
const cache = new Map<string, Decoded>();

function key(bytes: ArrayLike<number>, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

// SDM Vol. 3A §9.3 (Serializing Instructions): the ones the model treats as serializing (H4).
const SERIALIZING = new Set<Mnemonic>([
  Mnemonic.Cpuid,
  Mnemonic.Serialize,
  Mnemonic.Iretq,
  Mnemonic.Iretd,
  Mnemonic.Iret,
  Mnemonic.Wrmsr,
  Mnemonic.Invd,
  Mnemonic.Wbinvd,
  Mnemonic.Lgdt,
  Mnemonic.Lidt,
]);

/** Decodes the first `n` bytes; cached by the bytes themselves (the hot path of every fetch). */
export function decode(bytes: ArrayLike<number>, n: number): Decoded {
  const k = key(bytes, n);
  const hit = cache.get(k);
  if (hit) return hit;
  const out = decodeUncached(bytes, n);
  cache.set(k, out);
  return out;
}

/**
 * A fetch in progress, for decoding a byte at a time: the bytes so far as a node of a trie whose
 * nodes keep their decoding. A CPU steps it with each byte it fetches (nextByte), so the hot path
 * of bytewise fetch neither builds a key nor walks the bytes again.
 */
export interface FetchCursor {
  decoded?: Decoded;
  next?: Map<number, FetchCursor>;
}

/** The cursor of a fetch with no byte yet. */
export const FETCH_START: FetchCursor = {};

/** The cursor after one more byte. */
export function nextByte(cursor: FetchCursor, byte: number): FetchCursor {
  cursor.next ??= new Map();
  let child = cursor.next.get(byte);
  if (!child) {
    child = {};
    cursor.next.set(byte, child);
  }
  return child;
}

/** decode of the `n` bytes that led to `cursor` (from FETCH_START, one nextByte each). */
export function decodeAt(cursor: FetchCursor, bytes: ArrayLike<number>, n: number): Decoded {
  cursor.decoded ??= decode(bytes, n);
  return cursor.decoded;
}

function decodeUncached(bytes: ArrayLike<number>, n: number): Decoded {
  const buf = new Uint8Array(n);
  for (let i = 0; i < n; i++) buf[i] = bytes[i];
  const decoder = new Decoder(64, buf, DecoderOptions.None);
  decoder.ip = DECODE_IP;
  const insn = decoder.decode();
  let out: Decoded;
  if (decoder.lastError === DecoderError.NoMoreBytes) {
    // iced-x86 asks for more bytes for some invalid opcodes too (a lone 06 in 64-bit mode): the bytes
    // are a prefix of an instruction only if some next byte can complete one.
    out = canComplete(buf) ? INCOMPLETE : { ...INCOMPLETE, complete: true, invalid: true, length: n };
  } else {
    out = describe(insn, decoder.lastError === DecoderError.InvalidInstruction || insn.isInvalid);
  }
  insn.free();
  decoder.free();
  return out;
}

/** Whether some continuation of `prefix` (next byte, then zero padding) decodes as a valid instruction. */
function canComplete(prefix: Uint8Array): boolean {
  const buf = new Uint8Array(15);
  buf.set(prefix);
  for (let next = 0; next < 256 && prefix.length < 15; next++) {
    buf[prefix.length] = next;
    const decoder = new Decoder(64, buf, DecoderOptions.None);
    const insn = decoder.decode();
    const ok = decoder.lastError === DecoderError.None && !insn.isInvalid;
    insn.free();
    decoder.free();
    if (ok) return true;
  }
  return false;
}

let infoFactory: InstructionInfoFactory | undefined;

const TRACKED: Partial<Record<Register, "rsp" | "rbp">> = { [Register.RSP]: "rsp", [Register.RBP]: "rbp" };

/** Whether the instruction writes RSP or RBP (iced-x86 instruction info), for the catch-all case. */
function writesTracked(insn: Instruction): "rsp" | "rbp" | null {
  infoFactory ??= new InstructionInfoFactory();
  const info = infoFactory.info(insn);
  let out: "rsp" | "rbp" | null = null;
  for (const used of info.usedRegisters()) {
    const reg = TRACKED[used.register as Register];
    const access = used.access as OpAccess;
    const writes =
      access === OpAccess.Write ||
      access === OpAccess.CondWrite ||
      access === OpAccess.ReadWrite ||
      access === OpAccess.ReadCondWrite;
    if (reg && writes && (out === null || reg === "rsp")) out = reg;
    used.free();
  }
  info.free();
  return out;
}

const IMMEDIATE_KINDS = new Set<OpKind>([
  OpKind.Immediate8,
  OpKind.Immediate16,
  OpKind.Immediate32,
  OpKind.Immediate64,
  OpKind.Immediate8to16,
  OpKind.Immediate8to32,
  OpKind.Immediate8to64,
  OpKind.Immediate32to64,
]);

/** The instruction's effect on RSP, RBP and IF (SDM Vol. 2 PUSH, POP, LEAVE, CALL, RET, IRET, CLI, STI, PUSHF, POPF). */
function stackEffect(insn: Instruction, text: string): StackEffect {
  const m = insn.mnemonic;
  const reg0 = insn.op0Kind === OpKind.Register ? insn.op0Register : Register.None;
  switch (m) {
    case Mnemonic.Push:
      if (reg0 === Register.RBP) return { k: "push", what: "rbp", imm: 0 };
      if (reg0 === Register.RSP) return { k: "push", what: "rsp", imm: 0 };
      if (IMMEDIATE_KINDS.has(insn.op0Kind))
        return { k: "push", what: "imm", imm: Number(insn.immediate(0)) };
      return { k: "push", what: "other", imm: 0 };
    case Mnemonic.Pushfq:
    case Mnemonic.Pushf:
      return { k: "push", what: "flags", imm: 0 };
    case Mnemonic.Pop:
      if (reg0 === Register.RSP) return { k: "unmodelled", what: text };
      return { k: "pop", into: reg0 === Register.RBP ? "rbp" : "other" };
    case Mnemonic.Popfq:
    case Mnemonic.Popf:
      return { k: "pop", into: "flags" };
    case Mnemonic.Leave:
      return { k: "leave" };
    case Mnemonic.Cli:
      return { k: "cli" };
    case Mnemonic.Sti:
      return { k: "sti" };
    case Mnemonic.Iretq:
    case Mnemonic.Iretd:
    case Mnemonic.Iret:
      return { k: "iret" };
    case Mnemonic.Ret:
      return { k: "ret", release: insn.opCount > 0 ? Number(insn.immediate(0)) : 0 };
    case Mnemonic.Call:
      return { k: "none" }; // the call's push is part of executing the call
  }
  const dest = TRACKED[reg0];
  if (dest && (m === Mnemonic.Mov || m === Mnemonic.Lea || m === Mnemonic.Add || m === Mnemonic.Sub)) {
    if (m === Mnemonic.Mov && insn.op1Kind === OpKind.Register) {
      return { k: "set", dest, src: TRACKED[insn.op1Register] ?? "unknown", disp: 0 };
    }
    if (m === Mnemonic.Lea && insn.memoryIndex === Register.None) {
      const src = TRACKED[insn.memoryBase];
      return src
        ? { k: "set", dest, src, disp: Number(BigInt.asIntN(64, insn.memoryDisplacementU64)) }
        : { k: "set", dest, src: "unknown", disp: 0 };
    }
    if ((m === Mnemonic.Add || m === Mnemonic.Sub) && IMMEDIATE_KINDS.has(insn.op1Kind)) {
      const imm = Number(BigInt.asIntN(64, insn.immediate(1)));
      return { k: "set", dest, src: dest, disp: m === Mnemonic.Add ? imm : -imm };
    }
    return dest === "rbp" ? { k: "set", dest, src: "unknown", disp: 0 } : { k: "unmodelled", what: text };
  }
  const written = writesTracked(insn);
  if (written === "rsp") return { k: "unmodelled", what: text };
  if (written === "rbp") return { k: "set", dest: "rbp", src: "unknown", disp: 0 };
  return { k: "none" };
}

function indirectTarget(insn: Instruction): IndirectTarget {
  if (insn.op0Kind !== OpKind.Memory) return { k: "unresolvable" };
  if (insn.isIpRelMemoryOperand)
    return { k: "memory", rel: Number(insn.ipRelMemoryAddress - DECODE_IP), abs: null };
  if (insn.memoryBase === Register.None && insn.memoryIndex === Register.None) {
    return { k: "memory", rel: null, abs: Number(BigInt.asIntN(64, insn.memoryDisplacementU64)) };
  }
  return { k: "unresolvable" };
}

const NEAR_BRANCH = new Set<OpKind>([OpKind.NearBranch16, OpKind.NearBranch32, OpKind.NearBranch64]);

function describe(insn: Instruction, invalid: boolean): Decoded {
  const flow = insn.flowControl;
  const isBranch =
    flow === FlowControl.UnconditionalBranch ||
    flow === FlowControl.ConditionalBranch ||
    flow === FlowControl.Call;
  const mnemonic = insn.mnemonic;
  formatter ??= new Formatter(FormatterSyntax.Intel);
  const text = invalid ? "(bad)" : formatter.format(insn);
  const indirect =
    !invalid && (flow === FlowControl.IndirectBranch || flow === FlowControl.IndirectCall)
      ? indirectTarget(insn)
      : null;
  return Object.freeze({
    complete: true,
    invalid,
    length: insn.length,
    flow,
    mnemonic,
    relTarget: isBranch ? Number(insn.nearBranch64 - DECODE_IP) : 0,
    nearBranch: isBranch && NEAR_BRANCH.has(insn.op0Kind),
    isInt3: insn.code === Code.Int3,
    isUd2: mnemonic === Mnemonic.Ud2 || mnemonic === Mnemonic.Ud0 || mnemonic === Mnemonic.Ud1,
    isHlt: mnemonic === Mnemonic.Hlt,
    isIret: mnemonic === Mnemonic.Iretq || mnemonic === Mnemonic.Iretd || mnemonic === Mnemonic.Iret,
    // MOV to CR0/CR3/CR4 and MOV to a debug register serialize too (SDM §9.3); MOV to CR8 does not.
    isSerializing:
      SERIALIZING.has(mnemonic) ||
      (insn.code === Code.Mov_cr_r64 && insn.op0Register !== Register.CR8) ||
      insn.code === Code.Mov_dr_r64,
    stack: invalid ? ({ k: "none" } as const) : stackEffect(insn, text),
    indirect,
    text,
  });
}

let formatter: Formatter | undefined;

/** Intel-syntax disassembly of `bytes` at `address` (`(bad)` for invalid or incomplete bytes). */
export function disassemble(bytes: ArrayLike<number>, address: number): string {
  formatter ??= new Formatter(FormatterSyntax.Intel);
  const decoder = new Decoder(
    64,
    Uint8Array.from(Array.from({ length: bytes.length }, (_, i) => bytes[i])),
    0,
  );
  decoder.ip = BigInt(address);
  const insn = decoder.decode();
  const text = decoder.lastError === DecoderError.NoMoreBytes ? "(incomplete)" : formatter.format(insn);
  insn.free();
  decoder.free();
  return text;
}

/** Splits `bytes` into instructions by linear sweep: [offset, length][]. */
export function instructionStarts(bytes: Uint8Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let off = 0;
  while (off < bytes.length) {
    const d = decode(bytes.subarray(off, Math.min(bytes.length, off + 15)), Math.min(15, bytes.length - off));
    if (!d.complete || d.length === 0) break;
    out.push([off, d.length]);
    off += d.length;
  }
  return out;
}

export function hex(bytes: ArrayLike<number>): string {
  return Array.from({ length: bytes.length }, (_, i) => bytes[i].toString(16).padStart(2, "0")).join(" ");
}

/**
 * Every address the code in `bytes` (loaded at the exact 64-bit `address`) names other than as a
 * direct branch target: RIP-relative and absolute memory operands (`lea fn(%rip)`) and immediates
 * (`mov $fn, %rdi`). The address-taken analysis of the ELF call graph reads these: a function whose
 * address code names this way can be the target of an indirect call. One decoder over the whole range,
 * without the per-instruction cache (a 1.4 MB .text would fill it with instructions fetched once).
 */
export function operandAddresses(bytes: Uint8Array, address: bigint): bigint[] {
  const out: bigint[] = [];
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = address;
  const insn = new Instruction();
  while (decoder.canDecode) {
    decoder.decodeOut(insn);
    if (insn.isInvalid) continue;
    const flow = insn.flowControl;
    const direct =
      flow === FlowControl.Call ||
      flow === FlowControl.UnconditionalBranch ||
      flow === FlowControl.ConditionalBranch;
    if (direct) continue;
    for (let i = 0; i < insn.opCount; i++) {
      const kind = insn.opKind(i);
      if (kind === OpKind.Memory) {
        if (insn.isIpRelMemoryOperand) out.push(insn.ipRelMemoryAddress);
        else if (insn.memoryBase === Register.None && insn.memoryIndex === Register.None)
          out.push(insn.memoryDisplacementU64);
      } else if (IMMEDIATE_KINDS.has(kind)) {
        out.push(BigInt.asUintN(64, insn.immediate(i)));
      }
    }
  }
  insn.free();
  decoder.free();
  return out;
}
