// Code images: built with iced-x86's BlockEncoder from a compact description, or loaded as raw bytes;
// a symbol table, `symbol+offset` resolution checked against instruction boundaries (seed item c),
// a symbolizer that names payload addresses by the payload's own symbols (seed item g), and the static
// call graph (for the blacklist protocols).
import {
  BlockEncoder,
  BlockEncoderOptions,
  Code,
  Decoder,
  DecoderOptions,
  FlowControl,
  Instruction,
  MemoryOperand,
  Register,
} from "iced-x86";
import { type Decoded, decode, disassemble, hex, instructionStarts, operandAddresses } from "./x86.js";

/**
 * One function of an image. `code` is a list of instructions in a small assembly dialect
 * (see ASSEMBLY below); `bytes` gives raw machine code instead.
 */
export interface FunctionDesc {
  name: string;
  code?: string[];
  bytes?: number[];
  /**
   * The address `bytes` were encoded for, when they are code copied from elsewhere: they are re-encoded
   * where the function is placed, so relative branches and RIP-relative operands still reach what they
   * reached, and branches within the bytes move with them (iced-x86 BlockEncoder).
   */
  encodedAt?: number;
  /** Part of a livepatch payload (loaded beside the running code, named by its own symbols). */
  payload?: boolean;
}

/**
 * A data symbol of the image: a 64-bit word (a function pointer such as Xen's `machine_check_vector`,
 * or an altcall pointer) whose initial value is a symbol's address or a number. Real code reads it with
 * `call [name]` / `jmp [name]`; the machine keeps its value in a data word, so routines may change it.
 */
export interface DataDesc {
  name: string;
  initial: string | number;
}

export interface DataSymbol {
  name: string;
  address: number;
  /** The initial value: a symbol's address, or the number given. */
  initial: number;
  /** The symbol the initial value names, if it names one. */
  initialSymbol?: string;
}

/** Where the code image starts in the simulated address space. */
export const CODE_BASE = 0x1000;

/** Where data symbols are laid out: 8 bytes each, within rel32 reach of the code. */
export const DATA_BASE = 0x20_0000;

/**
 * The most address space an image's code may span from CODE_BASE. The span costs nothing (only
 * placed segments are stored, in the image and in a machine's buffer); it keeps every code address
 * below the values the model gives addresses it does not track (model/memory UNKNOWN_VALUE).
 */
export const MAX_CODE_SPAN = 0x0400_0000;

/**
 * One placed range of an image: the bytes from `address`. An image is a list of them, sorted and
 * apart; an address in none holds no code (a fetch there leaves the image).
 */
export interface CodeSegment {
  address: number;
  bytes: Uint8Array;
}

/**
 * Functions closer than this share a segment (the gap between them int3, as a linker pads): a
 * compiler aligns functions to at most 64 bytes, so only the padding between neighbours is stored.
 */
export const SEGMENT_GAP = 64;

/**
 * Segments for pieces of code (each an address and its bytes): sorted, with pieces less than `gap`
 * apart in one segment and the bytes between them int3. Pieces must not overlap.
 */
export function segmentsOf(
  pieces: ReadonlyArray<{ address: number; bytes: Uint8Array }>,
  gap = SEGMENT_GAP,
): CodeSegment[] {
  const sorted = [...pieces].filter((p) => p.bytes.length > 0).sort((a, b) => a.address - b.address);
  const groups: Array<Array<{ address: number; bytes: Uint8Array }>> = [];
  let end = Number.NEGATIVE_INFINITY;
  for (const p of sorted) {
    if (p.address < end) throw new Error(`code at 0x${p.address.toString(16)} overlaps the code before it`);
    if (groups.length === 0 || p.address - end >= gap) groups.push([]);
    groups[groups.length - 1].push(p);
    end = p.address + p.bytes.length;
  }
  return groups.map((g) => {
    const address = g[0].address;
    const last = g[g.length - 1];
    const bytes = new Uint8Array(last.address + last.bytes.length - address).fill(0xcc);
    for (const p of g) bytes.set(p.bytes, p.address - address);
    return { address, bytes };
  });
}

export interface SymbolInfo {
  name: string;
  address: number;
  size: number;
  payload: boolean;
  /**
   * The binary the function was read from takes its address outside the placed code (an ELF image:
   * a pointer to it in the file's data; `ElfProgram.addressTaken`), so an indirect branch may reach it.
   */
  addressTaken?: boolean;
}

