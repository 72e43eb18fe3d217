// The HTML page as text (report/html, cli --html), without a browser: what it embeds, that nothing in
// the data can close its script, and the input errors of --html.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";
import { decodeToken } from "../dist/properties/token.js";
import { buildReportModel, type HtmlPage, renderHtmlPage, replayTape } from "../dist/report/index.js";

const TOKEN = "v2/no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/_34.1._27";
const dir = mkdtempSync(join(tmpdir(), "livepatch-check-html-page-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCaptured;

/** The JSON a page embeds. */
function embedded(html: string): HtmlPage {
  const m = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html);
  if (!m) throw new Error("the page embeds no report data");
  return JSON.parse(m[1]);
}

describe("the HTML page", () => {
  it("embeds the report model, and data that looks like markup cannot end its script", () => {
    const { config, tape } = decodeToken(TOKEN);
    const model = buildReportModel(replayTape(config, tape));
    const page: HtmlPage = {
      title: "</script><script>alert(1)</script> <!--",
      summary: ["a & b < c"],
      counterexamples: [{ id: "cx-1", title: "\u2028</SCRIPT>", model }],
    };
    const html = renderHtmlPage(page);
    expect(embedded(html)).toEqual(JSON.parse(JSON.stringify(page)));
    // Two scripts, the data and the code, and nothing loaded from elsewhere.
    expect(html.match(/<script/gi)).toHaveLength(2);
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:|\/\/)/i);
    expect(html).toContain("<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &lt;!--</title>");
  });

  it("is what `replay --html` writes, beside the unchanged terminal report", async () => {
    const path = join(dir, "replay.html");
    const plain = await run(["replay", TOKEN]);
    const html = await run(["replay", TOKEN, "--html", path]);
    expect(html.code).toBe(1);
    expect(html.stdout).toBe(plain.stdout);
    const page = embedded(readFileSync(path, "utf8"));
    const { config, tape } = decodeToken(TOKEN);
    expect(page.counterexamples.map((c) => c.model)).toEqual([
      JSON.parse(JSON.stringify(buildReportModel(replayTape(config, tape)))),
    ]);
    expect(page.counterexamples[0].model.violations.map((v) => v.kind)).toEqual(["torn-fetch"]);
  });

  it("refuses a path it cannot write before running anything, naming the path", async () => {
    const missing = join(dir, "no-such-folder", "r.html");
    const r = await run(["replay", TOKEN, "--html", missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `livepatch-check: --html: the folder '${join(dir, "no-such-folder")}' does not exist; create it or give a path in an existing folder.\n`,
    );
    const folder = await run(["-p", "no-mask", "-s", "nmi-path", "--html", dir]);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain(`--html: '${dir}' is a folder; give the path of the page to write`);
  });
});
