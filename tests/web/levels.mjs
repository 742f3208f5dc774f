// hls.js level switching on weir's transcode ladder: plays a multivariant LL-HLS stream
// (player.html, hls.js in low-latency mode, headless Chromium) at the full loopback rate,
// then caps the page's download rate through the DevTools protocol and watches hls.js's
// ABR switch down. Prints one JSON line on stdout (tests/tests/hlsjs_levels.rs asserts on
// it); page warnings and errors go to stderr.
//
//   node levels.mjs <multivariant URL> <cap> [warm-up s = 6] [switch timeout s = 20] [watch after switch s = 6]
//
// <cap> is the download cap in kbit/s, or "P%": P percent of the way from the 360p
// level's BANDWIDTH to the 480p level's, as hls.js parsed them.
//
// Phases:
//   1. warm-up: wait until the video has played <warm-up> seconds (at most 30 s more) and
//      record the level hls.js plays. Should ABR still be on the lowest level (height ≤
//      360) then, the script pins the top level (hls.nextLevel), waits until it plays, and
//      hands the choice back to ABR (hls.nextLevel = -1) while still unthrottled, so that
//      a switch down afterwards means something. The report says whether it did
//      ("pinned").
//   2. throttle: Network.emulateNetworkConditions (downloadThroughput = the cap) on a CDP
//      session of the page, applied early in a video segment (see below why); wait up to
//      <switch timeout> s for hls.js to switch (LEVEL_SWITCHED, by its ABR: the script
//      sets no level any more) to a level of height 360.
//   3. watch: keep playing throttled for <watch after switch> s and record how far
//      currentTime advanced.
//
// Exit status: 0 when hls.js switched down to 360p and kept playing, 1 on a fatal hls.js or
// video error (or a script failure), 2 when it did not switch in time or stopped playing,
// 3 when the browser cannot be started.

import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { launch } from "./chromium.mjs";

const [src, throttleArg, warmArg = "6", switchArg = "20", afterArg = "6"] = process.argv.slice(2);
// The cap: kbit/s, or "P%": P percent of the way from the 360p level's BANDWIDTH to the
// 480p level's, as hls.js read them from the multivariant playlist.
const capShare = /^[0-9.]+%$/.test(throttleArg ?? "") ? Number(throttleArg.slice(0, -1)) / 100 : null;
if (!src || !(capShare !== null ? capShare >= 0 && capShare <= 1 : Number(throttleArg) > 0)) {
  console.error(
    "usage: node levels.mjs <multivariant URL> <throttle kbit/s | P%> [warm-up s] [switch timeout s] [watch after switch s]",
  );
  process.exit(64);
}
let throttleKbps = capShare === null ? Number(throttleArg) : null;
const warmSeconds = Number(warmArg);
const switchMs = Number(switchArg) * 1000;
const afterMs = Number(afterArg) * 1000;
const LOW_HEIGHT = 360;

const here = dirname(fileURLToPath(import.meta.url));
const pageUrl = pathToFileURL(join(here, "player.html"));
pageUrl.searchParams.set("src", src);

