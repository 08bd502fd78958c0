// Taskhub in the browser: sign in, list and change tasks over the REST API, and apply
// everyone's changes live from the event stream at /ws/tasks/.
//
// User data only ever reaches the page through textContent and form values, never as HTML.

const API = "/api/v1";
const TOKENS_KEY = "taskhub.tokens";
const STATUS_LABELS = { todo: "To do", in_progress: "In progress", done: "Done" };
const PRIORITY_LABELS = { low: "Low", medium: "Medium", high: "High", urgent: "Urgent" };
// Refresh the access token this long before it expires, so requests rarely meet a 401.
const REFRESH_AHEAD_MS = 60_000;
// A token this close to expiry is not worth sending.
const EXPIRY_SLACK_MS = 10_000;
const PING_EVERY_MS = 25_000;
const PONG_WAIT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
// A due date typed segment by segment is saved once typing pauses (or on leaving the field).
const DUE_SAVE_DELAY_MS = 1_200;

const $ = (selector, root = document) => root.querySelector(selector);

const view = {
  session: $("#session"),
  connection: $("#connection"),
  meName: $("#me-name"),
  meId: $("#me-id"),
  logout: $("#logout"),
  notice: $("#notice"),
  noticeText: $("#notice-text"),
  noticeAction: $("#notice-action"),
  noticeDismiss: $("#notice-dismiss"),
  auth: $("#auth-view"),
  authHeading: $("#auth-heading"),
  authMessage: $("#auth-message"),
  loginForm: $("#login-form"),
  registerForm: $("#register-form"),
  switchText: $("#switch-text"),
  switchAuth: $("#switch-auth"),
  app: $("#app-view"),
  createForm: $("#create-form"),
  statusFilter: $("#status-filter"),
  listMessage: $("#list-message"),
  list: $("#task-list"),
  loadMore: $("#load-more"),
  rowTemplate: $("#task-row"),
};

const state = {
  me: null,
  tasks: new Map(), // id -> task, for the rows on the page
  next: null, // the list's next page, as a same-origin path
  listRequest: 0, // bumped per list load; a late answer to an older load is dropped
  loading: false,
  listShown: false, // has a first page been shown since sign-in
  pendingEvents: [], // live events that arrived while the list was loading
};

// --- Errors -------------------------------------------------------------------------------

/** An error answer from the API, carrying its RFC 9457 problem document. */
class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The session is over (no tokens, or the refresh token was refused). */
class SessionEnded extends Error {}

function problemOf(error) {
  if (error instanceof ApiError) return error.problem;
  return { title: "Something went wrong", detail: String(error.message || error) };
}

function problemText(error) {
  const problem = problemOf(error);
  return [problem.title, problem.detail].filter(Boolean).join(": ");
}

// --- Tokens -------------------------------------------------------------------------------

const tokens = {
  get() {
    try {
      const pair = JSON.parse(sessionStorage.getItem(TOKENS_KEY));
      return pair && pair.access && pair.refresh ? pair : null;
    } catch {
      return null;
    }
  },
  set(pair) {
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify({ access: pair.access, refresh: pair.refresh }));
    scheduleRefresh();
  },
  clear() {
    sessionStorage.removeItem(TOKENS_KEY);
    clearTimeout(refreshTimer);
  },
};

/** When a JWT expires, in ms since the epoch (0 when it cannot be read). */
function expiresAt(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return 0;
  }
}

let refreshing = null;
let refreshTimer = null;

/** Trade the refresh token for a new pair. Refresh tokens rotate (the old one is
 * blacklisted), so concurrent callers share one request rather than racing with the same
 * token. Resolves to the new access token. */
