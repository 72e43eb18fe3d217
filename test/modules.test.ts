// Modules given with --module export protocols and scenarios, written with the public API (dist/api,
// as a user's module imports it from the package): `list` says where each came from, a check of a
// module's protocol on a module's scenario runs (and its counterexample is confirmed on the threaded
// engine, whose CPU workers load the same module), and malformed exports are named.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";

const API = pathToFileURL(fileURLToPath(new URL("../dist/api/index.js", import.meta.url))).href;

function moduleFile(name: string, source: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "livepatch-check-modules-")), name);
  writeFileSync(file, source);
  return file;
}

const GOOD = `
import { defineProtocol, defineScenario, xen48 } from ${JSON.stringify(API)};

export const protocols = [
  defineProtocol({ ...xen48, name: "mod-xen-4.8", summary: "xen-4.8, from a module", expected: {} }),
];

export const scenarios = [
  defineScenario({
    name: "mod-endbr",
    summary: "a site after ENDBR64 in a function the NMI handler calls",
    image: {
      functions: [
        { name: "work", code: ["push rbp", "mov rbp, rsp", "call patched", "pop rbp", "ret"] },
        { name: "nmi_work", code: ["push rbp", "mov rbp, rsp", "call patched", "pop rbp", "ret"] },
        { name: "patched", code: ["db f3 0f 1e fa", "push rbp", "mov rbp, rsp", "sub rsp, 16", "mov eax, 1", "add rsp, 16", "pop rbp", "ret"] },
        { name: "new_patched", payload: true, code: ["push rbp", "mov rbp, rsp", "mov eax, 2", "pop rbp", "ret"] },
      ],
    },
    patch: { target: "patched+4", payload: "new_patched" },
    workload: "work",
    nmiService: "nmi_work",
  }),
];
`;

describe("--module with protocols and scenarios", () => {
  it("list shows each with the module it came from", async () => {
    const file = moduleFile("good.mjs", GOOD);
    const r = await runCaptured(["--module", file, "list"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^protocols:\n {2}xen-4\.8 /m);
    expect(r.stdout).toContain(`protocols from ${file}:\n  mod-xen-4.8 `);
    expect(r.stdout).toMatch(/^scenarios:\n {2}nmi-path /m);
    expect(r.stdout).toContain(`scenarios from ${file}:\n  mod-endbr `);
    expect(r.stdout).toMatch(/^ {2}mod-endbr +a site after ENDBR64 in a function the NMI handler calls$/m);
  });

  it("checks a module's protocol on a module's scenario, confirmed on the threaded engine", async () => {
    const file = moduleFile("good.mjs", GOOD);
    const r = await runCaptured([
      "--module",
      file,
      "-p",
      "mod-xen-4.8",
      "-s",
      "mod-endbr",
      "--runs",
      "200",
      "--seeds",
      "1",
      "--parallel",
      "1",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(1);
    // Xen 4.8's mask loses NMIs (P2) on this scenario as on the built-in ones.
    expect(r.stdout).toMatch(/^mod-xen-4\.8 on mod-endbr: violated: .*P2/m);
    expect(r.stdout).toMatch(/P2 nmi-replayed: violated \(nmi-lost\)/);
    expect(r.stdout).toMatch(/replay: npx livepatch-check replay v\d+\/mod-xen-4\.8\/mod-endbr\//);
    expect(r.stdout).toMatch(/confirmed on 4 threads: the same log/);
  });

  it("prints a replay command with the module, and takes that token back as an --example", async () => {
    const file = moduleFile("good.mjs", GOOD);
    const cell = ["--module", file, "-p", "mod-xen-4.8", "-s", "mod-endbr", "--parallel", "1"];
    const r = await runCaptured([...cell, "--runs", "200", "--seeds", "1"]);
    expect(r.code).toBe(1);
    const line = r.stdout.split("\n").find((l) => l.startsWith("replay: ")) as string;
    const [npx, tool, verb, token, ...options] = line.replace(/^replay: /, "").split(" ");
    expect([npx, tool, verb]).toEqual(["npx", "livepatch-check", "replay"]);
    expect(token).toMatch(/^v\d+\/mod-xen-4\.8\/mod-endbr\//);
    expect(options).toEqual(["--module", file]);
    const again = await runCaptured(["replay", token, ...options]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain("P2 nmi-replayed (nmi-lost)");
    // The token as a regression example: the one run with no choice loses no NMI; the example's does.
    const once = [...cell, "--strategy", "exhaustive", "--preemptions", "0", "--events", "0"];
    const alone = await runCaptured(once);
    expect(alone.stdout).toMatch(/^ {2}P2 nmi-replayed: holds/m);
    const withExample = await runCaptured([...once, "--example", token]);
    expect(withExample.stderr).toBe("");
    expect(withExample.code).toBe(1);
    expect(withExample.stdout).toMatch(
      /^ {2}P2 nmi-replayed: violated \(nmi-lost\), found by an example tape/m,
    );
    expect(withExample.stdout).toContain(`replay: npx livepatch-check replay ${token} --module ${file}`);
  });

  it("names the module and the export that is malformed", async () => {
    const notOne = moduleFile("not-one.mjs", "export const protocols = [42];\n");
    const a = await runCaptured(["--module", notOne, "list"]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain(
      `protocol module '${notOne}': export 'protocols[0]' is neither a protocol (it has no 'master' routine) nor a scenario (it has no 'patch' and 'workload')`,
    );
    const noSummary = moduleFile(
      "no-summary.mjs",
      `export const scenarios = [{ name: "s", patch: { target: "f", payload: "g" }, workload: "f" }];\n`,
    );
    const b = await runCaptured(["--module", noSummary, "list"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain(
      `protocol module '${noSummary}': export 'scenarios[0]': a scenario must have 'summary' (define it with defineScenario)`,
    );
    const badDefinition = moduleFile(
      "bad-definition.mjs",
      `import { defineScenario } from ${JSON.stringify(API)};
export const scenarios = [defineScenario({ name: "s", image: { functions: [{ name: "f", code: ["ret"] }] }, patch: { target: "f", payload: "f" }, workload: "nowhere", nmiService: "f" })];\n`,
    );
    const c = await runCaptured(["--module", badDefinition, "list"]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain(
      `protocol module '${badDefinition}' failed to load: scenario 's': workload 'nowhere' is not a function of its image (its functions: f)`,
    );
  });
});