/** A call, jump or conditional jump of a function (`CodeImage.branchesOf`). */
export interface BranchSite {
  address: number;
  length: number;
  kind: "call" | "jump" | "conditional";
  /** The target of a direct branch; null for an indirect one (see `decoded.indirect`). */
  target: number | null;
  decoded: Decoded;
}

const BRANCH_KINDS = new Map<FlowControl, BranchSite["kind"]>([
  [FlowControl.Call, "call"],
  [FlowControl.IndirectCall, "call"],
  [FlowControl.UnconditionalBranch, "jump"],
  [FlowControl.IndirectBranch, "jump"],
  [FlowControl.ConditionalBranch, "conditional"],
]);

/** Instructions after which execution does not go on to the next byte (`CodeImage.sweep`). */
const FLOW_ENDS = new Set<FlowControl>([
  FlowControl.UnconditionalBranch,
  FlowControl.IndirectBranch,
  FlowControl.Return,
  FlowControl.Exception,
]);

const ALIGN = 16;
const REGS: Record<string, Register> = {
  rax: Register.RAX,
  rbx: Register.RBX,
  rcx: Register.RCX,
  rdx: Register.RDX,
  rbp: Register.RBP,
  rsp: Register.RSP,
  rdi: Register.RDI,
  rsi: Register.RSI,
  eax: Register.EAX,
  edi: Register.EDI,
};

/** The dialect: each entry builds one iced-x86 Instruction; `SYM` operands are symbols of the image. */
const ASSEMBLY: Array<[RegExp, (m: RegExpMatchArray, sym: (s: string) => bigint) => Instruction]> = [
  [/^push ([a-z]\w*)$/, (m) => Instruction.createReg(Code.Push_r64, reg(m[1]))],
  [/^pop (\w+)$/, (m) => Instruction.createReg(Code.Pop_r64, reg(m[1]))],
  [/^mov (r\w\w), (r\w\w)$/, (m) => Instruction.createRegReg(Code.Mov_rm64_r64, reg(m[1]), reg(m[2]))],
  [/^mov (e\w\w), (\d+)$/, (m) => Instruction.createRegI32(Code.Mov_r32_imm32, reg(m[1]), Number(m[2]))],
  [/^xor (e\w\w), (e\w\w)$/, (m) => Instruction.createRegReg(Code.Xor_rm32_r32, reg(m[1]), reg(m[2]))],
  [/^sub rsp, (\d+)$/, (m) => Instruction.createRegI32(Code.Sub_rm64_imm8, Register.RSP, Number(m[1]))],
  [/^add rsp, (\d+)$/, (m) => Instruction.createRegI32(Code.Add_rm64_imm8, Register.RSP, Number(m[1]))],
  [
    /^mov (e\w\w), \[(r\w\w)\+(\d+)\]$/,
    (m) =>
      Instruction.createRegMem(
        Code.Mov_r32_rm32,
        reg(m[1]),
        MemoryOperand.createBaseDispl(reg(m[2]), BigInt(m[3])),
      ),
  ],
  [
    /^call \[(\S+)\]$/,
    (m, sym) => Instruction.createMem(Code.Call_rm64, MemoryOperand.createBaseDispl(Register.RIP, sym(m[1]))),
  ],
  [
    /^jmp \[(\S+)\]$/,
    (m, sym) => Instruction.createMem(Code.Jmp_rm64, MemoryOperand.createBaseDispl(Register.RIP, sym(m[1]))),
  ],
  [/^call (r\w\w)$/, (m) => Instruction.createReg(Code.Call_rm64, reg(m[1]))],
  [/^jmp (r\w\w)$/, (m) => Instruction.createReg(Code.Jmp_rm64, reg(m[1]))],
  [/^call (\S+)$/, (m, sym) => Instruction.createBranch(Code.Call_rel32_64, sym(m[1]))],
  [/^jmp (\S+)$/, (m, sym) => Instruction.createBranch(Code.Jmp_rel32_64, sym(m[1]))],
  [/^push (\d+)$/, (m) => Instruction.createI32(Code.Pushq_imm32, Number(m[1]))],
  [/^push offset (\S+)$/, (m, sym) => Instruction.createI32(Code.Pushq_imm32, Number(sym(m[1])))],
  [/^mov (r\w\w), (-?\d+)$/, (m) => Instruction.createRegI32(Code.Mov_rm64_imm32, reg(m[1]), Number(m[2]))],
  [
    /^lea (r\w\w), \[(r\w\w)([+-]\d+)\]$/,
    (m) =>
      Instruction.createRegMem(
        Code.Lea_r64_m,
        reg(m[1]),
        MemoryOperand.createBaseDispl(reg(m[2]), BigInt(m[3])),
      ),
  ],
  [/^and rsp, (-?\d+)$/, (m) => Instruction.createRegI32(Code.And_rm64_imm8, Register.RSP, Number(m[1]))],
  [/^leave$/, () => Instruction.create(Code.Leaveq)],
  [/^cli$/, () => Instruction.create(Code.Cli)],
  [/^sti$/, () => Instruction.create(Code.Sti)],
  [/^pushfq$/, () => Instruction.create(Code.Pushfq)],
  [/^popfq$/, () => Instruction.create(Code.Popfq)],
  [/^je (\S+)$/, (m, sym) => Instruction.createBranch(Code.Je_rel32_64, sym(m[1]))],
  [/^ret$/, () => Instruction.create(Code.Retnq)],
  [/^nop$/, () => Instruction.create(Code.Nopd)],
  [/^int3$/, () => Instruction.create(Code.Int3)],
  [/^ud2$/, () => Instruction.create(Code.Ud2)],
  [/^hlt$/, () => Instruction.create(Code.Hlt)],
  [/^pause$/, () => Instruction.create(Code.Pause)],
  [/^cpuid$/, () => Instruction.create(Code.Cpuid)],
  [/^lfence$/, () => Instruction.create(Code.Lfence)],
  [/^iretq$/, () => Instruction.create(Code.Iretq)],
  [/^test (e\w\w), (e\w\w)$/, (m) => Instruction.createRegReg(Code.Test_rm32_r32, reg(m[1]), reg(m[2]))],
];

