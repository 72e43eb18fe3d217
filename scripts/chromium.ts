// Headless Chromium for the HTML report's tests: Debian's package (/usr/bin/chromium), driven with
// puppeteer-core, which downloads no browser. Without one the browser tests skip, saying so loudly.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

/** The browser to drive: $CHROMIUM, or Debian's chromium package. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  return `no browser at ${CHROMIUM}: install Debian's Chromium with 'apt-get update && apt-get install -y chromium' (.ci/run does), or point $CHROMIUM at one`;
}

/**
 * Launches Chromium headless with a fresh profile and no network of its own: no background
 * networking, component updates or sync (the machines have no internet), and, as root, no sandbox.
 */
export async function launchBrowser(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "livepatch-check-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      `--user-data-dir=${profile}`,
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
