// weir — the creator dashboard (dashboard.html at /studio/ on the node).
//
// - API: GraphQL on the control plane (meta weir-api or ?api=), POST /graphql. Sign-up is
//   `register` then `login`; the tokens live in localStorage ("weir.auth", shared with the
//   watch page) and are refreshed (`refresh`) before the access token expires.
// - Views: sign-in/up → channel list (+ create) → one channel (#channel=<id> in the URL).
// - Live state: every 2 s while a channel is open: `liveChannel` (live, viewers),
//   `currentStream` (state), `destinations` (relay state, bitrate, reason) and
//   `recordings`.
// - Stream keys: an issued or rotated secret is shown once, with the OBS settings (Service
//   Custom, Server rtmp://<this host>:<node's RTMP port>/live, Stream Key) and copy buttons.
// - Recordings play with hls.js (window.Hls, /web/hls.min.js); "Download" joins the
//   recording's init and media segments into one fragmented MP4 in the browser. Clips are
//   offered only when the API's Mutation type has `createClip` (introspection).
// - Tests read window.weirDashboard().

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const AUTH_KEY = "weir.auth";
const POLL_MS = 2000;

/** The control plane's base URL: `?api=`, else the node's meta (a URL or ":PORT"). */
function apiBase() {
  const v = params.get("api") || document.querySelector('meta[name="weir-api"]')?.content || ":8090";
  if (v.startsWith(":")) return `${location.protocol}//${location.hostname}${v}`;
  return v.replace(/\/+$/, "");
}
const API = apiBase();

