// Starting Debian's headless Chromium for the browser tests (play.mjs, webrtc.mjs, watch.mjs).
//
// Chromium as root, on a machine with no network but loopback: no sandbox, no GPU, no
// background connections to Google, a fresh profile. CHROMIUM overrides the browser path.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const BASE_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

// Launches a persistent context on a fresh profile with `extraArgs` and `options`; exits
// the process with code 3 when the browser cannot start. Returns { context, close }, where
// close() also removes the profile.
export async function launch(extraArgs = [], options = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), "weir-chromium-"));
  const removeProfile = () => rmSync(userDataDir, { recursive: true, force: true });
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: [...BASE_ARGS, ...extraArgs],
      timeout: 20_000,
      ...options,
    });
  } catch (e) {
    removeProfile();
    console.error(`cannot start ${executablePath}: ${e.message}`);
    process.exit(3);
  }
  const close = async () => {
    await context.close().catch(() => {});
    removeProfile();
  };
  return { context, close };
}

// Launches one browser for several independent sessions (`browser.newContext()` each: own
// storage, like separate people); exits with code 3 when it cannot start. Returns
// { browser, close }.
export async function launchBrowser(extraArgs = []) {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [...BASE_ARGS, ...extraArgs],
      timeout: 20_000,
    });
  } catch (e) {
    console.error(`cannot start ${executablePath}: ${e.message}`);
    process.exit(3);
  }
  return { browser, close: () => browser.close().catch(() => {}) };
}