function refreshTokens() {
  if (!refreshing) {
    refreshing = (async () => {
      const pair = tokens.get();
      if (!pair) throw new SessionEnded();
      let response;
      try {
        response = await fetch(`${API}/auth/refresh/`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh: pair.refresh }),
        });
      } catch {
        throw networkError();
      }
      if (response.status === 400 || response.status === 401) throw new SessionEnded();
      if (!response.ok) throw new ApiError(response.status, await readProblem(response));
      const fresh = await response.json();
      // A sign-out while the request was out wins.
      if (!tokens.get()) throw new SessionEnded();
      tokens.set(fresh);
      return fresh.access;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A usable access token: the stored one, or a fresh one when it is about to expire. */
async function accessToken() {
  const pair = tokens.get();
  if (!pair) throw new SessionEnded();
  if (expiresAt(pair.access) - Date.now() < EXPIRY_SLACK_MS) return refreshTokens();
  return pair.access;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const pair = tokens.get();
  if (!pair) return;
  const wait = Math.max(5_000, expiresAt(pair.access) - Date.now() - REFRESH_AHEAD_MS);
  refreshTimer = setTimeout(() => refreshTokens().catch(handleFailure), wait);
}

// --- HTTP ---------------------------------------------------------------------------------

function networkError() {
  return new ApiError(0, {
    title: "Network error",
    detail: "The server could not be reached. Check your connection and try again.",
  });
}

async function readProblem(response) {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return body;
  } catch {
    // not JSON: fall through
  }
  return { title: response.statusText || "Error", status: response.status, detail: "" };
}

/** Call the API. Resolves to `{ data, response }`; an error status rejects with ApiError.
 * Authenticated calls use a fresh access token and retry once with a new one on 401. */
