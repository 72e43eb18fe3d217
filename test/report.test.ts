// Counterexample reports and the verdict matrix (report/).
import { beforeAll, describe, expect, it } from "vitest";
import type { RunConfig } from "../dist/model/types.js";
import { check, resolveConfig, type Verdict } from "../dist/properties/check.js";
import { encodeToken } from "../dist/properties/token.js";
import {
  matchesExpected,
  renderCounterexample,
  renderVerdictMatrix,
  replayTape,
  verdictCell,
} from "../dist/report/index.js";

// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes is the point
const ANSI = /\x1b\[/;

let tornConfig: RunConfig;
let tornTape: number[];

beforeAll(async () => {
  // Random search, shrunk: a CPU whose NMI handler fetches the site after the first byte landed.
  const v = await check({
    protocol: "no-mask",
    scenario: "nmi-path",
    strategy: "random",
    runs: 300,
    properties: ["P1"],
  });
  if (v.kind !== "violated") throw new Error(`no-mask on nmi-path should violate P1, got ${v.kind}`);
  tornConfig = v.config;
  tornTape = v.properties[0].tape as number[];
});

describe("renderCounterexample", () => {
  it("states the violation, then the timeline, the site disassembly and the replay token", () => {
    const text = renderCounterexample(tornConfig, tornTape, { color: false, property: "P1" });
    const order = [
      /^✗ P1 atomic-patch \(torn-fetch\) at step \d+: CPU \d decoded /m,
      /^Timeline/m,
      /^step +CPU 0 +CPU 1 +CPU 2 +CPU 3$/m,
      /^Patch site watchdog_kick \(0x[0-9a-f]+\), 5 bytes:$/m,
      /^Every instruction fetched at a patch site \(iced-x86\):$/m,
      /^replay: npx livepatch-check replay /m,
    ].map((re) => {
      const m = re.exec(text);
      expect(m, String(re)).not.toBeNull();
      return (m as RegExpExecArray).index;
    });
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text).toContain(`replay: npx livepatch-check replay ${encodeToken(tornConfig, tornTape)}\n`);
  });

  it("disassembles the torn instruction and says which bytes were old and who wrote the new ones", () => {
    const text = renderCounterexample(tornConfig, tornTape, { color: false, property: "P1" });
    // The decoded jump starts with the new E9 and takes its displacement from the old prologue.
    const torn =
      /^ {2}steps? [\d–]+, CPU (\d) \[NMI\]: watchdog_kick {2}(jmp 0x[0-9a-f]+) {2}\((e9( [0-9a-f]{2}){4})\) {2}TORN: neither an old nor a new instruction \(P1\)$/m.exec(
        text,
      );
    expect(torn, text).not.toBeNull();
    expect(torn?.[3]).not.toBe("e9 1b 01 00 00");
    expect(text).toMatch(
      /^ {6}byte 0 {2}watchdog_kick +e9 {2}new +written by CPU 0 at step \d+ \(write #1\), fetched at step \d+; old code has 55$/m,
    );
    expect(text).toMatch(
      /^ {6}byte 1 {2}watchdog_kick\+0x1 +48 {2}old +as loaded \(image\), fetched at step \d+; new code has 1b$/m,
    );
    expect(text).toMatch(
      /expected: old push rbp \(55\), or new jmp livepatch\.watchdog_kick \(e9 1b 01 00 00\)/,
    );
    // The site's old and new code, with the payload named by its own symbol.
    expect(text).toMatch(
      /old bytes 55 48 89 e5 48 +watchdog_kick: push rbp; watchdog_kick\+0x1: mov rbp,rsp/,
    );
    expect(text).toMatch(/new bytes e9 1b 01 00 00 +watchdog_kick: jmp livepatch\.watchdog_kick/);
  });

  it("shows the race in the timeline: the master's byte stores, the NMI, the fetches, the crash", () => {
    const text = renderCounterexample(tornConfig, tornTape, { color: false, property: "P1" });
    expect(text).toMatch(/✎ writes e9 at watchdog_kick \(1-byte store, write #1\)/);
    expect(text).toMatch(/⚡ NMI arrives \(external\)/);
    expect(text).toMatch(/→ NMI handler entered on IST \d/);
    expect(text).toMatch(/\[NMI\] fetch watchdog_kick = e9 \(new\)/);
    expect(text).toMatch(/\[NMI\] fetch watchdog_kick\+0x1 = 48 \(old\)/);
    expect(text).toMatch(/✗ TORN FETCH at watchdog_kick: decoded `jmp 0x[0-9a-f]+`/);
    expect(text).toMatch(/── run ends: crash ──/);
    // Long stretches of plain code are folded, but named.
    expect(text).toMatch(/… \d+ fetch steps \(\d+–\d+\) in normal_work/);
    // Data words by name, routine marks, and IPIs with their sender.
    expect(text).toMatch(/livepatch_work\.do_work := 1/);
    expect(text).toMatch(/• patch begins/);
    expect(text).toMatch(/⚡ IPI vector \d+ arrives from CPU 0/);
  });

  it("is plain text without colour and coloured with it", () => {
    const plain = renderCounterexample(tornConfig, tornTape, { color: false, property: "P1" });
    const colored = renderCounterexample(tornConfig, tornTape, { color: true, property: "P1" });
    expect(plain).not.toMatch(ANSI);
    expect(colored).toMatch(ANSI);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI escapes
    expect(colored.replace(/\x1b\[[0-9;]*m/g, "")).toBe(plain);
  });

  it("says so when the tape shows no violation", () => {
    const config = resolveConfig("no-mask", "nmi-path");
    const text = renderCounterexample(config, [], { color: false });
    expect(text).toContain("Every property holds on this run.");
    expect(text).not.toContain("✗");
    expect(replayTape(config, []).violations).toEqual([]);
  });

  it("names the IRET that let a nested NMI in (P3)", async () => {
    const v = await check({
      protocol: "int3-restartable",
      scenario: "nmi-path",
      runs: 200,
      properties: ["P3"],
    });
    if (v.kind !== "violated")
      throw new Error(`int3-restartable on nmi-path should violate P3, got ${v.kind}`);
    const text = renderCounterexample(v.config, v.properties[0].tape as number[], {
      color: false,
      property: "P3",
    });
    expect(text).toMatch(/^✗ P3 no-ist-clobber \(ist-clobber\(#BP\)\)/m);
    expect(text).toMatch(
      /← IRET from the #BP handler: unblocks NMIs while an NMI frame is still live \(H3\)/,
    );
    expect(text).toMatch(
      /‼ NMI delivered on IST \d, which holds a live NMI frame \(NMIs were unblocked by the #BP handler's IRET\)/,
    );
  });
});

describe("the verdict matrix", () => {
  const config = (protocol: string, scenario: string): RunConfig => ({
    protocol,
    scenario,
    hardware: { cpus: 4, fetch: "bytewise", nmis: 3, mces: 0, stepBound: 20000 },
  });
  const violated = (protocol: string, scenario: string, failing: Array<[string, string]>): Verdict => ({
    kind: "violated",
    config: config(protocol, scenario),
    runs: 10,
    distinctLogs: 10,
    elapsedMs: 1,
    properties: (["P1", "P2", "P3", "P4", "P5", "P6"] as const).map((property) => {
      const f = failing.find(([id]) => id === property);
      return f
        ? {
            property,
            holds: false,
            runs: 1,
            violation: { property, kind: f[1], cpu: 0, step: 1, message: "m" },
            tape: [1],
          }
        : { property, holds: true, runs: 10 };
    }),
  });
  const holds = (protocol: string, scenario: string): Verdict => {
    const v = violated(protocol, scenario, []);
    return v.kind === "violated" ? { ...v, kind: "holds" } : v;
  };
  const verdicts: Verdict[] = [
    violated("a", "nmi-path", [["P1", "torn-fetch"]]),
    violated("a", "mce-path", [
      ["P1", "torn-fetch"],
      ["P3", "ist-clobber(#MC)"],
    ]),
    holds("b", "nmi-path"),
    { kind: "refused", config: config("b", "mce-path"), reason: "on the NMI path" },
  ];
  const expected: Record<string, Record<string, { violated: string[] } | { refused: true }>> = {
    a: { "nmi-path": { violated: ["P1"] }, "mce-path": { violated: ["P1", "P3"] } },
    b: { "nmi-path": { violated: ["P2"] }, "mce-path": { refused: true } },
  };
  const expectedFor = (p: string, s: string) => expected[p]?.[s];

  it("shows holds, refused and the failing properties, P3 with its cause", () => {
    expect(verdicts.map(verdictCell)).toEqual(["P1", "P1 P3(#MC)", "holds", "refused"]);
    const text = renderVerdictMatrix(verdicts, expectedFor);
    expect(text).toMatch(/^protocol +nmi-path +mce-path$/m);
    expect(text).toMatch(/^a +P1 +P1 P3\(#MC\)$/m);
    expect(text).toMatch(/^b +holds \* +refused$/m);
    expect(text).not.toMatch(ANSI);
  });

  it("marks and lists the cells that differ from the declared verdict", () => {
    const text = renderVerdictMatrix(verdicts, expectedFor);
    expect(text).toContain("* differs from the protocol's expected verdict (1):");
    expect(text).toContain("  b on nmi-path: got holds, expected P2");
    expect(matchesExpected(verdicts[1], { violated: ["P3", "P1"] })).toBe(true);
    expect(matchesExpected(verdicts[1], { violated: ["P1"] })).toBe(false);
    expect(matchesExpected(verdicts[3], { refused: true })).toBe(true);
    expect(matchesExpected(verdicts[2], undefined)).toBe(false);
  });
});
