// The HTML report (report/html) in a real browser: the page written by `replay --html` is opened from
// disk in headless Chromium and its DOM is compared with the report model built here in Node.
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../dist/cli/main.js";
import { decodeToken } from "../dist/properties/token.js";
import { buildReportModel, type ReportModel, replayTape } from "../dist/report/index.js";
import { browserMissing, launchBrowser } from "../dist/scripts/chromium.js";

const missing = browserMissing();
if (missing) console.warn(`\n!!! HTML report browser tests SKIPPED: ${missing} !!!\n`);

const OUT = resolve("test-output");

/** The replay token docs/tokens.md lists for a cell's violation: a test of the page on a real counterexample. */
function listedToken(cell: string, violation: string): string {
  const tokens = readFileSync(resolve("docs/tokens.md"), "utf8");
  const section = tokens.split(`- **${cell}**`)[1] ?? "";
  const m = new RegExp(`- ${violation.replace(/[()]/g, "\\$&")}[^\`]*\`([^\`]+)\``).exec(section);
  if (!m) throw new Error(`docs/tokens.md lists no ${violation} token for ${cell}`);
  return m[1];
}

/** Writes the page of a replay with the CLI and builds the same report's model here. */
async function pageOf(token: string, file: string): Promise<{ path: string; model: ReportModel }> {
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, file);
  const out: string[] = [];
  const io = {
    stdout: (t: string) => out.push(t),
    stderr: (t: string) => out.push(t),
    stdoutIsTTY: false,
    stderrIsTTY: false,
    env: {},
    cwd: OUT,
  };
  const code = await main(["replay", token, "--html", path], io);
  expect(code, out.join("")).toBe(1);
  const { config, tape } = decodeToken(token);
  return { path, model: buildReportModel(replayTape(config, tape)) };
}