async function request(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const url = path.startsWith("/") ? path : `${API}/${path}`;
  const send = async (token) => {
    const allHeaders = { Accept: "application/json", ...headers };
    if (body !== undefined) allHeaders["Content-Type"] = "application/json";
    if (token) allHeaders.Authorization = `Bearer ${token}`;
    try {
      return await fetch(url, {
        method,
        headers: allHeaders,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw networkError();
    }
  };
  let response = await send(auth ? await accessToken() : null);
  if (auth && response.status === 401) {
    response = await send(await refreshTokens());
    if (response.status === 401) throw new SessionEnded();
  }
  if (!response.ok) throw new ApiError(response.status, await readProblem(response));
  const data = response.status === 204 ? null : await response.json();
  return { data, response };
}

/** A full URL from the API (pagination links) as a same-origin path. */
function samePath(link) {
  const url = new URL(link, location.href);
  return url.pathname + url.search;
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// --- Notices and form problems ------------------------------------------------------------

let noticeAction = null;

function notify(text, action = null) {
  view.noticeText.textContent = text;
  noticeAction = action;
  view.noticeAction.hidden = !action;
  if (action) view.noticeAction.textContent = action.label;
  view.notice.hidden = false;
}

function clearNotice() {
  view.notice.hidden = true;
  view.noticeText.textContent = "";
  noticeAction = null;
}

function clearProblems(form) {
  const box = $(".problem", form);
  box.hidden = true;
  box.replaceChildren();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const describedBy = (input.getAttribute("aria-describedby") || "")
      .split(" ")
      .filter((id) => id && !id.endsWith("-error"));
    if (describedBy.length) input.setAttribute("aria-describedby", describedBy.join(" "));
    else input.removeAttribute("aria-describedby");
  }
  for (const error of form.querySelectorAll(".field-error")) {
    error.hidden = true;
    error.textContent = "";
  }
}

/** Show an API problem on a form: title and detail on top, each field's messages under
 * its input (messages for fields the form does not have stay in the top box). */
function showProblem(form, error) {
  clearProblems(form);
  const problem = problemOf(error);
  const box = $(".problem", form);
  const title = document.createElement("strong");
  title.className = "problem-title";
  title.textContent = problem.title || "Error";
  const detail = document.createElement("p");
  detail.className = "problem-detail";
  detail.textContent = problem.detail || "";
  box.append(title, detail);

  const unplaced = document.createElement("ul");
  let firstInvalid = null;
  for (const [field, messages] of Object.entries(problem.errors || {})) {
    const input = form.elements.namedItem(field);
    const slot = input && document.getElementById(`${input.id}-error`);
    const text = [].concat(messages).join(" ");
    if (slot) {
      slot.textContent = text;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      const describedBy = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      input.setAttribute("aria-describedby", [...describedBy, slot.id].join(" "));
      firstInvalid ??= input;
    } else {
      const item = document.createElement("li");
      item.textContent = field === "non_field_errors" ? text : `${field}: ${text}`;
      unplaced.append(item);
    }
  }
  if (unplaced.childElementCount) box.append(unplaced);
  box.hidden = false;
  firstInvalid?.focus();
}

// --- Dates --------------------------------------------------------------------------------

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** An RFC 3339 time as the value of a datetime-local input, in the browser's time zone. */
function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** A datetime-local value (local time) as RFC 3339 UTC, or null when empty. */
function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

// --- The task list ------------------------------------------------------------------------

function canManage(task) {
  return state.me.role === "admin" || task.created_by.id === state.me.id;
}

function canSee(task) {
  return canManage(task) || task.assignee === state.me.id;
}

/** Whether the task belongs in the list as filtered now. */
function belongsHere(task) {
  const status = view.statusFilter.value;
  return canSee(task) && !task.archived_at && (!status || task.status === status);
}

function rowOf(id) {
  return view.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
}

function assigneeText(task) {
  if (task.assignee === null) return "Unassigned";
  if (task.assignee === state.me.id) return "Assigned to you";
  return `Assigned to user ${task.assignee}`;
}

function renderRow(row, task) {
  row.dataset.id = task.id;
  row.dataset.status = task.status;
  row.dataset.version = String(task.version);
  $(".task-title", row).textContent = task.title;
  const description = $(".task-description", row);
  description.textContent = task.description;
  description.hidden = !task.description;
  const creator = task.created_by.id === state.me.id ? "you" : task.created_by.username;
  $(".task-meta", row).textContent =
    `Created by ${creator} · ${assigneeText(task)} · updated ` +
    dateTimeFormat.format(new Date(task.updated_at));
  const priority = $(".priority-badge", row);
  priority.textContent = PRIORITY_LABELS[task.priority] || task.priority;
  priority.dataset.priority = task.priority;
  const overdue = task.due_at && task.status !== "done" && new Date(task.due_at) < new Date();
  $(".overdue-badge", row).hidden = !overdue;

  // Every row has a "Status", "Priority", ... control: name the task for screen readers.
  for (const hidden of row.querySelectorAll(".visually-hidden")) {
    hidden.textContent = hidden.closest("button") ? ` “${task.title}”` : ` of “${task.title}”`;
  }
  const manage = canManage(task);
  $('[data-field="status"]', row).value = task.status;
  const prioritySelect = $('[data-field="priority"]', row);
  prioritySelect.value = task.priority;
  prioritySelect.disabled = !manage;
  const due = $('[data-field="due_at"]', row);
  if (!dueEdits.has(task.id)) due.value = toLocalInput(task.due_at);
  due.disabled = !manage;
  $('[data-action="archive"]', row).hidden = !manage;
}

function newRow(task) {
  const row = view.rowTemplate.content.firstElementChild.cloneNode(true);
  for (const control of row.querySelectorAll("[data-field]")) {
    control.id = `${control.dataset.field}-${task.id}`;
  }
  for (const label of row.querySelectorAll("label[data-for]")) {
    label.htmlFor = `${label.dataset.for}-${task.id}`;
  }
  const message = $(".row-message", row);
  message.id = `message-${task.id}`;
  renderRow(row, task);
  return row;
}

/** Briefly highlight a row that changed (a CSS animation). */
function highlight(row) {
  row.classList.remove("changed");
  void row.offsetWidth; // restart the animation when it is already running
  row.classList.add("changed");
}

function rowMessage(row, text, kind = "error") {
  const message = $(".row-message", row);
  message.textContent = text;
  message.dataset.kind = kind;
  message.hidden = !text;
}

/** Put the row where the list's order (newest first) wants it. A task older than the last
 * loaded row while more pages wait is left out: "Load more" will bring it. */
function placeRow(row, task) {
  const created = Date.parse(task.created_at);
  let before = null;
  for (const other of view.list.children) {
    if (other === row) continue;
    const otherTask = state.tasks.get(other.dataset.id);
    if (otherTask && Date.parse(otherTask.created_at) < created) {
      before = other;
      break;
    }
  }
  if (!before && state.next) {
    row.remove();
    state.tasks.delete(task.id);
    return false;
  }
  view.list.insertBefore(row, before);
  return true;
}

/** Show `task` as it is now: update its row, add it, or take it away when it no longer
 * belongs in the list. A version older than the one shown is ignored. */
function showTask(task, { flash = false } = {}) {
  const shown = state.tasks.get(task.id);
  if (shown && shown.version > task.version) return;
  const row = rowOf(task.id);
  if (!belongsHere(task)) {
    removeTask(task.id);
    return;
  }
  state.tasks.set(task.id, task);
  if (row) {
    renderRow(row, task);
    if (flash) highlight(row);
  } else {
    const fresh = newRow(task);
    if (placeRow(fresh, task) && flash) highlight(fresh);
  }
  updateEmptyMessage();
}

function removeTask(id) {
  state.tasks.delete(id);
  rowOf(id)?.remove();
  dueEdits.delete(id);
  updateEmptyMessage();
}

function updateEmptyMessage() {
  if (state.loading && !view.list.childElementCount) return;
  view.listMessage.textContent = view.list.childElementCount
    ? ""
    : view.statusFilter.value
      ? "No tasks with this status."
      : "No tasks yet. Create one, or ask a teammate to assign you one.";
}

function listPath() {
  const params = new URLSearchParams();
  if (view.statusFilter.value) params.set("status", view.statusFilter.value);
  const query = params.toString();
  return `${API}/tasks/${query ? `?${query}` : ""}`;
}

/** Load the first page of the list (or, with `more`, the next one). Live events that
 * arrive meanwhile wait and are applied on top. */
async function loadTasks({ more = false } = {}) {
  const ticket = ++state.listRequest;
  state.loading = true;
  if (!more) view.listMessage.textContent = "Loading tasks…";
  view.loadMore.disabled = true;
  try {
    const { data } = await request(more ? state.next : listPath());
    if (ticket !== state.listRequest) return;
    if (!more) {
      state.tasks.clear();
      view.list.replaceChildren();
    }
    for (const task of data.results) {
      if (!state.tasks.has(task.id) && belongsHere(task)) {
        state.tasks.set(task.id, task);
        view.list.append(newRow(task));
      }
    }
    state.next = data.next ? samePath(data.next) : null;
    state.listShown = true;
  } catch (error) {
    if (ticket !== state.listRequest) return;
    if (error instanceof SessionEnded) throw error;
    view.listMessage.textContent = `Could not load tasks. ${problemText(error)}`;
    return;
  } finally {
    if (ticket === state.listRequest) {
      state.loading = false;
      view.loadMore.disabled = false;
      view.loadMore.hidden = !state.next;
      const waiting = state.pendingEvents.splice(0);
      for (const event of waiting) applyEvent(event);
    }
  }
  updateEmptyMessage();
}

// --- Changing tasks -----------------------------------------------------------------------

const saving = new Map(); // task id -> the promise of its last save: saves go one at a time
const dueEdits = new Map(); // task id -> timer of a due date being typed

/** PATCH one field with If-Match of the version shown; on 412 show the current task. */
function saveField(id, field, value) {
  const previous = saving.get(id) || Promise.resolve();
  const next = previous.then(async () => {
    const shown = state.tasks.get(id);
    const row = rowOf(id);
    if (!shown || !row) return;
    row.setAttribute("aria-busy", "true");
    try {
      const { data } = await request(`${API}/tasks/${encodeURIComponent(id)}/`, {
        method: "PATCH",
        body: { [field]: value },
        headers: { "If-Match": `"${shown.version}"` },
      });
      rowMessage(row, "");
      showTask(data);
    } catch (error) {
      if (error instanceof SessionEnded) throw error;
      if (error instanceof ApiError && error.status === 412 && error.problem.current) {
        showTask(error.problem.current, { flash: true });
        const message =
          "Someone else changed this task meanwhile, so your change was not saved. " +
          "It now shows their version; make your change again if it is still needed.";
        const currentRow = rowOf(id);
        if (currentRow) rowMessage(currentRow, message, "warning");
        notify(`“${error.problem.current.title}” was changed by someone else; not saved.`);
      } else if (error instanceof ApiError && error.status === 404) {
        removeTask(id);
        notify("That task is gone or no longer visible to you.");
      } else {
        renderRow(row, state.tasks.get(id) || shown); // put the controls back
        rowMessage(row, `Not saved. ${problemText(error)}`);
      }
    } finally {
      rowOf(id)?.removeAttribute("aria-busy");
    }
  });
  const settled = next.catch(handleFailure);
  saving.set(id, settled);
  return settled;
}

function commitDue(id, input) {
  clearTimeout(dueEdits.get(id));
  if (!dueEdits.has(id)) return;
  dueEdits.delete(id);
  const value = fromLocalInput(input.value);
  const shown = state.tasks.get(id);
  const same = (value && Date.parse(value)) === (shown?.due_at && Date.parse(shown.due_at));
  if (shown && !same) saveField(id, "due_at", value);
}

async function archiveTask(id) {
  const shown = state.tasks.get(id);
  const row = rowOf(id);
  if (!shown || !row) return;
  try {
    const { data } = await request(`${API}/tasks/${encodeURIComponent(id)}/archive/`, {
      method: "POST",
      headers: { "If-Match": `"${shown.version}"` },
    });
    const next = row.nextElementSibling || row.previousElementSibling;
    showTask(data);
    (next ? $("select", next) : view.statusFilter).focus();
    notify(`Archived “${data.title}”.`, { label: "Undo", run: () => restoreTask(data.id) });
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    if (error instanceof ApiError && error.status === 412 && error.problem.current) {
      showTask(error.problem.current, { flash: true });
      rowMessage(
        rowOf(id) || row,
        "Someone else changed this task meanwhile; check it and archive again if you still want to.",
        "warning",
      );
    } else {
      rowMessage(row, `Not archived. ${problemText(error)}`);
    }
  }
}

async function restoreTask(id) {
  try {
    const { data } = await request(`${API}/tasks/${encodeURIComponent(id)}/restore/`, {
      method: "POST",
    });
    showTask(data, { flash: true });
    notify(`Restored “${data.title}”.`);
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    notify(`Could not restore the task. ${problemText(error)}`);
  }
}

// --- The live stream ----------------------------------------------------------------------

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

function setConnection(stateName) {
  const labels = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  };
  view.connection.dataset.state = stateName;
  view.connection.textContent = labels[stateName];
}

function startLive() {
  live.wanted = true;
  live.attempts = 0;
  connectLive();
}

function stopLive() {
  live.wanted = false;
  clearTimeout(live.retryTimer);
  stopPing();
  const socket = live.socket;
  live.socket = null;
  socket?.close(1000);
  live.lastSeq = null;
  live.greeted = false;
  setConnection("offline");
}

async function connectLive() {
  clearTimeout(live.retryTimer);
  if (!live.wanted || live.socket) return;
  setConnection(live.greeted ? "reconnecting" : "connecting");
  let token;
  try {
    token = await accessToken();
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
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
      setConnection("live");
      startPing();
      if (fresh) {
        // Events after this seq arrive live; the list loaded now includes all before it.
        live.lastSeq = message.last_seq;
        loadTasks().catch(handleFailure);
      }
      break;
    }
    case "resync_required":
      // Events were missed that the log no longer holds: start over from the list.
      live.lastSeq = Math.max(live.lastSeq ?? 0, live.helloSeq ?? 0);
      loadTasks().catch(handleFailure);
      break;
    case "pong":
      break;
    case "error":
      console.warn("stream:", message.detail);
      break;
    default:
      if (typeof message.type === "string" && message.type.startsWith("task.")) {
        if (Number.isInteger(message.seq)) {
          if (live.lastSeq !== null && message.seq <= live.lastSeq) return;
          live.lastSeq = message.seq;
        }
        if (state.loading) state.pendingEvents.push(message);
        else applyEvent(message);
      }
  }
}