/** The RTMP server URL encoders publish to (this host, the node's RTMP port). */
function ingestServer() {
  const v = document.querySelector('meta[name="weir-rtmp"]')?.content || ":1935";
  if (/^rtmps?:\/\//.test(v)) return v;
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  return `rtmp://${host}${v.startsWith(":") ? v : `:${v}`}/live`;
}

const view = {
  view: "loading", api: API, user: null, channel: null, live: false, viewers: 0, streamState: null,
  keyShown: false, destinations: [], recordings: [], clipsAvailable: false,
  player: { recording: null, state: "idle", currentTime: 0, error: null }, error: null,
};
window.weirDashboard = () => JSON.parse(JSON.stringify(view));

function errorText(e) {
  if (!e) return "";
  const codes = {
    UNAUTHENTICATED: "Not signed in, or the sign-in was refused.", TOKEN_EXPIRED: "Your sign-in expired: sign in again.",
    RATE_LIMITED: "Too many attempts; wait a moment.", FORBIDDEN: "You may not do that on this channel.",
  };
  return codes[e.code] ? `${codes[e.code]} (${e.message})` : e.message || String(e);
}
function showError(e) {
  view.error = e ? errorText(e) : null;
  $("error").textContent = view.error || "";
  $("error").hidden = !view.error;
  if (e) console.warn(e);
}
function setStatus(s) {
  $("status").textContent = s;
}

// ---------------------------------------------------------------- GraphQL and sign-in

async function gql(query, variables = {}, { anonymous = false } = {}) {
  const headers = { "Content-Type": "application/json" };
  const token = anonymous ? null : await accessToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(`${API}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch (e) {
    throw new Error(`the API at ${API} cannot be reached (${e.message})`);
  }
  let body;
  try { body = await res.json(); } catch (_) { throw new Error(`the API answered ${res.status}`); }
  if (body.errors?.length) {
    const e = new Error(body.errors[0].message);
    e.code = body.errors[0].extensions?.code;
    if (token && (e.code === "UNAUTHENTICATED" || e.code === "TOKEN_EXPIRED")) signedOut("Your sign-in expired: sign in again.");
    throw e;
  }
  return body.data;
}

const TOKENS = "accessToken accessExpiresAt refreshToken user { id username }";
let auth = loadAuth();
let refreshing = null;

function loadAuth() {
  try { return JSON.parse(localStorage.getItem(AUTH_KEY)) || null; } catch (_) { return null; }
}
function saveAuth(a) {
  auth = a;
  if (a) localStorage.setItem(AUTH_KEY, JSON.stringify(a));
  else localStorage.removeItem(AUTH_KEY);
  view.user = a?.user?.username || null;
  $("who").textContent = view.user ? `Signed in as ${view.user}` : "";
  $("who").hidden = $("signout").hidden = !view.user;
}

/** A valid access token, refreshed first when it expires within a minute; null if none. */
async function accessToken() {
  if (!auth) return null;
  if (auth.accessExpiresAt * 1000 - Date.now() > 60_000) return auth.accessToken;
  refreshing ||= (async () => {
    try {
      const d = await gql(`mutation($r: String!) { refresh(refreshToken: $r) { ${TOKENS} } }`,
        { r: auth.refreshToken }, { anonymous: true });
      saveAuth(d.refresh);
    } catch (e) {
      console.warn(`sign-in expired: ${e.message}`);
      saveAuth(null);
    } finally {
      refreshing = null;
    }
  })();
  await refreshing;
  return auth?.accessToken || null;
}

function signedOut(message) {
  saveAuth(null);
  closeChannel();
  show("auth");
  setStatus(message);
}

async function signIn(login, password) {
  const d = await gql(`mutation($l: String!, $p: String!) { login(login: $l, password: $p) { ${TOKENS} } }`,
    { l: login, p: password }, { anonymous: true });
  saveAuth(d.login);
}

function busy(button, fn) {
  return async (e) => {
    e?.preventDefault();
    showError(null);
    button.disabled = true;
    try {
      await fn(e);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  };
}

function wireAuth() {
  $("signin-form").addEventListener("submit", busy($("in-submit"), async () => {
    await signIn($("in-user").value.trim(), $("in-pass").value);
    $("in-pass").value = "";
    await showChannels();
  }));
  $("signup-form").addEventListener("submit", busy($("up-submit"), async () => {
    const u = $("up-user").value.trim(), p = $("up-pass").value;
    await gql(`mutation($u: String!, $e: String!, $p: String!) { register(username: $u, email: $e, password: $p) { id } }`,
      { u, e: $("up-email").value.trim(), p }, { anonymous: true });
    await signIn(u, p);
    $("up-pass").value = "";
    await showChannels();
  }));
  $("signout").addEventListener("click", () => {
    const r = auth?.refreshToken;
    if (r) gql("mutation($r: String!) { logout(refreshToken: $r) }", { r }, { anonymous: true }).catch(() => {});
    signedOut("Signed out.");
    $("in-user").focus();
  });
}

// ---------------------------------------------------------------- views

function show(which) {
  view.view = which;
  for (const id of ["auth", "channels", "channel"]) $(id).hidden = id !== which;
}

const CHANNEL = "id slug title description record transcode myRole";

async function showChannels() {
  closeChannel();
  await detectClips();
  const d = await gql(`{ channels(first: 100) { nodes { ${CHANNEL} } } }`);
  const list = d.channels.nodes;
  $("channel-list").replaceChildren(...list.map((c) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${c.title} (${c.slug})`;
    b.dataset.channel = c.id;
    b.addEventListener("click", () => openChannel(c.id).catch(showError));
    li.append(b);
    return li;
  }));
  $("no-channels").hidden = list.length > 0;
  show("channels");
  history.replaceState(null, "", location.pathname + location.search);
  setStatus(list.length ? "Pick a channel, or create one." : "Create your first channel.");
}

function wireChannels() {
  $("create-form").addEventListener("submit", busy($("new-submit"), async () => {
    const d = await gql(`mutation($s: String!, $t: String!) { createChannel(slug: $s, title: $t) { id } }`,
      { s: $("new-slug").value.trim(), t: $("new-title").value.trim() });
    $("create-form").reset();
    await openChannel(d.createChannel.id);
  }));
  $("back").addEventListener("click", () => showChannels().catch(showError));
}

// ---------------------------------------------------------------- one channel

let channel = null;
let pollTimer = null;

async function openChannel(id) {
  closeChannel();
  await detectClips();
  const d = await gql(`query($c: ID!) { channel(id: $c) { ${CHANNEL} } }`, { c: id });
  channel = d.channel;
  view.channel = { id: channel.id, slug: channel.slug, title: channel.title };
  history.replaceState(null, "", `${location.pathname}${location.search}#channel=${encodeURIComponent(id)}`);
  renderChannel();
  show("channel");
  setStatus(`Channel ${channel.slug}.`);
  await Promise.all([loadKeys(), poll()]);
}

function closeChannel() {
  clearTimeout(pollTimer);
  pollTimer = null;
  channel = null;
  view.channel = null;
  hideKey();
  stopPlayer();
}

