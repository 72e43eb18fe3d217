// The ELF call graph against GNU objdump's disassembly of the same file (test/helpers/objdump.ts):
// the same functions by direct calls and jumps, the same indirect sites. Runs where objdump is
// installed (binutils). On Debian's Xen 4.17 debug image when LIVEPATCH_CHECK_XEN_SYMS names it:
//
//   apt-get download xen-hypervisor-4.17-amd64-dbg
//   dpkg-deb -x xen-hypervisor-4.17-amd64-dbg_*.deb xen-dbg
//   LIVEPATCH_CHECK_XEN_SYMS=$PWD/xen-dbg/usr/lib/debug/boot/xen-syms-4.17-amd64 \
//     npx vitest run test/elf-objdump.test.ts
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readElf } from "../dist/model/elf.js";
import { ElfProgram } from "../dist/model/elf-image.js";
import { FIXTURE_PATH } from "../dist/scripts/make-elf-fixture.js";
import { objdumpCallGraph } from "./helpers/objdump.js";

function hasObjdump(): boolean {
  try {
    execFileSync("objdump", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const OBJDUMP = hasObjdump();
const XEN = process.env.LIVEPATCH_CHECK_XEN_SYMS;

/** Both graphs from `roots`: function start addresses and indirect sites, sorted. */
function both(file: string, roots: string[]) {
  const program = new ElfProgram(readElf(new Uint8Array(readFileSync(file)), file));
  const mine = program.callGraph(roots);
  const theirs = objdumpCallGraph(file, roots);
  return {
    program,
    mine,
    functions: [...mine.functions.keys()].map((n) => program.function(n).address.toString(16)).sort(),
    objdumpFunctions: [...theirs.functions.values()].sort(),
    sites: mine.indirect.map((s) => `${s.site} ${s.kind}`).sort(),
    objdumpSites: theirs.indirect.map((s) => `${s.site} ${s.kind}`).sort(),
  };
}

describe.runIf(OBJDUMP)("the call graph agrees with objdump on the fixture", () => {
  it("from do_nmi and from do_machine_check", () => {
    for (const root of ["do_nmi", "do_machine_check"]) {
      const g = both(FIXTURE_PATH, [root]);
      expect(g.functions).toEqual(g.objdumpFunctions);
      expect(g.sites).toEqual(g.objdumpSites);
    }
    expect(both(FIXTURE_PATH, ["do_nmi"]).functions).toHaveLength(7);
  });
});

describe.runIf(OBJDUMP && XEN !== undefined)("the call graph agrees with objdump on Xen 4.17", () => {
  const file = XEN as string;

  it("from do_nmi: the same functions and indirect sites, evtchn_send among them", () => {
    const g = both(file, ["do_nmi"]);
    expect(g.functions).toEqual(g.objdumpFunctions);
    expect(g.sites).toEqual(g.objdumpSites);
    // evtchn_send is reached, and its path takes a backward branch of more than 1 MiB (a decoder
    // that wraps such branches missed it).
    const path = (g.mine.functions.get("evtchn_send") ?? []).map((n) => g.program.function(n));
    expect(path.at(0)?.name).toBe("do_nmi");
    const far = path.some(
      (f, i) => i > 0 && path[i - 1].address - f.address > 0x10_0000n + BigInt(path[i - 1].size),
    );
    expect(far).toBe(true);
    process.stdout.write(
      `xen do_nmi: ${g.functions.length} functions (objdump ${g.objdumpFunctions.length}), ` +
        `${g.sites.length} indirect sites (objdump ${g.objdumpSites.length}), ${g.mine.returnThunkJumps} return-thunk jumps\n`,
    );
  });

  it("from do_machine_check: one call through mce_callbacks, followed when its target is given", () => {
    const g = both(file, ["do_machine_check"]);
    expect(g.functions).toEqual(g.objdumpFunctions);
    expect(g.sites).toEqual(g.objdumpSites);
    expect(g.mine.indirect.map((s) => [s.kind, s.via.k === "pointer" ? s.via.pointer : s.via.k])).toEqual([
      ["call", "mce_callbacks"],
    ]);
    const followed = g.program.callGraph(["do_machine_check"], {
      targets: new Map([["mce_callbacks", ["mcheck_cmn_handler"]]]),
    });
    expect(followed.functions.has("mcheck_cmn_handler")).toBe(true);
    process.stdout.write(
      `xen do_machine_check: ${g.functions.length} function, ${g.sites.length} indirect site; with ` +
        `mce_callbacks=mcheck_cmn_handler ${followed.functions.size} functions, ${followed.notFollowed} sites not followed\n`,
    );
  });

  it("patches after ENDBR64: mcheck_cmn_handler+1..+3 are inside it, +4 is the next instruction", () => {
    const program = new ElfProgram(readElf(new Uint8Array(readFileSync(file)), file));
    const start = program.function("mcheck_cmn_handler").address;
    for (const off of [1, 2, 3]) {
      expect(() => program.resolve(`mcheck_cmn_handler+${off}`)).toThrow(
        `'mcheck_cmn_handler+${off}' is inside an instruction of 'mcheck_cmn_handler'`,
      );
    }
    expect(program.resolve("mcheck_cmn_handler+4")).toBe(start + 4n);
  });
});
