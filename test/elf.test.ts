// Real binaries: the ELF64 reader (model/elf.ts), the call graph and machine images over an ELF
// (model/elf-image.ts) on the fixture that scripts/make-elf-fixture.ts writes, relocatable objects,
// and malformed input.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { defineScenario } from "../dist/model/define.js";
import { R_X86_64, readElf, SHF_ALLOC, SHF_EXECINSTR } from "../dist/model/elf.js";
import { ElfProgram } from "../dist/model/elf-image.js";
import { CODE_BASE } from "../dist/model/image.js";
import { DEFAULT_HARDWARE, defineMachine } from "../dist/model/machine.js";
import { findProtocol } from "../dist/model/protocols/index.js";
import { type ElfDescription, writeElf } from "../dist/scripts/elf-writer.js";
import { FIXTURE_PATH, makeFixture } from "../dist/scripts/make-elf-fixture.js";
import { reachProgram } from "./helpers/elf-program.js";

const FIXTURE = new Uint8Array(readFileSync(FIXTURE_PATH));
const program = () => new ElfProgram(readElf(FIXTURE, "callgraph.elf"));
const HELPER = "helper:0xffff82d040200050"; // the first of two local functions named helper

describe("the ELF fixture", () => {
  it("is exactly what scripts/make-elf-fixture.ts writes", () => {
    expect(Buffer.from(makeFixture()).equals(Buffer.from(FIXTURE))).toBe(true);
  });

  it("reads sections and symbols with exact 64-bit addresses", () => {
    const elf = readElf(FIXTURE, "callgraph.elf");
    expect(elf.type).toBe("exec");
    expect(elf.entry).toBe(0xffff82d0_40200000n);
    expect(elf.sections.map((s) => s.name)).toEqual([
      "",
      ".text",
      ".text.far",
      ".data",
      ".symtab",
      ".strtab",
      ".shstrtab",
    ]);
    const far = elf.symbols.find((s) => s.name === "far_handler");
    expect(far).toMatchObject({ value: 0xffff82d0_40320000n, size: 16, type: "func", bind: "global" });
    expect(elf.symbols.filter((s) => s.name === "helper").map((s) => s.bind)).toEqual(["local", "local"]);
    const text = elf.sections[1];
    expect((text.flags & SHF_ALLOC) !== 0n && (text.flags & SHF_EXECINSTR) !== 0n).toBe(true);
  });

  it("names functions uniquely: shared local names get their address, a label gets a size", () => {
    const p = program();
    expect(p.functions.map((f) => f.name)).toEqual([
      "nmi_entry",
      "do_nmi",
      "nmi_work",
      HELPER,
      "nmi_slow",
      "low_target",
      "hook_a",
      "hook_b",
      "do_machine_check",
      "mce_handler",
      "send_event",
      "helper:0xffff82d0402000d0",
      "helper2",
      "unreached",
      "__x86_indirect_thunk_rax",
      "__x86_return_thunk",
      "far_handler",
    ]);
    expect(p.function("nmi_entry").size).toBe(16); // NOTYPE: up to do_nmi
    expect(() => p.function("helper")).toThrow(
      "callgraph.elf: unknown function 'helper' (similar: helper:0xffff82d040200050, helper:0xffff82d0402000d0, helper2)",
    );
  });
});

