// An ELF64 x86-64 reader: the header, section headers, the symbol table, and, for relocatable objects
// (ET_REL, what livepatch payloads are), the relocations a payload's code needs (System V ABI, AMD64
// supplement §4.4: R_X86_64_64, PC32, PLT32, 32, 32S).
//
// Why not a package from npm: the candidates checked (elfy 1.0.0, elf-tools 1.1.2, elfinfo
// 0.4.0-beta) are single releases, unmaintained or beta. elfy reads 64-bit fields as lossy Numbers
// (Xen's 0xffff82d0... addresses are beyond 2^53) and reads no symbol table; elf-tools is a writer
// whose reader cannot read 8-byte fields; elfinfo is an async file-handle API with a runtime
// dependency on @types/node 14 and applies no relocations. The format needs ~300 lines over a DataView.
//
// Addresses stay exact: every address is a bigint. `Rebase` maps them into the model's small address
// space by one subtraction, so every relative distance (rel32 branches, RIP-relative operands) is kept.

/** A section header (ELF gABI "Sections"). */
export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  /** sh_addr: the link-time address; for ET_REL, the address `readElf` laid the section out at. */
  address: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  align: number;
  entsize: number;
}

export type ElfSymbolType = "notype" | "object" | "func" | "section" | "file" | "other";

/** A symbol table entry; `value` is an address (ET_REL: already its section's address + offset). */
export interface ElfSymbol {
  name: string;
  value: bigint;
  size: number;
  type: ElfSymbolType;
  bind: "local" | "global" | "weak" | "other";
  /** st_shndx: the section index, SHN_UNDEF (0) for an undefined symbol, SHN_ABS (0xfff1). */
  section: number;
}

export type ElfType = "rel" | "exec" | "dyn";

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHF_WRITE = 1n;
export const SHF_ALLOC = 2n;
export const SHF_EXECINSTR = 4n;
export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;

/** Relocation types of the AMD64 psABI §4.4.1 that `readElf` applies. */
export const R_X86_64 = {
  R_X86_64_64: 1,
  R_X86_64_PC32: 2,
  R_X86_64_PLT32: 4,
  R_X86_64_32: 10,
  R_X86_64_32S: 11,
};
const RELOCATION_NAMES: Record<number, string> = {
  0: "R_X86_64_NONE",
  1: "R_X86_64_64",
  2: "R_X86_64_PC32",
  3: "R_X86_64_GOT32",
  4: "R_X86_64_PLT32",
  5: "R_X86_64_COPY",
  6: "R_X86_64_GLOB_DAT",
  7: "R_X86_64_JUMP_SLOT",
  8: "R_X86_64_RELATIVE",
  9: "R_X86_64_GOTPCREL",
  10: "R_X86_64_32",
  11: "R_X86_64_32S",
  12: "R_X86_64_16",
  13: "R_X86_64_PC16",
  14: "R_X86_64_8",
  15: "R_X86_64_PC8",
  24: "R_X86_64_PC64",
  41: "R_X86_64_GOTPCRELX",
  42: "R_X86_64_REX_GOTPCRELX",
};

const MACHINES: Record<number, string> = {
  3: "EM_386",
  8: "EM_MIPS",
  20: "EM_PPC",
  21: "EM_PPC64",
  40: "EM_ARM",
  62: "EM_X86_64",
  183: "EM_AARCH64",
  243: "EM_RISCV",
};
const EM_X86_64 = 62;

export interface ReadElfOptions {
  /** ET_REL only: where the first allocated section is laid out (page aligned; default 0). */
  base?: bigint;
  /** ET_REL only: the address of a symbol the object uses but does not define (e.g. the hypervisor's). */
  external?: (name: string) => bigint | undefined;
  /** ET_REL only: false reads sections and symbols without applying relocations (default true). */
  relocate?: boolean;
}

/** An ELF64 x86-64 file: `name` is how errors name it (usually its path). */
export class ElfFile {
  readonly name: string;
  readonly type: ElfType;
  readonly entry: bigint;
  readonly sections: readonly ElfSection[];
  readonly symbols: readonly ElfSymbol[];
  /** Section contents, relocated for ET_REL (the file's bytes are not changed). */
  private readonly contents = new Map<number, Uint8Array>();
  private readonly bytes: Uint8Array;