function renderChannel() {
  $("ch-name").textContent = channel.title;
  $("ch-title").value = channel.title;
  $("ch-desc").value = channel.description;
  $("record").value = channel.record;
  $("transcode").value = channel.transcode;
  const apiParam = params.get("api") ? `?api=${encodeURIComponent(params.get("api"))}` : "";
  $("watch-link").href = `/watch/${encodeURIComponent(channel.slug)}${apiParam}`;
  const sep = apiParam ? "&" : "?";
  $("studio-link").href = `/web/studio.html${apiParam}${sep}channel=${encodeURIComponent(channel.id)}`;
}

function wireChannel() {
  $("details-form").addEventListener("submit", busy($("details-save"), async () => {
    const d = await gql(`mutation($id: ID!, $t: String, $d: String) { updateChannel(id: $id, title: $t, description: $d) { ${CHANNEL} } }`,
      { id: channel.id, t: $("ch-title").value.trim(), d: $("ch-desc").value });
    channel = d.updateChannel;
    renderChannel();
    setStatus("Saved.");
  }));
  $("record").addEventListener("change", busy($("record"), async () => {
    const d = await gql(`mutation($c: ID!, $r: RecordSetting!) { setChannelRecord(channelId: $c, record: $r) { ${CHANNEL} } }`,
      { c: channel.id, r: $("record").value });
    channel = d.setChannelRecord;
    setStatus("Recording setting saved (applies from the next time you go live).");
  }));
  $("transcode").addEventListener("change", busy($("transcode"), async () => {
    const d = await gql(`mutation($c: ID!, $t: Transcode!) { setChannelTranscode(channelId: $c, transcode: $t) { ${CHANNEL} } }`,
      { c: channel.id, t: $("transcode").value });
    channel = d.setChannelTranscode;
    setStatus("Transcode setting saved (applies from the next time you go live).");
  }));
}

/** Refreshes live state, destinations and recordings, then again in POLL_MS. */
async function poll() {
  clearTimeout(pollTimer);
  if (!channel) return;
  const id = channel.id;
  try {
    const d = await gql(`query($c: ID!) {
      liveChannel(channel: $c) { live viewerCount }
      currentStream(channelId: $c) { state protocol liveAt }
      destinations(channelId: $c) { id name platform url streamKeyHint enabled status { state reason bitrate updatedAt } }
      recordings(channelId: $c, first: 50) { nodes { id streamId durationMs sizeBytes createdAt endedAt playbackUrl posterUrl segments studioParticipantId } }
    }`, { c: id });
    if (channel?.id !== id) return;
    renderLive(d.liveChannel, d.currentStream);
    renderDestinations(d.destinations);
    renderRecordings(d.recordings.nodes);
  } catch (e) {
    if (channel?.id === id) showError(e);
  }
  if (channel?.id === id) pollTimer = setTimeout(poll, POLL_MS);
}

function renderLive(live, stream) {
  view.live = live.live;
  view.viewers = live.viewerCount;
  view.streamState = stream?.state || null;
  $("live").textContent = live.live ? "Live" : "Offline";
  $("live").dataset.live = String(live.live);
  $("viewers").textContent = `${live.viewerCount} viewer${live.viewerCount === 1 ? "" : "s"}`;
  $("stream-state").textContent = stream
    ? `Stream: ${stream.state.toLowerCase()} (${({ RTMP: "RTMP", SRT: "SRT", WEBRTC: "WebRTC", STUDIO: "studio" })[stream.protocol] || stream.protocol})`
    : "No stream: start your encoder with the settings below.";
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}
function button(label, onClick, aria) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (aria) b.setAttribute("aria-label", aria);
  b.addEventListener("click", busy(b, onClick));
  return b;
}
const when = (ms) => new Date(ms).toLocaleString();

/** Replaces a table's rows, keeping keyboard focus on the same button across refreshes. */
function replaceRows(table, rows) {
  const focused = table.contains(document.activeElement) ? document.activeElement.getAttribute("aria-label") : null;
  table.tBodies[0].replaceChildren(...rows);
  if (focused) [...table.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === focused)?.focus();
}

// ---------------------------------------------------------------- stream keys

async function loadKeys() {
  const d = await gql(`query($c: ID!) { streamKeys(channelId: $c) { keyId createdAt revokedAt } }`, { c: channel.id });
  const rows = d.streamKeys.map((k) => {
    const tr = document.createElement("tr");
    tr.dataset.key = k.keyId;
    const acts = document.createElement("td");
    if (!k.revokedAt) acts.append(button("Revoke", () => revokeKey(k.keyId), `Revoke key ${k.keyId}`));
    tr.append(cell(k.keyId), cell(when(k.createdAt)), cell(k.revokedAt ? `revoked ${when(k.revokedAt)}` : "active"), acts);
    return tr;
  });
  replaceRows($("keys"), rows);
}