async function onLiveClose(socket, close) {
  if (socket !== live.socket) return;
  live.socket = null;
  stopPing();
  if (!live.wanted) return;
  if (!live.greeted && !state.listShown && !state.loading) {
    // The stream is not there yet: show the list anyway, live updates follow on connect.
    loadTasks().catch(handleFailure);
  }
  if (close.code === 4401) {
    // The access token expired (or was refused): take a fresh one, then come back at once.
    try {
      await refreshTokens();
    } catch (error) {
      if (error instanceof SessionEnded) return handleFailure(error);
    }
  } else if (close.code === 4400) {
    live.lastSeq = null; // our `after` was refused: start afresh
  }
  retryLive();
}

/** Reconnect with exponential backoff and jitter: 0 s, ~1 s, ~2 s, ... up to 30 s. */
function retryLive() {
  if (!live.wanted) return;
  setConnection(live.greeted ? "reconnecting" : "connecting");
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

/** Apply one event of the stream to the list. */
function applyEvent(event) {
  switch (event.type) {
    case "task.deleted":
      removeTask(event.task.id);
      break;
    case "task.due_soon": {
      const row = rowOf(event.task.id);
      if (row) highlight(row);
      notify(`“${event.task.title}” is due soon.`);
      break;
    }
    case "task.created":
    case "task.updated":
    case "task.archived":
    case "task.restored":
      showTask(event.task, { flash: true });
      break;
    default:
      break;
  }
}

// --- Session ------------------------------------------------------------------------------

/** Anything that ends the session sends the user back to sign in; other failures are
 * reported. */
function handleFailure(error) {
  if (error instanceof SessionEnded) {
    endSession("Your session has ended. Please sign in again.");
    return;
  }
  console.error(error);
  notify(problemText(error));
}

async function enterApp() {
  const { data: me } = await request("auth/me/");
  state.me = me;
  view.meName.textContent = me.username;
  view.meId.textContent = String(me.id);
  view.auth.hidden = true;
  view.session.hidden = false;
  view.app.hidden = false;
  view.list.replaceChildren();
  state.tasks.clear();
  view.listMessage.textContent = "Loading tasks…";
  startLive();
  $("#create-title").focus();
}

function endSession(message = "") {
  stopLive();
  tokens.clear();
  state.me = null;
  state.tasks.clear();
  state.next = null;
  state.listShown = false;
  state.pendingEvents = [];
  state.listRequest += 1;
  state.loading = false;
  view.list.replaceChildren();
  view.app.hidden = true;
  view.session.hidden = true;
  clearNotice();
  showAuth("login");
  view.authMessage.textContent = message;
}

async function logOut() {
  try {
    // The access token first: getting it may rotate the refresh token we are to revoke.
    const access = await accessToken();
    const response = await fetch(`${API}/auth/logout/`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${access}` },
      body: JSON.stringify({ refresh: tokens.get().refresh }),
    });
    if (!response.ok) console.warn("logout:", await readProblem(response));
  } catch (error) {
    // Signing out here happens anyway; the refresh token then just expires on its own.
    console.warn("logout:", error);
  }
  endSession("You have signed out.");
}

function showAuth(mode) {
  const register = mode === "register";
  view.auth.hidden = false;
  view.loginForm.hidden = register;
  view.registerForm.hidden = !register;
  view.authHeading.textContent = register ? "Create an account" : "Sign in";
  view.switchText.textContent = register ? "Have an account?" : "New here?";
  view.switchAuth.textContent = register ? "Sign in instead" : "Create an account";
  view.authMessage.textContent = "";
}

async function signIn(username, password) {
  const { data } = await request("auth/login/", {
    method: "POST",
    body: { username, password },
    auth: false,
  });
  tokens.set(data);
  await enterApp();
}

function formBusy(form, busy) {
  const button = $('button[type="submit"]', form);
  button.disabled = busy;
  form.setAttribute("aria-busy", String(busy));
}

// --- Wiring -------------------------------------------------------------------------------

view.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = view.loginForm;
  clearProblems(form);
  formBusy(form, true);
  try {
    await signIn(form.elements.username.value.trim(), form.elements.password.value);
    form.reset();
  } catch (error) {
    showProblem(form, error);
    form.elements.password.select();
  } finally {
    formBusy(form, false);
  }
});

view.registerForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = view.registerForm;
  clearProblems(form);
  formBusy(form, true);
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  try {
    await request("auth/register/", {
      method: "POST",
      body: { username, email: form.elements.email.value.trim(), password },
      auth: false,
    });
    await signIn(username, password);
    form.reset();
  } catch (error) {
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
});

view.switchAuth.addEventListener("click", () => {
  const toRegister = view.registerForm.hidden;
  showAuth(toRegister ? "register" : "login");
  $("input", toRegister ? view.registerForm : view.loginForm).focus();
});

let createKey = randomKey();

view.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = view.createForm;
  clearProblems(form);
  const fields = form.elements;
  const assignee = fields.assignee.value.trim();
  const body = {
    title: fields.title.value,
    description: fields.description.value,
    priority: fields.priority.value,
    due_at: fromLocalInput(fields.due_at.value),
    assignee: assignee === "" ? null : Number(assignee),
  };
  formBusy(form, true);
  try {
    // The same key for retries of this very form, so a double submit makes one task.
    const { data } = await request("tasks/", {
      method: "POST",
      body,
      headers: { "Idempotency-Key": createKey },
    });
    createKey = randomKey();
    form.reset();
    showTask(data, { flash: true });
    notify(`Created “${data.title}”.`);
    fields.title.focus();
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    if (error instanceof ApiError && error.status === 422) createKey = randomKey();
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
});

// Any change to the form is a new request as far as idempotency goes.
view.createForm.addEventListener("input", () => {
  createKey = randomKey();
});

view.list.addEventListener("change", (event) => {
  const control = event.target.closest("[data-field]");
  const row = event.target.closest("li.task");
  if (!control || !row) return;
  const id = row.dataset.id;
  const field = control.dataset.field;
  if (field === "due_at") {
    clearTimeout(dueEdits.get(id));
    dueEdits.set(id, setTimeout(() => commitDue(id, control), DUE_SAVE_DELAY_MS));
    return;
  }
  saveField(id, field, control.value);
});

view.list.addEventListener("focusout", (event) => {
  const control = event.target.closest('[data-field="due_at"]');
  const row = event.target.closest("li.task");
  if (control && row) commitDue(row.dataset.id, control);
});

view.list.addEventListener("keydown", (event) => {
  const control = event.target.closest('[data-field="due_at"]');
  const row = event.target.closest("li.task");
  if (event.key === "Enter" && control && row) {
    dueEdits.set(row.dataset.id, dueEdits.get(row.dataset.id) ?? 0);
    commitDue(row.dataset.id, control);
  }
});

view.list.addEventListener("click", (event) => {
  const button = event.target.closest('[data-action="archive"]');
  const row = event.target.closest("li.task");
  if (button && row) archiveTask(row.dataset.id).catch(handleFailure);
});

view.list.addEventListener("animationend", (event) => {
  if (event.target.matches?.("li.task")) event.target.classList.remove("changed");
});

view.statusFilter.addEventListener("change", () => {
  loadTasks().catch(handleFailure);
});

view.loadMore.addEventListener("click", () => {
  if (state.next) loadTasks({ more: true }).catch(handleFailure);
});

view.logout.addEventListener("click", () => {
  logOut();
});

view.noticeDismiss.addEventListener("click", clearNotice);
view.noticeAction.addEventListener("click", () => {
  const action = noticeAction;
  clearNotice();
  action?.run();
});

// Back online or back to the tab: reconnect now rather than when the backoff says.
window.addEventListener("online", () => {
  if (live.wanted && !live.socket) connectLive();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && live.wanted && !live.socket) connectLive();
});

// --- Start --------------------------------------------------------------------------------

async function start() {
  if (!tokens.get()) {
    showAuth("login");
    return;
  }
  scheduleRefresh();
  try {
    await enterApp();
  } catch (error) {
    if (error instanceof SessionEnded) {
      endSession("Your session has ended. Please sign in again.");
    } else {
      // The server is unreachable: keep the tokens, a reload may restore the session.
      showAuth("login");
      view.authMessage.textContent = `Could not restore your session. ${problemText(error)}`;
    }
  }
}

start();
