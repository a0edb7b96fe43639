// The chat page of fanout (served on GET /). It speaks the raw room protocol
// of PROTOCOL.md to /chat/ROOM on this page's own origin:
//
// - ?name=NAME makes it a named member: its welcome lists the room's names,
//   it hears {"type":"presence",...} as names come and go, and its own
//   messages come back to it, in the room's order.
// - ?history=N on the first join: the room's last N messages, then
//   {"type":"history",...}.
// - After a drop, ?since=OFFSET&epoch=EPOCH: what it missed, then
//   {"type":"recovery",...}. OFFSET counts every text message of the room
//   this page received live after its welcome, from the welcome's offset.
//
// Messages are JSON texts {"type":"chat","name":..,"text":..,"ts":..};
// anything else in the room shows as a plain line from an unknown sender.
// User text only ever reaches the page through textContent.
"use strict";

const ROOM_NAME = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_NAME = 40;
const RECENT = 50; // messages of history asked for when joining
const KEEP = 500; // messages kept on screen
const MAX_PENDING = 100; // own messages awaiting their return
const RETRY_MAX_MS = 15000;

const $ = (id) => document.getElementById(id);

/// A JSON object with a string "type", or null.
function parseTyped(text) {
  if (!text.startsWith("{")) return null;
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" && typeof value.type === "string" ? value : null;
  } catch {
    return null;
  }
}

/// The chat line in `value`, if it is one the page can show as such.
function chatLine(value) {
  if (!value || value.type !== "chat") return null;
  const { name, text, ts } = value;
  const validTime = Number.isFinite(ts) && Math.abs(ts) <= 8.64e15;
  return typeof name === "string" && typeof text === "string" && validTime ? { name, text, ts } : null;
}

function nameProblem(name) {
  if ([...name].length < 1 || [...name].length > MAX_NAME) return `A name is 1 to ${MAX_NAME} characters.`;
  if (CONTROL_CHARACTERS.test(name)) return "A name may not contain control characters.";
  return "";
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text) {
  $("status").textContent = text;
}

/// One room joined under one name, across reconnections.
class Chat {
  constructor(room, name, token) {
    this.room = room;
    this.name = name;
    this.token = token;
    this.ws = null;
    this.welcomed = false;
    // Where the room's stream stands as far as this page has seen:
    // {epoch, offset, sure}; null before the first welcome. `epoch` is null
    // while the room had no stream; `sure` is false once the count may be
    // wrong (a second stream began while connected).
    this.position = null;
    this.asked = false; // this connection asked for a replay (since or history)
    this.replaying = false; // between the welcome and the replay's marker
    this.reconnection = false;
    this.generation = 0; // connections made so far
    this.pending = new Map(); // own message text -> {item, generation}
    this.members = new Set();
    this.retries = 0;
    this.timer = 0;
    this.closed = false;
  }

  url() {
    const query = new URLSearchParams({ name: this.name });
    const at = this.position;
    this.asked = true;
    if (at === null || (at.sure && at.epoch === null && at.offset === 0)) {
      // First join, or nothing seen of a room that had no stream: all of
      // its history is new here.
      query.set("history", String(RECENT));
    } else if (at.sure && at.epoch !== null) {
      query.set("since", String(at.offset));
      query.set("epoch", at.epoch);
    } else {
      this.asked = false; // no position to recover from: join as is
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/chat/${this.room}?${query}`;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.closed || this.ws) return;
    const ws = this.token ? new WebSocket(this.url(), ["fanout.token", this.token]) : new WebSocket(this.url());
    this.ws = ws;
    this.welcomed = false;
    this.generation += 1;
    setStatus(this.reconnection ? "Reconnecting…" : "Connecting…");
    ws.onmessage = (event) => {
      if (ws !== this.ws || typeof event.data !== "string") return; // binary: no chat line
      if (this.welcomed) this.frame(event.data);
      else this.welcome(event.data);
    };
    ws.onclose = (event) => {
      if (ws === this.ws) this.dropped(event);
    };
  }

  welcome(text) {
    const welcome = parseTyped(text);
    if (!welcome || welcome.type !== "welcome") return;
    this.welcomed = true;
    this.retries = 0;
    const known = typeof welcome.epoch === "string" && Number.isSafeInteger(welcome.offset);
    this.position = known
      ? { epoch: welcome.epoch, offset: welcome.offset, sure: true }
      : { epoch: null, offset: 0, sure: true };
    if (typeof welcome.name === "string") this.name = welcome.name; // a token's sub wins
    this.members = new Set(Array.isArray(welcome.members) ? welcome.members.filter((m) => typeof m === "string") : []);
    this.members.add(this.name);
    this.showMembers();
    this.replaying = this.asked;
    if (this.reconnection && !this.asked) {
      this.notice("Reconnected: messages sent while you were away may be missing.");
      this.settlePending();
    }
    setStatus(`Connected to ${this.room} as ${this.name}`);
    $("send").disabled = false;
  }

  frame(text) {
    const value = parseTyped(text);
    switch (value && value.type) {
      case "presence":
        if (typeof value.joined === "string") this.members.add(value.joined);
        else if (typeof value.left === "string" && value.left !== this.name) this.members.delete(value.left);
        this.showMembers();
        return;
      case "stream":
        this.streamBegan(value.epoch);
        return;
      case "recovery":
      case "history":
        if (this.replaying) {
          this.replayEnded(value);
          return;
        }
        break; // someone's text that looks like one
    }
    this.message(text, value);
  }

  message(text, value) {
    const own = this.pending.get(text);
    if (own) {
      this.pending.delete(text);
      own.item.classList.remove("pending");
      own.item.querySelector(".state").textContent = "";
    } else {
      this.show(text, value, "");
    }
    if (!this.replaying) this.position.offset += 1;
  }

  streamBegan(epoch) {
    if (typeof epoch !== "string" || this.position === null) return;
    if (this.position.epoch === null) {
      // Every message counted since the welcome belongs to this stream.
      this.position.epoch = epoch;
    } else if (this.position.epoch !== epoch) {
      this.position.epoch = epoch;
      this.position.sure = false; // which of the counted messages are its?
    }
  }

  replayEnded(marker) {
    this.replaying = false;
    if (marker.type === "recovery") {
      if (marker.recovered !== true) this.notice("Some messages sent while you were away could not be recovered.");
    } else if (this.reconnection) {
      if (typeof marker.epoch !== "string" || marker.count >= RECENT) {
        this.notice("Reconnected: messages sent while you were away may be missing.");
      }
    } else {
      const when = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      $("messages").append(element("li", "divider", `You joined at ${when}`));
    }
    this.settlePending();
  }

  /// Own messages sent on an earlier connection that did not come back: the
  /// room never got them.
  settlePending() {
    for (const [text, own] of this.pending) {
      if (own.generation < this.generation) {
        this.pending.delete(text);
        own.item.querySelector(".state").textContent = "not sent";
      }
    }
  }

  dropped(event) {
    this.ws = null;
    $("send").disabled = true;
    if (this.closed) return;
    if (event.code === 1008 || event.code === 4401) {
      leave(event.reason || "The server closed the connection.");
      return;
    }
    this.reconnection = this.reconnection || this.welcomed;
    if (!navigator.onLine) {
      setStatus("Offline: reconnecting when the network is back");
      return;
    }
    const delay = Math.min(RETRY_MAX_MS, 500 * 2 ** this.retries) * (0.5 + Math.random() / 2);
    this.retries += 1;
    const seconds = Math.ceil(delay / 1000);
    setStatus(this.reconnection ? `Disconnected: reconnecting in ${seconds} s` : `Cannot connect: retrying in ${seconds} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /// The browser says it lost the network: the socket is as good as gone.
  offline() {
    if (this.ws) this.ws.close(1000, "offline");
  }

  online() {
    this.retries = 0;
    this.connect();
  }

  send(text) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.welcomed) return false;
    const line = JSON.stringify({ type: "chat", name: this.name, text, ts: Date.now() });
    this.ws.send(line);
    const item = this.show(line, parseTyped(line), "sending…");
    item.classList.add("pending");
    this.pending.set(line, { item, generation: this.generation });
    if (this.pending.size > MAX_PENDING) {
      const [oldest, own] = this.pending.entries().next().value;
      this.pending.delete(oldest);
      own.item.querySelector(".state").textContent = "not confirmed";
    }
    return true;
  }