  constructor(
    name: string,
    bytes: Uint8Array,
    type: ElfType,
    entry: bigint,
    sections: ElfSection[],
    symbols: ElfSymbol[],
  ) {
    this.name = name;
    this.bytes = bytes;
    this.type = type;
    this.entry = entry;
    this.sections = sections;
    this.symbols = symbols;
  }

  /** The bytes of a section as loaded (zeros for SHT_NOBITS). */
  sectionBytes(s: ElfSection): Uint8Array {
    let b = this.contents.get(s.index);
    if (!b) {
      b = s.type === SHT_NOBITS ? new Uint8Array(s.size) : this.bytes.subarray(s.offset, s.offset + s.size);
      this.contents.set(s.index, b);
    }
    return b;
  }

  /** Replaces a section's contents (relocation writes a copy). */
  setSectionBytes(s: ElfSection, b: Uint8Array): void {
    this.contents.set(s.index, b);
  }

  /** The allocated section holding `address`, if any. */
  sectionAt(address: bigint): ElfSection | undefined {
    return this.sections.find(
      (s) => (s.flags & SHF_ALLOC) !== 0n && address >= s.address && address < s.address + BigInt(s.size),
    );
  }

  /** `length` bytes at `address` from one allocated section, or undefined if they are not all in one. */
  read(address: bigint, length: number): Uint8Array | undefined {
    const s = this.sectionAt(address);
    if (!s) return undefined;
    const off = Number(address - s.address);
    if (off + length > s.size) return undefined;
    return this.sectionBytes(s).subarray(off, off + length);
  }
}

