// weir — the watch page (watch.html at /watch/<channel>): player, status, sign-in and chat.
//
// - Status: GraphQL `liveChannel(channel)` (public) every 4 s: title, live, viewers,
//   followers; signed in, whether the user follows (the Follow button: `followChannel` /
//   `unfollowChannel`; followers-only chat asks for a follow). When the
//   channel goes live the player starts by itself; when it ends the player stops.
// - Player: LL-HLS through hls.js (window.Hls, /web/hls.min.js) with its `latency`, or
//   Safari's native HLS; WebRTC over WHEP (webrtc.js) with a latency estimate from
//   getStats (jitter buffer delay + half the round trip). A stream WHEP cannot play (H.264
//   with B-frames: 422) says why and falls back to LL-HLS.
// - Sign-in: GraphQL `login`; the tokens live in localStorage ("weir.auth") and are
//   refreshed (`refresh`) before the access token expires.
// - Chat: chat.js over WS /v1/chat/<channel> on the API's host.
// - Members-only channels (signed playback): a signed-in member gets the signed path from
//   GraphQL `playbackUrl` (every object is fetched under it) and the page fetches a new one
//   and restarts the player shortly before it expires; without access the player says so.

import { Chat, describeError } from "./chat.js";
import { newPeerConnection, Session, HttpError, endpointUrl, errorText as rtcError, selectedPair } from "./webrtc.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const channel = decodeURIComponent(location.pathname.replace(/^\/watch\//, "").replace(/\/$/, ""));
const POLL_MS = 4000;
const AUTH_KEY = "weir.auth";

/** The control plane's base URL: `?api=`, else the node's meta (a URL or ":PORT"). */
function apiBase() {
  const v = params.get("api") || document.querySelector('meta[name="weir-api"]')?.content || ":8090";
  if (v.startsWith(":")) return `${location.protocol}//${location.hostname}${v}`;
  return v.replace(/\/+$/, "");
}
const API = apiBase();
const CHAT_SERVER = API.replace(/^http/, "ws");

const view = {
  channel, api: API, title: null, live: false, viewers: 0, mode: "hls", signedIn: null,
  channelId: null, signedUntil: null,
  player: { state: "idle", error: null, currentTime: 0, latency: null, framesDecoded: 0 },
};
let chat = null;
window.weirWatch = () => JSON.parse(JSON.stringify({ ...view, chat: chat ? chat.snapshot() : null }));

// ---------------------------------------------------------------- GraphQL and sign-in

async function gql(query, variables = {}, token = null) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${API}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  let body;
  try { body = await res.json(); } catch (_) { throw new Error(`the API answered ${res.status}`); }
  if (body.errors?.length) {
    const e = new Error(body.errors[0].message);
    e.code = body.errors[0].extensions?.code;
    throw e;
  }
  return body.data;
}

const TOKENS = "accessToken accessExpiresAt refreshToken user { id username }";
let auth = loadAuth();
let refreshTimer = null;

function loadAuth() {
  try { return JSON.parse(localStorage.getItem(AUTH_KEY)) || null; } catch (_) { return null; }
}
function saveAuth(a) {
  auth = a;
  if (a) localStorage.setItem(AUTH_KEY, JSON.stringify(a));
  else localStorage.removeItem(AUTH_KEY);
  scheduleRefresh();
  renderAccount();
}

/** A valid access token, refreshed first when it expires within a minute; null if none. */
async function accessToken() {
  if (!auth) return null;
  if (auth.accessExpiresAt * 1000 - Date.now() > 60_000) return auth.accessToken;
  try {
    const d = await gql(`mutation($r: String!) { refresh(refreshToken: $r) { ${TOKENS} } }`, { r: auth.refreshToken });
    saveAuth(d.refresh);
    return auth.accessToken;
  } catch (e) {
    console.warn(`sign-in expired: ${e.message}`);
    saveAuth(null);
    return null;
  }
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!auth) return;
  const wait = Math.max(5_000, auth.accessExpiresAt * 1000 - Date.now() - 60_000);
  refreshTimer = setTimeout(async () => {
    const t = await accessToken();
    if (t) chat?.reauth(t);
    else startChat();
  }, wait);
}

