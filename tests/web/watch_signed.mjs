// The watch page on a members-only channel (signed playback), in Debian's headless
// Chromium: anonymous, the player says the channel is for members (the plain playlist is
// 403); after signing in with the page's form the page fetches the signed path from
// GraphQL `playbackUrl` and plays under it (video time advances); switched to WebRTC it
// plays over WHEP with the same token (`/whep/<channel>/t.<exp>.<sig>`), and so does
// web/whep.html given that token.
//
//   node watch_signed.mjs --base http://127.0.0.1:PORT --channel C --user USER:PASS [--timeout 90]
//
// Output: one JSON line {steps: [{name, ok, ms, error?}], final}. Exit 0 when every step
// passed, 2 otherwise, 3 when the browser cannot start.

import { launchBrowser } from "./chromium.mjs";

const opts = { timeout: 90 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, "")] = argv[i + 1];
for (const k of ["base", "channel", "user"]) {
  if (!opts[k]) {
    console.error(`missing --${k}`);
    process.exit(64);
  }
}
const [user, pass] = opts.user.split(":");
const deadline = Date.now() + Number(opts.timeout) * 1000;
const left = () => Math.max(1000, deadline - Date.now());

const { browser, close } = await launchBrowser();
const page = await (await browser.newContext()).newPage();
const requests = [];
page.on("request", (r) => requests.push(r.url()));
await page.goto(`${opts.base}/watch/${opts.channel}`);
const state = () => page.evaluate(() => window.weirWatch());
const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: left(), polling: 250 });

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

await step("anonymous: live, but for members only", async () => {
  await until(() => window.weirWatch().live && window.weirWatch().player.error === "forbidden");
  const text = await page.textContent("#player-status");
  if (!/members/.test(text)) throw new Error(`player status: ${text}`);
});
await step("signed in: plays under the signed path", async () => {
  await page.fill("#login-user", user);
  await page.fill("#login-pass", pass);
  await page.click("#login-submit");
  await until((u) => window.weirWatch().signedIn === u, user);
  await until(() => window.weirWatch().player.currentTime > 2);
  const s = await state();
  if (!s.signedUntil) throw new Error("no signed URL used");
  const signed = requests.filter((u) => u.includes(`/live/${opts.channel}/t.`));
  if (!signed.some((u) => u.endsWith(".m4s") || u.includes(".m4s?"))) throw new Error("no media fetched under the signed path");
});
await step("WebRTC: plays over WHEP under the same token", async () => {
  await page.check("input[name=mode][value=webrtc]");
  await until(() => {
    const s = window.weirWatch();
    return s.mode === "webrtc" && s.player.state === "playing" && s.player.framesDecoded > 10;
  });
  if (!requests.some((u) => u.includes(`/whep/${opts.channel}/t.`))) throw new Error("no WHEP offer under the token");
});
await step("whep.html: plays given the playback token", async () => {
  const signed = requests.find((u) => u.includes(`/live/${opts.channel}/t.`));
  const token = new URL(signed).pathname.split("/").find((p) => p.startsWith("t."));
  const whep = await (await browser.newContext()).newPage();
  const q = new URLSearchParams({ channel: opts.channel, token, autostart: "1", retry: "10" });
  await whep.goto(`${opts.base}/web/whep.html?${q}`);
  await whep.waitForFunction(() => window.weirState().state === "connected" && window.weirState().stats.framesDecoded > 10,
    null, { timeout: left(), polling: 250 });
  await whep.close();
});
const final = await state().catch(() => null);
console.log(JSON.stringify({ steps, final }));
await close();
process.exit(code);
