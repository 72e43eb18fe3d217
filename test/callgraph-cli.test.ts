// `livepatch-check callgraph` on the ELF fixture, run in-process through main(argv, io).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";
import { R_X86_64 } from "../dist/model/elf.js";
import { writeElf } from "../dist/scripts/elf-writer.js";
import { FIXTURE_PATH } from "../dist/scripts/make-elf-fixture.js";
import { reachProgram } from "./helpers/elf-program.js";

/** AMD64 psABI §4.4.1: a GOT-relative relocation, which needs a GOT the loader does not build. */
const R_X86_64_GOTPCREL = 9;

const run = (...argv: string[]) => runCaptured(argv);
const hex = (at: Map<string, bigint>, name: string) => `0x${(at.get(name) as bigint).toString(16)}`;

describe("livepatch-check callgraph", () => {
  it("prints the functions, the indirect sites by symbol+offset, and says the answer is a lower bound", async () => {
    const r = await run("callgraph", "--elf", FIXTURE_PATH, "--from", "do_nmi");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      [
        `call graph of ${FIXTURE_PATH} from do_nmi`,
        "7 functions reachable by direct calls and jumps:",
        "  do_nmi                     0xffff82d040200010",
        "  nmi_work                   0xffff82d040200040  via do_nmi",
        "  nmi_slow                   0xffff82d040200060  via do_nmi",
        "  helper:0xffff82d040200050  0xffff82d040200050  via do_nmi > nmi_work",
        "  far_handler                0xffff82d040320000  via do_nmi > nmi_slow",
        "  send_event                 0xffff82d0402000c0  via do_nmi > nmi_slow > far_handler",
        "  low_target                 0xffff82d040200070  via do_nmi > nmi_slow > far_handler",
        "2 indirect sites on the way:",
        "  do_nmi+0xd   call through the pointer nmi_hook (0xffff82d040400000): not followed",
        "  do_nmi+0x13  call through the retpoline __x86_indirect_thunk_rax (*%rax): not followed",
        "3 jumps to a return thunk (returns, not calls)",
        "a lower bound: 2 indirect sites not followed; give their targets with --target SITE=SYMBOL, or follow them to the 6 address-taken functions (2 stored in data, 1 named by code, 6 beginning with ENDBR64) with --over-approximate",
        "",
      ].join("\n"),
    );
  });

  it("follows given targets and says when the answer is complete (JSON)", async () => {
    const r = await run(
      "callgraph",
      "--elf",
      FIXTURE_PATH,
      "--from",
      "do_nmi",
      "--from",
      "do_machine_check",
      "--target",
      "nmi_hook=hook_a",
      "--target",
      "do_nmi+0x13=hook_b",
      "--target",
      "mce_callbacks=mce_handler",
      "--target",
      "do_machine_check+0x7=send_event",
      "--json",
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.answer).toBe("complete");
    expect(j.notFollowed).toBe(0);
    expect(j.roots).toEqual(["do_nmi", "do_machine_check"]);
    expect(j.functions.map((f: { name: string }) => f.name)).toEqual([
      "do_nmi",
      "do_machine_check",
      "nmi_work",
      "hook_a",
      "hook_b",
      "nmi_slow",
      "mce_handler",
      "send_event",
      "helper:0xffff82d040200050",
      "helper2",
      "far_handler",
      "low_target",
    ]);
    expect(j.indirect).toEqual([
      {
        site: "do_nmi+0xd",
        address: "0xffff82d04020001d",
        kind: "call",
        via: { k: "pointer", pointer: "nmi_hook", address: "0xffff82d040400000" },
        targets: ["hook_a"],
      },
      {
        site: "do_nmi+0x13",
        address: "0xffff82d040200023",
        kind: "call",
        via: { k: "thunk", thunk: "__x86_indirect_thunk_rax", register: "rax" },
        targets: ["hook_b"],
      },
      {
        site: "do_machine_check+0x1",
        address: "0xffff82d0402000a1",
        kind: "call",
        via: { k: "pointer", pointer: "mce_callbacks", address: "0xffff82d040400008" },
        targets: ["mce_handler"],
      },
      {
        site: "do_machine_check+0x7",
        address: "0xffff82d0402000a7",
        kind: "call",
        via: { k: "register" },
        targets: ["send_event"],
      },
    ]);
  });

  it("over-approximates with --over-approximate", async () => {
    const r = await run(
      "callgraph",
      "--elf",
      FIXTURE_PATH,
      "--from",
      "do_machine_check",
      "--over-approximate",
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "a sound over-approximation: the 4 indirect sites without given targets are followed to the 6 address-taken functions",
    );
    expect(r.stdout).toContain("12 functions reachable by direct calls and jumps:");
  });

  it("with --over-approximate follows a label into the next and a cold tail, and names a jump out of the code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "livepatch-check-elf-"));
    const file = join(dir, "reach.elf");
    const { bytes, at } = reachProgram();
    writeFileSync(file, bytes);
    const from = ["callgraph", "--elf", file, "--from", "nmi_stub", "--from", "checked"];
    const tail = `0x${((at.get("checked") as bigint) + 9n).toString(16)}`;
    const r = await run(...from, "--over-approximate");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n").map((l) => l.replace(/ +/g, " "));
    expect(lines).toContain(
      ` nmi_stub_common ${hex(at, "nmi_stub_common")} via nmi_stub, running on past its end`,
    );
    expect(lines).toContain(` site_b ${hex(at, "site_b")} via checked > ${tail}`);
    expect(lines).toContain("1 stretch of code outside every function on the way:");
    expect(lines).toContain(` ${tail} via checked`);
    expect(lines).toContain("complete: every indirect site on the way has its targets given");
    // Without --over-approximate neither is followed, as before.
    expect((await run(...from)).stdout).not.toContain("site_b");
    const out = await run(...from, "--from", "far", "--over-approximate", "--json");
    const far = (at.get("far") as bigint) + 5n + 0x1000_0000n;
    expect(JSON.parse(out.stdout)).toMatchObject({
      answer: "lower bound",
      code: [{ address: tail, path: ["checked", tail] }],
      unknown: [`a jump at far to 0x${far.toString(16)}, outside the file's code`],
    });
  });

  it("reads a relocatable object alone: its calls out of the object are named, not followed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "livepatch-check-elf-"));
    const object = (type: number) =>
      writeElf({
        type: "rel",
        sections: [
          {
            name: ".text",
            type: 1,
            flags: 6n,
            address: 0n,
            bytes: Uint8Array.from([0xe8, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0, 0xc3]),
          },
        ],
        symbols: [
          { name: "fixed", value: 0n, size: 10, type: "func", bind: "global", section: ".text" },
          { name: "tail", value: 10n, size: 1, type: "func", bind: "local", section: ".text" },
          { name: "evtchn_send", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
        ],
        relocations: [
          { section: ".text", offset: 1, type, symbol: "evtchn_send", addend: -4n },
          { section: ".text", offset: 6, type: R_X86_64.R_X86_64_PC32, symbol: "tail", addend: -4n },
        ],
      });
    const good = join(dir, "fix.o");
    writeFileSync(good, object(R_X86_64.R_X86_64_PLT32));
    const r = await run("callgraph", "--elf", good, "--from", "fixed");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        `call graph of ${good} from fixed`,
        "2 functions reachable by direct calls and jumps:",
        "  fixed  0x0",
        "  tail   0xa  via fixed",
        "1 branch out of the object, to symbols it does not define (not followed):",
        "  fixed  to evtchn_send",
        "a lower bound: the object's calls into the image it links against are not followed",
        "",
      ].join("\n"),
    );
    const bad = join(dir, "got.o");
    writeFileSync(bad, object(R_X86_64_GOTPCREL));
    const refused = await run("callgraph", "--elf", bad, "--from", "fixed");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `${bad}: relocation R_X86_64_GOTPCREL at .text+0x1 (against 'evtchn_send') is not handled`,
    );
  });

  it("refuses bad input with exit 2, naming the culprit", async () => {
    const cases: Array<[string[], string]> = [
      [["--from", "do_nmi"], "callgraph needs the ELF file: give it with --elf FILE."],
      [
        ["--elf", FIXTURE_PATH],
        "callgraph needs at least one root: give it with --from SYMBOL (repeatable).",
      ],
      [["--elf", "no/such.elf", "--from", "x"], "the ELF file 'no/such.elf' does not exist"],
      [["--elf", "package.json", "--from", "x"], "package.json: not an ELF file (it starts with 7b 0a 20 20"],
      [["--elf", FIXTURE_PATH, "--from", "nope"], `${FIXTURE_PATH}: unknown function 'nope'.`],
      [
        ["--elf", FIXTURE_PATH, "--from", "do_nmi", "--target", "do_nmi+0x13"],
        "--target 'do_nmi+0x13' is not SITE=SYMBOL",
      ],
      [
        ["--elf", FIXTURE_PATH, "--from", "do_nmi", "--target", "do_nmi+0x40=hook_a"],
        "'do_nmi+0x40': offset 64 is past the end of 'do_nmi' (38 bytes)",
      ],
    ];
    for (const [args, message] of cases) {
      const r = await run("callgraph", ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(message);
    }
  });
});
