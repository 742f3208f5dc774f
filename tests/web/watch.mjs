// Drives weir's watch page (/watch/<channel>, web/watch.html) in Debian's headless Chromium:
// two people (separate browser contexts: a viewer and the channel's owner) on a channel
// published over RTMP with B-frames, and a third page on a channel without B-frames in
// WebRTC mode.
//
//   node watch.mjs --base http://127.0.0.1:PORT --channel C --title T --rtc-channel R
//                  --viewer USER:PASS --owner USER:PASS --ready FILE [--shots PREFIX]
//                  [--timeout 150]
//
// Steps (each must pass, in order): the pages load offline (title shown, chat read-only,
// keyboard order starts at the skip link, inputs labelled); both people sign in with the
// form (the owner's chat may moderate, the viewer's not); FILE is written, and the test
// starts the publishers; every page goes live by itself and plays (video time advances,
// a latency shown; WebRTC decodes frames); the viewer count shows; the chat is
// followers-only (the test set it): the viewer's message is refused (FOLLOWERS_ONLY)
// until the viewer presses Follow (the follower count goes up); both chat (Enter and
// the Send button) and see each other's messages; screenshots (PREFIX-light.png,
// PREFIX-dark.png, PREFIX-narrow.png, later PREFIX-moderation.png, PREFIX-offline.png; chat beside the video when wide, below when narrow);
// the owner bans the viewer with the Ban button on the viewer's message: both see the ban,
// the viewer's next message is refused (BANNED) and the owner never sees it; the viewer
// switches to WebRTC, which this B-frame stream cannot use: the page says why and goes on
// over LL-HLS; FILE.done is written, the test stops the publishers, and every page shows
// the channel offline by itself.
// Output: one JSON line {steps: [{name, ok, ms, error?}], pages: [{name, final, errors}],
// code}. Exit 0 when every step passed, 2 otherwise, 3 when the browser cannot start.

import { writeFileSync } from "node:fs";
import { launchBrowser } from "./chromium.mjs";

const opts = { timeout: 150, shots: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "").replace(/-(.)/g, (_, c) => c.toUpperCase());
  opts[key] = argv[i + 1];
}
for (const k of ["base", "channel", "title", "rtcChannel", "viewer", "owner", "ready"]) {
  if (!opts[k]) {
    console.error(`missing --${k}\nusage: node watch.mjs --base URL --channel C --title T --rtc-channel R --viewer U:P --owner U:P --ready FILE [--shots PREFIX] [--timeout S]`);
    process.exit(64);
  }
}
const [viewerName, viewerPass] = opts.viewer.split(":");
const [ownerName, ownerPass] = opts.owner.split(":");
const deadline = Date.now() + Number(opts.timeout) * 1000;
const left = () => Math.max(1000, deadline - Date.now());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { browser, close } = await launchBrowser([
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
]);
const viewport = { width: 1280, height: 800 };
const viewerCtx = await browser.newContext({ viewport });
const ownerCtx = await browser.newContext({ viewport });
const pages = [];
async function open(name, ctx, path) {
  const page = await ctx.newPage();
  const p = { name, page, errors: [] };
  // Refused requests the page handles (WHEP's 422, a playlist before the stream starts)
  // are logged by the browser as "Failed to load resource": not page errors.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) p.errors.push(m.text());
  });
  page.on("pageerror", (e) => p.errors.push(e.message));
  await page.goto(`${opts.base}${path}`);
  pages.push(p);
  return page;
}
const state = (page) => page.evaluate(() => window.weirWatch());
const until = (page, fn, arg) => page.waitForFunction(fn, arg, { timeout: left(), polling: 250 });

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
  }
}