// Runs in the page before player.html's script: player.html does `window.hls = hls` before
// hls.loadSource(), so a setter on window.hls hooks the instance's events before the
// manifest loads.
function hookPlayer() {
  const levels = {
    switches: [], // LEVEL_SWITCHED: {t, level, height, auto}
    loads: [], // LEVEL_LOADING of the video renditions: {t, level, url}, first 400
    audioLoads: 0,
    levelLoads: {}, // LEVEL_LOADED count per level
    manifestLevels: null,
    firstLevel: null,
    startLevel: null,
    renditionReports: {}, // per level: how many EXT-X-RENDITION-REPORTs its playlist had
    fragsPerLevel: {}, // FRAG_LOADED (parts and segments) per level
    // Video parts and segments (FRAG_LOADING, FRAG_LOADED, FRAG_BUFFERED,
    // FRAG_LOAD_EMERGENCY_ABORTED), first 600: {t, ev, level, sn, part (index or null),
    // then bytes, ttfb and load ms, bwe}
    frags: [],
    capArmed: false,
    lastPartIndex: null, // the highest part index of a buffered segment
    capAfter: null, // the part after which the cap came
  };
  window.levels = levels;
  let instance;
  Object.defineProperty(window, "hls", {
    configurable: true,
    get: () => instance,
    set: (hls) => {
      instance = hls;
      const E = window.Hls.Events;
      const height = (i) => hls.levels[i]?.height ?? null;
      hls.on(E.MANIFEST_PARSED, (_, data) => {
        levels.manifestLevels = data.levels.map((l) => ({
          height: l.height,
          width: l.width,
          bitrate: l.bitrate,
          maxBitrate: l.maxBitrate,
          averageBitrate: l.averageBitrate,
          url: l.url[0],
        }));
        levels.firstLevel = data.firstLevel;
        levels.startLevel = hls.startLevel;
      });
      hls.on(E.LEVEL_SWITCHED, (_, data) => {
        levels.switches.push({
          t: Date.now(),
          level: data.level,
          height: height(data.level),
          auto: hls.autoLevelEnabled,
          currentTime: hls.media?.currentTime ?? null,
          bandwidthEstimate: Math.round(hls.bandwidthEstimate),
        });
      });
      hls.on(E.LEVEL_LOADING, (_, data) => {
        if (levels.loads.length < 400) levels.loads.push({ t: Date.now(), level: data.level, url: data.url });
      });
      hls.on(E.AUDIO_TRACK_LOADING, () => {
        levels.audioLoads += 1;
      });
      hls.on(E.LEVEL_LOADED, (_, data) => {
        levels.levelLoads[data.level] = (levels.levelLoads[data.level] || 0) + 1;
        levels.renditionReports[data.level] = data.details.renditionReports?.length ?? 0;
      });
      // Video parts and segments: loading, loaded, buffered (with load stats) or aborted.
      const frag = (ev) => (_, data) => {
        const { frag, part } = data;
        if (frag?.type !== "main" || frag.sn === "initSegment" || levels.frags.length >= 600) return;
        const st = part ? part.stats : frag.stats;
        const e = { t: Date.now(), ev, level: frag.level, sn: frag.sn, part: part ? part.index : null };
        if (ev !== "loading") {
          e.bytes = st.loaded;
          e.ttfb = Math.round(st.loading.first - st.loading.start);
          e.load = Math.round(st.loading.end - st.loading.start);
          e.bwe = Math.round(hls.bandwidthEstimate);
        }
        levels.frags.push(e);
      };
      hls.on(E.FRAG_LOADING, frag("loading"));
      hls.on(E.FRAG_BUFFERED, (_, data) => {
        // hls.js buffers a segment's parts together, once its last part is in.
        if (data.frag.type === "main" && data.part) {
          levels.lastPartIndex = Math.max(levels.lastPartIndex ?? 0, data.part.index);
        }
      });
      hls.on(E.FRAG_LOADED, (_, data) => {
        // Armed by levels.mjs: tell it (window.weirCap, an exposed function) that a video
        // segment's part a quarter of the way in has loaded, to cap the rate now.
        const { frag, part } = data;
        const early = Math.max(1, Math.round((levels.lastPartIndex ?? 0) / 4));
        if (levels.capArmed && frag.type === "main" && part && levels.lastPartIndex !== null && part.index === early) {
          levels.capArmed = false;
          levels.capAfter = { t: Date.now(), level: frag.level, sn: frag.sn, part: part.index };
          window.weirCap?.();
        }
      });
      hls.on(E.FRAG_LOADED, frag("loaded"));
      hls.on(E.FRAG_BUFFERED, frag("buffered"));
      hls.on(E.FRAG_LOAD_EMERGENCY_ABORTED, frag("emergency-aborted"));
      hls.on(E.FRAG_LOADED, (_, data) => {
        if (data.frag.type === "main") {
          const l = data.frag.level;
          levels.fragsPerLevel[l] = (levels.fragsPerLevel[l] || 0) + 1;
        }
      });
    },
  });
}

