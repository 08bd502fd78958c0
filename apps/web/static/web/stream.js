// The live event stream at /ws/tasks/: connect with the access token as subprotocol,
// resume after the last seq seen, ping to notice dead connections, reconnect with backoff.

import { SessionEnded, accessToken, refreshTokens } from "./api.js";

const PING_EVERY_MS = 25_000;
const PONG_WAIT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
// The kinds of event the page applies; others (of a newer server) are skipped.
const EVENT_KINDS = new Set(["task", "project", "member", "comment"]);

const live = {
  wanted: false, // false after sign-out: a close is then final
  socket: null,
  lastSeq: null, // the last seq seen; null until the first hello
  helloSeq: null, // last_seq of this connection's hello
  attempts: 0, // failed connects in a row, for the backoff
  retryTimer: null,
  pingTimer: null,
  pongTimer: null,
  greeted: false, // has any connection said hello yet
};

// What the app does with the stream; set by `startLive`.
let handlers = {
  state: () => {}, // the connection's state: connecting, live, reconnecting, offline
  fresh: () => {}, // (re)load the list: events after this point arrive live
  event: () => {}, // one event (task.*, project.*, member.*, comment.*), once and in order
  closedBeforeHello: () => {}, // the stream is not there yet
  failure: () => {}, // the session ended
};

/** Connect and stay connected until `stopLive`. */
export function startLive(with_) {
  handlers = with_;
  live.wanted = true;
  live.attempts = 0;
  connectLive();
}

export function stopLive() {
  live.wanted = false;
  clearTimeout(live.retryTimer);
  stopPing();
  const socket = live.socket;
  live.socket = null;
  socket?.close(1000);
  live.lastSeq = null;
  live.greeted = false;
  handlers.state("offline");
}

/** Reconnect now rather than when the backoff says (back online, back to the tab). */
export function reconnectNow() {
  if (live.wanted && !live.socket) connectLive();
}

async function connectLive() {
  clearTimeout(live.retryTimer);
  if (!live.wanted || live.socket) return;
  handlers.state(live.greeted ? "reconnecting" : "connecting");
  let token;
  try {
    token = await accessToken();
  } catch (error) {
    if (error instanceof SessionEnded) return handlers.failure(error);
    return retryLive();
  }
  if (!live.wanted || live.socket) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const after = live.lastSeq === null ? "" : `?after=${live.lastSeq}`;
  const socket = new WebSocket(`${scheme}://${location.host}/ws/tasks/${after}`, ["bearer", token]);
  live.socket = socket;
  socket.addEventListener("message", (message) => {
    if (socket !== live.socket) return;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    onLiveMessage(data);
  });
  socket.addEventListener("close", (close) => onLiveClose(socket, close));
}

function onLiveMessage(message) {
  clearTimeout(live.pongTimer);
  switch (message.type) {
    case "hello": {
      live.attempts = 0;
      live.helloSeq = message.last_seq;
      const fresh = live.lastSeq === null;
      live.greeted = true;
      handlers.state("live");
      startPing();
      if (fresh) {
        // Events after this seq arrive live; the list loaded now includes all before it.
        live.lastSeq = message.last_seq;
        handlers.fresh();
      }
      break;
    }
    case "resync_required":
      // Events were missed that the log no longer holds: start over from the list.
      live.lastSeq = Math.max(live.lastSeq ?? 0, live.helloSeq ?? 0);
      handlers.fresh();
      break;
    case "pong":
      break;
    case "error":
      console.warn("stream:", message.detail);
      break;
    default:
      if (typeof message.type !== "string") return;
      if (Number.isInteger(message.seq)) {
        if (live.lastSeq !== null && message.seq <= live.lastSeq) return;
        live.lastSeq = message.seq; // an event of a kind skipped here is still seen
      }
      if (EVENT_KINDS.has(message.type.split(".")[0])) handlers.event(message);
  }
}

async function onLiveClose(socket, close) {
  if (socket !== live.socket) return;
  live.socket = null;
  stopPing();
  if (!live.wanted) return;
  if (!live.greeted) handlers.closedBeforeHello();
  if (close.code === 4401) {
    // The access token expired (or was refused): take a fresh one, then come back at once.
    try {
      await refreshTokens();
    } catch (error) {
      if (error instanceof SessionEnded) return handlers.failure(error);
    }
  } else if (close.code === 4400) {
    live.lastSeq = null; // our `after` was refused: start afresh
  }
  retryLive();
}

/** Reconnect with exponential backoff and jitter: 0 s, ~1 s, ~2 s, ... up to 30 s. */
function retryLive() {
  if (!live.wanted) return;
  handlers.state(live.greeted ? "reconnecting" : "connecting");
  const base = live.attempts === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** live.attempts);
  const delay = base * (0.5 + Math.random() / 2);
  live.attempts += 1;
  clearTimeout(live.retryTimer);
  live.retryTimer = setTimeout(connectLive, delay);
}

function startPing() {
  stopPing();
  live.pingTimer = setInterval(() => {
    const socket = live.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "ping" }));
    clearTimeout(live.pongTimer);
    // No answer: the connection is dead without having said so. Drop it and reconnect.
    live.pongTimer = setTimeout(() => socket.close(), PONG_WAIT_MS);
  }, PING_EVERY_MS);
}

function stopPing() {
  clearInterval(live.pingTimer);
  clearTimeout(live.pongTimer);
}
