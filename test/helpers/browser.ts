// Debian's Chromium, headless, driven by playwright-core: the Temporal UI checked the way a person sees it.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS_DIR = fileURLToPath(new URL('../artifacts', import.meta.url));

// This network reaches no Google service: everything that would phone home is switched off.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface HeadlessBrowser {
  page: Page;
  /** Saves a full-page screenshot as test/artifacts/<name>.png and returns its path. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<HeadlessBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/setup.sh\` as root, or \`sudo apt-get install chromium\``);
  const userDataDir = mkdtempSync(join(tmpdir(), 'dbchange-chromium-'));
  // A fresh profile per run: no state left over from another run or another person.
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 1000 } });
  const page = context.pages()[0] ?? (await context.newPage());
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return {
    page,
    async screenshot(name) {
      const path = join(ARTIFACTS_DIR, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** True when `text` is visible on the page or in one of its frames (the UI renders markdown in sandboxed iframes). */
export async function isTextVisible(page: Page, text: string): Promise<boolean> {
  for (const frame of page.frames()) {
    const matches = frame.getByText(text);
    for (let index = 0; index < (await matches.count()); index++) if (await matches.nth(index).isVisible()) return true;
  }
  return false;
}

/** Waits until `text` is visible on the page or in one of its frames. */
export async function waitForText(page: Page, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isTextVisible(page, text).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`"${text}" did not appear at ${page.url()} within ${timeoutMs / 1000}s`);
    await page.waitForTimeout(250);
  }
}
