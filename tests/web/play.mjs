// Plays a weir LL-HLS stream with hls.js in Debian's headless Chromium and prints what the
// player saw as one JSON line on stdout.
//
//   node play.mjs <multivariant URL> [timeout seconds = 30] [seconds to play = 6] [watch seconds = 0]
//
// Exits 0 once the video has played that far (currentTime and seconds actually played), 1 on a fatal hls.js/video error, 2 on a
// timeout, 3 when the browser cannot be started. With watch seconds > 0 it instead plays
// for exactly that long and exits 0 (1 on a fatal error), the report carrying a timeline
// sampled every 250 ms ({t: Date.now(), currentTime, paused, readyState, buffered}). Needs `npm ci` here and /usr/bin/chromium
// (`cargo xtask setup --test` installs both); CHROMIUM overrides the browser path.

import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { launch } from "./chromium.mjs";

const [src, timeoutArg = "30", playArg = "6", watchArg = "0"] = process.argv.slice(2);
if (!src) {
  console.error("usage: node play.mjs <multivariant URL> [timeout s] [seconds to play] [watch s]");
  process.exit(64);
}
const timeoutMs = Number(timeoutArg) * 1000;
const playSeconds = Number(playArg);
const watchMs = Number(watchArg) * 1000;

const here = dirname(fileURLToPath(import.meta.url));
const page_url = pathToFileURL(join(here, "player.html"));
page_url.searchParams.set("src", src);

const { context, close } = await launch();

let code = 2;
let report = null;
const started = Date.now();
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.error(`page ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.error(`page exception: ${e.message}`));
  await page.goto(page_url.href);
  const deadline = started + (watchMs > 0 ? watchMs : timeoutMs);
  const timeline = [];
  for (;;) {
    report = await page.evaluate(() => JSON.parse(JSON.stringify(window.snapshot())));
    if (watchMs > 0) {
      const { currentTime, paused, readyState, buffered } = report;
      timeline.push({ t: Date.now(), currentTime, paused, readyState, buffered });
      report.timeline = timeline;
    }
    if (report.errors.some((e) => e.fatal)) {
      code = 1;
      break;
    }
    if (watchMs > 0) {
      if (Date.now() >= deadline) {
        code = 0;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (report.playing && report.currentTime >= playSeconds && report.played >= playSeconds) {
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
  console.log(JSON.stringify(report));
}
if (code === 2) console.error(`timed out after ${timeoutArg} s`);
// Exit once stdout is flushed: a pipe takes 64 KiB at a time and process.exit drops the rest.
process.stdout.write("", () => process.exit(code));
