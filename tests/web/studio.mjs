// Drives one guest of weir's studio page (web/studio.html?invite=…) in its own headless
// Chromium whose fake camera and microphone play the given files (the flags are per
// process, hence one browser per guest), and reports what the page shows in a file.
//
//   node studio.mjs --url <guest page URL> --name <display name> --video <file.y4m>
//        [--audio <file.wav>] --state <file> --close <file> [--timeout 120]
//
// The page opens, the name is typed, Join is clicked. Every 500 ms window.weirStudio() is
// written (whole, atomically) to --state as JSON, plus {closed}. Once the --close file
// exists the page closes (as a guest closing its tab: pagehide), the last state is written
// with closed: true, and the script exits 0. Exits 1 when the page shows an error or cannot
// load, 2 after --timeout seconds without a close, 3 when the browser cannot start, 64 on
// bad arguments. Page console errors go to stderr as "[page] …".

import { existsSync, renameSync, writeFileSync } from "node:fs";
import { launch } from "./chromium.mjs";

const usage = "usage: node studio.mjs --url U --name N --video F.y4m [--audio F.wav] --state F --close F [--timeout S]";
const opts = { timeout: 120 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split(/=(.*)/s);
  const key = flag.replace(/^--/, "");
  if (!["url", "name", "video", "audio", "state", "close", "timeout"].includes(key)) {
    console.error(`unknown argument ${argv[i]}\n${usage}`);
    process.exit(64);
  }
  opts[key] = inline ?? argv[++i];
}
if (!opts.url || !opts.name || !opts.video || !opts.state || !opts.close || !(Number(opts.timeout) > 0)) {
  console.error(usage);
  process.exit(64);
}

const args = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  `--use-file-for-fake-video-capture=${opts.video}`,
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];
if (opts.audio) args.push(`--use-file-for-fake-audio-capture=${opts.audio}`);
const { context, close } = await launch(args, { permissions: ["camera", "microphone"] });

let last = { closed: false };
const save = (st) => {
  last = st;
  writeFileSync(`${opts.state}.tmp`, JSON.stringify(st));
  renameSync(`${opts.state}.tmp`, opts.state);
};
const finish = async (code, why) => {
  if (why) console.error(why);
  await close();
  process.exit(code);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const page = await context.newPage();
page.on("console", (m) => m.type() === "error" && console.error(`[page] ${m.text()}`));
page.on("pageerror", (e) => console.error(`[page] ${e.message}`));
try {
  await page.goto(opts.url, { timeout: 30_000 });
  // The pickers are filled and the preview runs once the camera is open.
  await page.waitForFunction(() => document.getElementById("self").srcObject || window.weirStudio?.().error,
    null, { timeout: 30_000 });
  await page.fill("#name", opts.name);
  await page.click("#join");
} catch (e) {
  save({ closed: false, error: `cannot load or join: ${e.message}` });
  await finish(1, `cannot load or join: ${e.message}`);
}

const deadline = Date.now() + Number(opts.timeout) * 1000;
while (Date.now() < deadline) {
  const st = await page.evaluate(() => window.weirStudio()).catch((e) => ({ error: `page gone: ${e.message}` }));
  save({ ...st, closed: false });
  if (st.error) await finish(1, `the page shows an error: ${st.error}`);
  if (existsSync(opts.close)) {
    await page.close({ runBeforeUnload: true });
    await sleep(1500); // the keepalive DELETE and removeParticipant
    save({ ...last, closed: true });
    await finish(0);
  }
  await sleep(500);
}
await finish(2, `no close within ${opts.timeout} s`);
