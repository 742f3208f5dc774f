// weir — the studio page (studio.html): the guest view (?invite=<token>) and the host view
// (?broadcast=<id>; ?channel=<id> offers to create a broadcast first).
//
// - API: GraphQL on the control plane (meta weir-api or ?api=), queries and mutations over
//   POST /graphql, the `studioEvents` subscription over graphql-ws (graphql-transport-ws)
//   with the participant token (guest) or the access token (host) in connection_init.
// - Media: getUserMedia with the picked camera and microphone, published over WHIP
//   (webrtc.js) to the node at the `whipPath` joinStudio / joinStudioAsHost answers, H.264
//   first (the compositor decodes H.264 video only). Screen share swaps the video track
//   (replaceTrack), the session stays.
// - Host: the sign-in token lives in sessionStorage ("weir.studio.auth"); the program
//   preview plays `programHlsPath` on this node with hls.js.
// - Tests read window.weirStudio(): view, role, stage, broadcast, publish state, errors.

import { newPeerConnection, preferVideoCodec, Session, errorText } from "./webrtc.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const AUTH_KEY = "weir.studio.auth";

/** The control plane's base URL: `?api=`, else the node's meta (a URL or ":PORT"). */
function apiBase() {
  const v = params.get("api") || document.querySelector('meta[name="weir-api"]')?.content || ":8090";
  if (v.startsWith(":")) return `${location.protocol}//${location.hostname}${v}`;
  return v.replace(/\/+$/, "");
}
const API = apiBase();

const view = {
  mode: params.get("invite") ? "guest" : "host", api: API, status: "loading", error: null,
  me: null, stage: null, publish: "idle", sharing: false, broadcast: null, events: 0,
  program: { state: "idle", error: null },
};
window.weirStudio = () => JSON.parse(JSON.stringify(view));

function showError(e) {
  view.error = e ? errorText(e) : null;
  $("error").textContent = view.error || "";
  $("error").hidden = !view.error;
  if (e) console.error(e);
}
function setStatus(s) {
  view.status = s;
  $("status").textContent = s;
}

// ---------------------------------------------------------------- GraphQL

let token = null; // participant token (guest) or access token (host)

async function gql(query, variables = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(`${API}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch (e) {
    throw new Error(`the studio API at ${API} cannot be reached (${e.message})`);
  }
  let body;
  try { body = await res.json(); } catch (_) { throw new Error(`the API answered ${res.status}`); }
  if (body.errors?.length) {
    const e = new Error(body.errors[0].message);
    e.code = body.errors[0].extensions?.code;
    throw e;
  }
  return body.data;
}

const PERSON = "id role displayName stage audioEnabled videoEnabled audioLocked videoLocked";
const BROADCAST = `id channelId title status layout spotlightParticipantId programHlsPath programWhepPath
  banner { title subtitle } participants { ${PERSON} }`;

/** graphql-ws subscription to studioEvents; reconnects until stopped. */
class Events {
  constructor(broadcastId, onEvent) {
    this.broadcastId = broadcastId;
    this.onEvent = onEvent;
    this.stopped = false;
    this.delay = 500;
    this.open();
  }
  open() {
    const ws = (this.ws = new WebSocket(`${API.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws"));
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: { token } }));
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "connection_ack") {
        this.delay = 500;
        ws.send(JSON.stringify({
          id: "studio", type: "subscribe",
          payload: {
            query: `subscription($b: ID!) { studioEvents(broadcastId: $b) { kind participant { id } broadcast { ${BROADCAST} } } }`,
            variables: { b: this.broadcastId },
          },
        }));
      } else if (msg.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      } else if (msg.type === "next") {
        if (msg.payload?.errors?.length) showError(new Error(msg.payload.errors[0].message));
        const ev = msg.payload?.data?.studioEvents;
        if (ev) this.onEvent(ev);
      } else if (msg.type === "error") {
        showError(new Error(`studio events: ${msg.payload?.[0]?.message || "refused"}`));
      } else if (msg.type === "complete") {
        this.stopped = true; // our subscription ended (left, removed, or the broadcast ended)
      }
    };
    ws.onclose = () => {
      if (this.stopped) return;
      setTimeout(() => !this.stopped && this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    };
  }
  stop() {
    this.stopped = true;
    this.ws?.close();
  }
}

