// Checks of the mutation list shared by `npm run mutate` and by test/mutations.test.ts (which runs in
// `npm test`, so that a source edit that moves a mutation's text is seen at once, not at the next
// mutation run).
import { type Edit, type Mutation, REQUIRED } from "./mutations.js";

/** The edits of a mutation, the main one first. */
export const editsOf = (m: Mutation): Edit[] => [
  { file: m.file, find: m.find, replace: m.replace },
  ...(m.more ?? []),
];

export function occurrences(text: string, find: string): number {
  let n = 0;
  for (let i = text.indexOf(find); i >= 0; i = text.indexOf(find, i + 1)) n++;
  return n;
}

/** Problems with the list itself: duplicate ids, unknown rules, missing files, uncovered rules. */
export function listProblems(mutations: Mutation[], exists: (path: string) => boolean): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const m of mutations) {
    if (ids.has(m.id)) problems.push(`mutation id '${m.id}' is used twice`);
    ids.add(m.id);
    if (!REQUIRED.includes(m.breaks))
      problems.push(
        `${m.id}: breaks '${m.breaks}' is not a rule (H1), property (P1) or real-code rule (STACK)`,
      );
    if (!m.id.startsWith(`${m.breaks}-`)) problems.push(`${m.id}: the id must start with '${m.breaks}-'`);
    if (m.tests.length === 0) problems.push(`${m.id}: names no test file`);
    for (const t of m.tests) {
      if (!exists(t)) problems.push(`${m.id}: test file '${t}' does not exist`);
      // The fast tier (`npm test`) must kill every mutation on its own: a rule that only the slow tier
      // can see break would go unseen in most test runs.
      if (t.startsWith("test/slow/"))
        problems.push(`${m.id}: test file '${t}' is in the slow tier: name a test of the fast tier`);
    }
    for (const e of editsOf(m)) {
      if (e.find === "") problems.push(`${m.id}: an edit has an empty find text`);
      if (e.find === e.replace) problems.push(`${m.id}: a replacement equals its find text`);
      if (!exists(e.file)) problems.push(`${m.id}: file '${e.file}' does not exist`);
    }
  }
  for (const rule of REQUIRED)
    if (!mutations.some((m) => m.breaks === rule)) problems.push(`no mutation breaks ${rule}`);
  return problems;
}

/**
 * The mutant's files (path -> new text), or why it cannot be made: a find text that is missing (the
 * source moved) or that occurs more than once (it needs more context).
 */
export function mutantFiles(
  m: Mutation,
  read: (path: string) => string,
): { files: Map<string, string> } | { error: string } {
  const files = new Map<string, string>();
  for (const e of editsOf(m)) {
    const text = files.get(e.file) ?? read(e.file);
    const n = occurrences(text, e.find);
    const shown = JSON.stringify(e.find.length > 70 ? `${e.find.slice(0, 70)}...` : e.find);
    if (n === 0)
      return {
        error: `find text not in ${e.file} (the source moved: update scripts/mutations.ts): ${shown}`,
      };
    if (n > 1) return { error: `find text occurs ${n} times in ${e.file}: give it more context: ${shown}` };
    files.set(
      e.file,
      text.replace(e.find, () => e.replace),
    );
  }
  return { files };
}
