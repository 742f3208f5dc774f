// weir — the chat client and message log shared by the chat panel (chat.html, served by the
// chat gateway) and the watch page (watch.html, served by the node). Plain ES module, no
// dependencies.
//
// Protocol (controlplane/chat/README.md): WS /v1/chat/<channel>[?since=<id>]; the access
// token goes in a first {"type":"auth"} message, never in the URL (URLs end up in logs).
// Server frames: welcome, history, message, ack, deleted, banned, timed_out, unbanned,
// settings_changed, error, pong.
//
// `new Chat({ server, channel, log, moderation, reconnect, onStatus, onWelcome, onError })`
//   server:     ws(s)://host:port of the gateway
//   log:        the <ol>/<ul> the messages and events are rendered into (text only: chat
//               text is untrusted and never becomes markup)
//   moderation: render Delete / Time out / Ban buttons on messages (shown only while the
//               connection may moderate) and Unban on ban events
//   reconnect:  reconnect after an unexpected close (1 s, 2 s, … 15 s), resuming with since=
// chat.connect(token), chat.say(text), chat.moderate(action, fields), chat.close(),
// chat.snapshot() → {state, user, userId, canWrite, moderator, lastId, messages: [{id, user,
// text, replyTo}], events: [{type, …}], errors: [{code, message}], closeCode}.

/** Close codes after which reconnecting would only be refused again. */
const FINAL_CLOSES = new Set([1000, 1002, 1003, 1007, 1009, 4029]);

export class Chat {
  constructor({ server, channel, log, moderation = false, reconnect = false,
    onStatus = () => {}, onWelcome = () => {}, onError = () => {} }) {
    Object.assign(this, { server, channel, log, moderation, reconnect, onStatus, onWelcome, onError });
    this.state = { state: "idle", user: null, userId: null, canWrite: false, moderator: false,
      lastId: 0, messages: [], events: [], errors: [], closeCode: null };
    this.ws = null;
    this.token = null;
    this.nonce = 0;
    this.retries = 0;
    this.timer = null;
    this.gen = 0;
    log.classList.add("chat-log");
  }

  /** A JSON copy of the state (what tests read). */
  snapshot() {
    return JSON.parse(JSON.stringify(this.state));
  }

  setStatus(state, text) {
    this.state.state = state;
    this.onStatus(state, text);
  }

  /** Opens (or reopens, e.g. with a new token) the connection; `token` may be null. */
  connect(token = this.token) {
    this.token = token || null;
    clearTimeout(this.timer);
    const my = ++this.gen;
    if (this.ws) this.ws.close(1000);
    const q = new URLSearchParams();
    if (this.state.lastId) q.set("since", String(this.state.lastId));
    this.setStatus("connecting", this.retries ? "reconnecting…" : "connecting…");
    const ws = this.ws = new WebSocket(`${this.server}/v1/chat/${encodeURIComponent(this.channel)}?${q}`);
    let opened = false;
    ws.onopen = () => { if (this.token) ws.send(JSON.stringify({ type: "auth", token: this.token })); };
    ws.onmessage = (e) => {
      if (my !== this.gen) return;
      opened = true;
      let f;
      try { f = JSON.parse(e.data); } catch (_) { return; /* not JSON */ }
      this.onFrame(f);
    };
    ws.onclose = (e) => {
      if (my !== this.gen) return;
      this.ws = null;
      this.state.closeCode = e.code;
      this.state.canWrite = false;
      this.state.moderator = false;
      this.log.classList.remove("can-moderate");
      const why = opened
        ? `disconnected (${e.code}${e.reason ? `: ${e.reason}` : ""})`
        : "could not join: no such channel, or the server is unreachable";
      if (this.reconnect && !FINAL_CLOSES.has(e.code)) {
        const wait = Math.min(15_000, 1000 * 2 ** Math.min(this.retries, 4));
        this.retries += 1;
        this.setStatus("reconnecting", `${why}; reconnecting in ${Math.round(wait / 1000)} s`);
        this.timer = setTimeout(() => { if (my === this.gen) this.connect(); }, wait);
      } else {
        this.setStatus("closed", why);
      }
    };
  }

  /** Closes the connection for good. */
  close() {
    this.gen++;
    clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
    this.setStatus("closed", "disconnected");
  }