describe("the call graph of an ELF", () => {
  it("follows direct calls and jumps, the far backward jump included, and flags indirect sites", () => {
    const g = program().callGraph(["do_nmi"]);
    expect([...g.functions]).toEqual([
      ["do_nmi", ["do_nmi"]],
      ["nmi_work", ["do_nmi", "nmi_work"]],
      ["nmi_slow", ["do_nmi", "nmi_slow"]], // jne: a conditional tail call
      [HELPER, ["do_nmi", "nmi_work", HELPER]],
      ["far_handler", ["do_nmi", "nmi_slow", "far_handler"]],
      ["send_event", ["do_nmi", "nmi_slow", "far_handler", "send_event"]],
      // far_handler's `jmp low_target` goes back 1.125 MiB: it must not wrap.
      ["low_target", ["do_nmi", "nmi_slow", "far_handler", "low_target"]],
    ]);
    expect(g.indirect).toEqual([
      {
        site: "do_nmi+0xd",
        address: 0xffff82d0_4020001dn,
        kind: "call",
        via: { k: "pointer", pointer: "nmi_hook", address: 0xffff82d0_40400000n },
        targets: [],
      },
      {
        site: "do_nmi+0x13",
        address: 0xffff82d0_40200023n,
        kind: "call",
        via: { k: "thunk", thunk: "__x86_indirect_thunk_rax", register: "rax" },
        targets: [],
      },
    ]);
    // the thunks are not functions of the graph: a retpoline is a call through a register,
    // `jmp __x86_return_thunk` a return (do_nmi, nmi_slow, low_target)
    expect(g.functions.has("__x86_indirect_thunk_rax")).toBe(false);
    expect(g.functions.has("__x86_return_thunk")).toBe(false);
    expect(g.returnThunkJumps).toBe(3);
    expect(g.notFollowed).toBe(2);
    expect(g.outside).toEqual([]);
  });

  it("follows the targets given for a site or for the pointer it reads", () => {
    const p = program();
    const g = p.callGraph(["do_nmi"], {
      targets: new Map([
        ["nmi_hook", ["hook_a"]],
        ["do_nmi+0x13", ["hook_b"]],
      ]),
    });
    expect(g.indirect.map((s) => [s.site, s.targets])).toEqual([
      ["do_nmi+0xd", ["hook_a"]],
      ["do_nmi+0x13", ["hook_b"]],
    ]);
    expect(g.notFollowed).toBe(0);
    expect(g.functions.get("helper2")).toEqual(["do_nmi", "hook_b", "helper2"]);
    const mce = p.callGraph(["do_machine_check"], { targets: new Map([["mce_callbacks", ["mce_handler"]]]) });
    expect([...mce.functions.keys()]).toEqual(["do_machine_check", "mce_handler", "send_event"]);
    expect(mce.indirect.map((s) => [s.site, s.via.k, s.targets])).toEqual([
      ["do_machine_check+0x1", "pointer", ["mce_handler"]],
      ["do_machine_check+0x7", "register", []], // call *%rax
    ]);
    expect(mce.notFollowed).toBe(1);
  });

  it("rejects targets it cannot place", () => {
    const p = program();
    expect(() => p.callGraph(["do_nmi"], { targets: new Map([["do_nmi+2", ["hook_a"]]]) })).toThrow(
      "callgraph.elf: 'do_nmi+2' is inside an instruction of 'do_nmi'",
    );
    expect(() => p.callGraph(["do_nmi"], { targets: new Map([["nowhere", ["hook_a"]]]) })).toThrow(
      "callgraph.elf: target site 'nowhere' is neither a function's 'symbol+offset' nor a data object",
    );
    expect(() => p.callGraph(["do_nmi"], { targets: new Map([["nmi_hook", ["nope"]]]) })).toThrow(
      "callgraph.elf: unknown function 'nope'",
    );
    expect(() => p.callGraph([])).toThrow(
      "callgraph.elf: no roots: name at least one function to start from",
    );
    expect(() => p.callGraph(["nmi_hook"])).toThrow(
      "callgraph.elf: unknown function 'nmi_hook' ('nmi_hook' is a data object)",
    );
  });

  it("over-approximates indirect targets by the address-taken functions", () => {
    const p = program();
    const taken = p.addressTaken();
    // data: nmi_hook -> hook_a, hook_table -> hook_b; code: lea hook_b(%rip); ENDBR64: six functions
    expect(taken).toEqual({
      functions: ["do_nmi", HELPER, "hook_a", "hook_b", "mce_handler", "far_handler"],
      inData: 2,
      inCode: 1,
      endbr: 6,
    });
    const g = p.callGraph(["do_machine_check"], { overApproximate: true });
    expect(g.notFollowed).toBe(4); // mce_callbacks, call *%rax, and do_nmi's two sites
    expect(new Set(g.functions.keys())).toEqual(
      new Set([
        "do_machine_check",
        "do_nmi",
        HELPER,
        "hook_a",
        "hook_b",
        "mce_handler",
        "far_handler",
        "send_event",
        "nmi_work",
        "nmi_slow",
        "helper2",
        "low_target",
      ]),
    );
  });
});

