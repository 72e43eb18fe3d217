// The one place that talks to iced-x86: decoding with a cache keyed by the bytes, and formatting.
import {
  Code,
  Decoder,
  DecoderError,
  DecoderOptions,
  FlowControl,
  Formatter,
  FormatterSyntax,
  type Instruction,
  Mnemonic,
  Register,
} from "iced-x86";

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
  isInt3: boolean;
  isUd2: boolean;
  isHlt: boolean;
  isIret: boolean;
  isSerializing: boolean;
}

const INCOMPLETE: Decoded = Object.freeze({
  complete: false,
  invalid: false,
  length: 0,
  flow: FlowControl.Next,
  mnemonic: Mnemonic.INVALID,
  relTarget: 0,
  isInt3: false,
  isUd2: false,
  isHlt: false,
  isIret: false,
  isSerializing: false,
});

// Decoding is position independent here: every instruction is decoded at a fixed address and
// near-branch targets are kept relative, so one cache entry serves any address.
const DECODE_IP = 0x100000n;
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
  cache.set(k, out);
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

function describe(insn: Instruction, invalid: boolean): Decoded {
  const flow = insn.flowControl;
  const isBranch =
    flow === FlowControl.UnconditionalBranch ||
    flow === FlowControl.ConditionalBranch ||
    flow === FlowControl.Call;
  const mnemonic = insn.mnemonic;
  return Object.freeze({
    complete: true,
    invalid,
    length: insn.length,
    flow,
    mnemonic,
    relTarget: isBranch ? Number(insn.nearBranch64 - DECODE_IP) : 0,
    isInt3: insn.code === Code.Int3,
    isUd2: mnemonic === Mnemonic.Ud2 || mnemonic === Mnemonic.Ud0 || mnemonic === Mnemonic.Ud1,
    isHlt: mnemonic === Mnemonic.Hlt,
    isIret: mnemonic === Mnemonic.Iretq || mnemonic === Mnemonic.Iretd || mnemonic === Mnemonic.Iret,
    // MOV to CR0/CR3/CR4 and MOV to a debug register serialize too (SDM §9.3); MOV to CR8 does not.
    isSerializing:
      SERIALIZING.has(mnemonic) ||
      (insn.code === Code.Mov_cr_r64 && insn.op0Register !== Register.CR8) ||
      insn.code === Code.Mov_dr_r64,
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
