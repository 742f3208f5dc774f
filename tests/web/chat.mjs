// Drives weir's chat page (web/chat.html) in Debian's headless Chromium and prints what every
// page saw as one JSON line on stdout.
//
//   node chat.mjs [--timeout 20] [--say "<page index>:<text>" ...] --expect <text> --page <url> ...
//
// Every URL (give autostart=1) opens in its own page; each must reach state "open"
// (window.weirChat().state). Then each --say is typed into its page's message box and sent
// with the Send button, in order, and every page is watched until its messages include
// every --expect text. Output: {pages: [{url, final: <weirChat()>, images: <number of <img>
// in the message log>}], code}. Exits 0 when every page saw every expected text within
// --timeout seconds, 2 otherwise, 3 when the browser cannot start, 64 on bad arguments.
// Page console errors go to stderr as "[page N] …".

import { launch } from "./chromium.mjs";

const usage = 'usage: node chat.mjs [--timeout N] [--say "I:text" ...] [--expect text ...] --page <url> ...';
const opts = { timeout: 20, pages: [], says: [], expects: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  const value = () => argv[++i];
  if (flag === "--timeout") opts.timeout = Number(value());
  else if (flag === "--page") opts.pages.push(value());
  else if (flag === "--expect") opts.expects.push(value());
  else if (flag === "--say") {
    const v = value() ?? "";
    const at = v.indexOf(":");
    opts.says.push({ page: Number(v.slice(0, at)), text: v.slice(at + 1) });
  } else {
    console.error(`unknown argument ${flag}\n${usage}`);
    process.exit(64);
  }
}
if (!opts.pages.length || opts.says.some((s) => !(s.page >= 0 && s.page < opts.pages.length))) {
  console.error(usage);
  process.exit(64);
}

const { context, close } = await launch();
const deadline = Date.now() + opts.timeout * 1000;
const pages = [];
let code = 0;
try {
  for (const [n, url] of opts.pages.entries()) {
    const page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") console.error(`[page ${n}] ${m.text()}`); });
    page.on("pageerror", (e) => console.error(`[page ${n}] ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => window.weirChat && window.weirChat().state === "open", null,
      { timeout: Math.max(1000, deadline - Date.now()) });
    pages.push({ url, page });
  }
  for (const s of opts.says) {
    const { page } = pages[s.page];
    await page.fill("#text", s.text);
    await page.click("#send");
  }
  for (const p of pages) {
    try {
      await p.page.waitForFunction((expects) => {
        const texts = window.weirChat().messages.map((m) => m.text);
        return expects.every((t) => texts.includes(t));
      }, opts.expects, { timeout: Math.max(1000, deadline - Date.now()) });
    } catch (_) {
      code = 2;
    }
  }
} catch (e) {
  console.error(e.message);
  code = 2;
}
const out = [];
for (const p of pages) {
  out.push({
    url: p.url,
    final: await p.page.evaluate(() => window.weirChat()),
    images: await p.page.evaluate(() => document.querySelectorAll("#log img").length),
  });
}
console.log(JSON.stringify({ pages: out, code }));
await close();
process.exit(code);