  /** Hands a fresh access token to the open connection (after a refresh). */
  reauth(token) {
    this.token = token;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "auth", token }));
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a message; false when it could not be sent (not connected, empty). */
  say(text) {
    text = (text ?? "").trim();
    if (!text) return false;
    return this.send({ type: "send", text, nonce: `p${++this.nonce}` });
  }

  /** A moderator action: ban / timeout / unban (user), delete (message_id). */
  moderate(action, fields = {}) {
    return this.send({ type: "moderate", action, ...fields, nonce: `m${++this.nonce}` });
  }

  onFrame(f) {
    const st = this.state;
    switch (f.type) {
      case "welcome":
        this.retries = 0;
        st.user = f.user ? f.user.name : null;
        st.userId = f.user ? f.user.id : null;
        st.canWrite = !!f.can_write;
        st.moderator = !!f.moderator;
        this.log.classList.toggle("can-moderate", st.moderator);
        this.setStatus("open", f.can_write ? `connected as ${f.user.name}` : "connected (read-only)");
        this.onWelcome(f);
        break;
      case "history":
        for (const m of f.messages) this.addMessage(m);
        if (f.truncated) this.event(f, "(older messages skipped)");
        break;
      case "message":
        this.addMessage(f);
        break;
      case "deleted": {
        const li = this.log.querySelector(`[data-id="${Number(f.message_id)}"]`);
        if (li) {
          li.classList.add("deleted");
          li.querySelector(".text").textContent = "message deleted";
          li.querySelector(".mod")?.remove();
        }
        st.messages = st.messages.filter((m) => m.id !== f.message_id);
        this.event(f, `A message was deleted by ${f.by.name}.`);
        break;
      }
      case "banned": {
        const li = this.event(f, `${f.user.name} was banned by ${f.by.name}${f.reason ? `: ${f.reason}` : ""}.`);
        if (this.moderation) {
          const tools = document.createElement("span");
          tools.className = "mod";
          tools.append(this.button("Unban", `Unban ${f.user.name}`, () => this.moderate("unban", { user: f.user.id })));
          li.append(tools);
        }
        break;
      }
      case "timed_out":
        this.event(f, `${f.user.name} was timed out until ${new Date(f.until).toLocaleTimeString()}${f.reason ? `: ${f.reason}` : ""}.`);
        break;
      case "unbanned":
        this.event(f, `${f.user.name} may write again.`);
        break;
      case "settings_changed":
        this.event(f, `Chat settings changed by ${f.by.name}.`);
        break;
      case "error":
        st.errors.push({ code: f.code, message: f.message });
        this.line("error", [["", describeError(f)]]);
        this.onError(f);
        break;
      default:
        break;
    }
  }

  /** Appends a line of `[class, text]` spans, keeping the log scrolled to the bottom. */
  line(cls, parts) {
    const li = document.createElement("li");
    li.className = cls;
    for (const [c, t] of parts) {
      const span = document.createElement("span");
      if (c) span.className = c;
      span.textContent = t; // never innerHTML: chat text is untrusted
      li.append(span);
    }
    const log = this.log;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(li);
    // Bounded: a long session keeps the newest 500 lines.
    while (log.childElementCount > 500) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
    return li;
  }

  event(e, text) {
    this.state.events.push(e);
    return this.line("event", [["", text]]);
  }

  button(label, aria, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-label", aria);
    b.addEventListener("click", onClick);
    return b;
  }

  addMessage(m) {
    const st = this.state;
    if (m.id <= st.lastId) return;
    st.lastId = m.id;
    st.messages.push({ id: m.id, user: m.user.name, text: m.text, replyTo: m.reply_to ?? null });
    if (st.messages.length > 500) st.messages.shift();
    const li = this.line("msg", [["who", m.user.name], ["text", m.text]]);
    li.dataset.id = String(m.id);
    li.title = new Date(m.ts).toLocaleString();
    if (this.moderation) {
      const tools = document.createElement("span");
      tools.className = "mod";
      tools.append(this.button("Delete", `Delete message from ${m.user.name}`,
        () => this.moderate("delete", { message_id: m.id })));
      if (m.user.id !== st.userId) {
        tools.append(
          this.button("Time out", `Time out ${m.user.name} for 10 minutes`,
            () => this.moderate("timeout", { user: m.user.id, duration_s: 600 })),
          this.button("Ban", `Ban ${m.user.name}`, () => this.moderate("ban", { user: m.user.id })),
        );
      }
      li.append(tools);
    }
  }
}

/** An error frame as one sentence: the code's name, and the server's message when it
 *  says more. */
export function describeError(f) {
  const name = errorText(f.code);
  const msg = (f.message || "").trim();
  return !msg || name.toLowerCase().includes(msg.toLowerCase().replace(/[.!]$/, ""))
    ? name : `${name}: ${msg}`;
}

/** A readable name for a chat error code. */
export function errorText(code) {
  return ({
    BANNED: "You are banned from this chat", TIMED_OUT: "You are timed out",
    RATE_LIMITED: "Slow down", SLOW_MODE: "Slow mode", TOO_LONG: "Too long",
    UNAUTHENTICATED: "Sign in to chat", TOKEN_EXPIRED: "Your sign-in expired",
    FORBIDDEN: "Not allowed", BANNED_WORD: "Not allowed here", LINK_BLOCKED: "Links are not allowed",
    DUPLICATE: "Already said", SUBSCRIBERS_ONLY: "Subscribers only", EMOTE_ONLY: "Emotes only",
    FOLLOWERS_ONLY: "Followers only",
  })[code] || code;
}
