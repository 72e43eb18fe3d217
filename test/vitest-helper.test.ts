// livepatch-check/vitest (api/vitest.ts): a check registered as a vitest test passes when the verdict
// is the one expected, and fails with the counterexample's report, its violation kind and its replay
// token, which reproduces the same violation.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it, test } from "vitest";
import { assertProtocol, CheckFailure, checkProtocol } from "../dist/api/vitest.js";
import { PROTOCOLS } from "../dist/model/protocols/index.js";
import { evaluate } from "../dist/properties/invariants.js";
import { decodeToken } from "../dist/properties/token.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";

/** The public API as built (dist/), as a user's module imports it from the package. */
const API = pathToFileURL(fileURLToPath(new URL("../dist/api/index.js", import.meta.url))).href;

function moduleFile(name: string, source: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "livepatch-check-vitest-")), name);
  writeFileSync(file, source);
  return file;
}

// Registered by the helper itself: these two must pass.
checkProtocol(test, { protocol: "no-mask", scenario: "normal", runs: 200, seeds: 1 });
checkProtocol(test, {
  name: "blacklist-annotated refuses nmi-path",
  protocol: "blacklist-annotated",
  scenario: "nmi-path",
  expected: { refused: true },
});

describe("a failing check", () => {
  it("fails with the report, the violation kind and a token that replays it", async () => {
    const failure = await assertProtocol({
      protocol: "no-mask",
      scenario: "nmi-path",
      runs: 300,
      seeds: 3,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(failure instanceof CheckFailure))
      throw new Error(`expected a CheckFailure, got ${String(failure)}`);
    const message = failure.message;
    expect(message).toMatch(/^livepatch-check: no-mask on nmi-path: P1, expected holds\n/);
    const head = /━━ P1 atomic-patch violated \(torn-fetch\) on CPU (\d+) at step (\d+)/.exec(message);
    if (!head) throw new Error(`no violation line in:\n${message}`);
    expect(message).toContain("Timeline");
    const token = /^token: {2}(\S+)$/m.exec(message)?.[1];
    if (!token) throw new Error(`no token in:\n${message}`);
    expect(message).toContain(`replay: npx livepatch-check replay ${token}`);
    // The token alone reproduces the violation the message names, on the same CPU at the same step.
    const { config, tape } = decodeToken(token);
    const [v] = evaluate(machineFor(config), runInline(config, { tape }).mem, "P1");
    expect(v).toMatchObject({ kind: "torn-fetch", cpu: Number(head[1]), step: Number(head[2]) });
    expect(failure.verdict.kind).toBe("violated");
  });

  it("runs in a worker that loads the module, is registered under the names, and names the module to replay with", async () => {
    const registered: Array<{ name: string; fn: () => Promise<void>; timeout?: number }> = [];
    const file = moduleFile(
      "checks.mjs",
      `import { defineProtocol, defineScenario, noMask } from ${JSON.stringify(API)};
export const protocols = [defineProtocol({ ...noMask, name: "helper-no-mask", summary: "no-mask, as a user's own" })];
export const scenarios = [defineScenario({
  name: "helper-scenario",
  image: { functions: [
    { name: "work", code: ["push rbp", "mov rbp, rsp", "call patched", "pop rbp", "ret"] },
    { name: "nmi_work", code: ["push rbp", "mov rbp, rsp", "call patched", "pop rbp", "ret"] },
    { name: "patched", code: ["push rbp", "mov rbp, rsp", "sub rsp, 16", "mov eax, 1", "add rsp, 16", "pop rbp", "ret"] },
    { name: "new_patched", payload: true, code: ["mov eax, 2", "ret"] },
  ] },
  patch: { target: "patched", payload: "new_patched" },
  workload: "work",
  nmiService: "nmi_work",
})];
`,
    );
    checkProtocol((name, fn, timeout) => registered.push({ name, fn, timeout }), {
      protocol: "helper-no-mask",
      scenario: "helper-scenario",
      properties: ["P1"],
      runs: 300,
      module: pathToFileURL(file),
    });
    expect(registered.map((r) => [r.name, r.timeout])).toEqual([
      ["helper-no-mask on helper-scenario", 300_000],
    ]);
    const escaped = file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    await expect(registered[0].fn()).rejects.toThrow(
      new RegExp(
        `━━ P1 atomic-patch violated \\(torn-fetch\\)[\\s\\S]*token: {2}v\\d+/helper-no-mask/helper-scenario/\\S+\\nreplay: [\\s\\S]*replay: npx livepatch-check replay v\\d+/helper-no-mask/helper-scenario/\\S+ --module ${escaped}`,
      ),
    );
    // This thread never registered them: the check ran in the worker.
    expect(PROTOCOLS.some((p) => p.name === "helper-no-mask")).toBe(false);
  });

  it("is stopped by the watchdog when a routine never yields, naming the CPU and routine", async () => {
    const file = moduleFile(
      "spins.mjs",
      `export const protocols = [{
  name: "helper-spins", summary: "its master never yields", origin: "test", os: "xen", expected: {},
  *master() { for (;;) {} },
}];
`,
    );
    await expect(
      assertProtocol({
        protocol: "helper-spins",
        scenario: "normal",
        module: file,
        watchdogSeconds: 1,
        runs: 10,
      }),
    ).rejects.toThrow(
      /^livepatch-check: the watchdog stopped the check: CPU 0 made no progress in \d+\.\d s of its own CPU time for helper-spins on normal, at step \d+ in routine 'master' of protocol 'helper-spins'.*Nothing was judged: fix the protocol/,
    );
  });
});
