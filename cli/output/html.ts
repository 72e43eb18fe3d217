// --html FILE: the report as one self-contained HTML page (report/html), written beside the terminal
// output. The page of a single check or of a replay shows its counterexamples; the main job's page
// also shows the verdict matrix, each violation linked to its counterexample's section.
import { existsSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Expected } from "../../model/types.js";
import type { Verdict } from "../../properties/check.js";
import {
  type HtmlCounterexample,
  type HtmlMatrix,
  type HtmlPage,
  holdsText,
  matchesExpected,
  provenMark,
  renderHtmlPage,
  renderVerdictMatrix,
  verdictCell,
} from "../../report/index.js";

/**
 * The absolute path of the page, refused before anything runs when it cannot be written: its folder
 * must exist and the path must not be a folder.
 */
/** The file the main job writes its HTML report to, in the working directory, when --html is not given. */
export const DEFAULT_HTML_REPORT = "livepatch-check-report.html";

export function htmlPath(path: string, usage: (message: string) => Error): string {
  const absolute = resolve(path);
  const folder = dirname(absolute);
  if (!existsSync(folder) || !statSync(folder).isDirectory())
    throw usage(
      `--html: the folder '${folder}' does not exist; create it or give a path in an existing folder.`,
    );
  if (existsSync(absolute) && statSync(absolute).isDirectory())
    throw usage(
      `--html: '${absolute}' is a folder; give the path of the page to write, such as report.html.`,
    );
  return absolute;
}

/** Writes the page; a failure is an input error naming the path and the cause. */
export function writeHtml(path: string, page: HtmlPage, usage: (message: string) => Error): void {
  try {
    writeFileSync(path, renderHtmlPage(page));
  } catch (e) {
    throw usage(`--html: cannot write '${path}': ${(e as Error).message}. Give a writable path.`);
  }
}

/** The section id of the i-th counterexample of a page. */
export function counterexampleId(i: number): string {
  return `cx-${i + 1}`;
}

/**
 * The verdict table as the terminal prints it, each violated property linked to the section of its
 * counterexample; the lines under the table are the terminal's.
 */
export function htmlMatrix(
  verdicts: readonly Verdict[],
  expectedFor: (protocol: string, scenario: string) => Expected | undefined,
  counterexamples: readonly HtmlCounterexample[],
  sections: ReadonlyArray<{ protocol: string; scenario: string; property: string }>,
  /** Whether a cell is judged against its declared verdict (default: every cell). */
  judged: (protocol: string, scenario: string) => boolean = () => true,
): HtmlMatrix {
  const protocols = [...new Set(verdicts.map((v) => v.config.protocol))];
  const scenarios = [...new Set(verdicts.map((v) => v.config.scenario))];
  const table = renderVerdictMatrix(verdicts, expectedFor, { judged }).split("\n");
  // The terminal's table is its header, a rule and a line per protocol; what follows are its notes.
  const notes = table.slice(2 + protocols.length).filter((line) => line.trim() !== "");
  return {
    scenarios,
    rows: protocols.map((protocol) => ({
      protocol,
      cells: scenarios.map((scenario) => {
        const v = verdicts.find((x) => x.config.protocol === protocol && x.config.scenario === scenario);
        if (!v) return { scenario, text: "", differs: false, how: "", links: [] };
        const links = sections.flatMap((s, i) =>
          s.protocol === protocol && s.scenario === scenario
            ? [{ property: s.property, id: counterexamples[i].id }]
            : [],
        );
        return {
          scenario,
          text: `${verdictCell(v)}${provenMark(v)}`,
          differs: judged(protocol, scenario) && !matchesExpected(v, expectedFor(protocol, scenario)),
          how:
            v.kind === "refused"
              ? v.reason
              : v.kind === "error"
                ? v.message
                : v.kind === "violated"
                  ? `the properties not violated: ${holdsText(v)}`
                  : holdsText(v),
          links,
        };
      }),
    })),
    notes,
  };
}
