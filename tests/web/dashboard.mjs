// Drives weir's creator dashboard (/studio/, web/dashboard.html) in Debian's headless
// Chromium, like a creator would, with a second page as a viewer (the watch page).
//
//   node dashboard.mjs --base http://127.0.0.1:PORT --user NAME --password PASS --slug SLUG
//                      --dest-url rtmp://127.0.0.1:N/live --dest-key KEY --dir DIR
//                      [--shots PREFIX] [--timeout 240]
//
// Steps (each must pass, in order):
//  1. /studio redirects to /studio/, which offers sign-in and sign-up; controls are labelled,
//     the error region has role=alert, the first Tab stop is the skip link.
//  2. sign up with the form (and land signed in on the channel list).
//  3. create a channel with the form (the channel view opens).
//  4. issue a stream key with the button: the key is shown once with the OBS settings
//     (Service Custom, Server rtmp://…/live, Stream Key); "Copy key" puts it on the
//     clipboard; the key and server are written to DIR/key.json for the test to publish with.
//  5. add a destination with the form (custom RTMP): it is listed with its key hint only.
//  6. (the test publishes) the page shows Live by itself.
//  7. a viewer opens the watch page and plays it; the dashboard shows viewers > 0.
//  8. the destination shows live with a bitrate; DIR/live is written (the test checks the
//     destination receives media, then stops the publisher).
//  9. the page shows Offline by itself; the recording appears finished; Play plays it in
//     the page's video (currentTime advances); a clip of it is made from the form, shown
//     ready, and its MP4 downloads (DIR/clip).
// 10. rotate the key (confirm): a new key is shown, the first one is listed revoked.
// Output: one JSON line {steps: [{name, ok, ms, error?}], final, errors, code}. Exit 0 when
// every step passed, 2 otherwise, 3 when the browser cannot start.

import { writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser } from "./chromium.mjs";

