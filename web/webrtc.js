// weir — shared browser helpers for the WHIP publish page (whip.html) and the WHEP play page
// (whep.html): HTTP signalling per RFC 9725 (POST offer → 201 + SDP answer + Location,
// trickle PATCH, DELETE), non-trickle ICE gathering, `Link: rel="ice-server"` parsing,
// H.264-first codec preferences, getStats() helpers and the window.weirState() object the
// tests read. Plain ES module, no dependencies.

/** A query parameter of the page URL, or `fallback`. */
export function param(name, fallback = null) {
  const v = new URLSearchParams(location.search).get(name);
  return v === null ? fallback : v;
}

/** `<server or this origin>/<kind>/<name>` (kind is "whip" or "whep"). */
export function endpointUrl(kind, name, server) {
  let base = server || location.origin;
  if (!base.endsWith("/")) base += "/";
  return new URL(`${kind}/${encodeURIComponent(name)}`, base).href;
}

/** An HTTP error from the node; `message` is its plain-text body (or the status text). */
export class HttpError extends Error {
  constructor(status, message) {
    super(`${status}: ${message}`);
    this.status = status;
  }
}

/** RTCIceServer entries from a Link header (RFC 9725 §4.6), e.g.
 *  `<stun:host:3478>; rel="ice-server", <turn:h?transport=udp>; rel="ice-server"; username="u"; credential="p"`. */
export function parseIceServers(link) {
  const servers = [];
  if (!link) return servers;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = part.match(/^\s*<([^>]*)>(.*)$/s);
    if (!m) continue;
    const params = {};
    for (const p of m[2].split(";")) {
      const kv = p.match(/^\s*([^=\s]+)\s*(?:=\s*(?:"([^"]*)"|(\S*)))?\s*$/);
      if (kv) params[kv[1].toLowerCase()] = kv[2] ?? kv[3] ?? "";
    }
    if (!(params.rel || "").split(/\s+/).includes("ice-server")) continue;
    const server = { urls: m[1] };
    if (params.username) server.username = params.username;
    if (params.credential) server.credential = params.credential;
    servers.push(server);
  }
  return servers;
}

// ICE servers a node handed out before, reused for the next session with it.
const iceKey = (endpoint) => `weir.iceServers.${new URL(endpoint).origin}`;
export function storedIceServers(endpoint) {
  try {
    return JSON.parse(sessionStorage.getItem(iceKey(endpoint)) || "[]");
  } catch {
    return [];
  }
}

/** A new RTCPeerConnection for `endpoint`, with the ICE servers it advertised earlier. */
export function newPeerConnection(endpoint) {
  return new RTCPeerConnection({ iceServers: storedIceServers(endpoint), bundlePolicy: "max-bundle" });
}

/** A new RTCPeerConnection for `endpoint` that only uses TURN relays: the ICE servers are
 *  asked for first (OPTIONS on the endpoint answers with their Link headers). For networks
 *  that block direct UDP, and to check a TURN setup. */
export async function relayPeerConnection(endpoint) {
  const res = await fetch(endpoint, { method: "OPTIONS" });
  const iceServers = parseIceServers(res.headers.get("Link"));
  if (!iceServers.some((s) => /^turns?:/.test(s.urls))) throw new Error("the node hands out no TURN server");
  sessionStorage.setItem(iceKey(endpoint), JSON.stringify(iceServers));
  return new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle", iceTransportPolicy: "relay" });
}

/** The local candidate type (host, srflx, relay) of the selected candidate pair. */
export function localCandidateType(report) {
  const pair = selectedPair(report);
  return (pair && report.get(pair.localCandidateId)?.candidateType) ?? null;
}

