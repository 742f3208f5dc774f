// Opens a page in Debian's headless Firefox (firefox-esr) over WebDriver BiDi and waits until
// a JavaScript condition holds; prints one JSON line {ok, value, error} and, with --shot,
// saves a screenshot. Playwright cannot drive Debian's Firefox (it needs its own build for
// pages and contexts), so this speaks the W3C protocol itself (Node's WebSocket).
//
//   node firefox.mjs --url URL --until "<expression>"
//        [--value "<expression>"] [--timeout 90] [--shot FILE]
//
// --until is evaluated in the page every 500 ms until it is true; --value (default: the
// same) is reported. Exit 0 when the condition held in time, 2 otherwise, 3 when Firefox
// cannot start. FIREFOX overrides the browser path.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Node 20 has WebSocket behind a flag (22 has it on): run again with it.
if (!globalThis.WebSocket) {
  const { spawnSync } = await import("node:child_process");
  const r = spawnSync(process.execPath, ["--experimental-websocket", ...process.argv.slice(1)], { stdio: "inherit" });
  process.exit(r.status ?? 2);
}

const opts = { timeout: 90, shot: null, value: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, "")] = argv[i + 1];
if (!opts.url || !opts.until) {
  console.error('usage: node firefox.mjs --url URL --until "<expression>" [--value "<expression>"] [--timeout S] [--shot FILE]');
  process.exit(64);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const profile = mkdtempSync(join(tmpdir(), "weir-firefox-"));
// Autoplay allowed (muted video plays anyway), no first-run pages or updates.
writeFileSync(join(profile, "user.js"), [
  'user_pref("media.autoplay.default", 0);',
  'user_pref("browser.shell.checkDefaultBrowser", false);',
  'user_pref("app.update.enabled", false);',
  'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
  'user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);',
].join("\n"));
const port = await freePort();
const ff = spawn(process.env.FIREFOX || "/usr/bin/firefox-esr",
  ["--headless", "--no-remote", "--profile", profile, `--remote-debugging-port=${port}`, "--window-size=1280,800", "about:blank"],
  { stdio: ["ignore", "ignore", "pipe"] });
let stderr = "";
ff.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
const finish = (code, out) => {
  console.log(JSON.stringify(out));
  ff.kill("SIGKILL");
  setTimeout(() => { rmSync(profile, { recursive: true, force: true }); process.exit(code); }, 300);
};

let ws = null;
for (let i = 0; i < 60 && !ws; i++) {
  await sleep(500);
  ws = await new Promise((resolve) => {
    const s = new WebSocket(`ws://127.0.0.1:${port}/session`);
    s.onopen = () => resolve(s);
    s.onerror = () => resolve(null);
  });
}
if (!ws) finish(3, { ok: false, error: `Firefox did not start: ${stderr}` });

let next = 0;
const pending = new Map();
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.id !== undefined && pending.has(m.id)) {
    const { resolve, reject } = pending.get(m.id);
    pending.delete(m.id);
    if (m.type === "error") reject(new Error(`${m.error}: ${m.message}`));
    else resolve(m.result);
  }
};
const send = (method, params = {}) => new Promise((resolve, reject) => {
  const id = ++next;
  pending.set(id, { resolve, reject });
  ws.send(JSON.stringify({ id, method, params }));
});

try {
  await send("session.new", { capabilities: {} });
  const tree = await send("browsingContext.getTree", {});
  const context = tree.contexts[0].context;
  await send("browsingContext.navigate", { context, url: opts.url, wait: "complete" });
  const evaluate = async (expression) => {
    const r = await send("script.evaluate", {
      expression: `JSON.stringify((() => (${expression}))())`, target: { context }, awaitPromise: false,
    });
    if (r.type === "exception") throw new Error(r.exceptionDetails?.text || "exception");
    return r.result?.value === undefined ? undefined : JSON.parse(r.result.value);
  };
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  let held = false, value = null, lastError = null;
  while (Date.now() < deadline) {
    try {
      held = await evaluate(opts.until) === true;
      lastError = null;
    } catch (e) {
      lastError = e.message;
    }
    if (held) break;
    await sleep(500);
  }
  try { value = await evaluate(opts.value || opts.until); } catch (e) { lastError = e.message; }
  if (opts.shot) {
    const shot = await send("browsingContext.captureScreenshot", { context });
    writeFileSync(opts.shot, Buffer.from(shot.data, "base64"));
  }
  finish(held ? 0 : 2, { ok: held, value, error: lastError });
} catch (e) {
  finish(2, { ok: false, error: e.message });
}