function reg(name: string): Register {
  const r = REGS[name];
  if (r === undefined) throw new Error(`unknown register '${name}' (known: ${Object.keys(REGS).join(", ")})`);
  return r;
}

/** Raw-byte forms that the dialect spells directly (`nop5` is the 5-byte NOP of __fentry__ pads). */
const RAW: Record<string, number[]> = {
  nop5: [0x0f, 0x1f, 0x44, 0x00, 0x00],
};

function assemble(fn: FunctionDesc, at: number, sym: (s: string) => bigint): Uint8Array {
  if (fn.bytes && fn.encodedAt !== undefined) return reencode(fn.name, fn.bytes, fn.encodedAt, at);
  if (fn.bytes) return Uint8Array.from(fn.bytes);
  const out: number[] = [];
  let block = new BlockEncoder(64, BlockEncoderOptions.None);
  let blockStart = at;
  let blockCount = 0;
  const flush = () => {
    if (blockCount > 0) out.push(...block.encode(BigInt(blockStart)));
    block.free();
    block = new BlockEncoder(64, BlockEncoderOptions.None);
    blockCount = 0;
    blockStart = at + out.length;
  };
  for (const line of fn.code ?? []) {
    const text = line.trim();
    const raw =
      RAW[text] ??
      (text.startsWith("db ")
        ? text
            .slice(3)
            .split(/\s+/)
            .map((b) => Number.parseInt(b, 16))
        : null);
    if (raw) {
      flush();
      out.push(...raw);
      blockStart = at + out.length;
      continue;
    }
    const form = ASSEMBLY.find(([re]) => re.test(text));
    if (!form) throw new Error(`function '${fn.name}': cannot assemble '${text}'`);
    const m = text.match(form[0]) as RegExpMatchArray;
    block.add(form[1](m, sym));
    blockCount++;
  }
  flush();
  block.free();
  return Uint8Array.from(out);
}

/** Machine code decoded at `from` and encoded again at `at` (see FunctionDesc.encodedAt). */
function reencode(name: string, bytes: number[], from: number, at: number): Uint8Array {
  const decoder = new Decoder(64, Uint8Array.from(bytes), DecoderOptions.None);
  decoder.ip = BigInt(from);
  const block = new BlockEncoder(64, BlockEncoderOptions.None);
  try {
    while (decoder.canDecode) {
      const insn = decoder.decode();
      if (insn.isInvalid)
        throw new Error(
          `function '${name}': the bytes at 0x${insn.ip.toString(16)} are no instruction, so they cannot be moved`,
        );
      block.add(insn);
    }
    return block.encode(BigInt(at));
  } finally {
    block.free();
    decoder.free();
  }
}

export class CodeImage {
  /** The placed code, sorted by address; nothing else is in the image. */
  readonly segments: readonly CodeSegment[];
  readonly symbols: ReadonlyMap<string, SymbolInfo>;
  /** Data symbols by ordinal (built images lay them out at DATA_BASE + 8 * ordinal). */
  readonly data: readonly DataSymbol[];
  private readonly sorted: SymbolInfo[];
  private readonly boundaryCache = new Map<string, number[]>();
  private readonly dataOrdinal: ReadonlyMap<number, number>;

