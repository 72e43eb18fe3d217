// Writes test/fixtures/callgraph.elf, a small ELF64 x86-64 executable laid out like Xen's text (at
// 0xffff82d040200000, beyond exact JavaScript numbers) with what the ELF call graph must handle:
// direct calls and jumps, a conditional tail call, an indirect call through a pointer in .data (and one
// whose pointer is 0 in the file, set at boot like Xen's mce_callbacks), a call through a register, a
// retpoline thunk call, return-thunk jumps, ENDBR64 at address-taken functions, an address taken by
// `lea`, two local functions of one name, an assembly entry label, and a backward jump of more than
// 1 MiB from a second text section.
//
// It also writes test/fixtures/payload.o, a relocatable object (ET_REL) as a Xen livepatch payload
// is: a new mce_handler whose calls to the fixture's send_event and helper2 are left to the loader
// (R_X86_64_PLT32, as GCC emits for calls, and R_X86_64_PC32, as older compilers do).
//
//   npm run build && node dist/scripts/make-elf-fixture.js     # rewrites both fixtures
//
// test/elf.test.ts checks that the committed files are exactly what this script writes.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { R_X86_64 } from "../model/elf.js";
import { encode, type Item, itemSize, labelOffset, type WriterSymbol, writeElf } from "./elf-writer.js";

export const TEXT = 0xffff82d0_40200000n;
/** The second text section: 1.125 MiB above the first, so its jump back is farther than 1 MiB. */
export const FAR_TEXT = TEXT + 0x12_0000n;
export const DATA = TEXT + 0x20_0000n;

const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa];
const PUSH_RBP = [0x55];
const MOV_RBP_RSP = [0x48, 0x89, 0xe5];
const POP_RBP = [0x5d];
const RET = [0xc3];
const TEST_EAX = [0x85, 0xc0];
const CALL_RAX = [0xff, 0xd0];
const IRETQ = [0x48, 0xcf];

interface Fn {
  name: string;
  items: Item[];
  section: ".text" | ".text.far";
  /** A NOTYPE label (an assembly entry point) instead of a sized FUNC. */
  label?: boolean;
  local?: boolean;
}

export const FUNCTIONS: Fn[] = [
  // An assembly entry point (Xen's entry.S style): a NOTYPE label, no size.
  { name: "nmi_entry", section: ".text", label: true, items: [{ call: "do_nmi" }, IRETQ] },
  {
    name: "do_nmi",
    section: ".text",
    items: [
      ENDBR64,
      PUSH_RBP,
      MOV_RBP_RSP,
      { call: "nmi_work" },
      { callPointer: "nmi_hook" }, // call *nmi_hook(%rip): an altcall-style site
      { call: "__x86_indirect_thunk_rax" }, // a retpoline: call *%rax
      TEST_EAX,
      { jne: "nmi_slow" }, // a conditional tail call
      POP_RBP,
      { jmp: "__x86_return_thunk" },
    ],
  },
  {
    name: "nmi_work",
    section: ".text",
    items: [
      PUSH_RBP,
      { label: "again" },
      { call: "helper" },
      TEST_EAX,
      { je: "nmi_work.again" },
      POP_RBP,
      RET,
    ],
  },
  // static helper() in one file...
  { name: "helper", section: ".text", local: true, items: [ENDBR64, { leaRax: "hook_b" }, RET] },
  { name: "nmi_slow", section: ".text", items: [{ call: "far_handler" }, { jmp: "__x86_return_thunk" }] },
  // The far jump lands here: reachable only through it.
  { name: "low_target", section: ".text", items: [PUSH_RBP, POP_RBP, { jmp: "__x86_return_thunk" }] },
  { name: "hook_a", section: ".text", items: [ENDBR64, RET] },
  { name: "hook_b", section: ".text", items: [ENDBR64, { call: "helper2" }, RET] },
  {
    name: "do_machine_check",
    section: ".text",
    items: [PUSH_RBP, { callPointer: "mce_callbacks" }, CALL_RAX, POP_RBP, { jmp: "__x86_return_thunk" }],
  },
  { name: "mce_handler", section: ".text", items: [ENDBR64, { call: "send_event" }, RET] },
  { name: "send_event", section: ".text", items: [PUSH_RBP, POP_RBP, RET] },
  // ...and static helper() in another: same name, another function.
  { name: "helper", section: ".text", local: true, items: [RET] },
  { name: "helper2", section: ".text", items: [RET] },
  { name: "unreached", section: ".text", items: [{ call: "do_nmi" }, { call: "send_event" }, RET] },
  // Xen arch/x86/indirect-thunk.S: call 1f; 2: pause; lfence; jmp 2b; 1: mov %rax,(%rsp); ret.
  {
    name: "__x86_indirect_thunk_rax",
    section: ".text",
    items: [
      [0xe8, 0x07, 0, 0, 0],
      [0xf3, 0x90],
      [0x0f, 0xae, 0xe8],
      [0xeb, 0xf9],
      [0x48, 0x89, 0x04, 0x24],
      RET,
    ],
  },
  { name: "__x86_return_thunk", section: ".text", items: [RET, [0xcc]] },
  // 1.125 MiB above: calls back into the first section, then jumps back more than 1 MiB.
  {
    name: "far_handler",
    section: ".text.far",
    items: [ENDBR64, PUSH_RBP, { call: "send_event" }, POP_RBP, { jmp: "low_target" }],
  },
];