describe("symbol+offset in an ELF function that begins with ENDBR64", () => {
  it("rejects +1..+3 (inside endbr64) and accepts +4, the first instruction after it", () => {
    const p = program();
    for (const off of [1, 2, 3]) {
      expect(() => p.resolve(`do_nmi+${off}`)).toThrow(
        `callgraph.elf: 'do_nmi+${off}' is inside an instruction of 'do_nmi': choose an instruction boundary (+0 +4 +5 +8 +13 +19 +24 +26 +32 +33)`,
      );
    }
    expect(p.resolve("do_nmi+4")).toBe(0xffff82d0_40200014n);
    expect(p.resolve("do_nmi")).toBe(0xffff82d0_40200010n);
    expect(() => p.resolve("do_nmi+38")).toThrow(
      "callgraph.elf: 'do_nmi+38': offset 38 is past the end of 'do_nmi' (38 bytes)",
    );
    expect(() => p.resolve("nothere+4")).toThrow("callgraph.elf: unknown function 'nothere'");
  });
});

describe("what code may reach over a whole ELF (ElfProgram.reach, for blacklist-callgraph)", () => {
  const { bytes, at } = reachProgram();
  const p = () => new ElfProgram(readElf(bytes, "reach.elf"));

  it("follows code that runs on past a function's end and code a branch reaches outside every function", () => {
    const r = p().reach(["nmi_stub", "checked"]);
    expect(r.paths.get("site_a")).toEqual(["nmi_stub", "[falls through]", "nmi_stub_common", "site_a"]);
    const tail = `0x${((at.get("checked") as bigint) + 9n).toString(16)}`;
    expect(r.paths.get("site_b")).toEqual(["checked", `code at ${tail}`, "site_b"]);
    expect(r.paths.has("site_c")).toBe(false);
    expect(r.unknown).toEqual([]);
    expect(r.unknownSites).toEqual([]);
    // The call graph of direct branches alone sees neither: the gap reach closes.
    const direct = p().callGraph(["nmi_stub", "checked"]);
    expect(direct.functions.has("site_a")).toBe(false);
    expect(direct.functions.has("site_b")).toBe(false);
  });

  it("says reachability is unknown where a branch leaves the file's code", () => {
    const target = (at.get("far") as bigint) + 5n + 0x1000_0000n;
    expect(p().reach(["far"]).unknown).toEqual([
      `a jump at far to 0x${target.toString(16)}, outside the file's code`,
    ]);
  });

  it("makes blacklist-callgraph refuse as unknown a site no path reaches while a branch leaves the code", () => {
    const refusal = (eventRoots: string[]) =>
      defineMachine(
        { protocol: "blacklist-callgraph", scenario: "reach", hardware: DEFAULT_HARDWARE },
        findProtocol("blacklist-callgraph"),
        defineScenario({
          name: "reach",
          image: { elf: bytes },
          patch: { target: "site_c" },
          workload: "site_c",
          nmiService: "site_a",
          eventRoots,
        }),
      ).refusal;
    const target = (at.get("far") as bigint) + 5n + 0x1000_0000n;
    expect(refusal(["site_a", "far"])?.reason).toBe(
      `reachability unknown: a jump at far to 0x${target.toString(16)}, outside the file's code: so 'site_c' may be reachable from an event handler`,
    );
    expect(refusal(["site_a", "checked"])).toBeUndefined();
  });

  it("follows the fixture's unknown indirect calls to every address-taken function, naming the site", () => {
    const r = program().reach(["do_machine_check"]);
    expect(r.unknownSites).toEqual([
      "do_machine_check+0x1",
      "do_machine_check+0x7",
      "do_nmi+0xd",
      "do_nmi+0x13",
    ]);
    expect(r.paths.get("nmi_work")).toEqual([
      "do_machine_check",
      "[indirect call at do_machine_check+0x1 -> any address-taken function]",
      "do_nmi",
      "nmi_work",
    ]);
    expect(r.paths.has("unreached")).toBe(false);
    // A given target is taken as the site's only one.
    const given = program().reach(
      ["do_machine_check"],
      new Map([
        ["mce_callbacks", ["mce_handler"]],
        ["do_machine_check+0x7", ["send_event"]],
      ]),
    );
    expect([...given.paths.keys()]).toEqual(["do_machine_check", "mce_handler", "send_event"]);
    expect(given.paths.get("mce_handler")).toEqual(["do_machine_check", "mce_handler"]);
  });
});