function renderAccount() {
  const name = auth?.user?.username || null;
  view.signedIn = name;
  $("who").hidden = $("signout").hidden = !name;
  $("who").textContent = name ? `Signed in as ${name}` : "";
  $("signin").hidden = !!name;
  if (!name) view.followedAt = null;
  renderStatus();
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const login = $("login-user").value.trim();
  const password = $("login-pass").value;
  if (!login || !password) return;
  $("login-submit").disabled = true;
  $("signin-error").textContent = "";
  try {
    const d = await gql(`mutation($l: String!, $p: String!) { login(login: $l, password: $p) { ${TOKENS} } }`,
      { l: login, p: password });
    $("login-pass").value = "";
    saveAuth(d.login);
    await startChat();
    $("text").focus();
  } catch (err) {
    $("signin-error").textContent = err.code === "RATE_LIMITED"
      ? "Too many attempts; wait a moment." : `Could not sign in: ${err.message}`;
  } finally {
    $("login-submit").disabled = false;
  }
});

$("signout").addEventListener("click", async () => {
  const r = auth?.refreshToken;
  saveAuth(null);
  if (r) gql("mutation($r: String!) { logout(refreshToken: $r) }", { r }).catch(() => {});
  await startChat();
  $("login-user").focus();
});

// ---------------------------------------------------------------- chat

async function startChat() {
  const token = await accessToken();
  if (!chat) {
    chat = new Chat({
      server: CHAT_SERVER, channel, log: $("log"), moderation: true, reconnect: true,
      onStatus: (state, text) => {
        $("chat-status").dataset.state = state;
        $("chat-status").textContent = text;
        if (state !== "open") {
          $("say").hidden = true;
          $("role").hidden = true;
        }
      },
      onWelcome: (f) => {
        $("say").hidden = !f.can_write;
        $("chat-error").textContent = "";
        const followFirst = f.can_write && f.settings?.followers_only && !f.moderator && !view.followedAt;
        $("text").placeholder = !f.can_write ? ""
          : followFirst ? "Followers-only chat: follow to write" : `Chat as ${f.user.name}`;
        $("role").hidden = !f.moderator;
      },
      onError: async (f) => {
        $("chat-error").textContent = describeError(f);
        if (f.code === "TOKEN_EXPIRED") {
          const t = await accessToken();
          if (t) chat.reauth(t);
        }
      },
    });
  }
  chat.connect(token);
}

$("say").addEventListener("submit", (e) => {
  e.preventDefault();
  if (chat?.say($("text").value)) {
    $("text").value = "";
    $("chat-error").textContent = "";
  }
});

// ---------------------------------------------------------------- status

const number = new Intl.NumberFormat();

function renderStatus() {
  $("stage").dataset.live = String(view.live);
  $("live").dataset.live = String(view.live);
  $("live").textContent = view.live ? "Live" : "Offline";
  $("viewers").textContent = `${number.format(view.viewers)} ${view.viewers === 1 ? "viewer" : "viewers"}`;
  if (view.followers !== undefined) {
    $("followers").textContent = `${number.format(view.followers)} ${view.followers === 1 ? "follower" : "followers"}`;
  }
  const follow = $("follow");
  follow.hidden = !view.signedIn;
  follow.setAttribute("aria-pressed", String(Boolean(view.followedAt)));
  follow.textContent = view.followedAt ? "Following" : "Follow";
  follow.title = view.followedAt ? "Stop following" : "Follow this channel";
}

const CHANNEL_FIELDS = "id title description live viewerCount followerCount followedAt";

/** Shows what a `liveChannel` (or follow mutation) answered. */
function applyChannel(c) {
  view.channelId = c.id;
  view.followers = c.followerCount;
  view.followedAt = c.followedAt;
}

$("follow").addEventListener("click", async () => {
  const token = await accessToken();
  if (!token || !view.channelId) return;
  const name = view.followedAt ? "unfollowChannel" : "followChannel";
  $("follow").disabled = true;
  try {
    const d = await gql(`mutation($c: ID!) { ${name}(channel: $c) { ${CHANNEL_FIELDS} } }`, { c: view.channelId }, token);
    applyChannel(d[name]);
    renderStatus();
  } catch (e) {
    $("chat-error").textContent = `Could not ${view.followedAt ? "unfollow" : "follow"}: ${e.message}`;
  } finally {
    $("follow").disabled = false;
  }
});

