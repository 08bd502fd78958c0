// A task's history (GET /api/v1/tasks/{id}/history/) in a dialog: who did what and when,
// oldest first, with the task's live events added while it is open.

import { SessionEnded, problemText, request, samePath, taskPath } from "./api.js";
import {
  PRIORITY_LABELS,
  STATUS_LABELS,
  formatTime,
  learnNames,
  learnTaskNames,
  personName,
} from "./format.js";
import { $, handleFailure } from "./ui.js";

const HISTORY_PAGE = 100;
// Longer text in a change (a description) is cut to this many characters.
const QUOTE_CHARS = 120;

const dialog = {
  box: $("#history-dialog"),
  heading: $("#history-heading"),
  message: $("#history-message"),
  list: $("#history-list"),
  more: $("#history-more"),
  close: $("#history-close"),
};

const shown = {
  taskId: null,
  me: null,
  events: new Map(), // key -> event; a key names one change, however it arrived
  next: null,
  opener: null, // the button to give the focus back to
};

const FIELD_LABELS = {
  title: "Title",
  description: "Description",
  status: "Status",
  priority: "Priority",
  due_at: "Due",
  assignee: "Assignee",
  metadata: "Metadata",
};

/** One event's identity: its task version (and type: a reminder keeps the version). */
function keyOf(event) {
  return `${event.type}|${event.task.version}|${event.at}`;
}

function quote(text) {
  if (!text) return "(empty)";
  const cut = text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text;
  return `“${cut}”`;
}

function valueText(field, value) {
  switch (field) {
    case "status":
      return STATUS_LABELS[value] ?? value;
    case "priority":
      return PRIORITY_LABELS[value] ?? value;
    case "due_at":
      return value ? formatTime(value) : "none";
    case "assignee":
      return personName(value, shown.me);
    case "title":
    case "description":
      return quote(value);
    default:
      return "";
  }
}

function changeText(field, [before, after]) {
  const label = FIELD_LABELS[field] ?? field;
  if (field === "metadata") return `${label} changed`;
  return `${label}: ${valueText(field, before)} → ${valueText(field, after)}`;
}

function summary(event) {
  const who = event.actor ? personName(event.actor.id, shown.me) : "Taskhub";
  const subject = who === "you" ? "You" : who;
  switch (event.type) {
    case "task.created":
      return `${subject} created the task`;
    case "task.updated":
      return `${subject} changed the task`;
    case "task.archived":
      return `${subject} archived the task`;
    case "task.restored":
      return `${subject} restored the task`;
    case "task.due_soon":
      return "Reminder: the task is due soon";
    case "task.deleted":
      return `${subject} deleted the task`;
    default:
      return event.type;
  }
}

function render() {
  const events = [...shown.events.values()].sort(
    (a, b) => Date.parse(a.at) - Date.parse(b.at) || a.task.version - b.task.version,
  );
  dialog.list.replaceChildren(
    ...events.map((event) => {
      const item = document.createElement("li");
      item.className = "history-entry";
      item.dataset.type = event.type;
      const time = document.createElement("time");
      time.dateTime = event.at;
      time.textContent = formatTime(event.at);
      const what = document.createElement("p");
      what.className = "history-summary";
      what.textContent = summary(event);
      item.append(time, what);
      const changes = Object.entries(event.changes || {});
      if (changes.length) {
        const list = document.createElement("ul");
        list.className = "history-changes";
        for (const [field, values] of changes) {
          const change = document.createElement("li");
          change.textContent = changeText(field, values);
          list.append(change);
        }
        item.append(list);
      }
      return item;
    }),
  );
  dialog.more.hidden = !shown.next;
}

function remember(event) {
  learnNames(event.actor);
  if (event.task && event.task.created_by) learnTaskNames(event.task);
  shown.events.set(keyOf(event), event);
}

async function loadPage(path) {
  const taskId = shown.taskId;
  dialog.more.disabled = true;
  try {
    const { data } = await request(path);
    if (taskId !== shown.taskId) return;
    // Names first: an assignee change names people by id, and the snapshots name them.
    for (const event of data.results) remember(event);
    shown.next = data.next ? samePath(data.next) : null;
    dialog.message.textContent = shown.events.size ? "" : "Nothing has happened to this task yet.";
    render();
  } catch (error) {
    if (taskId !== shown.taskId) return;
    if (error instanceof SessionEnded) return handleFailure(error);
    dialog.message.textContent = `Could not load the history. ${problemText(error)}`;
  } finally {
    dialog.more.disabled = false;
  }
}

/** Open the history of `task`, as seen by `me`; `opener` gets the focus back on close. */
export function openHistory(task, me, opener) {
  shown.taskId = task.id;
  shown.me = me;
  shown.events.clear();
  shown.next = null;
  shown.opener = opener;
  dialog.heading.textContent = `History of “${task.title}”`;
  dialog.message.textContent = "Loading history…";
  dialog.list.replaceChildren();
  dialog.more.hidden = true;
  if (!dialog.box.open) dialog.box.showModal();
  return loadPage(`${taskPath(task.id, "history/")}?limit=${HISTORY_PAGE}`);
}

/** A live event: added to the history when it is of the task shown. */
export function historyEvent(event) {
  if (!dialog.box.open || event.task?.id !== shown.taskId) return;
  if (event.type === "task.deleted") {
    dialog.message.textContent = "This task has been deleted.";
    return;
  }
  remember(event);
  dialog.message.textContent = "";
  render();
}

export function closeHistory() {
  if (dialog.box.open) dialog.box.close();
}

dialog.close.addEventListener("click", closeHistory);
dialog.more.addEventListener("click", () => {
  if (shown.next) loadPage(shown.next);
});
dialog.box.addEventListener("close", () => {
  shown.taskId = null;
  shown.opener?.focus();
  shown.opener = null;
});