function showKey(secret) {
  $("obs-server").value = ingestServer();
  $("obs-key").value = secret;
  $("key-once").hidden = false;
  view.keyShown = true;
  $("obs-key").focus();
  $("obs-key").select();
}
function hideKey() {
  $("obs-key").value = "";
  $("key-once").hidden = true;
  view.keyShown = false;
}

async function revokeKey(keyId) {
  await gql(`mutation($k: ID!) { revokeStreamKey(keyId: $k) { keyId } }`, { k: keyId });
  setStatus("Key revoked: encoders using it are refused from now on.");
  await loadKeys();
}

async function copy(input, what) {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
  } catch (_) {
    document.execCommand?.("copy"); // older browsers, or no clipboard permission
  }
  setStatus(`${what} copied.`);
}

function wireKeys() {
  $("issue-key").addEventListener("click", busy($("issue-key"), async () => {
    const d = await gql(`mutation($c: ID!) { issueStreamKey(channelId: $c) { secret key { keyId } } }`, { c: channel.id });
    showKey(d.issueStreamKey.secret);
    setStatus("New stream key issued: copy it now, it is shown once.");
    await loadKeys();
  }));
  $("rotate-key").addEventListener("click", busy($("rotate-key"), async () => {
    if (!confirm("Revoke every key of this channel and issue a new one? Encoders using the old keys stop.")) return;
    const d = await gql(`mutation($c: ID!) { rotateStreamKey(channelId: $c) { secret key { keyId } } }`, { c: channel.id });
    showKey(d.rotateStreamKey.secret);
    setStatus("Keys rotated: copy the new one now, it is shown once.");
    await loadKeys();
  }));
  $("copy-key").addEventListener("click", () => copy($("obs-key"), "Stream key"));
  $("copy-server").addEventListener("click", () => copy($("obs-server"), "Server"));
  $("hide-key").addEventListener("click", hideKey);
}

// ---------------------------------------------------------------- destinations

const PRESETS = {
  youtube: { name: "YouTube", url: "rtmp://a.rtmp.youtube.com/live2" },
  twitch: { name: "Twitch", url: "rtmp://live.twitch.tv/app" },
  facebook: { name: "Facebook", url: "rtmps://live-api-s.facebook.com:443/rtmp/" },
  rtmp: { name: "", url: "" },
};

function renderDestinations(list) {
  view.destinations = list.map((d) => ({
    id: d.id, name: d.name, enabled: d.enabled, state: d.status?.state || null,
    bitrate: d.status?.bitrate || 0, reason: d.status?.reason || null,
  }));
  const rows = list.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.destination = d.id;
    const s = d.status;
    const state = !d.enabled ? "disabled" : s ? s.state.toLowerCase() : "idle";
    const stateCell = cell(state);
    stateCell.className = "dest-state";
    stateCell.dataset.state = s?.state || "";
    const acts = document.createElement("td");
    acts.append(
      button(d.enabled ? "Disable" : "Enable", () => setEnabled(d.id, !d.enabled), `${d.enabled ? "Disable" : "Enable"} ${d.name}`),
      button("Test", () => testDestination(d), `Test ${d.name}`),
      button("Delete", () => deleteDestination(d), `Delete ${d.name}`),
    );
    tr.append(cell(d.name), cell(`${d.platform}: ${d.url}`), cell(d.streamKeyHint), stateCell,
      cell(s?.bitrate ? `${(s.bitrate / 1e6).toFixed(2)} Mb/s` : "—"), cell(s?.reason || ""), acts);
    return tr;
  });
  replaceRows($("dests"), rows);
  $("dests").hidden = list.length === 0;
  $("no-dests").hidden = list.length > 0;
}

async function setEnabled(id, enabled) {
  await gql(`mutation($id: ID!, $i: DestinationUpdate!) { updateDestination(id: $id, input: $i) { id } }`,
    { id, i: { enabled } });
  await poll();
}
async function testDestination(d) {
  $("dest-test").textContent = `Testing ${d.name}…`;
  const r = (await gql(`mutation($id: ID!) { testDestination(id: $id) { ok message millis } }`, { id: d.id })).testDestination;
  $("dest-test").textContent = r.ok ? `${d.name}: OK (${r.millis} ms) — ${r.message}` : `${d.name}: failed — ${r.message}`;
}
async function deleteDestination(d) {
  if (!confirm(`Delete the destination ${d.name}?`)) return;
  await gql(`mutation($id: ID!) { deleteDestination(id: $id) }`, { id: d.id });
  await poll();
}