  show(text, value, state) {
    const line = chatLine(value);
    const item = element("li", line ? "chat" : "plain");
    item.append(element("span", "who", line ? line.name : "unknown"));
    if (line) {
      if (line.name === this.name) item.classList.add("mine");
      const at = new Date(line.ts);
      const time = element("time", "", at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      time.dateTime = at.toISOString();
      item.append(time);
    }
    item.append(element("span", "state", state));
    item.append(element("p", "text", line ? line.text : text));
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    while (list.children.length > KEEP) list.firstElementChild.remove();
    if (atBottom || state === "sending…") list.scrollTop = list.scrollHeight;
    return item;
  }

  notice(text) {
    $("messages").append(element("li", "notice", text));
  }

  showMembers() {
    const list = $("members");
    const names = [...this.members].sort((a, b) => a.localeCompare(b));
    list.replaceChildren(
      ...names.map((name) => {
        const item = element("li", name === this.name ? "you" : "", name);
        if (name === this.name) item.append(" (you)");
        return item;
      }),
    );
    $("count").textContent = String(names.length);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "left");
    this.ws = null;
  }
}

let chat = null;

function join(room, name, token) {
  chat = new Chat(room, name, token);
  $("join").hidden = true;
  $("chat").hidden = false;
  $("room-title").textContent = `Room ${room}`;
  $("messages").replaceChildren();
  $("members").replaceChildren();
  $("send").disabled = true;
  chat.connect();
  $("text").focus();
}

function leave(why) {
  if (chat) chat.close();
  chat = null;
  $("chat").hidden = true;
  $("join").hidden = false;
  $("join-error").textContent = why || "";
  setStatus("Not connected");
  $("name").focus();
}

function start() {
  // #room=ROOM&name=NAME&token=JWT prefill the form (the token, for servers
  // started with --auth-*, is offered as the fanout.token subprotocol).
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  let saved = "";
  try {
    saved = localStorage.getItem("fanout.name") || "";
  } catch {
    // storage refused (private mode): the name is not remembered
  }
  $("name").value = params.get("name") || saved;
  $("room").value = params.get("room") || $("room").value;

  $("join").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("name").value.trim();
    const room = $("room").value.trim();
    const problem = nameProblem(name) || (ROOM_NAME.test(room) ? "" : "A room name is 1 to 164 letters, digits or _ - = @ , . ;");
    $("join-error").textContent = problem;
    if (problem) return;
    try {
      localStorage.setItem("fanout.name", name);
    } catch {
      // not remembered
    }
    history.replaceState(null, "", `#room=${room}`);
    join(room, name, token);
  });

  $("compose").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (text.trim() && chat && chat.send(text)) $("text").value = "";
  });

  $("leave").addEventListener("click", () => leave(""));
  window.addEventListener("offline", () => chat && chat.offline());
  window.addEventListener("online", () => chat && chat.online());
}

start();
