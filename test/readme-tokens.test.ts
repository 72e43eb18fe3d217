// docs/tokens.md lists a replay token for every violation of the built-in matrix. Each must still
// reproduce the violation it is listed with (property and kind) under this model version: a change of
// the model that changes a trace must bump the version and refresh the list, never leave it stale.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { evaluate, type PropertyId } from "../dist/properties/invariants.js";
import { decodeToken } from "../dist/properties/token.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";

interface Listed {
  cell: string;
  property: PropertyId;
  kind: string;
  hazard: boolean;
  token: string;
}

function section(): string {
  const doc = readFileSync(new URL("../docs/tokens.md", import.meta.url), "utf8");
  const start = doc.indexOf("## A replay token for every violation of the matrix");
  if (start < 0)
    throw new Error("docs/tokens.md has no section 'A replay token for every violation of the matrix'");
  return doc.slice(start, doc.indexOf("</details>", start));
}

function listedTokens(): Listed[] {
  const out: Listed[] = [];
  let cell = "";
  for (const line of section().split("\n")) {
    const c = /^- \*\*(.+) \/ (.+)\*\*$/.exec(line);
    if (c) cell = `${c[1]}/${c[2]}`;
    const t = /^ {2}- (P\d) (.+?)( \(hazard: .*\))?: `([^`]+)`$/.exec(line);
    if (t)
      out.push({ cell, property: t[1] as PropertyId, kind: t[2], hazard: t[3] !== undefined, token: t[4] });
  }
  return out;
}

const listed = listedTokens();

describe("the replay tokens of docs/tokens.md", () => {
  it("are listed for many cells", () => {
    // Every listed line is read: as many tokens as the section holds.
    expect(listed.length).toBe(section().split("`v").length - 1);
    expect(listed.length).toBeGreaterThanOrEqual(30);
    expect(new Set(listed.map((l) => l.cell)).size).toBeGreaterThanOrEqual(15);
  });

  it.each(listed.map((l) => [`${l.cell} ${l.property}`, l] as const))("%s reproduces", (_name, l) => {
    const { config, tape } = decodeToken(l.token);
    expect(`${config.protocol}/${config.scenario}`).toBe(l.cell);
    const found = evaluate(machineFor(config), runInline(config, { tape }).mem, l.property).find(
      (v) => (v.hazard !== undefined) === l.hazard,
    );
    expect(found?.kind).toBe(l.kind);
  });
});