function wireDestinations() {
  const preset = () => {
    const p = PRESETS[$("dest-preset").value];
    if (p.url) $("dest-url").value = p.url;
    if (p.name && !$("dest-name").value) $("dest-name").value = p.name;
  };
  $("dest-preset").addEventListener("change", preset);
  $("dest-form").addEventListener("submit", busy($("dest-submit"), async () => {
    const url = $("dest-url").value.trim();
    if (!/^rtmps?:\/\/[^\s/]+/.test(url)) throw new Error("the server URL starts with rtmp:// or rtmps://");
    await gql(`mutation($c: ID!, $i: DestinationInput!) { createDestination(channelId: $c, input: $i) { id } }`, {
      c: channel.id,
      i: { name: $("dest-name").value.trim(), platform: $("dest-preset").value, url, streamKey: $("dest-key").value },
    });
    $("dest-form").reset();
    setStatus("Destination added: it gets your stream the next time you go live.");
    await poll();
  }));
}

// ---------------------------------------------------------------- recordings

let hls = null;
let playing = null; // the recording in the player

function renderRecordings(list) {
  view.recordings = list.map((r) => ({
    id: r.id, durationMs: r.durationMs, finished: r.endedAt !== null, playbackUrl: r.playbackUrl,
    posterUrl: r.posterUrl,
  }));
  $("no-recs").hidden = list.length > 0;
  $("recs").hidden = list.length === 0;
  const rows = list.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.recording = r.id;
    const acts = document.createElement("td");
    const label = when(r.createdAt);
    if (r.playbackUrl) {
      acts.append(button("Play", () => play(r), `Play the recording of ${label}`));
      if (r.endedAt !== null) acts.append(button("Download", () => download(r), `Download the recording of ${label}`));
    }
    acts.append(button("Delete", () => deleteRecording(r), `Delete the recording of ${label}`));
    tr.append(posterCell(r, label), cell(label), cell(duration(r.durationMs)), cell(size(r.sizeBytes)),
      cell(r.endedAt === null ? "recording…" : r.studioParticipantId ? "guest track" : "finished"), acts);
    return tr;
  });
  replaceRows($("recs"), rows);
}

/** The recording's poster (made a few seconds after it finished; empty until then). */
function posterCell(r, label) {
  const td = document.createElement("td");
  if (!r.posterUrl) return td;
  const img = document.createElement("img");
  img.className = "poster";
  img.alt = `Poster of the recording of ${label}`;
  img.width = 96;
  img.height = 54;
  img.addEventListener("error", () => { img.hidden = true; }, { once: true });
  img.src = new URL(r.posterUrl, location.origin).href;
  td.append(img);
  return td;
}

const duration = (ms) => {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};
const size = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

function setPlayer(state, error = null) {
  view.player.state = state;
  view.player.error = error;
  $("player-state").textContent = `Player: ${state}${error ? ` (${error})` : ""}`;
}

function stopPlayer() {
  hls?.destroy();
  hls = null;
  playing = null;
  view.player = { recording: null, state: "idle", currentTime: 0, error: null };
  const v = $("rec-video");
  v.removeAttribute("src");
  v.load();
  $("player").hidden = true;
}

function play(r) {
  stopPlayer();
  playing = r;
  view.player.recording = r.id;
  $("player").hidden = false;
  const video = $("rec-video");
  const src = new URL(r.playbackUrl, location.origin).href;
  if (r.posterUrl) video.poster = new URL(r.posterUrl, location.origin).href;
  else video.removeAttribute("poster");
  if (window.Hls?.isSupported()) {
    hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) setPlayer("error", data.details);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;
  } else {
    setPlayer("unavailable", "this browser plays no HLS");
    return;
  }
  setPlayer("loading");
  video.play().catch(() => {});
  renderClips(r);
  video.focus();
}

function wirePlayer() {
  const v = $("rec-video");
  v.addEventListener("playing", () => setPlayer("playing"));
  v.addEventListener("pause", () => view.player.state === "playing" && setPlayer("paused"));
  v.addEventListener("ended", () => setPlayer("ended"));
  v.addEventListener("timeupdate", () => { view.player.currentTime = v.currentTime; });
}