  private constructor(segments: CodeSegment[], symbols: SymbolInfo[], data: DataSymbol[] = []) {
    this.segments = segments;
    this.data = data;
    this.dataOrdinal = new Map(data.map((d, k) => [d.address, k]));
    this.sorted = [...symbols].sort((a, b) => a.address - b.address);
    this.symbols = new Map(symbols.map((s) => [s.name, s]));
  }

  /**
   * Lays functions out from CODE_BASE, 16-byte aligned, padded with int3 as linkers do, and encodes
   * them with iced-x86. Branch sizes depend on distances, so layout repeats until addresses settle.
   */
  static build(functions: FunctionDesc[], data: DataDesc[] = [], limit = 1 << 16): CodeImage {
    const names = new Set<string>();
    for (const f of functions) {
      if (names.has(f.name)) throw new Error(`function '${f.name}' is defined twice in the image`);
      names.add(f.name);
      if (!f.code && !f.bytes) throw new Error(`function '${f.name}' has neither code nor bytes`);
    }
    const dataAddress = new Map<string, number>();
    data.forEach((d, k) => {
      if (names.has(d.name) || dataAddress.has(d.name))
        throw new Error(`symbol '${d.name}' is defined twice in the image`);
      dataAddress.set(d.name, DATA_BASE + 8 * k);
    });
    let addresses = new Map<string, number>();
    let encoded: Uint8Array[] = [];
    for (let pass = 0; pass < 8; pass++) {
      const sym = (s: string): bigint => {
        const d = dataAddress.get(s);
        if (d !== undefined) return BigInt(d);
        if (!names.has(s)) throw new Error(`unknown symbol '${s}' (defined: ${[...names].join(", ")})`);
        return BigInt(addresses.get(s) ?? CODE_BASE);
      };
      const next = new Map<string, number>();
      encoded = [];
      let at = CODE_BASE;
      for (const f of functions) {
        next.set(f.name, at);
        const code = assemble(f, at, sym);
        encoded.push(code);
        at = align(at + code.length);
      }
      const stable = functions.every((f) => addresses.get(f.name) === next.get(f.name));
      addresses = next;
      if (stable && pass > 0) break;
    }
    const end =
      functions.length === 0
        ? CODE_BASE
        : align(
            (addresses.get(functions[functions.length - 1].name) as number) +
              encoded[encoded.length - 1].length,
          );
    if (end - CODE_BASE > limit) {
      throw new Error(`the image needs ${end - CODE_BASE} bytes, more than the buffer's ${limit}`);
    }
    const bytes = new Uint8Array(end - CODE_BASE).fill(0xcc);
    const symbols: SymbolInfo[] = [];
    functions.forEach((f, i) => {
      const address = addresses.get(f.name) as number;
      bytes.set(encoded[i], address - CODE_BASE);
      symbols.push({ name: f.name, address, size: encoded[i].length, payload: f.payload === true });
    });
    const dataSymbols = data.map((d, k): DataSymbol => {
      if (typeof d.initial === "number")
        return { name: d.name, address: DATA_BASE + 8 * k, initial: d.initial };
      const target = addresses.get(d.initial);
      if (target === undefined)
        throw new Error(
          `data symbol '${d.name}': its initial value '${d.initial}' is not a function of the image`,
        );
      return { name: d.name, address: DATA_BASE + 8 * k, initial: target, initialSymbol: d.initial };
    });
    return new CodeImage([{ address: CODE_BASE, bytes }], symbols, dataSymbols);
  }

