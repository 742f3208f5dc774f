// Plays a weir low-latency DASH stream (manifest.mpd) with dash.js in Debian's headless
// Chromium and prints what the player saw as one JSON line on stdout.
//
//   node dash.mjs <MPD URL> [timeout seconds = 40] [seconds to play = 8] [live delay s = 0] [vod]
//
// Exits 0 once the video has played that far (currentTime advanced that much from where
// it started, and video.played that long) and dash.js has reported a live latency, 1 on a
// fatal dash.js/video error, 2 on a timeout, 3 when the browser cannot be started. A live
// delay of 0 leaves the latency target to the MPD's ServiceDescription. Besides what
// dash.html keeps, the report has `network`: the page's requests to the origin as the
// browser saw them (kind: mpd, time, init, segment; when each was sent, its first byte
// and its end, and whether its body kept coming at least 500 ms after the first byte: a
// segment sent while it was being made). DASH_LOG=<none|fatal|error|warning|info|debug>
// sets dash.js's console log level (its warnings and errors go to stderr). A fifth
// argument `vod` plays a static MPD (a recording), where no live latency is reported. Needs `npm ci`
// here and /usr/bin/chromium (`cargo xtask setup --test` installs both); CHROMIUM
// overrides the browser path.

import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { launch } from "./chromium.mjs";

const [src, timeoutArg = "40", playArg = "8", delayArg = "0", modeArg = "live"] = process.argv.slice(2);
const vod = modeArg === "vod";
if (!src) {
  console.error("usage: node dash.mjs <MPD URL> [timeout s] [seconds to play] [live delay s]");
  process.exit(64);
}
const timeoutMs = Number(timeoutArg) * 1000;
const playSeconds = Number(playArg);

const here = dirname(fileURLToPath(import.meta.url));
const page_url = pathToFileURL(join(here, "dash.html"));
page_url.searchParams.set("src", src);
if (Number(delayArg) > 0) page_url.searchParams.set("liveDelay", delayArg);
if (process.env.DASH_LOG) page_url.searchParams.set("log", process.env.DASH_LOG);

const { context, close } = await launch();

// What the browser fetched from the origin.
const network = [];
const kindOf = (url) => {
  const path = new URL(url).pathname;
  if (path.endsWith(".mpd")) return "mpd";
  if (path === "/time") return "time";
  if (/\/init-\d+\.mp4$/.test(path)) return "init";
  if (/\/seg-\d+\.m4s$/.test(path)) return "segment";
  return "other";
};
const started = Date.now();
let code = 2;
let report = null;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.error(`page ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.error(`page exception: ${e.message}`));
  const done = (request, failure) => {
    if (!request.url().startsWith("http")) return;
    const t = request.timing();
    const entry = {
      kind: kindOf(request.url()),
      path: new URL(request.url()).pathname.replace(/^\/live\/[^/]+\/[^/]+\//, ""),
      type: request.resourceType(),
      // When it was sent (UNIX ms), to line up with the MPD's availabilityStartTime.
      atMs: Math.round(t.startTime),
      failure: failure ?? null,
    };
    if (t.responseStart >= 0 && t.responseEnd >= 0) {
      entry.firstByteMs = Math.round(t.responseStart);
      entry.endMs = Math.round(t.responseEnd);
      // The body kept coming at least 500 ms after its first byte: the segment was being
      // made while it was sent (chunked transfer of its CMAF chunks).
      entry.streamed = entry.endMs - entry.firstByteMs >= 500;
    }
    if (network.length < 2000) network.push(entry);
  };
  page.on("requestfinished", async (request) => {
    const response = await request.response().catch(() => null);
    done(request, response && response.status() >= 400 ? `HTTP ${response.status()}` : null);
  });
  page.on("requestfailed", (request) => done(request, request.failure()?.errorText ?? "failed"));
  await page.goto(page_url.href);
  const deadline = started + timeoutMs;
  for (;;) {
    report = await page.evaluate(() => JSON.parse(JSON.stringify(window.snapshot())));
    if (report.errors.some((e) => e.fatal)) {
      code = 1;
      break;
    }
    if (
      report.playing &&
      report.advanced >= playSeconds &&
      report.played >= playSeconds &&
      (report.latency !== null || vod)
    ) {
      code = 0;
      break;
    }
    if (Date.now() >= deadline) {
      code = 2;
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
} catch (e) {
  console.error(`player failed: ${e.stack || e}`);
  code = 1;
} finally {
  await close();
}
if (report) {
  report.elapsedMs = Date.now() - started;
  const segments = network.filter((n) => n.kind === "segment");
  report.network = {
    mpd: network.filter((n) => n.kind === "mpd").length,
    time: network.filter((n) => n.kind === "time").length,
    init: network.filter((n) => n.kind === "init").length,
    segments: segments.length,
    streamedSegments: segments.filter((n) => n.streamed).length,
    failed: network.filter((n) => n.failure).map((n) => `${n.path}: ${n.failure}`).slice(0, 20),
    // Every request, in order of completion (first 2000).
    requests: network,
  };
  console.log(JSON.stringify(report));
}
if (code === 2) console.error(`timed out after ${timeoutArg} s`);
// Exit once stdout is flushed: a pipe takes 64 KiB at a time and process.exit drops the rest.
process.stdout.write("", () => process.exit(code));
