// The documentation against the code: every `SPEC §N` a comment cites is a section of docs/design.md,
// the README stays a front door (at most 150 lines), every relative link of README.md and docs/*.md
// points at a file, and every `livepatch-check ...` command line they show uses only options that the
// command's --help (or the subcommand's) lists, in the manner of fast-check's documentation tests.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

// ---- SPEC §N citations -------------------------------------------------------------------------

/** The TypeScript and JavaScript sources of the repository (not dist/, node_modules/ or fixtures). */
function sources(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".") || ["node_modules", "dist", "fixtures", "test-output"].includes(e.name))
      continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(path));
    else if (/\.(ts|js|mjs)$/.test(e.name)) out.push(path);
  }
  return out;
}

/** The section numbers a text cites: `SPEC §7`, `SPEC §7, §8`, `SPEC §3 and §7`. */
function citedSections(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/SPEC §(\d+)((?:\s*(?:,|and|or)\s*§\d+)*)/g))
    for (const n of `§${m[1]}${m[2]}`.matchAll(/§(\d+)/g)) out.push(Number(n[1]));
  return out;
}

/** The numbers of the `## N. Title` sections of a Markdown text. */
function sectionNumbers(markdown: string): Set<number> {
  return new Set([...markdown.matchAll(/^## (\d+)\. \S/gm)].map((m) => Number(m[1])));
}

/** Every citation whose section is missing, as `file:line: SPEC §N`. */
function missingCitations(files: { path: string; text: string }[], sections: Set<number>): string[] {
  const missing: string[] = [];
  for (const { path, text } of files)
    text.split("\n").forEach((line, i) => {
      for (const n of citedSections(line)) if (!sections.has(n)) missing.push(`${path}:${i + 1}: SPEC §${n}`);
    });
  return missing;
}

describe("SPEC §N citations", () => {
  const design = read("docs/design.md");
  const sections = sectionNumbers(design);
  const files = sources().map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, "utf8") }));

  it("docs/design.md has sections 1 to 10, in order, and says code cites it as SPEC §N", () => {
    expect([...design.matchAll(/^## (\d+)\. /gm)].map((m) => Number(m[1]))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(design).toContain("`SPEC §N`");
  });

  it("are found in the sources", () => {
    const cited = files.flatMap((f) => citedSections(f.text));
    expect(cited.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cited).size).toBeGreaterThanOrEqual(8);
  });

  it("each name a section of docs/design.md", () => {
    expect(missingCitations(files, sections)).toEqual([]);
  });

  it("a citation of a missing section is caught, also in a list", () => {
    const spec = "SPEC"; // not written out with a number here, so this file cites no missing section
    const file = { path: "x.ts", text: `// ${spec} §7\n// (${spec} §3 and §11)\n// ${spec} §2, §12\n` };
    expect(missingCitations([file], sections)).toEqual([`x.ts:2: ${spec} §11`, `x.ts:3: ${spec} §12`]);
  });
});

// ---- the README is a front door --------------------------------------------------------------------

describe("README.md", () => {
  it("has at most 150 lines", () => {
    expect(read("README.md").trimEnd().split("\n").length).toBeLessThanOrEqual(150);
  });

  it("gives the two commands first: npm ci, then the main job, and npm test", () => {
    const readme = read("README.md");
    const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    expect(block.split("\n")[0]).toMatch(/^npm ci\b/);
    expect(block).toMatch(/^npx livepatch-check\s+#/m);
    expect(block).toMatch(/^npm test\b/m);
  });
});

// ---- relative links --------------------------------------------------------------------------------

/** The targets of Markdown links `[text](target)` and `<a href="target">` outside code. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [
    ...[...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]),
    ...[...prose.matchAll(/href="([^"]+)"/g)].map((m) => m[1]),
  ];
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

describe("relative links in README.md and docs/", () => {
  it.each(DOCS)("%s: every relative link points at a file that exists (and a heading there)", (doc) => {
    const broken: string[] = [];
    for (const target of links(read(doc))) {
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
      const [path, fragment] = target.split("#");
      const file = path === "" ? join(ROOT, doc) : resolve(dirname(join(ROOT, doc)), path);
      if (!existsSync(file)) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (fragment && file.endsWith(".md")) {
        const headings = [...readFileSync(file, "utf8").matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]));
        if (!headings.includes(fragment)) broken.push(`${target}: no heading with anchor '${fragment}'`);
      }
    }
    expect(broken).toEqual([]);
  });
});

// ---- command lines use only options the command lists ------------------------------------------------

interface Help {
  /** Each option the help lists (long and short forms), and whether it takes a value. */
  options: Map<string, boolean>;
  commands: string[];
}

function help(args: string[]): Help {
  const text = execFileSync(process.execPath, [join(ROOT, "bin/livepatch-check.js"), ...args, "--help"], {
    encoding: "utf8",
  });
  const options = new Map<string, boolean>();
  const commands: string[] = [];
  let part = "";
  for (const line of text.split("\n")) {
    if (/^\S.*:$/.test(line)) part = line;
    if (part === "Options:") {
      const m = /^ {2}((?:-\w, )?--[\w-]+)( [<[])?/.exec(line);
      if (m) for (const name of m[1].split(", ")) options.set(name, m[2] !== undefined);
    } else if (part === "Commands:") {
      const m = /^ {2}([a-z][\w-]*) /.exec(line);
      if (m && m[1] !== "help") commands.push(m[1]);
    }
  }
  return { options, commands };
}

/** Shell words of one command line: quotes kept together, stopped at a comment, redirection or pipe. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'[^']*'|"[^"]*"|\S+/g)) {
    const w = m[0];
    if (w.startsWith("#") || /^(?:[|;&<>]|\d?>|&&|\|\|)/.test(w)) break;
    out.push(w);
  }
  return out;
}

/** The `livepatch-check ...` command lines of a Markdown text: in code blocks and inline code. */
function commandLines(markdown: string): string[] {
  const out: string[] = [];
  const command = /(?:^|[\s:`(])(?:npx\s+)?livepatch-check((?:\s+[^`\n]*)?)$/;
  for (const block of markdown.matchAll(/```[^\n]*\n([\s\S]*?)```/g)) {
    const joined = block[1].replace(/\\\n\s*/g, " "); // continuation lines
    for (const line of joined.split("\n")) {
      const m = command.exec(line.replace(/\s+#.*$/, ""));
      if (m) out.push(`livepatch-check${m[1]}`);
    }
  }
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  for (const m of prose.matchAll(/``?((?:npx )?livepatch-check(?: [^`]*)?)``?/g))
    out.push(m[1].replace(/^npx /, ""));
  return out;
}

/** The options of a command line that its help does not list, or an empty list. */
function unknownOptions(line: string, top: Help, sub: Map<string, Help>): string[] {
  const unknown: string[] = [];
  let current = top;
  let where = "livepatch-check";
  const ws = words(line).slice(1);
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i];
    if (w === "--") break;
    if (w.startsWith("-") && w.length > 1) {
      const name = w.split("=")[0];
      const takes = current.options.get(name);
      if (takes === undefined) unknown.push(`${where}: ${name}`);
      else if (takes && !w.includes("=")) i++; // its value
    } else if (current === top && sub.has(w)) {
      current = sub.get(w) as Help;
      where = `livepatch-check ${w}`;
    }
  }
  return unknown;
}

describe("command lines in README.md and docs/", () => {
  const top = help([]);
  const sub = new Map(top.commands.map((c) => [c, help([c])]));

  it("the command's help lists its options and commands", () => {
    expect(top.options.get("--json")).toBe(false);
    expect(top.options.get("--protocol")).toBe(true);
    expect(top.options.get("-p")).toBe(true);
    expect([...sub.keys()]).toEqual(
      expect.arrayContaining(["check", "replay", "list", "merge", "callgraph"]),
    );
    expect(sub.get("callgraph")?.options.has("--from")).toBe(true);
  });

  it("an option the help does not list is caught, also after a subcommand", () => {
    expect(unknownOptions("livepatch-check -p x --no-such 3 --json", top, sub)).toEqual([
      "livepatch-check: --no-such",
    ]);
    expect(unknownOptions("livepatch-check callgraph --elf f --runs 3", top, sub)).toEqual([
      "livepatch-check callgraph: --runs",
    ]);
    expect(unknownOptions("livepatch-check --module m.js list", top, sub)).toEqual([]);
  });

  it("are found in the documentation", () => {
    const all = DOCS.flatMap((d) => commandLines(read(d)));
    expect(all.length).toBeGreaterThanOrEqual(30);
    expect(all.some((l) => /^livepatch-check callgraph /.test(l))).toBe(true);
  });

  it.each(DOCS)("%s: every livepatch-check command line uses only listed options", (doc) => {
    const bad = commandLines(read(doc)).flatMap((line) =>
      unknownOptions(line, top, sub).map((u) => `${u}  (in: ${line})`),
    );
    expect(bad).toEqual([]);
  });
});