// ---------------------------------------------------------------- camera, microphone, WHIP

let stream = null; // the camera + microphone
let screen = null; // the shared screen, while sharing
let session = null;
let videoSender = null;
const OFF = "off"; // the picker value for "no camera" / "no microphone"

async function fillDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [sel, kind] of [[$("camera"), "videoinput"], [$("mic"), "audioinput"]]) {
    const keep = sel.value;
    sel.replaceChildren();
    const none = new Option(kind === "videoinput" ? "No camera" : "No microphone", OFF);
    let n = 0;
    for (const d of devices.filter((d) => d.kind === kind)) {
      sel.append(new Option(d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${++n}`, d.deviceId));
    }
    sel.append(none);
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
}

async function openMedia() {
  const cam = $("camera").value, mic = $("mic").value;
  const want = {
    video: cam === OFF ? false : { deviceId: cam ? { exact: cam } : undefined, width: 640, height: 360 },
    audio: mic === OFF ? false : { deviceId: mic ? { exact: mic } : undefined },
  };
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  if (!want.video && !want.audio) {
    $("self").srcObject = null;
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia(want);
  } catch (e) {
    throw new Error(`camera/microphone: ${errorText(e)} (allow access, or pick another device)`);
  }
  $("self").srcObject = stream;
  await fillDevices();
}

async function publish(whipPath) {
  if (!stream) throw new Error("pick a camera or a microphone to join with");
  const endpoint = new URL(whipPath, location.origin).href;
  const pc = newPeerConnection(endpoint);
  session = new Session(pc, endpoint);
  const video = stream.getVideoTracks()[0];
  const audio = stream.getAudioTracks()[0];
  if (video) {
    const t = pc.addTransceiver(video, { direction: "sendonly", streams: [stream] });
    preferVideoCodec(t, "h264");
    videoSender = t.sender;
  }
  if (audio) pc.addTransceiver(audio, { direction: "sendonly", streams: [stream] });
  pc.addEventListener("connectionstatechange", () => {
    const s = pc.connectionState;
    view.publish = s;
    $("publish").textContent = `media: ${s}`;
    if (s === "failed") showError(new Error("the media connection to the node failed (ICE/DTLS)"));
  });
  view.publish = "connecting";
  $("publish").textContent = "media: connecting";
  await session.offer();
  await session.post();
}

async function toggleShare() {
  if (!videoSender) return showError(new Error("screen share needs a camera track being published"));
  try {
    if (!screen) {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
      const t = screen.getVideoTracks()[0];
      t.addEventListener("ended", () => screen && toggleShare());
      await videoSender.replaceTrack(t);
      $("self").srcObject = screen;
    } else {
      screen.getTracks().forEach((t) => t.stop());
      screen = null;
      await videoSender.replaceTrack(stream.getVideoTracks()[0] || null);
      $("self").srcObject = stream;
    }
    view.sharing = !!screen;
    $("share").setAttribute("aria-pressed", String(view.sharing));
    $("share").textContent = view.sharing ? "Stop sharing" : "Share screen";
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- join, leave, events

let events = null;

function render(b) {
  view.broadcast = b;
  $("title").textContent = b.title ? `— ${b.title}` : "";
  const me = b.participants.find((p) => p.id === view.me);
  view.stage = me ? me.stage : "LEFT";
  $("stage").textContent = me ? (me.stage === "ON_STAGE" ? "on stage" : "backstage") : "not in the studio";
  $("stage").classList.toggle("live", me?.stage === "ON_STAGE");
  if (b.status === "ENDED") setStatus("The broadcast has ended.");
  else if (me) setStatus(me.stage === "ON_STAGE" ? "You are on stage (in the program)." : "You are backstage: the host brings you on stage.");
  if (view.mode === "host") renderHost(b);
}

function onEvent(ev) {
  view.events++;
  render(ev.broadcast);
  if (ev.broadcast.status === "ENDED" || ev.kind === "BROADCAST_DELETED") stop("The broadcast has ended.");
  else if (view.me && session && !ev.broadcast.participants.some((p) => p.id === view.me)) {
    stop("You are no longer in the studio (you left, were removed, or the broadcast ended).");
  }
}

async function stop(message) {
  events?.stop();
  events = null;
  const s = session;
  session = null;
  await s?.close();
  s?.pc.close();
  stream?.getTracks().forEach((t) => t.stop());
  screen?.getTracks().forEach((t) => t.stop());
  view.publish = "closed";
  $("in-studio").hidden = true;
  setStatus(message);
}

async function join(e) {
  e.preventDefault();
  showError(null);
  $("join").disabled = true;
  try {
    const name = $("name").value.trim();
    let j;
    if (view.mode === "guest") {
      const d = await gql(`mutation($i: String!, $n: String!) { joinStudio(invitation: $i, displayName: $n) {
        participantToken whipPath participant { id } broadcast { ${BROADCAST} } } }`, { i: params.get("invite"), n: name });
      j = d.joinStudio;
      token = j.participantToken;
    } else {
      const d = await gql(`mutation($b: ID!, $n: String) { joinStudioAsHost(broadcastId: $b, displayName: $n) {
        whipPath participant { id } broadcast { ${BROADCAST} } } }`, { b: broadcastId, n: name || null });
      j = d.joinStudioAsHost;
    }
    view.me = j.participant.id;
    render(j.broadcast);
    if (!events) events = new Events(j.broadcast.id, onEvent);
    $("join-form").hidden = true;
    $("in-studio").hidden = false;
    await publish(j.whipPath);
  } catch (err) {
    showError(err);
    $("join").disabled = false;
  }
}

async function leave() {
  try {
    if (view.me) await gql(`mutation($p: ID!) { removeParticipant(participantId: $p) { id } }`, { p: view.me });
    await stop("You left the studio.");
    $("join-form").hidden = true;
  } catch (e) {
    showError(e);
  }
}

// Closing the page ends the media; a guest also leaves the studio (its tile goes away).
addEventListener("pagehide", () => {
  if (!session) return;
  session.close({ keepalive: true });
  if (view.mode !== "guest" || !view.me) return;
  fetch(`${API}/graphql`, {
    method: "POST", keepalive: true,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: "mutation($p: ID!) { removeParticipant(participantId: $p) { id } }", variables: { p: view.me } }),
  }).catch(() => {});
});

// ---------------------------------------------------------------- host view

let broadcastId = params.get("broadcast");
let hls = null;

function loadAuth() {
  try { return JSON.parse(sessionStorage.getItem(AUTH_KEY)) || null; } catch (_) { return null; }
}

async function login(e) {
  e.preventDefault();
  showError(null);
  $("login-submit").disabled = true;
  try {
    token = null;
    const d = await gql(`mutation($l: String!, $p: String!) { login(login: $l, password: $p) { accessToken user { username } } }`,
      { l: $("login-user").value.trim(), p: $("login-pass").value });
    $("login-pass").value = "";
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(d.login));
    token = d.login.accessToken;
    $("name").value ||= d.login.user.username;
    $("login").hidden = true;
    await startHost();
  } catch (err) {
    showError(err);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function create(e) {
  e.preventDefault();
  showError(null);
  try {
    const d = await gql(`mutation($c: ID!, $t: String!) { createStudioBroadcast(channelId: $c, input: { title: $t }) { id } }`,
      { c: params.get("channel"), t: $("create-title").value.trim() });
    broadcastId = d.createStudioBroadcast.id;
    history.replaceState(null, "", `?broadcast=${encodeURIComponent(broadcastId)}`);
    $("create").hidden = true;
    await startHost();
  } catch (err) {
    showError(err);
  }
}

async function startHost() {
  if (!broadcastId) {
    if (!params.get("channel")) throw new Error("open this page with ?broadcast=<id> (or ?channel=<id> to create one)");
    $("create").hidden = false;
    setStatus("Create a broadcast.");
    return;
  }
  const d = await gql(`query($b: ID!) { studioBroadcast(id: $b) { ${BROADCAST} } }`, { b: broadcastId });
  $("host").hidden = false;
  $("setup").hidden = false;
  render(d.studioBroadcast);
  setStatus("Join with your camera, then run the show.");
  if (!events) events = new Events(broadcastId, onEvent);
  playProgram(d.studioBroadcast.programHlsPath);
  await setupMedia();
}

function playProgram(path) {
  const video = $("program");
  const src = new URL(path, location.origin).href;
  const st = (state, error = null) => {
    view.program = { state, error };
    $("program-state").textContent = `Program preview: ${state}${error ? ` (${error})` : ""}`;
  };
  video.addEventListener("playing", () => st("playing"));
  if (window.Hls?.isSupported()) {
    hls = new window.Hls({ lowLatencyMode: true, manifestLoadingMaxRetry: 1e6, manifestLoadingRetryDelay: 2000 });
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) {
        st("waiting", data.details);
        setTimeout(() => { hls.loadSource(src); hls.startLoad(); }, 3000);
      }
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;
  } else {
    st("unavailable", "this browser plays no HLS");
    return;
  }
  st("loading");
}

const ACTIONS = {
  stage: (p) => p.stage === "ON_STAGE"
    ? [`mutation($p: ID!) { sendBackstage(participantId: $p) { id } }`, {}]
    : [`mutation($p: ID!) { bringOnStage(participantId: $p) { id } }`, {}],
  mute: (p) => [`mutation($p: ID!, $a: Boolean) { setParticipantMedia(participantId: $p, audioEnabled: $a) { id } }`, { a: !p.audioEnabled }],
  hide: (p) => [`mutation($p: ID!, $v: Boolean) { setParticipantMedia(participantId: $p, videoEnabled: $v) { id } }`, { v: !p.videoEnabled }],
  remove: () => [`mutation($p: ID!) { removeParticipant(participantId: $p) { id } }`, {}],
};

async function act(kind, p) {
  showError(null);
  try {
    const [q, vars] = ACTIONS[kind](p);
    await gql(q, { p: p.id, ...vars });
  } catch (e) {
    showError(e);
  }
}

function button(label, onClick, pressed = null) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (pressed !== null) b.setAttribute("aria-pressed", String(pressed));
  b.addEventListener("click", onClick);
  return b;
}

function renderHost(b) {
  $("bstatus").textContent = b.status.toLowerCase();
  $("bstatus").classList.toggle("live", b.status === "LIVE");
  $("golive").disabled = b.status !== "SCHEDULED";
  $("end").disabled = b.status === "ENDED";
  for (const btn of $("layouts").querySelectorAll("button")) {
    btn.setAttribute("aria-pressed", String(btn.dataset.layout === b.layout));
  }
  const spot = $("spotlight"), keep = b.spotlightParticipantId || spot.value;
  spot.replaceChildren(new Option("First on stage", ""),
    ...b.participants.map((p) => new Option(p.displayName, p.id)));
  spot.value = b.participants.some((p) => p.id === keep) ? keep : "";
  const rows = b.participants.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.participant = p.id;
    const cell = (t) => { const td = document.createElement("td"); td.textContent = t; return td; };
    const acts = document.createElement("td");
    const on = p.stage === "ON_STAGE";
    acts.append(
      button(on ? "Send backstage" : "Bring on stage", () => act("stage", p)),
      button(p.audioEnabled ? "Mute" : "Unmute", () => act("mute", p), !p.audioEnabled),
      button(p.videoEnabled ? "Hide" : "Show", () => act("hide", p), !p.videoEnabled),
      button("Remove", () => act("remove", p)),
    );
    for (const btn of acts.querySelectorAll("button")) btn.setAttribute("aria-label", `${btn.textContent}: ${p.displayName}`);
    tr.append(cell(p.displayName), cell(p.role.toLowerCase()), cell(on ? "on stage" : "backstage"), acts);
    return tr;
  });
  $("people").tBodies[0].replaceChildren(...rows);
}

async function hostCall(q, vars = {}) {
  showError(null);
  try {
    const d = await gql(q, { b: broadcastId, ...vars });
    const b = Object.values(d)[0];
    if (b?.participants) render(b);
  } catch (e) {
    showError(e);
  }
}

function wireHost() {
  $("login-form").addEventListener("submit", login);
  $("create-form").addEventListener("submit", create);
  for (const btn of $("layouts").querySelectorAll("button")) {
    btn.addEventListener("click", () => hostCall(
      `mutation($b: ID!, $l: StudioLayout!, $s: ID) { setLayout(broadcastId: $b, layout: $l, spotlightParticipantId: $s) { ${BROADCAST} } }`,
      { l: btn.dataset.layout, s: $("spotlight").value || null }));
  }
  $("banner-form").addEventListener("submit", (e) => {
    e.preventDefault();
    hostCall(`mutation($b: ID!, $t: String, $s: String) { showBanner(broadcastId: $b, title: $t, subtitle: $s) { ${BROADCAST} } }`,
      { t: $("banner-title").value, s: $("banner-sub").value });
  });
  $("banner-hide").addEventListener("click", () => hostCall(`mutation($b: ID!) { hideBanner(broadcastId: $b) { ${BROADCAST} } }`));
  $("golive").addEventListener("click", () => hostCall(`mutation($b: ID!) { goLive(broadcastId: $b) { ${BROADCAST} } }`));
  $("end").addEventListener("click", () => {
    if (confirm("End the broadcast for everyone?")) hostCall(`mutation($b: ID!) { endBroadcast(broadcastId: $b) { ${BROADCAST} } }`);
  });
  $("invite").addEventListener("click", async () => {
    showError(null);
    try {
      const d = await gql(`mutation($b: ID!) { inviteGuest(broadcastId: $b) { path } }`, { b: broadcastId });
      $("invite-link").value = new URL(d.inviteGuest.path, location.origin).href;
      $("invite-link").select();
    } catch (e) {
      showError(e);
    }
  });
}

// ---------------------------------------------------------------- start

async function setupMedia() {
  $("setup").hidden = false;
  try {
    await fillDevices();
    await openMedia();
  } catch (e) {
    showError(e);
  }
  for (const sel of [$("camera"), $("mic")]) {
    sel.addEventListener("change", () => openMedia().catch(showError));
  }
}

async function main() {
  $("join-form").addEventListener("submit", join);
  $("leave").addEventListener("click", leave);
  $("share").addEventListener("click", toggleShare);
  $("share").hidden = !navigator.mediaDevices?.getDisplayMedia;
  if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser (or an insecure origin) gives no camera access");
  if (view.mode === "guest") {
    setStatus("Enter your name, check your camera, then join.");
    await setupMedia();
    $("name").focus();
    return;
  }
  wireHost();
  const auth = loadAuth();
  if (!auth) {
    $("login").hidden = false;
    setStatus("Sign in to host.");
    $("login-user").focus();
    return;
  }
  token = auth.accessToken;
  $("name").value ||= auth.user?.username || "";
  try {
    await startHost();
  } catch (e) {
    if (e.code !== "UNAUTHENTICATED") throw e;
    sessionStorage.removeItem(AUTH_KEY); // expired: sign in again
    token = null;
    $("login").hidden = false;
    setStatus("Your session has expired: sign in again.");
  }
}

main().catch((e) => {
  showError(e);
  setStatus("The studio cannot start.");
});
