// Drives weir's WebRTC pages (web/whip.html publish, web/whep.html play) in Debian's headless
// Chromium with a fake camera and microphone, and prints what every page saw as one JSON line
// on stdout.
//
//   node webrtc.mjs [--seconds 20] [--timeout 30] [--parallel] --page <url> [--page <url> ...]
//
// Every URL opens in its own page of one browser context (give autostart=1 in the URL). The
// pages open one after another: each must reach "connected" (window.weirState().state) within
// --timeout seconds of opening before the next opens — so a publisher listed first is live
// before its players start; --parallel opens them all at once instead. Once every page is
// connected, all are watched for --seconds more; then each is stopped (window.weirStop(), which
// DELETEs its session) and the browser closes. window.weirState() is polled every 500 ms on
// every open page. Output: {pages: [{url, final: <last weirState()>, connectedAt,
// samples: [{t: Date.now(), state, stats}]}], code, elapsedMs}.
//
// Exits 0 when every page connected in time and none failed; 1 when a page reached "failed"
// (or could not load); 2 when a page did not reach "connected" within --timeout; 3 when the
// browser cannot be started; 64 on bad arguments. Pages must come from http://127.0.0.1 (or
// localhost, a secure context) for getUserMedia. Page console errors and exceptions go to
// stderr as "[page N] …". Needs `npm ci` here and /usr/bin/chromium; CHROMIUM overrides it.

import { launch } from "./chromium.mjs";

const usage = "usage: node webrtc.mjs [--seconds N] [--timeout N] [--parallel] --page <url> [--page <url> ...]";
const opts = { seconds: 20, timeout: 30, parallel: false, pages: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s);
  const value = () => inline ?? argv[++i];
  if (flag === "--seconds" || flag === "--timeout") opts[flag.slice(2)] = Number(value());
  else if (flag === "--page") opts.pages.push(value());
  else if (flag === "--parallel") opts.parallel = true;
  else {
    console.error(`${flag === "--help" || flag === "-h" ? "" : `unknown argument ${argv[i]}\n`}${usage}`);
    process.exit(64);
  }
}
if (!opts.pages.length || !(opts.seconds >= 0) || !(opts.timeout > 0) || opts.pages.some((p) => !p)) {
  console.error(usage);
  process.exit(64);
}

const { context, close } = await launch(
  [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    // Real host candidates instead of mDNS names on pages without camera permission (WHEP).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    // Keep background pages' timers and media running at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
  ],
  { permissions: ["camera", "microphone"] },
);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const pages = opts.pages.map((url) => ({ url, final: null, connectedAt: null, samples: [] }));
const open = []; // {i, page} of the pages opened so far

async function openPage(i) {
  const page = i === 0 && context.pages()[0] ? context.pages()[0] : await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`[page ${i}] console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.error(`[page ${i}] exception: ${e.message}`));
  page.on("crash", () => console.error(`[page ${i}] crashed`));
  open.push({ i, page, openedAt: Date.now() });
  try {
    await page.goto(pages[i].url, { timeout: opts.timeout * 1000, waitUntil: "domcontentloaded" });
  } catch (e) {
    console.error(`[page ${i}] cannot load ${pages[i].url}: ${e.message}`);
    pages[i].final = { state: "failed", error: `cannot load: ${e.message}`, location: null, stats: {} };
  }
}

// One sample of every open page; returns the states.
async function sampleAll() {
  await Promise.all(
    open.map(async ({ i, page }) => {
      const p = pages[i];
      if (p.final?.state === "failed" && !p.samples.length) return; // never loaded
      let s;
      try {
        s = await page.evaluate(() =>
          typeof window.weirState === "function" ? window.weirState() : { state: "loading", error: null, location: null, stats: {} },
        );
      } catch (e) {
        s = { state: "loading", error: `weirState(): ${e.message}`, location: null, stats: {} };
      }
      const t = Date.now();
      p.samples.push({ t, state: s.state, stats: s.stats });
      p.final = s;
      if (s.state === "connected" && p.connectedAt == null) p.connectedAt = t;
    }),
  );
}

const failed = () => pages.find((p) => p.final?.state === "failed");
let code = 0;
try {
  // Open the pages (one at a time, each connected before the next, unless --parallel).
  const waves = opts.parallel ? [pages.map((_, i) => i)] : pages.map((_, i) => [i]);
  for (const wave of waves) {
    await Promise.all(wave.map(openPage));
    for (;;) {
      await sampleAll();
      if (failed()) break;
      const late = open.find(({ i, openedAt }) => pages[i].connectedAt == null && Date.now() - openedAt > opts.timeout * 1000);
      if (late) {
        console.error(`[page ${late.i}] not connected after ${opts.timeout} s (state ${pages[late.i].final?.state})`);
        code = 2;
        break;
      }
      if (wave.every((i) => pages[i].connectedAt != null)) break;
      await sleep(500);
    }
    if (failed() || code) break;
  }
  // Watch the connected pages.
  if (!failed() && !code) {
    const end = Date.now() + opts.seconds * 1000;
    while (Date.now() < end && !failed()) {
      await sleep(Math.min(500, Math.max(0, end - Date.now())));
      await sampleAll();
    }
  }
  if (failed()) code = 1;
} catch (e) {
  console.error(`driver failed: ${e.stack || e}`);
  code = 1;
} finally {
  // End every session (DELETE) before the browser goes away.
  await Promise.all(
    open.map(({ page }) =>
      Promise.race([page.evaluate(() => window.weirStop?.()).catch(() => {}), sleep(3000)]),
    ),
  );
  await close();
}
for (const p of pages) if (p.final?.state === "failed") console.error(`page ${p.url} failed: ${p.final.error}`);
console.log(JSON.stringify({ pages, code, elapsedMs: Date.now() - started }));
process.exit(code);