describe.skipIf(missing !== undefined)("the HTML report in headless Chromium", () => {
  let browser: Browser;
  let close: () => Promise<void>;
  let torn: { path: string; model: ReportModel };

  beforeAll(async () => {
    // A torn fetch: the patcher's byte writes, an NMI, the fetches at the site and the crash.
    torn = await pageOf(listedToken("no-mask / nmi-path", "P1 torn-fetch"), "torn.html");
    ({ browser, close } = await launchBrowser());
  });
  afterAll(async () => {
    await close?.();
  });

  /** Opens the page from disk, recording every request and every console error. */
  async function open(path: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.setRequestInterception(true);
    page.on("request", (r) => {
      requests.push(r.url());
      // Only the page itself may load: anything else would need a network or another file.
      if (r.url() === pathToFileURL(path).href) void r.continue();
      else void r.abort();
    });
    await page.goto(pathToFileURL(path).href, { waitUntil: "load" });
    await page.waitForSelector("body[data-rendered]");
    return { page, requests, errors };
  }

  it("embeds the model built in Node and draws a lane per CPU, row for row", async () => {
    const { page } = await open(torn.path);
    const m = torn.model;
    const embedded = await page.$eval("#report-data", (e) => JSON.parse(e.textContent ?? "null"));
    expect(embedded.counterexamples[0].model).toEqual(JSON.parse(JSON.stringify(m)));
    expect(await page.$$eval("table.timeline th.lane-head", (ths) => ths.map((t) => t.textContent))).toEqual(
      Array.from({ length: m.cpus }, (_, i) => `CPU ${i}`),
    );
    const rows = await page.$$eval("table.timeline tbody tr[id]:not([data-fold-of])", (trs) =>
      trs.map((tr) => ({
        step: Number((tr as HTMLElement).dataset.step),
        cpu: Number((tr as HTMLElement).dataset.cpu),
        kind: (tr as HTMLElement).dataset.kind,
        lanes: tr.querySelectorAll("td.lane").length,
      })),
    );
    expect(rows).toEqual(
      m.timeline.map((r) => ({ step: r.step, cpu: r.cpu, kind: r.kind, lanes: r.cpu < 0 ? 0 : m.cpus })),
    );
    // Every context band of a row's own lane is one of the row's frames.
    const own = await page.$$eval("table.timeline tbody tr[id]:not([data-fold-of])", (trs) =>
      trs.map((tr) => {
        const lane = tr.querySelector(`td.lane[data-lane="${(tr as HTMLElement).dataset.cpu}"]`);
        return lane
          ? [...lane.querySelectorAll(".band[data-context]")].map((b) => (b as HTMLElement).dataset.context)
          : [];
      }),
    );
    expect(own).toEqual(
      m.timeline.map((r) =>
        r.cpu < 0
          ? []
          : (r.contextsAfter.length > r.contexts.length ? r.contextsAfter : r.contexts).map((f) => f.kind),
      ),
    );
    expect(own.some((frames) => frames.includes("NMI"))).toBe(true);
    await page.close();
  });

  it("shows every fetch at the site with its bytes, each linked to the write that produced it", async () => {
    const { page } = await open(torn.path);
    const m = torn.model;
    const fetches = await page.$$eval("table.bytegrid tr.fetch", (trs) =>
      trs.map((tr) => ({
        index: Number((tr as HTMLElement).dataset.fetch),
        bytes: [...tr.querySelectorAll("a.byte")]
          .map((a) => a as HTMLAnchorElement)
          .sort((x, y) => Number(x.dataset.byte) - Number(y.dataset.byte))
          .map((a) => ({
            address: Number(a.dataset.address),
            value: Number.parseInt(a.textContent ?? "", 16),
            label: a.dataset.label,
            writer:
              a.dataset.writerCpu === undefined
                ? null
                : {
                    cpu: Number(a.dataset.writerCpu),
                    step: Number(a.dataset.writerStep),
                    seq: Number(a.dataset.writerSeq),
                    write: Number(a.dataset.write),
                    row: document.getElementById(a.hash.slice(1))?.dataset.write,
                  },
          })),
      })),
    );
    expect(fetches.map((f) => f.index)).toEqual(m.fetches.map((_, i) => i));
    expect(fetches.map((f) => f.bytes)).toEqual(
      m.fetches.map((f) =>
        f.bytes.map((b) => ({
          address: b.address,
          value: b.value,
          label: b.label,
          writer: b.writer ? { ...b.writer, row: String(b.writer.write) } : null,
        })),
      ),
    );
    // The torn instruction has a byte written by the patcher, and the grid has a row for that write.
    const tornFetch = m.fetches.find((f) => f.cls === "torn");
    expect(tornFetch?.bytes.some((b) => b.writer !== null)).toBe(true);
    const writes = await page.$$eval("table.bytegrid tr.write", (trs) =>
      trs.map((tr) => ({
        cpu: Number((tr as HTMLElement).dataset.cpu),
        step: Number((tr as HTMLElement).dataset.step),
      })),
    );
    expect(writes).toEqual(m.writes.map((w) => ({ cpu: w.cpu, step: w.step })));
    await page.close();
  });

  it("scrolls to the violation's step and highlights it when the violation is clicked", async () => {
    const { page } = await open(torn.path);
    const v = torn.model.violations[0];
    expect(v.property).toBe("P1");
    expect(v.at).not.toBeNull();
    await page.click('a.violation[data-violation="0"]');
    const shown = await page.$eval("table.timeline tr.highlight", (tr) => {
      const r = tr.getBoundingClientRect();
      return {
        id: tr.id,
        step: Number((tr as HTMLElement).dataset.step),
        cpu: Number((tr as HTMLElement).dataset.cpu),
        inView: r.top >= 0 && r.bottom <= window.innerHeight,
        scrolled: window.scrollY,
      };
    });
    expect(shown).toMatchObject({ step: v.step, cpu: v.cpu, inView: true });
    expect(shown.id).toBe(`cx-1-r${v.at?.row}`);
    expect(shown.scrolled).toBeGreaterThan(0);
    // The torn instruction's row in the site grid is highlighted too.
    const tornIndex = torn.model.fetches.findIndex((f) => f.cls === "torn");
    expect(await page.$eval(`#cx-1-f${tornIndex}`, (tr) => tr.classList.contains("highlight"))).toBe(true);
    await page.close();
  });

  it("shows a site byte's writer and step when the byte is hovered", async () => {
    const { page } = await open(torn.path);
    const index = torn.model.fetches.findIndex((f) => f.bytes.some((b) => b.writer !== null));
    const byte = torn.model.fetches[index].bytes.findIndex((b) => b.writer !== null);
    const b = torn.model.fetches[index].bytes[byte];
    await page.hover(`#cx-1-f${index} a.byte[data-byte="${byte}"]`);
    const tip = await page.$eval("#tooltip", (t) => ({
      hidden: (t as HTMLElement).hidden,
      text: t.textContent,
    }));
    expect(tip.hidden).toBe(false);
    expect(tip.text).toContain(
      `written by CPU ${b.writer?.cpu} at step ${b.writer?.step} (write #${b.writer?.seq})`,
    );
    expect(await page.$eval(`#cx-1-w${b.writer?.write}`, (tr) => tr.classList.contains("linked"))).toBe(true);
    await page.close();
  });

  it("moves between events with n and p and between scheduler switches with s and S", async () => {
    const { page } = await open(torn.path);
    const m = torn.model;
    const events = m.timeline.flatMap((r, i) => (r.event ? [`cx-1-r${i}`] : []));
    const switches = m.timeline.flatMap((r, i) => (r.switched ? [`cx-1-r${i}`] : []));
    expect(events.length).toBeGreaterThan(2);
    expect(switches.length).toBeGreaterThan(1);
    const current = () => page.$eval("tr.current", (tr) => tr.id);
    await page.keyboard.press("n");
    expect(await current()).toBe(events[0]);
    await page.keyboard.press("n");
    expect(await current()).toBe(events[1]);
    await page.keyboard.press("n");
    expect(await current()).toBe(events[2]);
    await page.keyboard.press("p");
    expect(await current()).toBe(events[1]);
    // From the second event, s goes to the first switch after it, s again to the next, S back.
    const row = (id: string) => Number(id.slice("cx-1-r".length));
    const later = switches.filter((id) => row(id) > row(events[1]));
    expect(later.length).toBeGreaterThan(1);
    await page.keyboard.press("s");
    expect(await current()).toBe(later[0]);
    await page.keyboard.press("s");
    expect(await current()).toBe(later[1]);
    await page.keyboard.press("S");
    expect(await current()).toBe(later[0]);
    await page.close();
  });

  it("copies the replay command, or selects it when the clipboard is not granted", async () => {
    const { page } = await open(torn.path);
    const command = torn.model.replayCommand.replace(/^replay: /, "");
    await page.evaluate(() => {
      const w = window as unknown as { copied: string[] };
      w.copied = [];
      Object.defineProperty(navigator, "clipboard", {
        configurable: true,
        value: {
          writeText: (t: string) => {
            w.copied.push(t);
            return Promise.resolve();
          },
        },
      });
    });
    await page.click("button.copy");
    await page.waitForFunction(() => document.querySelector(".copy-status")?.textContent !== "");
    expect(await page.evaluate(() => (window as unknown as { copied: string[] }).copied)).toEqual([command]);
    expect(await page.$eval(".copy-status", (s) => s.textContent)).toBe("copied");
    // Refused: the command is selected instead, for Ctrl+C.
    await page.evaluate(() => {
      Object.defineProperty(navigator, "clipboard", {
        configurable: true,
        value: { writeText: () => Promise.reject(new DOMException("denied", "NotAllowedError")) },
      });
    });
    await page.click("button.copy");
    await page.waitForFunction(() => document.querySelector(".copy-status")?.textContent !== "copied");
    expect(await page.evaluate(() => window.getSelection()?.toString())).toBe(command);
    expect(await page.$eval(".copy-status", (s) => s.textContent)).toMatch(/^selected/);
    await page.close();
  });

  it("makes no request but for the page itself and logs no error, whatever is clicked", async () => {
    const { page, requests, errors } = await open(torn.path);
    await page.click("a.violation");
    for (const key of ["n", "n", "p", "s", "S"] as const) await page.keyboard.press(key);
    const folds = await page.$$("button.fold");
    for (const f of folds.slice(0, 3)) await f.click();
    await page.hover("a.byte");
    await page.click("a.byte");
    expect(requests).toEqual([pathToFileURL(torn.path).href]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("renders the longest counterexample readably (a screenshot in test-output/)", async () => {
    // The longest counterexample docs/tokens.md lists: the rendezvous's deadlock with machine checks.
    const long = await pageOf(listedToken("nmi-rendezvous / mce-path", "P5"), "longest.html");
    const { page, errors } = await open(long.path);
    await page.click("a.violation");
    const shot = join(OUT, "html-report.png");
    await page.screenshot({ path: shot });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(await page.$$eval("table.timeline th.lane-head", (t) => t.length)).toBe(long.model.cpus);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("links every violation of the matrix page to its counterexample's section", async () => {
    // One scenario, every protocol, a quick random search: a matrix of a column, with violations.
    const path = join(OUT, "matrix.html");
    const out: string[] = [];
    const io = {
      stdout: (t: string) => out.push(t),
      stderr: () => {},
      stdoutIsTTY: false,
      stderrIsTTY: false,
      env: {},
      cwd: OUT,
    };
    await main(["-s", "nmi-path", "--strategy", "random", "--runs", "100", "--html", path], io);
    // The terminal's table: a header, a rule, then "protocol  cell" per line until a blank line.
    const lines = out.join("").split("\n");
    const table = lines.slice(2, lines.indexOf("", 2)).map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l) as RegExpExecArray;
      return { protocol: m[1], cell: m[2] };
    });
    const { page, errors } = await open(path);
    const cells = await page.$$eval("table.matrix td", (tds) =>
      tds.map((td) => ({
        protocol: (td as HTMLElement).dataset.protocol,
        cell:
          (td.querySelector(".cell-text")?.textContent ?? "") +
          (td.classList.contains("differs") ? " *" : ""),
        links: [...td.querySelectorAll("a.cx-link")].map((a) => ({
          property: a.textContent,
          title: document.getElementById((a as HTMLAnchorElement).hash.slice(1))?.querySelector("h2")
            ?.textContent,
        })),
      })),
    );
    expect(cells.map(({ protocol, cell }) => ({ protocol, cell }))).toEqual(table);
    const violated = cells.filter((c) => /P\d/.test(c.cell));
    expect(violated.length).toBeGreaterThan(1);
    for (const c of violated) {
      expect(c.links.map((l) => l.property)).toEqual(c.cell.match(/P\d/g));
      for (const l of c.links)
        expect(l.title).toMatch(new RegExp(`^${c.protocol} on nmi-path: ${l.property} `));
    }
    // Following a link shows the counterexample's section.
    await page.click("a.cx-link");
    const hash = await page.evaluate(() => window.location.hash);
    const top = await page.$eval(hash, (sec) => sec.getBoundingClientRect().top);
    expect(Math.abs(top)).toBeLessThan(5);
    expect(errors).toEqual([]);
    await page.close();
  });
});