  /**
   * This image with `functions` laid out after its end, 16-byte aligned and padded with int3, as a
   * livepatch payload or a protocol's out-of-line code is loaded beside running code. Their operands
   * may name the image's symbols (functions and data) as well as each other. Layout repeats until
   * addresses settle, as in build.
   */
  withFunctions(functions: FunctionDesc[], limit = MAX_CODE_SPAN): CodeImage {
    if (functions.length === 0) return this;
    const names = new Set<string>();
    for (const f of functions) {
      if (this.symbols.has(f.name) || this.data.some((d) => d.name === f.name) || names.has(f.name))
        throw new Error(`function '${f.name}' is defined twice in the image`);
      names.add(f.name);
      if (!f.code && !f.bytes) throw new Error(`function '${f.name}' has neither code nor bytes`);
    }
    const start = align(this.end);
    let addresses = new Map<string, number>();
    let encoded: Uint8Array[] = [];
    let end = start;
    for (let pass = 0; pass < 8; pass++) {
      const sym = (s: string): bigint => {
        const known = this.symbols.get(s)?.address ?? this.data.find((d) => d.name === s)?.address;
        if (known !== undefined) return BigInt(known);
        if (!names.has(s))
          throw new Error(`unknown symbol '${s}' (not in the image, nor among the added functions)`);
        return BigInt(addresses.get(s) ?? start);
      };
      const next = new Map<string, number>();
      encoded = [];
      let at = start;
      for (const f of functions) {
        next.set(f.name, at);
        const code = assemble(f, at, sym);
        encoded.push(code);
        at = align(at + code.length);
      }
      end = at;
      const stable = functions.every((f) => addresses.get(f.name) === next.get(f.name));
      addresses = next;
      if (stable && pass > 0) break;
    }
    if (end - CODE_BASE > limit)
      throw new Error(`the image needs ${end - CODE_BASE} bytes, more than the buffer's ${limit}`);
    const symbols = [...this.symbols.values()];
    const added = functions.map((f, i) => {
      const address = addresses.get(f.name) as number;
      symbols.push({ name: f.name, address, size: encoded[i].length, payload: f.payload === true });
      return { address, bytes: encoded[i] };
    });
    // The added code joins the last segment (it starts within SEGMENT_GAP of its end).
    return CodeImage.fromSegments(segmentsOf([...this.segments, ...added]), symbols, [...this.data]);
  }

  /** The ordinal of the data symbol at `address`, if one is there. */
  dataSymbolAt(address: number): number | undefined {
    return this.dataOrdinal.get(address);
  }

  /**
   * Raw bytes with explicit symbols; symbols must not overlap. Data symbols may sit at any address
   * outside the functions (an ELF image keeps its function pointers at their rebased addresses).
   */
  static fromBytes(
    bytes: Uint8Array,
    symbols: SymbolInfo[],
    data: DataSymbol[] = [],
    span = MAX_CODE_SPAN,
  ): CodeImage {
    return CodeImage.fromSegments([{ address: CODE_BASE, bytes }], symbols, data, span);
  }