/** Data: nmi_hook points at hook_a in the file; mce_callbacks is 0 until boot sets it. */
export const DATA_OBJECTS = [
  { name: "nmi_hook", initial: "hook_a" },
  { name: "mce_callbacks", initial: null },
  { name: "hook_table", initial: "hook_b" },
] as const;

/** Function addresses: 16-byte aligned from the start of each section, in order. */
export function layout(): Map<string, bigint> {
  const at = new Map<string, bigint>();
  const next = { ".text": TEXT, ".text.far": FAR_TEXT };
  FUNCTIONS.forEach((f, i) => {
    const a = next[f.section];
    at.set(key(f, i), a);
    const size = f.items.reduce((n, it) => n + itemSize(it), 0);
    next[f.section] = ((a + BigInt(size) + 15n) / 16n) * 16n;
  });
  DATA_OBJECTS.forEach((d, k) => {
    at.set(d.name, DATA + BigInt(8 * k));
  });
  return at;
}

/** The first function of a name keeps it; a later one is `name#index` inside this script. */
function key(f: Fn, i: number): string {
  return FUNCTIONS.findIndex((g) => g.name === f.name) === i ? f.name : `${f.name}#${i}`;
}

export function makeFixture(): Uint8Array {
  const at = layout();
  const address = (s: string): bigint => {
    const [fn, label] = s.split(".") as [string, string | undefined];
    const base = at.get(fn);
    if (base === undefined) throw new Error(`no symbol '${s}'`);
    if (!label) return base;
    const f = FUNCTIONS.find((g) => g.name === fn) as Fn;
    return base + BigInt(labelOffset(f.items, label));
  };
  const text: number[] = [];
  const far: number[] = [];
  const symbols: WriterSymbol[] = [
    { name: "fixture.S", value: 0n, size: 0, type: "file", bind: "local", section: "ABS" },
  ];
  FUNCTIONS.forEach((f, i) => {
    const a = at.get(key(f, i)) as bigint;
    const code = encode(f.name, f.items, a, address);
    const [buffer, base] = f.section === ".text" ? [text, TEXT] : [far, FAR_TEXT];
    while (BigInt(buffer.length) < a - base) buffer.push(0xcc);
    buffer.push(...code);
    symbols.push({
      name: f.name,
      value: a,
      size: f.label ? 0 : code.length,
      type: f.label ? "notype" : "func",
      bind: f.local ? "local" : "global",
      section: f.section,
    });
  });
  const data = new Uint8Array(8 * DATA_OBJECTS.length);
  const view = new DataView(data.buffer);
  DATA_OBJECTS.forEach((d, k) => {
    if (d.initial) view.setBigUint64(8 * k, at.get(d.initial) as bigint, true);
    symbols.push({
      name: d.name,
      value: DATA + BigInt(8 * k),
      size: 8,
      type: "object",
      bind: "global",
      section: ".data",
    });
  });
  const SHF_AX = 2n | 4n;
  return writeElf({
    type: "exec",
    entry: at.get("nmi_entry"),
    sections: [
      { name: ".text", type: 1, flags: SHF_AX, address: TEXT, bytes: Uint8Array.from(text), align: 4096 },
      {
        name: ".text.far",
        type: 1,
        flags: SHF_AX,
        address: FAR_TEXT,
        bytes: Uint8Array.from(far),
        align: 16,
      },
      { name: ".data", type: 1, flags: 2n | 1n, address: DATA, bytes: data, align: 8 },
    ],
    symbols,
  });
}

export const FIXTURE_PATH = "test/fixtures/callgraph.elf";
export const PAYLOAD_PATH = "test/fixtures/payload.o";

/**
 * payload.o: `mce_handler`, the replacement of the fixture's (ENDBR64, then calls of send_event and
 * helper2, which the object leaves undefined), as `gcc -c -fcf-protection` would compile
 * `void mce_handler(void) { send_event(); helper2(); }`. Its call displacements are 0 in the file: the
 * loader writes them (S + A - P, AMD64 psABI §4.4).
 */
export function makePayloadFixture(): Uint8Array {
  const text = Uint8Array.from([
    ...ENDBR64,
    ...[0xe8, 0, 0, 0, 0], // call send_event   R_X86_64_PLT32 at +5
    ...[0xe8, 0, 0, 0, 0], // call helper2      R_X86_64_PC32 at +10
    ...RET,
  ]);
  return writeElf({
    type: "rel",
    sections: [{ name: ".text", type: 1, flags: 2n | 4n, address: 0n, bytes: text, align: 16 }],
    symbols: [
      { name: "payload.c", value: 0n, size: 0, type: "file", bind: "local", section: "ABS" },
      { name: "mce_handler", value: 0n, size: text.length, type: "func", bind: "global", section: ".text" },
      { name: "send_event", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
      { name: "helper2", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
    ],
    relocations: [
      { section: ".text", offset: 5, type: R_X86_64.R_X86_64_PLT32, symbol: "send_event", addend: -4n },
      { section: ".text", offset: 10, type: R_X86_64.R_X86_64_PC32, symbol: "helper2", addend: -4n },
    ],
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(FIXTURE_PATH, makeFixture());
  writeFileSync(PAYLOAD_PATH, makePayloadFixture());
  process.stdout.write(`wrote ${FIXTURE_PATH} and ${PAYLOAD_PATH}\n`);
}
