// The HTML renderer: one self-contained page (inline style and script, nothing fetched) that embeds
// the report models as JSON (<script type="application/json">) and draws them in the browser from
// that data alone: a lane per CPU, contexts as nested bands, the patch site as a byte grid whose
// fetched bytes link to the writes that produced them, the violations linked to their steps, the
// replay token with a copy button, and keyboard navigation between events and scheduler switches.
import { CLIENT_SCRIPT, PAGE_STYLE } from "./html-client.js";
import type { ReportModel } from "./model.js";

/** A counterexample on a page: a title (which check, which property) and its report model. */
export interface HtmlCounterexample {
  /** The element id of its section, unique on the page (a matrix cell links to it). */
  id: string;
  title: string;
  model: ReportModel;
  /** A line under the report, such as its confirmation on the threaded engine. */
  note?: string;
}

/** The verdict matrix of the main job: each cell's text, and the counterexamples it links to. */
export interface HtmlMatrix {
  scenarios: string[];
  rows: Array<{
    protocol: string;
    cells: Array<{
      scenario: string;
      text: string;
      /** The verdict differs from the one the protocol declares. */
      differs: boolean;
      /** How the verdict was reached (holds: exhaustive or random, with its figures). */
      how: string;
      /** Links to counterexample sections: the property and the section's id. */
      links: Array<{ property: string; id: string }>;
    }>;
  }>;
  /** The lines under the table (hazard brackets, bounds of the proofs, differing verdicts). */
  notes: string[];
}

export interface HtmlPage {
  title: string;
  /** Lines shown under the title (a single check's verdict, the run's figures). */
  summary: string[];
  matrix?: HtmlMatrix;
  counterexamples: HtmlCounterexample[];
}

/** JSON safe inside a <script> element: no "</script>" or "<!--" can appear in it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function escapeText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The page: everything inline, so the one file opens from disk anywhere, offline. */
export function renderHtmlPage(page: HtmlPage): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeText(page.title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<noscript>This report draws itself with JavaScript from the data embedded in the page; the terminal report (npx livepatch-check replay TOKEN) says the same in text.</noscript>
<main id="report"></main>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="report-data">${scriptJson(page)}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