  /**
   * Placed segments with explicit symbols (see fromBytes); segments must be sorted and apart, within
   * `span` bytes from CODE_BASE, and every function must lie inside one.
   */
  static fromSegments(
    segments: CodeSegment[],
    symbols: SymbolInfo[],
    data: DataSymbol[] = [],
    span = MAX_CODE_SPAN,
  ): CodeImage {
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      if (s.address < CODE_BASE || s.address + s.bytes.length > CODE_BASE + span)
        throw new Error(
          `code at 0x${s.address.toString(16)} lies outside the ${span} bytes from 0x${CODE_BASE.toString(16)} an image may span`,
        );
      const prev = segments[i - 1];
      if (prev && prev.address + prev.bytes.length > s.address)
        throw new Error(
          `code segments at 0x${prev.address.toString(16)} and 0x${s.address.toString(16)} overlap`,
        );
    }
    const sorted = [...symbols].sort((a, b) => a.address - b.address);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      if (prev.address + prev.size > sorted[i].address) {
        throw new Error(`functions '${prev.name}' and '${sorted[i].name}' overlap`);
      }
    }
    const holder = (address: number) =>
      segments.find((g) => address >= g.address && address < g.address + g.bytes.length);
    for (const s of sorted) {
      const g = holder(s.address);
      if (!g || s.address + s.size > g.address + g.bytes.length) {
        throw new Error(`function '${s.name}' lies outside the image`);
      }
    }
    const names = new Set(symbols.map((s) => s.name));
    if (names.size !== symbols.length) {
      const twice = symbols.find((s, i) => symbols.findIndex((t) => t.name === s.name) !== i);
      throw new Error(`function '${twice?.name}' is defined twice in the image`);
    }
    const addresses = new Set<number>();
    for (const d of data) {
      if (names.has(d.name)) throw new Error(`symbol '${d.name}' is defined twice in the image`);
      names.add(d.name);
      if (addresses.has(d.address))
        throw new Error(
          `data symbol '${d.name}' shares its address 0x${d.address.toString(16)} with another`,
        );
      addresses.add(d.address);
      const inside = sorted.find((f) => d.address + 8 > f.address && d.address < f.address + f.size);
      if (inside) throw new Error(`data symbol '${d.name}' overlaps function '${inside.name}'`);
    }
    return new CodeImage(segments, symbols, data);
  }

  /** The address past the last placed byte (CODE_BASE for an empty image). */
  get end(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? last.address + last.bytes.length : CODE_BASE;
  }

  /** How many bytes are placed (what a machine's buffer holds of this image). */
  get placedBytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes.length, 0);
  }

  /** The segment holding `address`, if any. */
  segmentAt(address: number): CodeSegment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid];
      if (address < s.address) hi = mid - 1;
      else if (address >= s.address + s.bytes.length) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** The `length` placed bytes from `address` (a view); an error names the address if any is not placed. */
  read(address: number, length: number): Uint8Array {
    const s = this.segmentAt(address);
    if (!s || address + length > s.address + s.bytes.length)
      throw new Error(
        `no code is placed at 0x${address.toString(16)}..0x${(address + length).toString(16)} (${this.symbolize(address)})`,
      );
    return s.bytes.subarray(address - s.address, address - s.address + length);
  }

  symbol(name: string): SymbolInfo {
    const s = this.symbols.get(name);
    if (!s) throw new Error(`unknown symbol '${name}' (defined: ${[...this.symbols.keys()].join(", ")})`);
    return s;
  }

  /** Bytes of a function as loaded. */
  functionBytes(name: string): Uint8Array {
    const s = this.symbol(name);
    return this.read(s.address, s.size);
  }

  /** Instruction start addresses of a function (linear sweep of straight-line code). */
  boundaries(name: string): number[] {
    let b = this.boundaryCache.get(name);
    if (!b) {
      const s = this.symbol(name);
      b = instructionStarts(this.functionBytes(name)).map(([off]) => s.address + off);
      this.boundaryCache.set(name, b);
    }
    return b;
  }

  /**
   * Resolves `symbol` or `symbol+offset` (decimal or 0x hex). The offset must be an instruction
   * boundary of the function: patching from the middle of an instruction would tear it (seed item c).
   */
  resolve(spec: string): number {
    const m = /^([A-Za-z_.$:][\w.$:-]*)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(spec.trim());
    if (!m) throw new Error(`'${spec}' is not 'symbol' or 'symbol+offset'`);
    const s = this.symbol(m[1]);
    const offset = m[2] ? Number(m[2]) : 0;
    if (offset >= s.size) {
      throw new Error(`'${spec}': offset ${offset} is past the end of '${s.name}' (${s.size} bytes)`);
    }
    const address = s.address + offset;
    if (!this.boundaries(s.name).includes(address)) {
      const starts = this.boundaries(s.name).map((a) => `+${a - s.address}`);
      throw new Error(
        `'${spec}' is inside an instruction of '${s.name}': choose an instruction boundary (${starts.join(" ")})`,
      );
    }
    return address;
  }

  functionAt(address: number): SymbolInfo | undefined {
    let lo = 0;
    let hi = this.sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.sorted[mid];
      if (address < s.address) hi = mid - 1;
      else if (address >= s.address + Math.max(1, s.size)) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /**
   * Intel-syntax text of the instruction `bytes` at `address`, its near-branch targets named by
   * symbol (payload symbols included), as the report and the violations print it. A long run fetches
   * the same few instructions thousands of times: iced-x86 is asked once for each.
   */
  disassemble(bytes: readonly number[], address: number): string {
    const key = `${address}:${hex(bytes)}`;
    let text = this.texts.get(key);
    if (text === undefined) {
      text = this.symbolizeTargets(disassemble(bytes, address));
      this.texts.set(key, text);
    }
    return text;
  }

  private readonly texts = new Map<string, string>();

  private symbolizeTargets(text: string): string {
    if (!/^(j\w+|call|loop\w*|jrcxz)\s/.test(text)) return text;
    // iced-x86 prints near-branch targets as 16 hex digits with an h suffix: name them.
    return text.replace(/\b([0-9A-F]{8,16})h\b/g, (_m, h: string) => {
      const target = Number.parseInt(h, 16);
      if (!Number.isSafeInteger(target)) return `0x${h.toLowerCase().replace(/^0+/, "")}`;
      return this.functionAt(target) ? this.symbolize(target) : `0x${target.toString(16)}`;
    });
  }

  /** `name+0xoff` for an address, by the symbol that contains it (payload symbols included). */
  symbolize(address: number): string {
    const s = this.functionAt(address);
    if (!s) return `0x${address.toString(16)}`;
    const off = address - s.address;
    return off === 0 ? s.name : `${s.name}+0x${off.toString(16)}`;
  }

  /**
   * Where an indirect call or jump at `address` takes its target: the data symbol's ordinal, or a reason
   * the model cannot resolve it. Execution (model/cpu) and the call graph share this.
   */
  indirectPointer(address: number, d: Decoded): { ordinal: number } | { unresolved: string } {
    const pointer = this.pointerAddress(address, d);
    if (pointer === null) return { unresolved: "through a register or a computed address" };
    const ordinal = this.dataSymbolAt(pointer);
    if (ordinal === undefined)
      return { unresolved: `through 0x${pointer.toString(16)}, which is not a data symbol of the image` };
    return { ordinal };
  }

  /**
   * The branches of a function, decoded with iced-x86 by linear sweep: calls, jumps and conditional
   * jumps, direct (with their target address) or indirect (with the decoded instruction, for
   * `indirectPointer`). The one decoding loop behind `calleesOf` and the ELF call graph.
   */
  branchesOf(name: string): BranchSite[] {
    return this.sweep(this.symbol(name).address, this.functionBytes(name)).branches;
  }

  /**
   * The branches of the code `bytes` at `address` (a function's, or code outside every function), as
   * `branchesOf`, and whether execution may run on past its end: its last instruction is anything but
   * `ret`/`iret`, a `jmp` (direct or indirect) or `ud2` (a `call` is taken to return, `int3` to resume
   * as Xen's do_int3 does, and bytes that do not decode to the end to run on).
   */
  sweep(address: number, bytes: Uint8Array): { branches: BranchSite[]; fallsThrough: boolean } {
    const branches: BranchSite[] = [];
    let end = 0;
    let last: Decoded | undefined;
    for (const [off, len] of instructionStarts(bytes)) {
      const d = decode(bytes.subarray(off, off + len), len);
      last = d;
      end = off + len;
      const kind = BRANCH_KINDS.get(d.flow);
      if (kind === undefined || d.invalid) continue;
      const at = address + off;
      if (d.indirect) branches.push({ address: at, length: len, kind, target: null, decoded: d });
      else if (d.nearBranch)
        branches.push({ address: at, length: len, kind, target: at + d.relTarget, decoded: d });
    }
    const ends = last !== undefined && !last.invalid && end === bytes.length && FLOW_ENDS.has(last.flow);
    return { branches, fallsThrough: !ends };
  }

  /**
   * The address an indirect call or jump at `address` reads its target from, when it is static
   * (RIP-relative or absolute): a data symbol's address or any other memory word.
   */
  pointerAddress(address: number, d: Decoded): number | null {
    const t = d.indirect;
    if (t?.k !== "memory") return null;
    return t.abs ?? address + (t.rel as number);
  }

  /**
   * `call`/`jmp`/`jcc` targets of a function: direct ones, and indirect ones through a data symbol (by
   * its initial value). Indirect branches that cannot be resolved are listed in `unresolved` by
   * `symbol+offset`.
   */
  calleesOf(name: string): { callees: string[]; unresolved: string[] } {
    const callees: string[] = [];
    const unresolved: string[] = [];
    const add = (target: string | undefined) => {
      if (target && target !== name && !callees.includes(target)) callees.push(target);
    };
    for (const b of this.branchesOf(name)) {
      if (b.target === null) {
        const p = this.indirectPointer(b.address, b.decoded);
        if ("ordinal" in p) add(this.data[p.ordinal].initialSymbol);
        else unresolved.push(`${this.symbolize(b.address)} (${b.decoded.text}: ${p.unresolved})`);
        continue;
      }
      if (b.target === b.address) continue;
      add(this.functionAt(b.target)?.name);
    }
    return { callees, unresolved };
  }

  callees(name: string): string[] {
    return this.calleesOf(name).callees;
  }

  /**
   * Every function reachable from `roots` through direct calls and jumps, with the path that reaches
   * it first (breadth first, so the path is a shortest one).
   */
  callGraph(roots: string[]): Map<string, string[]> {
    const paths = new Map<string, string[]>();
    const queue: string[] = [];
    for (const r of roots) {
      this.symbol(r);
      if (!paths.has(r)) {
        paths.set(r, [r]);
        queue.push(r);
      }
    }
    while (queue.length > 0) {
      const f = queue.shift() as string;
      const path = paths.get(f) as string[];
      for (const c of this.callees(f)) {
        if (!paths.has(c)) {
          paths.set(c, [...path, c]);
          queue.push(c);
        }
      }
    }
    return paths;
  }

  /**
   * The functions whose address is taken, a sound over-approximation of what an indirect branch can
   * reach: those the binary they came from stores in data (`SymbolInfo.addressTaken`), those a data
   * symbol of the image holds, those the placed code names other than as a direct branch target
   * (`lea fn(%rip)`, `mov $fn`), and, when any function begins with ENDBR64 (an IBT build, SDM Vol. 1
   * §18.3: the compiler marks each address-taken function), every function that does.
   */
  addressTakenFunctions(): string[] {
    const taken = new Set<string>();
    for (const f of this.sorted) if (f.addressTaken) taken.add(f.name);
    for (const d of this.data) if (d.initialSymbol) taken.add(d.initialSymbol);
    const byAddress = new Map(this.sorted.map((f) => [f.address, f.name]));
    for (const g of this.segments)
      for (const a of operandAddresses(g.bytes, BigInt(g.address))) {
        const name = a <= BigInt(Number.MAX_SAFE_INTEGER) ? byAddress.get(Number(a)) : undefined;
        if (name) taken.add(name);
      }
    const endbr = this.sorted.filter((f) => {
      const b = this.read(f.address, Math.min(4, f.size));
      return b.length === 4 && b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && b[3] === 0xfa;
    });
    for (const f of endbr) taken.add(f.name);
    return this.sorted.filter((f) => taken.has(f.name)).map((f) => f.name);
  }

  /**
   * callGraph, made sound for indirect branches: an indirect call or jump whose target the image does
   * not give (through a register, through memory that is no data symbol, or a data symbol holding no
   * function) is followed to every address-taken function (`addressTakenFunctions`). A path through
   * such a site names it: `[indirect call at fn+0x12 -> any address-taken function]`. With no
   * address-taken function at all, such a site makes the answer unknown.
   */
  callGraphOverApproximated(roots: string[]): Reachability {
    const paths = new Map<string, string[]>();
    const queue: string[] = [];
    for (const r of roots) {
      this.symbol(r);
      if (!paths.has(r)) {
        paths.set(r, [r]);
        queue.push(r);
      }
    }
    const unknownSites: Array<{ site: string; kind: "call" | "jump" }> = [];
    let taken: string[] | undefined;
    const visit = (next: string, path: string[]) => {
      if (paths.has(next)) return;
      paths.set(next, [...path, next]);
      queue.push(next);
    };
    while (queue.length > 0) {
      const f = queue.shift() as string;
      const path = paths.get(f) as string[];
      for (const c of this.callees(f)) visit(c, path);
      for (const b of this.branchesOf(f)) {
        if (b.target !== null) continue;
        const p = this.indirectPointer(b.address, b.decoded);
        if ("ordinal" in p && this.data[p.ordinal].initialSymbol) continue; // followed by callees()
        const site = this.symbolize(b.address);
        const kind = b.kind === "call" ? "call" : "jump";
        unknownSites.push({ site, kind });
        taken ??= this.addressTakenFunctions();
        for (const t of taken) visit(t, [...path, indirectStep(kind, site)]);
      }
    }
    const unknown = unknownSites.length > 0 && taken?.length === 0 ? [noAddressTaken(unknownSites)] : [];
    return { paths, unknownSites: unknownSites.map((s) => s.site), unknown };
  }
}