/** Reads an ELF64 x86-64 file; every malformation is an error that names the file and the culprit. */
export function readElf(bytes: Uint8Array, name: string, options: ReadElfOptions = {}): ElfFile {
  const fail = (why: string): never => {
    throw new Error(`${name}: ${why}`);
  };
  const magic = [0x7f, 0x45, 0x4c, 0x46];
  if (bytes.length < 16 || magic.some((m, i) => bytes[i] !== m)) {
    const first = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    fail(`not an ELF file (it starts with ${first || "nothing"}, not 7f 45 4c 46)`);
  }
  // e_ident[EI_CLASS], [EI_DATA] (ELF gABI "ELF Identification").
  if (bytes[4] === 1) fail("a 32-bit ELF (ELFCLASS32); only ELF64 x86-64 files can be read");
  if (bytes[4] !== 2) fail(`unknown ELF class ${bytes[4]} (expected 2, ELFCLASS64)`);
  if (bytes[5] !== 1) fail("a big-endian ELF (ELFDATA2MSB); x86-64 files are little-endian");
  if (bytes.length < 64) fail(`truncated: ${bytes.length} bytes, shorter than the 64-byte ELF64 header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number) => view.getBigUint64(o, true);
  const small = (v: bigint, what: string): number => {
    if (v > BigInt(bytes.length)) fail(`${what} (${v}) is past the end of the file (${bytes.length} bytes)`);
    return Number(v);
  };
  const machine = u16(18);
  if (machine !== EM_X86_64) {
    fail(`an ELF for ${MACHINES[machine] ?? "machine"} (${machine}), not x86-64 (EM_X86_64, 62)`);
  }
  const eType = u16(16);
  const type: ElfType | undefined = ({ 1: "rel", 2: "exec", 3: "dyn" } as const)[eType as 1 | 2 | 3];
  if (!type) fail(`ELF type ${eType} is not ET_REL, ET_EXEC or ET_DYN (a core file or unknown)`);
  const entry = u64(24);
  const shoff = small(u64(40), "the section header table offset");
  const shentsize = u16(58);
  const shnum = u16(60);
  const shstrndx = u16(62);
  if (shnum === 0) fail("no section headers, so no symbol table");
  if (shentsize !== 64) fail(`section header entries of ${shentsize} bytes (ELF64 has 64)`);
  if (shoff + shnum * 64 > bytes.length) {
    fail(`truncated: ${shnum} section headers at offset ${shoff} run past the end (${bytes.length} bytes)`);
  }
  const raw: ElfSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * 64;
    const sectionType = u32(o + 4);
    const offset = small(u64(o + 24), `section ${i}'s offset`);
    const size = u64(o + 32);
    if (sectionType !== SHT_NOBITS && BigInt(offset) + size > BigInt(bytes.length)) {
      fail(`truncated: section ${i} (offset ${offset}, ${size} bytes) runs past the end of the file`);
    }
    raw.push({
      index: i,
      name: String(u32(o)),
      type: sectionType,
      flags: u64(o + 8),
      address: u64(o + 16),
      offset,
      size: Number(size),
      link: u32(o + 40),
      info: u32(o + 44),
      align: Number(u64(o + 48)),
      entsize: Number(u64(o + 56)),
    });
  }
  const stringAt = (table: ElfSection | undefined, at: number, what: string): string => {
    if (!table || table.type !== SHT_STRTAB) return fail(`${what}: its string table is missing`);
    if (at >= table.size) fail(`${what}: name offset ${at} is past its string table's end`);
    let end = table.offset + at;
    const stop = table.offset + table.size;
    while (end < stop && bytes[end] !== 0) end++;
    return new TextDecoder().decode(bytes.subarray(table.offset + at, end));
  };
  const shstr = raw[shstrndx];
  for (const s of raw) s.name = s.index === 0 ? "" : stringAt(shstr, Number(s.name), `section ${s.index}`);

  if (type === "rel") layOut(raw, options.base ?? 0n);

  const symtab = raw.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) {
    fail("no symbol table (.symtab): the file is stripped; use the unstripped image (xen-syms, vmlinux)");
  }
  const table = symtab as ElfSection;
  if (table.entsize !== 24) fail(`symbol table entries of ${table.entsize} bytes (ELF64 has 24)`);
  const symbols: ElfSymbol[] = [];
  const strtab = raw[table.link];
  for (let o = table.offset; o + 24 <= table.offset + table.size; o += 24) {
    const info = bytes[o + 4];
    const shndx = u16(o + 6);
    let value = u64(o + 8);
    const t = info & 0xf;
    const b = info >> 4;
    // ET_REL symbol values are offsets in their section (gABI "Symbol Values").
    if (type === "rel" && shndx !== SHN_UNDEF && shndx < raw.length) value += raw[shndx].address;
    const symbolType = (["notype", "object", "func", "section", "file"] as const)[t] ?? "other";
    symbols.push({
      name:
        symbolType === "section" && shndx < raw.length
          ? raw[shndx].name
          : stringAt(strtab, u32(o), `symbol ${(o - table.offset) / 24}`),
      value,
      size: Number(u64(o + 16)),
      type: symbolType,
      bind: (["local", "global", "weak"] as const)[b] ?? "other",
      section: shndx,
    });
  }
  const elf = new ElfFile(name, bytes, type as ElfType, entry, raw, symbols);
  if (type === "rel" && options.relocate !== false) relocate(elf, options.external ?? (() => undefined));
  return elf;
}

/** ET_REL: gives each allocated section an address, in file order, aligned as it asks. */
function layOut(sections: ElfSection[], base: bigint): void {
  let at = base;
  for (const s of sections) {
    if ((s.flags & SHF_ALLOC) === 0n) continue;
    const align = BigInt(Math.max(1, s.align));
    at = ((at + align - 1n) / align) * align;
    s.address = at;
    at += BigInt(s.size);
  }
}

/**
 * Applies the RELA relocations of every allocated section of an ET_REL file (AMD64 psABI §4.4:
 * S + A for R_X86_64_64/32/32S, S + A - P for PC32/PLT32; a PLT32 call binds directly, as a livepatch
 * loader does). Relocations of unallocated sections (debug info) are not needed to run code.
 */