describe("a machine image from an ELF", () => {
  it("places only the reachable functions and the return thunk, rebased with their distances kept", () => {
    const p = program();
    const image = p.machineImage({
      roots: ["do_machine_check"],
      targets: new Map([["mce_callbacks", ["mce_handler"]]]),
    });
    expect([...image.symbols.keys()]).toEqual([
      "do_machine_check",
      "mce_handler",
      "send_event",
      "__x86_return_thunk",
    ]);
    // one rebase: do_machine_check keeps its offset in its page; the bytes are the file's
    const at = (name: string) => image.symbol(name).address;
    expect(at("do_machine_check")).toBe(CODE_BASE + 0xa0);
    expect(at("__x86_return_thunk") - at("do_machine_check")).toBe(0x80);
    // only they are placed: the first three within a linker's padding of each other share a segment,
    // the thunk 93 bytes past send_event's end has its own
    expect(image.segments.map((g) => [g.address - CODE_BASE, g.bytes.length])).toEqual([
      [0xa0, 0xc3 - 0xa0],
      [0x120, 2],
    ]);
    expect(image.placedBytes).toBe(0x23 + 2);
    const file = readElf(FIXTURE, "f").read(0xffff82d0_402000a0n, 15) as Uint8Array;
    expect([...image.functionBytes("do_machine_check")]).toEqual([...file]);
    // padding inside a segment is int3; the file's unreached code between segments is not placed
    expect(image.read(at("do_machine_check") + 15, 1)[0]).toBe(0xcc);
    expect(() => image.read(at("send_event") + 16, 1)).toThrow(
      `no code is placed at 0x${(at("send_event") + 16).toString(16)}..0x${(at("send_event") + 17).toString(16)}`,
    );
    // the pointer is a data symbol at its rebased address, holding the given target
    expect(image.data).toEqual([
      {
        name: "mce_callbacks",
        address: CODE_BASE + 0x20_0008,
        initial: at("mce_handler"),
        initialSymbol: "mce_handler",
      },
    ]);
    expect(image.calleesOf("do_machine_check")).toEqual({
      callees: ["mce_handler", "__x86_return_thunk"],
      unresolved: ["do_machine_check+0x7 (call rax: through a register or a computed address)"],
    });
    expect(image.resolve("mce_handler+4")).toBe(at("mce_handler") + 4);
  });

  it("keeps the far backward jump right across the rebase", () => {
    const image = program().machineImage({ roots: ["nmi_slow"] });
    expect([...image.symbols.keys()]).toEqual([
      "nmi_slow",
      "low_target",
      "send_event",
      "__x86_return_thunk",
      "far_handler",
    ]);
    expect(image.symbol("far_handler").address - image.symbol("low_target").address).toBe(0x11_ff90);
    expect(image.callees("far_handler")).toEqual(["send_event", "low_target"]);
  });

  it("refuses a placement wider than the machine's limit, naming the farthest functions", () => {
    expect(() => program().machineImage({ roots: ["nmi_slow"], limit: 0x1_0000 })).toThrow(
      "callgraph.elf: the 5 functions to place span 1179664 bytes (nmi_slow at 0xffff82d040200060 to far_handler at 0xffff82d040320000), more than the machine's 65536",
    );
  });
});

