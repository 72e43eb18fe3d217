// The HTML report's size and render time (npm run bench:html): the page of every counterexample
// docs/tokens.md lists (the matrix's), and for the largest one its time from navigation to drawn in headless
// Chromium (Debian's /usr/bin/chromium, or $CHROMIUM), median of 5 loads. Measured, not asserted.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { decodeToken } from "../properties/token.js";
import { buildReportModel, renderHtmlPage, replayTape } from "../report/index.js";
import { launchBrowser } from "../scripts/chromium.js";

async function main(): Promise<void> {
  const list = readFileSync(resolve("docs/tokens.md"), "utf8");
  const tokens = [...new Set([...list.matchAll(/`(v\d+\/[^`\s]+)`/g)].map((m) => m[1]))];
  const dir = mkdtempSync(join(tmpdir(), "livepatch-check-html-"));
  let largest = { token: "", bytes: 0, path: "", rows: 0 };
  for (const token of tokens) {
    const { config, tape } = decodeToken(token);
    const model = buildReportModel(replayTape(config, tape));
    const html = renderHtmlPage({
      title: `${config.protocol} on ${config.scenario}`,
      summary: [],
      counterexamples: [{ id: "cx-1", title: `${config.protocol} on ${config.scenario}`, model }],
    });
    const bytes = Buffer.byteLength(html);
    if (bytes > largest.bytes) {
      const path = join(dir, "largest.html");
      writeFileSync(path, html);
      largest = { token, bytes, path, rows: model.timeline.length };
    }
  }
  console.log(
    `${tokens.length} counterexamples; the largest page: ${(largest.bytes / 1024).toFixed(0)} KiB (${largest.rows} timeline rows), ${largest.token}`,
  );
  const { browser, close } = await launchBrowser();
  try {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 900 });
      await page.goto(pathToFileURL(largest.path).href, { waitUntil: "load" });
      await page.waitForSelector("body[data-rendered]");
      // From the start of navigation to the script's end, and the first paint after it.
      // (a string: the DOM's names are not in this project's TypeScript library)
      times.push(
        (await page.evaluate(
          "new Promise((done) => requestAnimationFrame(() => done(performance.now())))",
        )) as number,
      );
      await page.close();
    }
    times.sort((a, b) => a - b);
    console.log(
      `render in headless Chromium, navigation to first frame after drawing: median ${times[2].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times[4].toFixed(0)})`,
    );
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