let viewer, owner, rtc;
await step("pages load offline", async () => {
  viewer = await open("viewer", viewerCtx, `/watch/${opts.channel}`);
  owner = await open("owner", ownerCtx, `/watch/${opts.channel}`);
  rtc = await open("webrtc", viewerCtx, `/watch/${opts.rtcChannel}?mode=webrtc`);
  for (const page of [viewer, owner, rtc]) {
    await until(page, () => {
      const s = window.weirWatch();
      return s.title !== null && s.chat?.state === "open";
    });
  }
  for (const page of [viewer, owner]) {
    const s = await state(page);
    if (s.title !== opts.title) throw new Error(`title ${s.title}`);
    if ((await page.textContent("h1")) !== opts.title) throw new Error("title not shown");
    if (s.live || (await page.textContent("#live")) !== "Offline") throw new Error("not shown offline");
    if (s.chat.canWrite) throw new Error("anonymous chat may write");
    if (!(await page.isVisible("#signin")) || (await page.isVisible("#say"))) throw new Error("sign-in form not offered");
  }
  // Keyboard: the first Tab stop is the skip link, which leads to the chat.
  await viewer.keyboard.press("Tab");
  if ((await viewer.evaluate(() => document.activeElement.className)) !== "skip") throw new Error("first Tab stop is not the skip link");
  // Every form control has a label or an accessible name.
  const unlabelled = await viewer.evaluate(() => [...document.querySelectorAll("input, button")]
    .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || e.textContent.trim()))
    .map((e) => e.id || e.outerHTML));
  if (unlabelled.length) throw new Error(`unlabelled controls: ${unlabelled.join(", ")}`);
  if ((await viewer.getAttribute("#log", "role")) !== "log") throw new Error("chat log has no role=log");
});

async function signIn(page, user, pass) {
  await page.fill("#login-user", user);
  await page.fill("#login-pass", pass);
  await page.click("#login-submit");
  await until(page, (u) => {
    const s = window.weirWatch();
    return s.signedIn === u && s.chat.canWrite && s.chat.user === u;
  }, user);
  if (!(await page.isVisible("#say")) || (await page.isVisible("#signin"))) throw new Error("message box not shown after sign-in");
}
await step("both sign in", async () => {
  await signIn(viewer, viewerName, viewerPass);
  await signIn(owner, ownerName, ownerPass);
  await until(owner, () => window.weirWatch().chat.moderator);
  if ((await state(viewer)).chat.moderator) throw new Error("the viewer may moderate");
  writeFileSync(opts.ready, "offline pages ready\n");
});

async function plays(page, name) {
  await until(page, () => window.weirWatch().live && window.weirWatch().player.state === "playing");
  const t0 = (await state(page)).player.currentTime;
  await until(page, (t) => window.weirWatch().player.currentTime > t + 2, t0);
  await until(page, () => window.weirWatch().player.latency > 0);
  const text = await page.textContent("#latency");
  if (!/latency (≈ )?\d+(\.\d+)? s/.test(text)) throw new Error(`${name}: latency shown as "${text}"`);
  if ((await page.textContent("#live")) !== "Live") throw new Error(`${name}: not shown live`);
}
await step("goes live by itself and plays (LL-HLS, WebRTC)", async () => {
  await plays(viewer, "viewer");
  await plays(owner, "owner");
  await plays(rtc, "webrtc");
  const s = await state(rtc);
  if (s.mode !== "webrtc" || !(s.player.framesDecoded > 0)) throw new Error(`WebRTC page: ${JSON.stringify(s.player)}`);
});

await step("viewer count shown", async () => {
  await until(owner, () => window.weirWatch().viewers >= 1);
  if (!/^[1-9]\d* viewers?$/.test(await owner.textContent("#viewers"))) throw new Error("viewer count not shown");
});

await step("followers-only chat: the viewer follows, then may write", async () => {
  await until(viewer, () => window.weirWatch().followers === 0);
  if ((await viewer.textContent("#follow")).trim() !== "Follow") throw new Error("no Follow button");
  await viewer.fill("#text", "before following");
  await viewer.press("#text", "Enter");
  await until(viewer, () => window.weirWatch().chat.errors.some((e) => e.code === "FOLLOWERS_ONLY"));
  if (!/follow/i.test(await viewer.textContent("#chat-error"))) throw new Error("the refusal does not say why");
  await viewer.click("#follow");
  await until(viewer, () => Boolean(window.weirWatch().followedAt));
  if ((await viewer.textContent("#follow")).trim() !== "Following") throw new Error("the button does not say Following");
  if ((await viewer.textContent("#followers")).trim() !== "1 follower") throw new Error("follower count not updated");
  await until(owner, () => window.weirWatch().followers === 1);
  // The viewer's connection asks the store again at most every 2 s.
  await sleep(2200);
});