const opts = { timeout: 240, shots: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "").replace(/-(.)/g, (_, c) => c.toUpperCase());
  opts[key] = argv[i + 1];
}
for (const k of ["base", "user", "password", "slug", "destUrl", "destKey", "dir"]) {
  if (!opts[k]) {
    console.error(`missing --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    process.exit(64);
  }
}
const deadline = Date.now() + Number(opts.timeout) * 1000;
const left = () => Math.max(1000, deadline - Date.now());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { browser, close } = await launchBrowser([
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
]);
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: opts.base });
const errors = [];
const page = await ctx.newPage();
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
});
page.on("pageerror", (e) => errors.push(e.message));
page.on("dialog", (d) => d.accept());

const state = () => page.evaluate(() => window.weirDashboard());
const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: left(), polling: 250 });
const shot = async (name) => {
  if (opts.shots) await page.screenshot({ path: `${opts.shots}-${name}.png`, fullPage: true }).catch(() => {});
};

const steps = [];
let code = 0;
async function step(name, fn) {
  if (code) return;
  const t = Date.now();
  try {
    await fn();
    steps.push({ name, ok: true, ms: Date.now() - t });
  } catch (e) {
    steps.push({ name, ok: false, ms: Date.now() - t, error: e.message.split("\n")[0] });
    code = 2;
    await shot("failed");
  }
}

await step("the dashboard opens at /studio on sign-in / sign-up, accessible", async () => {
  const res = await page.goto(`${opts.base}/studio`);
  if (new URL(page.url()).pathname !== "/studio/") throw new Error(`not redirected: ${page.url()}`);
  if (!res.ok()) throw new Error(`status ${res.status()}`);
  await until(() => window.weirDashboard?.().view === "auth");
  if (!(await page.isVisible("#signup-form")) || !(await page.isVisible("#signin-form"))) throw new Error("forms not shown");
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea, button")]
    .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || e.textContent.trim()))
    .map((e) => e.id || e.outerHTML));
  if (unlabelled.length) throw new Error(`unlabelled controls: ${unlabelled.join(", ")}`);
  if ((await page.getAttribute("#error", "role")) !== "alert") throw new Error("no role=alert for errors");
  await page.keyboard.press("Tab");
  if ((await page.evaluate(() => document.activeElement.className)) !== "skip") throw new Error("first Tab stop is not the skip link");
  // A wrong password is said in the alert region.
  await page.fill("#in-user", opts.user);
  await page.fill("#in-pass", "not the password");
  await page.click("#in-submit");
  await until(() => !document.getElementById("error").hidden);
});

await step("sign up", async () => {
  await page.fill("#up-user", opts.user);
  await page.fill("#up-email", `${opts.user}@example.com`);
  await page.fill("#up-pass", opts.password);
  await page.press("#up-pass", "Enter"); // keyboard: submits the form
  await until(() => window.weirDashboard().view === "channels");
  const s = await state();
  if (s.user !== opts.user) throw new Error(`signed in as ${s.user}`);
  if (s.error) throw new Error(s.error);
});

await step("create a channel", async () => {
  await page.fill("#new-slug", opts.slug);
  await page.fill("#new-title", `${opts.slug} live`);
  await page.click("#new-submit");
  await until((slug) => window.weirDashboard().channel?.slug === slug, opts.slug);
  if ((await page.textContent("#live")) !== "Offline") throw new Error("not shown offline");
  const watch = await page.getAttribute("#watch-link", "href");
  if (watch !== `/watch/${opts.slug}`) throw new Error(`watch link ${watch}`);
  if (!(await page.getAttribute("#studio-link", "href")).startsWith("/web/studio.html")) throw new Error("no studio link");
});

let firstKey = null;
await step("issue a stream key: shown once with the OBS settings, copied", async () => {
  if (await page.isVisible("#key-once")) throw new Error("a key is shown before one is issued");
  await page.click("#issue-key");
  await until(() => window.weirDashboard().keyShown);
  const server = await page.inputValue("#obs-server");
  const key = await page.inputValue("#obs-key");
  if (!/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/.test(server)) throw new Error(`server ${server}`);
  if (key.length < 20) throw new Error(`key ${key}`);
  if ((await page.textContent("#obs-service")).trim() !== "Custom…") throw new Error("service is not Custom");
  await page.click("#copy-key");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== key) throw new Error(`clipboard has ${JSON.stringify(copied)}`);
  if ((await page.locator("#keys tbody tr").count()) !== 1) throw new Error("the key is not listed");
  firstKey = key;
  await shot("key");
  // Written before the destination exists: the test publishes only after `ready`.
  writeFileSync(join(opts.dir, "key.json"), JSON.stringify({ server, key, channel: (await state()).channel.id }));
  await page.click("#hide-key");
  if ((await page.inputValue("#obs-key")) !== "" || (await page.isVisible("#key-once"))) throw new Error("the key stays shown");
});

await step("add a destination", async () => {
  await page.selectOption("#dest-preset", "twitch");
  if ((await page.inputValue("#dest-url")) !== "rtmp://live.twitch.tv/app") throw new Error("the Twitch preset fills no URL");
  if (!(await page.isVisible("#no-dests")) || (await page.isVisible("#dests"))) {
    throw new Error("no destinations: the empty table is shown instead of a sentence");
  }
  await page.selectOption("#dest-preset", "rtmp");
  await page.fill("#dest-name", "Mirror");
  await page.fill("#dest-url", opts.destUrl);
  await page.fill("#dest-key", opts.destKey);
  await page.click("#dest-submit");
  await until(() => window.weirDashboard().destinations.length === 1);
  const row = await page.textContent("#dests tbody tr");
  if (!row.includes("Mirror") || !row.includes(opts.destUrl)) throw new Error(`row: ${row}`);
  if (await page.isVisible("#no-dests")) throw new Error("'no destinations' shown beside one");
  if (row.includes(opts.destKey)) throw new Error("the destination's key is shown");
  writeFileSync(join(opts.dir, "ready"), "");
});

await step("going live shows Live by itself", async () => {
  await until(() => window.weirDashboard().live === true);
  if ((await page.textContent("#live")) !== "Live") throw new Error("badge not Live");
});

let viewer = null;
await step("a viewer watches: viewers > 0 on the dashboard", async () => {
  viewer = await ctx.newPage();
  await viewer.goto(`${opts.base}/watch/${opts.slug}`);
  await viewer.waitForFunction(() => (window.weirWatch?.().player.currentTime || 0) > 1, null, { timeout: left(), polling: 250 });
  await until(() => window.weirDashboard().viewers > 0);
  const text = await page.textContent("#viewers");
  if (!/^[1-9]\d* viewers?$/.test(text)) throw new Error(`viewers shown as ${text}`);
});

await step("the destination shows live with a bitrate", async () => {
  await until(() => window.weirDashboard().destinations.some((d) => d.state === "LIVE" && d.bitrate > 0));
  const row = await page.textContent("#dests tbody tr");
  if (!/live/.test(row) || !/Mb\/s/.test(row)) throw new Error(`row: ${row}`);
  await shot("live");
  writeFileSync(join(opts.dir, "live"), JSON.stringify(await state()));
});

await step("offline after the stream; the recording plays in the page", async () => {
  await viewer?.close();
  await until(() => window.weirDashboard().live === false);
  await until(() => window.weirDashboard().recordings.some((r) => r.finished && r.durationMs > 3000));
  const s = await state();
  const rec = s.recordings.find((r) => r.finished);
  // Its poster (made a few seconds after the end) shows in its row, 640 px wide.
  await until((id) => {
    const img = document.querySelector(`#recs tr[data-recording="${id}"] img.poster`);
    return img && img.complete && img.naturalWidth === 640;
  }, rec.id);
  await page.click(`#recs tr[data-recording="${rec.id}"] button[aria-label^="Play"]`);
  await until(() => window.weirDashboard().player.state === "playing");
  const poster = await page.getAttribute("#rec-video", "poster");
  if (!poster?.endsWith("/poster.jpg")) throw new Error(`player poster: ${poster}`);
  const t0 = await page.evaluate(() => document.getElementById("rec-video").currentTime);
  await page.waitForFunction((t) => document.getElementById("rec-video").currentTime > t + 1.5, t0,
    { timeout: left(), polling: 250 });
  const clipForm = await page.isVisible("#clip-form");
  const s2 = await state();
  if (clipForm !== s2.clipsAvailable) throw new Error("the clip form does not follow the API");
  if (!s2.clipsAvailable) throw new Error("the API has no createClip");
  await page.fill("#clip-start", "0.5");
  await page.fill("#clip-end", "2.5");
  await page.click("#clip-submit");
  await until(() => /ready/.test(document.querySelector("#clips li")?.textContent || ""));
  const mp4 = await page.getAttribute("#clips li a:text('MP4')", "href");
  const got = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, type: r.headers.get("content-type"), bytes: (await r.arrayBuffer()).byteLength };
  }, mp4);
  if (got.status !== 200 || got.bytes < 10000) throw new Error(`clip MP4: ${JSON.stringify(got)}`);
  writeFileSync(join(opts.dir, "clip"), JSON.stringify({ mp4, ...got }));
  if (!existsSync(join(opts.dir, "stopped"))) throw new Error("offline before the publisher stopped");
  await shot("recording");
});

await step("rotate the key: a new one shown, the first revoked", async () => {
  await page.click("#rotate-key");
  await until(() => window.weirDashboard().keyShown);
  const key = await page.inputValue("#obs-key");
  if (!key || key === firstKey) throw new Error("no new key shown");
  await until(() => document.querySelectorAll("#keys tbody tr").length === 2
    && [...document.querySelectorAll("#keys tbody tr")].filter((r) => r.textContent.includes("revoked")).length === 1);
});

const final = await state().catch(() => null);
console.log(JSON.stringify({ steps, final, errors, code }));
await close();
process.exit(code);