/**
 * What code running from some roots may reach (blacklist-callgraph): `CodeImage.callGraphOverApproximated`
 * over an image, `ElfProgram.reach` over a whole ELF file.
 */
export interface Reachability {
  /**
   * Every function reached, with the path that reaches it first; a step that is not a direct branch is
   * named in brackets, such as `[indirect call at fn+0x12 -> any address-taken function]`.
   */
  paths: Map<string, string[]>;
  /** The indirect sites of unknown target on the way, by `function+offset`, each followed to every address-taken function. */
  unknownSites: string[];
  /** Why what is reached cannot be bounded, if it cannot: then a function not in `paths` may be reached too. */
  unknown: string[];
}

/** The step of a path through an indirect site of unknown target, followed to every address-taken function. */
export function indirectStep(kind: "call" | "jump", site: string): string {
  return `[indirect ${kind} at ${site} -> any address-taken function]`;
}

/** Why indirect sites of unknown target leave reachability unknown when no function's address is taken. */
export function noAddressTaken(sites: ReadonlyArray<{ site: string; kind: "call" | "jump" }>): string {
  const kinds = new Set(sites.map((s) => s.kind));
  const what = kinds.size === 2 ? "call and jump" : [...kinds][0];
  return (
    `indirect ${what} sites at ${sites.map((s) => s.site).join(", ")}, whose targets are unknown, and no ` +
    "function's address is taken (stored in data, named by code, or marked with ENDBR64) to bound them"
  );
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