async function poll() {
  try {
    const token = await accessToken();
    const d = await gql(`query($c: ID!) { liveChannel(channel: $c) { ${CHANNEL_FIELDS} } }`, { c: channel }, token);
    const c = d.liveChannel;
    applyChannel(c);
    if (c.title !== view.title) {
      view.title = c.title;
      $("title").textContent = c.title || channel;
      document.title = `${c.title || channel} — weir`;
    }
    $("description").textContent = c.description || "";
    view.viewers = c.viewerCount;
    const wasLive = view.live;
    view.live = c.live;
    renderStatus();
    if (c.live && !wasLive) play();
    else if (!c.live && wasLive) stopPlayer("offline");
  } catch (e) {
    if (e.code === "NOT_FOUND") {
      $("title").textContent = `No channel called “${channel}”`;
      view.title = null;
    } else {
      console.warn(`status: ${e.message}`);
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---------------------------------------------------------------- player

const video = $("video");
let hls = null, pc = null, session = null, statsTimer = null, retryTimer = null, gen = 0;

function playerStatus(text, kind = "info") {
  $("player-status").textContent = text;
  $("player-status").dataset.kind = kind;
}

function setPlayer(state, error = null) {
  view.player.state = state;
  view.player.error = error;
}

/** Tears down whatever plays; `why` is "offline", "switch" or "retry". */
function stopPlayer(why) {
  gen++;
  clearTimeout(retryTimer);
  clearInterval(statsTimer);
  statsTimer = null;
  if (hls) { hls.destroy(); hls = null; }
  if (pc) { pc.close(); pc = null; }
  session?.close({ keepalive: true });
  session = null;
  video.srcObject = null;
  video.removeAttribute("src");
  video.load();
  view.player.latency = null;
  $("latency").textContent = "latency —";
  setPlayer("idle");
  if (why === "offline") playerStatus("");
}

function play() {
  stopPlayer("switch");
  if (!view.live) return;
  if (view.mode === "webrtc") playWebrtc();
  else playHls();
}

function retryLater(ms) {
  clearTimeout(retryTimer);
  const my = gen;
  retryTimer = setTimeout(() => { if (my === gen && view.live) play(); }, ms);
}

/** Where to play: the signed path `playbackUrl` hands a signed-in member (a restart is
 *  scheduled before it expires), else the channel's plain path. WebRTC takes the same
 *  token (`/whep/<channel>/t.<exp>.<sig>`). */
async function hlsSource(my) {
  const plain = `/live/${encodeURIComponent(channel)}/index.m3u8`;
  const token = await accessToken();
  if (!token || !view.channelId) return plain;
  try {
    const d = await gql(`query($c: ID!) { playbackUrl(channelId: $c) { url expiresAt } }`, { c: view.channelId }, token);
    const p = d.playbackUrl;
    view.signedUntil = p.expiresAt ?? null;
    if (p.expiresAt) {
      const ms = Math.max(5000, p.expiresAt * 1000 - Date.now() - 15000);
      setTimeout(() => { if (my === gen && view.live) play(); }, ms);
    }
    return p.url;
  } catch (e) {
    console.warn(`playbackUrl: ${e.message}`);
    return plain;
  }
}

/** The channel is for its members and this visitor has no signed URL for it. */
function forbidden() {
  setPlayer("error", "forbidden");
  playerStatus(view.signedIn
    ? "This channel is for its members: your account cannot watch it."
    : "This channel is for its members: sign in to watch.", "error");
  retryLater(5000);
}

async function playHls() {
  const my0 = gen;
  const path = await hlsSource(my0);
  if (my0 !== gen) return;
  const src = new URL(path, location.origin).href;
  setPlayer("loading");
  playerStatus("Loading LL-HLS…");
  const Hls = window.Hls;
  if (Hls?.isSupported()) {
    const my = gen;
    hls = new Hls({ lowLatencyMode: true, backBufferLength: 30 });
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (!d.fatal || my !== gen) return;
      console.warn(`hls.js: ${d.type} ${d.details}`);
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
      if (d.response?.code === 403) {
        forbidden();
        return;
      }
      setPlayer("error", d.details);
      playerStatus(`Playback interrupted (${d.details}); retrying…`, "error");
      retryLater(2000);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src; // Safari: native LL-HLS, no latency figure
    video.play().catch(() => {});
  } else {
    setPlayer("error", "no MSE");
    playerStatus("This browser cannot play HLS.", "error");
    return;
  }
  statsTimer = setInterval(() => {
    view.player.currentTime = video.currentTime;
    const l = hls?.latency;
    if (Number.isFinite(l) && l > 0) showLatency(l, "");
  }, 500);
}

async function playWebrtc() {
  const my = gen;
  setPlayer("loading");
  playerStatus("Connecting over WebRTC…");
  // A signed channel: the token of its playback path goes after the channel name.
  const path = await hlsSource(my);
  if (my !== gen) return;
  const token = path.split("/").find((p) => /^t\.\d+\./.test(p));
  const endpoint = token
    ? `${endpointUrl("whep", channel, location.origin)}/${token}`
    : endpointUrl("whep", channel, location.origin);
  try {
    pc = newPeerConnection(endpoint);
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    video.srcObject = new MediaStream(pc.getReceivers().map((r) => r.track));
    pc.addEventListener("connectionstatechange", () => {
      if (my !== gen) return;
      if (pc.connectionState === "failed") {
        setPlayer("error", "connection failed");
        playerStatus("The WebRTC connection failed; retrying…", "error");
        retryLater(2000);
      }
    });
    session = new Session(pc, endpoint);
    await session.offer(1000);
    await session.post();
    if (my !== gen) return;
    video.play().catch(() => {});
    statsTimer = setInterval(() => webrtcStats(my), 500);
  } catch (e) {
    if (my !== gen) return;
    if (e instanceof HttpError && e.status === 422) {
      // This stream cannot go to this browser over WebRTC (B-frames; no H.264 in the
      // browser, e.g. Firefox without its OpenH264 plugin): say why, play LL-HLS.
      const why = e.message.replace(/^422:\s*/, "");
      stopPlayer("switch");
      view.mode = "hls";
      document.querySelector('input[name=mode][value=hls]').checked = true;
      const g = gen;
      await playHls();
      if (g !== gen) return;
      setPlayer("loading", why);
      playerStatus(`WebRTC is not available here: ${why.replace(/[.\s]*$/, "")}. Playing LL-HLS instead.`, "error");
      return;
    }
    if (e instanceof HttpError && e.status === 403) {
      forbidden();
      return;
    }
    setPlayer("error", rtcError(e));
    playerStatus(`WebRTC: ${rtcError(e)}; retrying…`, "error");
    retryLater(3000);
  }
}

async function webrtcStats(my) {
  if (!pc || my !== gen) return;
  const report = await pc.getStats();
  let v = null;
  for (const s of report.values()) if (s.type === "inbound-rtp" && s.kind === "video") v = s;
  view.player.currentTime = video.currentTime;
  view.player.framesDecoded = v?.framesDecoded || 0;
  if (v?.framesDecoded > 0 && view.player.state !== "playing") {
    setPlayer("playing");
    playerStatus("Playing over WebRTC.");
  }
  // Time spent in the jitter buffer, plus half the round trip: what the network and the
  // receiver add (the sender's own encoding delay is not visible here).
  const rtt = selectedPair(report)?.currentRoundTripTime ?? 0;
  if (v?.jitterBufferEmittedCount > 0) {
    showLatency(v.jitterBufferDelay / v.jitterBufferEmittedCount + rtt / 2, "≈ ");
  }
}

function showLatency(seconds, prefix) {
  view.player.latency = seconds;
  $("latency").textContent = `latency ${prefix}${seconds.toFixed(seconds < 1 ? 2 : 1)} s`;
}

video.addEventListener("playing", () => {
  if (view.mode === "hls" && hls) {
    setPlayer("playing", view.player.error);
    if (!view.player.error) playerStatus("Playing over LL-HLS.");
  }
});

for (const input of document.querySelectorAll("input[name=mode]")) {
  input.addEventListener("change", () => {
    if (!input.checked) return;
    view.mode = input.value;
    const u = new URL(location.href);
    if (view.mode === "webrtc") u.searchParams.set("mode", "webrtc");
    else u.searchParams.delete("mode");
    history.replaceState(null, "", u);
    if (view.live) play();
  });
}

addEventListener("pagehide", () => session?.close({ keepalive: true }));

// ---------------------------------------------------------------- start

if (params.get("mode") === "webrtc") {
  view.mode = "webrtc";
  document.querySelector("input[name=mode][value=webrtc]").checked = true;
}
$("title").textContent = channel;
renderAccount();
renderStatus();
scheduleRefresh();
startChat();
poll();