describe("a machine image with a payload object (ET_REL)", () => {
  // fix.o: send_event (replacing the base's) calls the base's helper2 and reads its nmi_hook;
  // fix_local calls the object's own send_event.
  const text = Uint8Array.from([
    ...[0xf3, 0x0f, 0x1e, 0xfa], // endbr64
    ...[0xe8, 0, 0, 0, 0], // call helper2          (R_X86_64_PLT32, the base's)
    ...[0x48, 0x8b, 0x05, 0, 0, 0, 0], // mov rax, [rip+nmi_hook] (R_X86_64_PC32, the base's)
    0xc3,
    ...[0xe8, 0, 0, 0, 0], // fix_local: call send_event (R_X86_64_PLT32, the object's own)
    0xc3,
  ]);
  const fix = writeElf({
    type: "rel",
    sections: [{ name: ".text", type: 1, flags: 6n, address: 0n, bytes: text, align: 16 }],
    symbols: [
      { name: "send_event", value: 0n, size: 17, type: "func", bind: "global", section: ".text" },
      { name: "fix_local", value: 17n, size: 6, type: "func", bind: "local", section: ".text" },
      { name: "helper2", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
      { name: "nmi_hook", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
    ],
    relocations: [
      { section: ".text", offset: 5, type: R_X86_64.R_X86_64_PLT32, symbol: "helper2", addend: -4n },
      { section: ".text", offset: 12, type: R_X86_64.R_X86_64_PC32, symbol: "nmi_hook", addend: -4n },
      { section: ".text", offset: 18, type: R_X86_64.R_X86_64_PLT32, symbol: "send_event", addend: -4n },
    ],
  });

  it("loads it on the page after the placed functions, linked against the base's symbols", () => {
    const image = program().machineImage({
      roots: ["do_machine_check"],
      targets: new Map([["mce_callbacks", ["mce_handler"]]]),
      payloadObject: { name: "patches/fix.o", bytes: fix },
    });
    expect([...image.symbols.values()].map((s) => [s.name, s.address - CODE_BASE, s.payload])).toEqual([
      ["do_machine_check", 0xa0, false],
      ["mce_handler", 0xb0, false],
      ["send_event", 0xc0, false],
      ["helper2", 0xe0, false], // placed because the payload calls it
      ["__x86_return_thunk", 0x120, false],
      ["fix:send_event", 0x1000, true], // the replacement, named by its object
      ["fix_local", 0x1011, true],
    ]);
    expect(image.callees("fix:send_event")).toEqual(["helper2"]);
    expect(image.callees("fix_local")).toEqual(["fix:send_event"]);
    // mov rax, [rip+disp32] at +9 (7 bytes) reads the base's nmi_hook, rebased with the rest
    const at = image.symbol("fix:send_event").address + 9;
    const insn = image.read(at, 7);
    const disp = new DataView(insn.buffer, insn.byteOffset).getInt32(3, true);
    expect(at + 7 + disp).toBe(CODE_BASE + 0x20_0000);
  });
});

/** A relocatable object like a livepatch payload: code that calls the hypervisor and reads its own data. */
function payloadObject(extra: ElfDescription["relocations"] = []): ElfDescription {
  const text = Uint8Array.from([
    0xe8,
    0,
    0,
    0,
    0, // call send_event        (R_X86_64_PLT32, external)
    0x48,
    0x8b,
    0x05,
    0,
    0,
    0,
    0, // mov rax, [rip+state] (R_X86_64_PC32, .data)
    0x48,
    0xc7,
    0xc0,
    0,
    0,
    0,
    0, // mov rax, imm32s      (R_X86_64_32S)
    0xb8,
    0,
    0,
    0,
    0, // mov eax, imm32       (R_X86_64_32)
    0xc3,
  ]);
  return {
    type: "rel",
    sections: [
      { name: ".text", type: 1, flags: 6n, address: 0n, bytes: text, align: 16 },
      { name: ".data", type: 1, flags: 3n, address: 0n, bytes: new Uint8Array(16), align: 8 },
    ],
    symbols: [
      { name: ".data", value: 0n, size: 0, type: "section", bind: "local", section: ".data" },
      { name: "new_send", value: 0n, size: text.length, type: "func", bind: "global", section: ".text" },
      { name: "state", value: 8n, size: 8, type: "object", bind: "global", section: ".data" },
      { name: "send_event", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
    ],
    relocations: [
      { section: ".text", offset: 1, type: R_X86_64.R_X86_64_PLT32, symbol: "send_event", addend: -4n },
      { section: ".text", offset: 8, type: R_X86_64.R_X86_64_PC32, symbol: "state", addend: -4n },
      { section: ".text", offset: 15, type: R_X86_64.R_X86_64_32S, symbol: ".data", addend: 8n },
      { section: ".text", offset: 20, type: R_X86_64.R_X86_64_32, symbol: "new_send", addend: 0n },
      { section: ".data", offset: 0, type: R_X86_64.R_X86_64_64, symbol: "new_send", addend: 0n },
      ...extra,
    ],
  };
}

describe("relocatable objects (ET_REL, as livepatch payloads are)", () => {
  const base = 0x4000_0000n;
  const external = (name: string) => (name === "send_event" ? 0x4010_0000n : undefined);

  it("lays sections out from the base and applies PLT32, PC32, 32S, 32 and 64", () => {
    const elf = readElf(writeElf(payloadObject()), "payload.o", { base, external });
    expect(elf.type).toBe("rel");
    const text = elf.sections[1];
    const data = elf.sections[2];
    expect(text.address).toBe(base);
    expect(data.address).toBe(base + 32n); // .text's 25 bytes, then 8-byte alignment
    expect(elf.symbols.find((s) => s.name === "state")?.value).toBe(base + 40n);
    const code = new DataView(elf.sectionBytes(text).slice().buffer);
    expect(code.getInt32(1, true)).toBe(0x10_0000 - 5); // send_event - (base + 5)
    expect(code.getInt32(8, true)).toBe(40 - 12); // state - (base + 12)
    expect(code.getInt32(15, true)).toBe(Number(base) + 40);
    expect(code.getUint32(20, true)).toBe(Number(base));
    expect(new DataView(elf.sectionBytes(data).slice().buffer).getBigUint64(0, true)).toBe(base);
    const p = new ElfProgram(elf);
    const g = p.callGraph(["new_send"]);
    expect(g.outside).toEqual([{ site: "new_send", target: 0x4010_0000n, external: "send_event" }]);
  });

  it("refuses relocations it does not handle, and symbols nothing defines", () => {
    const got = payloadObject([{ section: ".text", offset: 21, type: 9, symbol: "state", addend: -4n }]);
    expect(() => readElf(writeElf(got), "payload.o", { base, external })).toThrow(
      "payload.o: relocation R_X86_64_GOTPCREL at .text+0x15 (against 'state') is not handled; handled: R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32, R_X86_64_32S",
    );
    expect(() => readElf(writeElf(payloadObject()), "payload.o", { base })).toThrow(
      "payload.o: relocation R_X86_64_PLT32 at .text+0x1 refers to 'send_event', which the object does not define; give the image it links against (its symbols resolve the payload's)",
    );
    expect(() =>
      readElf(writeElf(payloadObject()), "payload.o", { base, external: () => 0xffff82d0_40200000n }),
    ).toThrow(
      "payload.o: relocation R_X86_64_PLT32 at .text+0x1 against 'send_event' overflows: 0xffff82d0001ffffb does not fit a signed 32-bit field (place the object nearer what it uses)",
    );
  });
});

describe("malformed ELF input", () => {
  const minimal = (over: Partial<ElfDescription> = {}): Uint8Array =>
    writeElf({
      type: "exec",
      sections: [{ name: ".text", type: 1, flags: 6n, address: 0x40_1000n, bytes: Uint8Array.from([0xc3]) }],
      symbols: [{ name: "f", value: 0x40_1000n, size: 1, type: "func", bind: "global", section: ".text" }],
      ...over,
    });

  it("names the culprit", () => {
    expect(() => readElf(new TextEncoder().encode("#!/bin/sh\n"), "script.sh")).toThrow(
      "script.sh: not an ELF file (it starts with 23 21 2f 62, not 7f 45 4c 46)",
    );
    expect(() => readElf(new Uint8Array(), "empty")).toThrow(
      "empty: not an ELF file (it starts with nothing, not 7f 45 4c 46)",
    );
    expect(() => readElf(minimal({ elfClass: 1 }), "i386.elf")).toThrow(
      "i386.elf: a 32-bit ELF (ELFCLASS32); only ELF64 x86-64 files can be read",
    );
    expect(() => readElf(minimal({ machine: 183 }), "arm64.elf")).toThrow(
      "arm64.elf: an ELF for EM_AARCH64 (183), not x86-64 (EM_X86_64, 62)",
    );
    expect(() => readElf(minimal({ stripped: true }), "stripped.elf")).toThrow(
      "stripped.elf: no symbol table (.symtab): the file is stripped; use the unstripped image (xen-syms, vmlinux)",
    );
    const whole = minimal();
    expect(() => readElf(whole.subarray(0, whole.length - 10), "cut.elf")).toThrow(
      /^cut\.elf: truncated: \d+ section headers at offset \d+ run past the end/,
    );
    expect(() => readElf(whole.subarray(0, 40), "short.elf")).toThrow(
      "short.elf: truncated: 40 bytes, shorter than the 64-byte ELF64 header",
    );
    expect(() => new ElfProgram(readElf(minimal({ symbols: [] }), "nosyms.elf"))).toThrow(
      "nosyms.elf: no function symbols in executable sections",
    );
  });
});