/** Joins the init and media segments of a finished recording into one MP4 file. */
async function download(r) {
  const base = new URL(r.playbackUrl, location.origin);
  setStatus("Preparing the download…");
  const playlist = await (await fetch(base)).text();
  const urls = [];
  let init = null;
  for (const line of playlist.split("\n").map((l) => l.trim())) {
    const map = line.match(/^#EXT-X-MAP:.*URI="([^"]+)"/);
    if (map && map[1] !== init) urls.push((init = map[1]));
    else if (line && !line.startsWith("#")) urls.push(line);
  }
  const parts = [];
  for (const u of urls) {
    const res = await fetch(new URL(u, base));
    if (!res.ok) throw new Error(`download: ${u} answered ${res.status}`);
    parts.push(await res.blob());
  }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob(parts, { type: "video/mp4" }));
  a.download = `${channel?.slug || "recording"}-${new Date(r.createdAt).toISOString().slice(0, 19).replace(/:/g, "")}.mp4`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  setStatus("Download ready.");
}

async function deleteRecording(r) {
  if (!confirm("Delete this recording?")) return;
  if (playing?.id === r.id) stopPlayer();
  await gql(`mutation($id: ID!) { deleteRecording(id: $id) }`, { id: r.id });
  await poll();
}

// ---------------------------------------------------------------- clips (when the API has them)
//
// The planned API: createClip(recordingId: ID!, startMs: Int!, endMs: Int!, title: String):
// Clip! with Clip { id status hlsUrl mp4Url } and Recording.clips. The form stays hidden
// unless introspection finds `createClip` on Mutation.

let clipsChecked = false;
async function detectClips() {
  if (clipsChecked) return;
  clipsChecked = true;
  try {
    const d = await gql(`{ __type(name: "Mutation") { fields { name } } }`);
    view.clipsAvailable = !!d.__type?.fields?.some((f) => f.name === "createClip");
  } catch (_) {
    view.clipsAvailable = false;
  }
}

function renderClips(r) {
  $("clip-form").hidden = !view.clipsAvailable;
  $("clips").replaceChildren();
  if (!view.clipsAvailable) return;
  $("clip-start").value = "0";
  $("clip-end").value = String(Math.min(30, Math.floor(r.durationMs / 1000)));
  gql(`query($c: ID!) { recordings(channelId: $c, first: 50) { nodes { id clips { id status hlsUrl mp4Url } } } }`,
    { c: channel.id })
    .then((d) => {
      const rec = d.recordings.nodes.find((n) => n.id === r.id);
      for (const c of rec?.clips || []) addClip(c);
    })
    .catch(showError);
}

function addClip(c) {
  const li = document.createElement("li");
  li.dataset.clip = c.id;
  li.append(`Clip ${c.id}: ${String(c.status).toLowerCase()} `);
  for (const [label, href] of [["HLS", c.hlsUrl], ["MP4", c.mp4Url]]) {
    if (!href) continue;
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    li.append(a, " ");
  }
  $("clips").append(li);
}

function wireClips() {
  const mark = (id) => () => { $(id).value = $("rec-video").currentTime.toFixed(1); };
  $("clip-mark-start").addEventListener("click", mark("clip-start"));
  $("clip-mark-end").addEventListener("click", mark("clip-end"));
  $("clip-form").addEventListener("submit", busy($("clip-submit"), async () => {
    const startMs = Math.round(Number($("clip-start").value) * 1000);
    const endMs = Math.round(Number($("clip-end").value) * 1000);
    if (!(endMs > startMs)) throw new Error("a clip ends after it starts");
    const d = await gql(`mutation($r: ID!, $s: Int!, $e: Int!, $t: String) {
      createClip(recordingId: $r, startMs: $s, endMs: $e, title: $t) { id status hlsUrl mp4Url } }`,
    { r: playing.id, s: startMs, e: endMs, t: $("clip-title").value.trim() || null });
    addClip(d.createClip);
    setStatus("Clip requested.");
  }));
}

// ---------------------------------------------------------------- start

async function main() {
  wireAuth();
  wireChannels();
  wireChannel();
  wireKeys();
  wireDestinations();
  wirePlayer();
  wireClips();
  saveAuth(auth);
  if (!auth || !(await accessToken())) {
    show("auth");
    setStatus("Sign in, or create an account.");
    return;
  }
  const id = new URLSearchParams(location.hash.slice(1)).get("channel");
  if (id) await openChannel(id);
  else await showChannels();
}

main().catch((e) => {
  showError(e);
  setStatus("The dashboard cannot start.");
});