function relocate(elf: ElfFile, external: (name: string) => bigint | undefined): void {
  const fail = (why: string): never => {
    throw new Error(`${elf.name}: ${why}`);
  };
  for (const rs of elf.sections) {
    if (rs.type !== SHT_REL && rs.type !== SHT_RELA) continue;
    const target = elf.sections[rs.info];
    if (!target || (target.flags & SHF_ALLOC) === 0n) continue;
    if (rs.type === SHT_REL) fail(`${rs.name}: SHT_REL relocations (without addends) are not used on x86-64`);
    if (rs.entsize !== 24) fail(`${rs.name}: relocation entries of ${rs.entsize} bytes (Elf64_Rela has 24)`);
    const table = elf.sectionBytes(rs);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    const out = Uint8Array.from(elf.sectionBytes(target));
    const outView = new DataView(out.buffer);
    for (let o = 0; o + 24 <= table.length; o += 24) {
      const offset = Number(view.getBigUint64(o, true));
      const info = view.getBigUint64(o + 8, true);
      const addend = view.getBigInt64(o + 16, true);
      const type = Number(info & 0xffff_ffffn);
      const symbol = elf.symbols[Number(info >> 32n)];
      const where = `${target.name}+0x${offset.toString(16)}`;
      const typeName = RELOCATION_NAMES[type] ?? `type ${type}`;
      if (!symbol)
        fail(`relocation ${typeName} at ${where} names symbol ${info >> 32n}, which does not exist`);
      let s = symbol.value;
      if (symbol.section === SHN_UNDEF) {
        const resolved = external(symbol.name);
        if (resolved === undefined) {
          fail(
            `relocation ${typeName} at ${where} refers to '${symbol.name}', which the object does not define; ` +
              "give the image it links against (its symbols resolve the payload's)",
          );
        }
        s = resolved as bigint;
        symbol.value = s; // linked: the undefined symbol now has the address it resolved to
      } else if (symbol.section === SHN_COMMON) {
        fail(
          `relocation ${typeName} at ${where} refers to the common symbol '${symbol.name}': not supported`,
        );
      }
      const p = target.address + BigInt(offset);
      const size = type === R_X86_64.R_X86_64_64 ? 8 : 4;
      if (offset + size > out.length) fail(`relocation ${typeName} at ${where} is past the section's end`);
      switch (type) {
        case R_X86_64.R_X86_64_64:
          outView.setBigUint64(offset, BigInt.asUintN(64, s + addend), true);
          break;
        case R_X86_64.R_X86_64_PC32:
        case R_X86_64.R_X86_64_PLT32:
          outView.setInt32(offset, fits(s + addend - p, true, typeName, where, symbol.name, fail), true);
          break;
        case R_X86_64.R_X86_64_32S:
          outView.setInt32(offset, fits(s + addend, true, typeName, where, symbol.name, fail), true);
          break;
        case R_X86_64.R_X86_64_32:
          outView.setUint32(offset, fits(s + addend, false, typeName, where, symbol.name, fail), true);
          break;
        default:
          fail(
            `relocation ${typeName} at ${where} (against '${symbol.name}') is not handled; ` +
              "handled: R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32, R_X86_64_32S",
          );
      }
    }
    elf.setSectionBytes(target, out);
  }
}

function fits(
  v: bigint,
  signed: boolean,
  typeName: string,
  where: string,
  symbol: string,
  fail: (why: string) => never,
): number {
  const ok = signed ? v >= -(1n << 31n) && v < 1n << 31n : v >= 0n && v < 1n << 32n;
  if (!ok) {
    fail(
      `relocation ${typeName} at ${where} against '${symbol}' overflows: 0x${v.toString(16)} does not fit ` +
        `${signed ? "a signed" : "an unsigned"} 32-bit field (place the object nearer what it uses)`,
    );
  }
  return Number(v);
}

/**
 * A rebase into the model's address space: model = elf - delta, one subtraction for every address, so
 * relative distances are exact. `delta` keeps each address's offset within its 4 KiB page.
 */
export class Rebase {
  readonly delta: bigint;
  constructor(lowest: bigint, modelBase: number) {
    if (modelBase % 0x1000 !== 0)
      throw new Error(`the model base 0x${modelBase.toString(16)} is not page aligned`);
    this.delta = (lowest & ~0xfffn) - BigInt(modelBase);
  }
  toModel(address: bigint): number {
    const v = address - this.delta;
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Error(`0x${address.toString(16)} lies outside the rebased range`);
    }
    return Number(v);
  }
  toElf(address: number): bigint {
    return BigInt(address) + this.delta;
  }
}

/** 0x-prefixed hex of an exact 64-bit address. */
export function hex64(address: bigint): string {
  return `0x${address.toString(16)}`;
}
