/**
 * A real browser for tests: the system's Chromium, driven headless by puppeteer-core, with a
 * fresh profile per launch. Tests that need it skip visibly where Chromium is not installed.
 * @module
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** The Chromium binary: `CHROMIUM` if set, else Debian's `/usr/bin/chromium`, when present. */
export const CHROMIUM: string | undefined = (() => {
  for (const path of [Deno.env.get("CHROMIUM"), "/usr/bin/chromium"]) {
    if (path === undefined) continue;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there.
    }
  }
  return undefined;
})();

/** A headless browser with its own profile directory, removed on close. */
export interface TestBrowser extends AsyncDisposable {
  readonly browser: Browser;
  /** Opens `url` in a new page of the given size; page errors fail loudly in the log. */
  open(url: string, viewport?: { width: number; height: number }): Promise<Page>;
}

/** Launches headless Chromium with a fresh user data dir. */
export async function launchBrowser(): Promise<TestBrowser> {
  if (CHROMIUM === undefined) throw new Error("Chromium is not installed");
  const profile = await Deno.makeTempDir({ prefix: "tareas-chromium-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  return {
    browser,
    async open(url, viewport = { width: 1280, height: 900 }) {
      const page = await browser.newPage();
      page.on("pageerror", (error) => console.error(`page error: ${error}`));
      await page.setViewport(viewport);
      await page.goto(url);
      return page;
    },
    async [Symbol.asyncDispose]() {
      await browser.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Waits until `expression` (JavaScript run in the page) is truthy, failing after `ms` with a
 * message naming `what`.
 */
export async function waitInPage(
  page: Page,
  what: string,
  expression: string,
  ms = 30_000,
): Promise<void> {
  try {
    await page.waitForFunction(expression, { timeout: ms, polling: 100 });
  } catch (error) {
    throw new Error(`Timed out after ${ms} ms waiting in the page for ${what}`, { cause: error });
  }
}

/** Evaluates `expression` (JavaScript) in the page and returns its JSON-able value. */
export function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}