/** Resolves once ICE gathering is complete, or after `timeoutMs` anyway. */
export function waitForIceGathering(pc, timeoutMs = 1000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** Puts video codecs matching `name` ("h264", "vp8", "vp9", "av1"; "" = browser order) first
 *  on `transceiver`; for H.264, packetization-mode=1 (then constrained baseline) first. */
export function preferVideoCodec(transceiver, name) {
  if (!name || !transceiver.setCodecPreferences || !RTCRtpSender.getCapabilities) return;
  const codecs = RTCRtpSender.getCapabilities("video")?.codecs || [];
  const mime = `video/${name}`.toLowerCase();
  const score = (c) => {
    if (c.mimeType.toLowerCase() !== mime) return 0;
    const f = c.sdpFmtpLine || "";
    return 1 + (f.includes("packetization-mode=1") ? 2 : 0) + (/profile-level-id=42e0/i.test(f) ? 1 : 0);
  };
  if (!codecs.some((c) => score(c) > 0)) {
    console.warn(`${name} is not offered by this browser; using its default order`);
    return;
  }
  const sorted = codecs.map((c, i) => [c, i]).sort((a, b) => score(b[0]) - score(a[0]) || a[1] - b[1]);
  transceiver.setCodecPreferences(sorted.map(([c]) => c));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// foundation, component, transport, priority, address, port: the SDP form drops "ufrag …".
const candidateKey = (c) => c.trim().split(/\s+/).slice(0, 6).join(" ");

/** One WHIP/WHEP session: offer → POST → answer, trickle PATCHes, DELETE on close. */
export class Session {
  constructor(pc, endpoint, { token = null } = {}) {
    this.pc = pc;
    this.endpoint = endpoint;
    this.token = token;
    this.location = null;
    this.etag = null;
    this.sentSdp = null;
    this.pending = []; // candidates gathered but not (yet) known to the server
    this.trickle = true;
    this.flushing = null;
    pc.addEventListener("icecandidate", (e) => {
      this.pending.push(e.candidate); // null = end of candidates
      if (this.location) this.flush();
    });
  }

  headers(extra = {}) {
    return this.token ? { ...extra, Authorization: `Bearer ${this.token}` } : extra;
  }

  /** createOffer + setLocalDescription + wait (≤ gatherMs) for the candidates. */
  async offer(gatherMs = 1000) {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await waitForIceGathering(this.pc, gatherMs);
    this.sentSdp = this.pc.localDescription.sdp;
    this.sentCandidates = new Set([...this.sentSdp.matchAll(/^a=(candidate:.*)$/gm)].map((m) => candidateKey(m[1])));
  }

  /** POSTs the offer; throws HttpError on a non-2xx answer. Can be retried. */
  async post() {
    const res = await fetch(this.endpoint, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/sdp" }),
      body: this.sentSdp,
    });
    const body = await res.text();
    if (res.status !== 201 && res.status !== 200) {
      // Errors are plain text; anything else (an HTML error page) is reduced to its text.
      const html = /html/i.test(res.headers.get("Content-Type") || "");
      const text = (html ? body.replace(/<(head|style|script)[^]*?<\/\1>|<[^>]*>/gi, " ") : body).replace(/\s+/g, " ").trim();
      throw new HttpError(res.status, text.slice(0, 500) || res.statusText || "error");
    }
    if (!/^v=0/m.test(body)) throw new Error(`${res.status} without an SDP answer`);
    const loc = res.headers.get("Location");
    if (!loc) console.warn("the answer carries no Location header: the session cannot be ended");
    this.etag = res.headers.get("ETag");
    // Advertised ICE servers are kept for the next session with this node (applying them now
    // with setConfiguration would re-gather and trickle every candidate again).
    this.iceServers = parseIceServers(res.headers.get("Link"));
    if (this.iceServers.length) sessionStorage.setItem(iceKey(this.endpoint), JSON.stringify(this.iceServers));
    // Known before setRemoteDescription, so that close() DELETEs it even if that throws.
    this.location = loc ? new URL(loc, res.url || this.endpoint).href : null;
    await this.pc.setRemoteDescription({ type: "answer", sdp: body });
    if (this.location) this.flush();
    return this.location;
  }

  /** Sends the candidates gathered after the offer went out (RFC 9725 §4.3.1). */
  flush() {
    if (this.flushing || !this.trickle) return;
    this.flushing = (async () => {
      await sleep(20); // batch candidates arriving together
      while (this.pending.length && this.trickle && this.location) {
        const batch = this.pending.splice(0).filter((c) => !c || !this.sentCandidates.has(candidateKey(c.candidate)));
        if (!batch.length || (batch.length === 1 && batch[0] === null && !this.trickled)) continue;
        const frag = this.sdpFrag(batch);
        if (!frag) continue;
        try {
          const res = await fetch(this.location, {
            method: "PATCH",
            headers: this.headers({ "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": this.etag || "*" }),
            body: frag,
          });
          if (res.status === 405 || res.status === 501) this.trickle = false; // ICE-lite node: fine
          else if (!res.ok) console.debug(`trickle PATCH: ${res.status}`);
          this.trickled = true;
        } catch (e) {
          console.debug(`trickle PATCH failed: ${e.message}`);
        }
      }
    })().finally(() => {
      this.flushing = null;
      if (this.pending.length && this.trickle) this.flush();
    });
  }

  /** An application/trickle-ice-sdpfrag body for `candidates` (null = end-of-candidates). */
  sdpFrag(candidates) {
    const sdp = this.pc.localDescription?.sdp || this.sentSdp;
    const ufrag = sdp.match(/^a=ice-ufrag:(.*)$/m)?.[1]?.trim();
    const pwd = sdp.match(/^a=ice-pwd:(.*)$/m)?.[1]?.trim();
    if (!ufrag || !pwd) return null;
    const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
    const mline = (mid) => {
      const s = sections.find((s) => new RegExp(`^a=mid:${mid}\\s*$`, "m").test(s)) || sections[0];
      return s.split(/\r?\n/)[0];
    };
    const mid = candidates.find((c) => c)?.sdpMid ?? sections[0]?.match(/^a=mid:(.*)$/m)?.[1]?.trim() ?? "0";
    const lines = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`];
    const group = sdp.match(/^a=group:BUNDLE .*$/m);
    if (group) lines.push(group[0].trim());
    lines.push(mline(mid), `a=mid:${mid}`);
    for (const c of candidates) lines.push(c ? `a=${c.candidate}` : "a=end-of-candidates");
    return lines.join("\r\n") + "\r\n";
  }

  /** DELETE the session on the node (keepalive so it also works from pagehide). */
  async close({ keepalive = false } = {}) {
    const loc = this.location;
    this.location = null;
    this.trickle = false;
    if (!loc) return;
    try {
      await fetch(loc, { method: "DELETE", headers: this.headers(), keepalive });
    } catch (e) {
      console.debug(`DELETE ${loc} failed: ${e.message}`);
    }
  }
}

/** The page state the tests read through window.weirState(); `render` shows it. */
export function pageState(render) {
  const st = { state: "idle", error: null, location: null, stats: {} };
  window.weirState = () => JSON.parse(JSON.stringify(st));
  st.set = (state, error = st.error) => {
    st.state = state;
    st.error = error;
    render(st);
  };
  return st;
}

/** Follows pc.connectionState into `st` (disconnected counts as connecting again). */
export function followConnection(pc, st, onFailed) {
  pc.addEventListener("connectionstatechange", () => {
    if (st.state === "closed" || st.state === "failed") return;
    const s = pc.connectionState;
    if (s === "connected") st.set("connected", null);
    else if (s === "disconnected" || s === "connecting") st.set("connecting");
    else if (s === "failed") onFailed(new Error("ICE/DTLS connection failed"));
  });
}

/** The stats entry of the candidate pair in use. */
export function selectedPair(report) {
  for (const s of report.values()) {
    if (s.type === "transport" && s.selectedCandidatePairId) return report.get(s.selectedCandidatePairId);
  }
  for (const s of report.values()) if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") return s;
  return null;
}

/** kbit/s between two byte counters taken `ms` apart. */
export function kbps(bytes, prevBytes, ms) {
  return ms > 0 && prevBytes != null ? Math.round(((bytes - prevBytes) * 8) / ms) : 0;
}

/** Human-readable message of an error. */
export function errorText(e) {
  if (e instanceof HttpError) return e.message;
  if (e?.name && e.name !== "Error") return `${e.name}: ${e.message}`;
  return e?.message || String(e);
}