const hasMessages = (texts) => window.weirWatch().chat.messages.map((m) => m.text).filter((t) => texts.includes(t)).length === texts.length;
const hello = ["hello from the viewer", "hello from the owner"];
await step("both chat and see each other", async () => {
  await viewer.fill("#text", hello[0]);
  await viewer.press("#text", "Enter");
  await owner.fill("#text", hello[1]);
  await owner.click("#send");
  await until(viewer, hasMessages, hello);
  await until(owner, hasMessages, hello);
});

await step("screenshots, light and dark, wide and narrow", async () => {
  const box = async (page, sel) => page.locator(sel).boundingBox();
  const [stage, chat] = [await box(owner, "#stage"), await box(owner, "#chat")];
  if (!(chat.x >= stage.x + stage.width)) throw new Error("wide: chat is not beside the video");
  if (opts.shots) await owner.screenshot({ path: `${opts.shots}-light.png` });
  await owner.emulateMedia({ colorScheme: "dark" });
  const bg = await owner.evaluate(() => getComputedStyle(document.body).backgroundColor);
  if (bg === "rgb(246, 247, 249)") throw new Error("dark scheme not applied");
  if (opts.shots) await owner.screenshot({ path: `${opts.shots}-dark.png` });
  await owner.emulateMedia({ colorScheme: "light" });
  await viewer.setViewportSize({ width: 420, height: 900 });
  const [s2, c2] = [await box(viewer, "#stage"), await box(viewer, "#chat")];
  if (!(c2.y >= s2.y + s2.height)) throw new Error("narrow: chat is not below the video");
  if (opts.shots) await viewer.screenshot({ path: `${opts.shots}-narrow.png`, fullPage: true });
  await viewer.setViewportSize(viewport);
});

await step("the owner bans the viewer; both see it; the viewer cannot send", async () => {
  const id = (await state(owner)).chat.messages.find((m) => m.text === hello[0]).id;
  await owner.click(`li.msg[data-id="${id}"] button[aria-label="Ban ${viewerName}"]`);
  const banned = (u) => window.weirWatch().chat.events.some((e) => e.type === "banned" && e.user.name === u);
  await until(owner, banned, viewerName);
  await until(viewer, banned, viewerName);
  await viewer.fill("#text", "after the ban");
  await viewer.press("#text", "Enter");
  await until(viewer, () => window.weirWatch().chat.errors.some((e) => e.code === "BANNED"));
  if (!(await viewer.textContent("#chat-error")).trim()) throw new Error("the refusal is not shown");
  await sleep(1500);
  if ((await state(owner)).chat.messages.some((m) => m.text === "after the ban")) throw new Error("a banned user's message went out");
  // Moderation controls are the owner's only.
  if (await viewer.isVisible(`li.msg button[aria-label^="Ban"]`)) throw new Error("viewer sees moderation controls");
  if (opts.shots) {
    await owner.hover(`li.msg[data-id="${id}"]`);
    await owner.screenshot({ path: `${opts.shots}-moderation.png` });
  }
});

await step("WebRTC switch on a B-frame stream says why and keeps playing LL-HLS", async () => {
  await viewer.check("input[name=mode][value=webrtc]");
  await until(viewer, () => /B-frames/.test(document.getElementById("player-status").textContent));
  await until(viewer, () => window.weirWatch().mode === "hls" && window.weirWatch().player.state === "playing");
  const t0 = (await state(viewer)).player.currentTime;
  await until(viewer, (t) => window.weirWatch().player.currentTime > t + 1, t0);
});

await step("goes offline by itself when the publishers stop", async () => {
  writeFileSync(`${opts.ready}.done`, "stop the publishers\n");
  for (const page of [viewer, owner, rtc]) {
    await until(page, () => !window.weirWatch().live && document.getElementById("live").textContent === "Offline");
    if (!(await page.isVisible("#offline"))) throw new Error("the offline card is not shown");
  }
  if (opts.shots) await viewer.screenshot({ path: `${opts.shots}-offline.png` });
});

const out = [];
for (const p of pages) {
  let final = null;
  try { final = await state(p.page); } catch (_) { /* closed */ }
  if (code && opts.shots) await p.page.screenshot({ path: `${opts.shots}-failed-${p.name}.png` }).catch(() => {});
  out.push({ name: p.name, final, errors: p.errors });
}
console.log(JSON.stringify({ steps, pages: out, code }));
await close();
process.exit(code);