// What the page shows now: player.html's report plus the hls.js level state.
async function sample(page) {
  return page.evaluate(() => {
    const r = JSON.parse(JSON.stringify(window.snapshot()));
    const hls = window.hls;
    r.levels = JSON.parse(JSON.stringify(window.levels ?? {}));
    if (hls) {
      r.currentLevel = hls.currentLevel;
      r.loadLevel = hls.loadLevel;
      r.nextLoadLevel = hls.nextLoadLevel;
      r.autoLevelEnabled = hls.autoLevelEnabled;
      r.currentHeight = hls.levels?.[hls.currentLevel]?.height ?? null;
      r.bandwidthEstimate = Number.isFinite(hls.bandwidthEstimate) ? Math.round(hls.bandwidthEstimate) : null;
      r.levelCount = hls.levels?.length ?? 0;
    }
    return r;
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fatal = (r) => r.errors.some((e) => e.fatal);

const { context, close } = await launch();

let code = 2;
let report = null;
const out = {
  throttleKbps: null,
  pinned: false,
  phase: "warm-up",
  before: null,
  throttledAt: null,
  throttleMethod: null,
  switchedDown: null,
  after: null,
  timeline: [],
};
const started = Date.now();
const record = (r) => {
  out.timeline.push({
    t: Date.now(),
    phase: out.phase,
    currentTime: r.currentTime,
    level: r.currentLevel ?? null,
    height: r.currentHeight ?? null,
    loadLevel: r.loadLevel ?? null,
    bwe: r.bandwidthEstimate ?? null,
    readyState: r.readyState,
    buffered: r.buffered,
    latency: r.latency,
  });
};
const state = (r) => ({
  t: Date.now(),
  level: r.currentLevel,
  height: r.currentHeight,
  auto: r.autoLevelEnabled,
  currentTime: r.currentTime,
  bandwidthEstimate: r.bandwidthEstimate,
  latency: r.latency,
});

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.error(`page ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.error(`page exception: ${e.message}`));
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let capping = null;
  const cap = () => {
    capping ??= (async () => {
      const bytesPerSecond = (throttleKbps * 1000) / 8;
      try {
        await cdp.send("Network.emulateNetworkConditions", {
          offline: false,
          latency: 0,
          downloadThroughput: bytesPerSecond,
          uploadThroughput: -1,
        });
        out.throttleMethod = "Network.emulateNetworkConditions";
      } catch (e) {
        // Deprecated in newer Chromium in favour of the per-URL-pattern rules.
        console.error(`Network.emulateNetworkConditions failed (${e.message}); trying ByRule`);
        await cdp.send("Network.emulateNetworkConditionsByRule", {
          matchedNetworkConditions: [{ urlPattern: "", latency: 0, downloadThroughput: bytesPerSecond, uploadThroughput: -1 }],
        });
        out.throttleMethod = "Network.emulateNetworkConditionsByRule";
      }
      out.throttledAt = Date.now();
    })();
    return capping;
  };
  await page.exposeFunction("weirCap", cap);
  await page.addInitScript(hookPlayer);
  await page.goto(pageUrl.href);

  // Polls every 250 ms until `done(report)` or `ms` pass; returns the last report and
  // whether `done` held (null on a fatal error).
  const until = async (ms, done) => {
    const deadline = Date.now() + ms;
    for (;;) {
      report = await sample(page);
      record(report);
      if (fatal(report)) return null;
      if (done(report)) return true;
      if (Date.now() >= deadline) return false;
      await sleep(250);
    }
  };

  // 1. Warm-up at the full rate.
  let ok = await until(warmSeconds * 1000 + 30_000, (r) => r.playing && r.currentTime >= warmSeconds && r.played >= warmSeconds && r.currentLevel >= 0);
  if (ok === null) throw { code: 1 };
  if (!ok) throw { code: 2, why: `did not play ${warmSeconds} s unthrottled` };
  out.before = state(report);
  if (!(report.currentHeight > LOW_HEIGHT)) {
    // ABR stayed low on an unthrottled loopback: pin the top level so that the switch down
    // later is meaningful, then give ABR the choice back (still unthrottled) before the cap.
    out.pinned = true;
    out.phase = "pin";
    const top = report.levelCount - 1;
    await page.evaluate((top) => {
      window.hls.nextLevel = top;
    }, top);
    ok = await until(20_000, (r) => r.currentLevel === top);
    if (ok === null) throw { code: 1 };
    if (!ok) throw { code: 2, why: "the pinned top level never played" };
    await page.evaluate(() => {
      window.hls.nextLevel = -1;
    });
    await until(3000, () => false);
    out.before = state(report);
    if (!(report.currentHeight > LOW_HEIGHT)) throw { code: 2, why: "back on a low level before the throttle" };
  }

  // 2. Cap the download rate early in a video segment (once the part a quarter of the way
  // in has loaded). Where in a segment the cap falls matters to hls.js 1.7.4: its ABR
  // picks the level as a segment's first part starts loading (the segment's other parts
  // are chained onto that load, with no new FRAG_LOADING and no new bandwidth sample until
  // the segment is in), and abandons such a load for a lower level only when the video
  // buffer is about to run dry. With its estimate still at the loopback rate (tens of
  // Mbit/s), a cap that lets the buffer (~1 s at LL-HLS latency) outlast the next
  // segment's first part has hls.js load that whole segment at the top level at the
  // capped rate (~5-8 s) before it reconsiders, and once it has fallen a segment behind
  // it loads whole segments, whose slow loads it did not abandon in our runs (switches
  // 13-20 s or more after the cap). A cap early in a segment has drained the buffer by the
  // next segment start, where hls.js then abandons the top level for 360p. Should no
  // such part load within 5 s, the cap is applied anyway.
  if (capShare !== null) {
    const byHeight = (h) => (report.levels.manifestLevels ?? []).find((l) => l.height === h);
    const [l360, l480] = [byHeight(LOW_HEIGHT), byHeight(480)];
    if (!l360 || !l480) throw { code: 2, why: "no 360p and 480p levels to place the cap between" };
    throttleKbps = Math.round((l360.maxBitrate + capShare * (l480.maxBitrate - l360.maxBitrate)) / 1000);
  }
  out.throttleKbps = throttleKbps;
  out.phase = "throttled";
  await page.evaluate(() => {
    window.levels.capArmed = true;
  });
  ok = await until(5000, () => out.throttledAt !== null);
  if (ok === null) throw { code: 1 };
  if (!ok) {
    console.error("no video part to cap after within 5 s: capping now");
    await cap();
  }
  await capping;
  const lowAfterThrottle = (r) =>
    (r.levels.switches ?? []).find((s) => s.t >= out.throttledAt && s.height !== null && s.height <= LOW_HEIGHT);
  ok = await until(switchMs, (r) => lowAfterThrottle(r) !== undefined);
  if (ok === null) throw { code: 1 };
  if (!ok) throw { code: 2, why: `no switch to ${LOW_HEIGHT}p within ${switchArg} s of the throttle` };
  out.switchedDown = { ...lowAfterThrottle(report), sinceThrottleMs: lowAfterThrottle(report).t - out.throttledAt };

  // 3. Keep watching, throttled.
  out.phase = "after";
  const from = report.currentTime;
  ok = await until(afterMs, () => false);
  if (ok === null) throw { code: 1 };
  out.after = { ...state(report), advanced: report.currentTime - from, watchedMs: afterMs };
  code = out.after.advanced > 0 ? 0 : 2;
  if (code) out.why = "currentTime did not advance after the switch";
} catch (e) {
  if (e && typeof e.code === "number") {
    code = e.code;
    if (e.why) out.why = e.why;
  } else {
    console.error(`player failed: ${e?.stack || e}`);
    code = 1;
  }
} finally {
  await close();
}
if (report) {
  const { levels, ...player } = report;
  const result = { ...player, ...out, hls: levels, elapsedMs: Date.now() - started, exit: code };
  console.log(JSON.stringify(result));
}
if (out.why) console.error(out.why);
// Exit once stdout is flushed: a pipe takes 64 KiB at a time and process.exit drops the rest.
process.stdout.write("", () => process.exit(code));
