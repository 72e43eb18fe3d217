// `livepatch-check callgraph` on the ELF fixture, run in-process through main(argv, io).
import { describe, expect, it } from "vitest";
import { main } from "../cli/main.js";
import { FIXTURE_PATH } from "../scripts/make-elf-fixture.js";

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    stdoutIsTTY: false,
    stderrIsTTY: false,
    env: {},
  });
  return { code, stdout, stderr };
}

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
