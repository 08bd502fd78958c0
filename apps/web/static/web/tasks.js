// The task list: rows rendered from the API's tasks, changed in place (fields, title and
// description, due date, assignee, archive and restore), kept current by live events.
// The list shows the view chosen in the project switcher (projects.js).

import {
  ApiError,
  SessionEnded,
  isStale,
  problemText,
  request,
  samePath,
  taskPath,
} from "./api.js";
import {
  PRIORITY_LABELS,
  STATUS_LABELS,
  formatTime,
  fromLocalInput,
  learnNames,
  learnTaskNames,
  personName,
  toLocalInput,
} from "./format.js";
import { forgetThreads, renderThreadOf, toggleThread } from "./comments.js";
import { closeHistory, historyEvent, openHistory } from "./history.js";
import { attachPicker } from "./picker.js";
import {
  ALL,
  PERSONAL,
  canEditIn,
  chooseProject,
  chosenProject,
  findAssignees,
  projectById,
  roleIn,
} from "./projects.js";
import { $, clearProblems, handleFailure, notify, showProblem } from "./ui.js";

// A due date typed segment by segment is saved once typing pauses (or on leaving the field).
const DUE_SAVE_DELAY_MS = 1_200;

const view = {
  heading: $("#tasks-heading"),
  statusFilter: $("#status-filter"),
  archiveFilter: $("#archive-filter"),
  message: $("#list-message"),
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
  link: null, // the task of the page's ?task= link, shown once the list has loaded
  pinnedId: null, // the linked task stays on the list even when its page is not loaded
};

const saving = new Map(); // task id -> the promise of its last save: saves go one at a time
const dueEdits = new Map(); // task id -> timer of a due date being typed
const editing = new Map(); // task id -> {version, title, description} the edit started from
const pickers = new WeakMap(); // row -> its assignee picker

// --- Who may do what ----------------------------------------------------------------------

function isAdmin() {
  return state.me.role === "admin";
}

/** Whether I may change every field: a personal task's creator; an owner or member of a
 * project task's project (not archived); admins. */
function canManage(task) {
  if (task.project) return canEditIn(task.project);
  return isAdmin() || task.created_by.id === state.me.id;
}

function isAssignee(task) {
  return task.assignee === state.me.id;
}

/** Whether I may change something of the task (as the assignee: status and description).
 * A task of an archived project only reads. */
function canChange(task) {
  if (canManage(task)) return true;
  return isAssignee(task) && !(task.project && projectById(task.project)?.archived_at);
}

function canSee(task) {
  if (isAdmin() || isAssignee(task) || task.created_by.id === state.me.id) return true;
  return Boolean(task.project) && roleIn(task.project) !== null;
}

/** Whether the task is in the view chosen in the project switcher. */
function inChosenView(task) {
  const chosen = chosenProject();
  if (chosen === ALL) return true;
  if (chosen === PERSONAL) return !task.project;
  return task.project === chosen;
}

function archivedView() {
  return view.archiveFilter.value === "true";
}

/** Whether the task belongs in the list as filtered now. */
function belongsHere(task) {
  const status = view.statusFilter.value;
  return (
    canSee(task) &&
    inChosenView(task) &&
    Boolean(task.archived_at) === archivedView() &&
    (!status || task.status === status)
  );
}

// --- Rows ---------------------------------------------------------------------------------

function rowOf(id) {
  return view.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
}

/** The assignee as a person: `assignee_user` names them; an older snapshot may lack it. */
function assigneeOf(task) {
  if (task.assignee === null) return null;
  if (task.assignee_user) return task.assignee_user;
  return { id: task.assignee, username: personName(task.assignee) };
}

function metaText(task, readOnly) {
  const creator = task.created_by.id === state.me.id ? "you" : task.created_by.username;
  const parts = [`Created by ${creator}`];
  // In the view of all my tasks, a project task says which project it is in.
  if (task.project && chosenProject() === ALL) {
    parts.push(`in ${projectById(task.project)?.name ?? "a project"}`);
  }
  const assignee = assigneeOf(task);
  if (assignee) {
    parts.push(`Assigned to ${assignee.id === state.me.id ? "you" : assignee.username}`);
  }
  // A task that only reads has no controls: its status and due date are said here.
  if (readOnly) {
    parts.push(STATUS_LABELS[task.status] ?? task.status);
    if (task.due_at) parts.push(`due ${formatTime(task.due_at)}`);
  }
  if (task.archived_at) parts.push(`archived ${formatTime(task.archived_at)}`);
  else parts.push(`updated ${formatTime(task.updated_at)}`);
  return parts.join(" · ");
}

/** Whether the person is typing a name into the row's picker (not yet picked). */
function choosingAssignee(row) {
  const picker = pickers.get(row);
  const focused = document.activeElement === $('[data-slot="assignee"]', row);
  return Boolean(picker) && focused && !picker.picked;
}

function renderRow(row, task) {
  row.dataset.id = task.id;
  row.dataset.status = task.status;
  row.dataset.version = String(task.version);
  row.dataset.archived = String(Boolean(task.archived_at));
  $(".task-title", row).textContent = task.title;
  const description = $(".task-description", row);
  description.textContent = task.description;
  description.hidden = !task.description;
  const manage = canManage(task);
  const change = canChange(task);
  $(".task-meta", row).textContent = metaText(task, !change);
  const priority = $(".priority-badge", row);
  priority.textContent = PRIORITY_LABELS[task.priority] || task.priority;
  priority.dataset.priority = task.priority;
  const overdue = task.due_at && task.status !== "done" && new Date(task.due_at) < new Date();
  $(".overdue-badge", row).hidden = !overdue;

  // Every row has a "Status", "Priority", ... control: name the task for screen readers.
  for (const hidden of row.querySelectorAll(".visually-hidden")) {
    const of = hidden.closest("label")
      ? " of"
      : hidden.closest('[data-action="clear-due"]')
        ? " due date of"
        : "";
    hidden.textContent = `${of} “${task.title}”`;
  }

  const archived = Boolean(task.archived_at);
  const edited = editing.has(task.id);
  // A viewer (or anyone else who may only read the task) gets no controls at all.
  $(".task-controls", row).hidden = !change;
  row.dataset.readonly = String(!change);
  const status = $('[data-field="status"]', row);
  status.value = task.status;
  status.disabled = archived || !change;
  const prioritySelect = $('[data-field="priority"]', row);
  prioritySelect.value = task.priority;
  prioritySelect.disabled = !manage || archived;
  const due = $('[data-field="due_at"]', row);
  if (!dueEdits.has(task.id)) due.value = toLocalInput(task.due_at);
  due.disabled = !manage || archived;
  $('[data-action="clear-due"]', row).hidden = !manage || archived || !task.due_at;
  const assignee = $('[data-slot="assignee"]', row);
  if (!choosingAssignee(row)) pickers.get(row)?.set(assigneeOf(task));
  assignee.disabled = !manage || archived;
  $('[data-action="unassign"]', row).hidden = !manage || archived || task.assignee === null;

  $(".task-view", row).hidden = edited;
  $(".task-editor", row).hidden = !edited;
  $('[data-action="edit"]', row).hidden = edited || archived || !change;
  $('[data-action="archive"]', row).hidden = !manage || archived;
  $('[data-action="restore"]', row).hidden = !manage || !archived;
  renderThreadOf(task);
}

function newRow(task) {
  const row = view.rowTemplate.content.firstElementChild.cloneNode(true);
  for (const element of row.querySelectorAll("[data-slot]")) {
    element.id = `${element.dataset.slot}-${task.id}`;
  }
  for (const error of row.querySelectorAll("[data-error-for]")) {
    error.id = `${error.dataset.errorFor}-${task.id}-error`;
  }
  for (const label of row.querySelectorAll("label[data-for]")) {
    label.htmlFor = `${label.dataset.for}-${task.id}`;
  }
  $(".row-message", row).id = `message-${task.id}`;
  const picker = attachPicker($('[data-slot="assignee"]', row), {
    // A project task is assigned to one of the project's owners and members.
    source: (query) => findAssignees((state.tasks.get(task.id) ?? task).project, query),
    onPick: (user) => assignTask(task.id, user),
    // Left without picking anyone: show the assignee again.
    onLeave: () => {
      const shown = state.tasks.get(task.id);
      if (shown) picker.set(assigneeOf(shown));
    },
  });
  pickers.set(row, picker);
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
 * loaded row while more pages wait is left out ("Load more" will bring it), unless it is
 * the task of the page's link. */
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
  if (!before && state.next && task.id !== state.pinnedId) {
    row.remove();
    state.tasks.delete(task.id);
    return false;
  }
  view.list.insertBefore(row, before);
  return true;
}

/** Show `task` as it is now: update its row, add it, or take it away when it no longer
 * belongs in the list. A version older than the one shown is ignored. */
export function showTask(task, { flash = false } = {}) {
  learnTaskNames(task);
  const shown = state.tasks.get(task.id);
  if (shown && shown.version > task.version) return;
  const row = rowOf(task.id);
  if (!belongsHere(task)) {
    removeTask(task.id);
    return;
  }
  state.tasks.set(task.id, task);
  if (row) {
    if (changedUnderEditor(row, task)) {
      rowMessage(
        row,
        "Someone else changed this task's title or description while you were editing it. " +
          "Saving will not overwrite their change.",
        "warning",
      );
    }
    renderRow(row, task);
    if (flash) highlight(row);
  } else {
    const fresh = newRow(task);
    if (placeRow(fresh, task) && flash) highlight(fresh);
  }
  updateEmptyMessage();
}

/** Whether someone else changed the title or description of the task being edited in
 * `row` (a change to what the editor holds is this edit's own, echoed back). */
function changedUnderEditor(row, task) {
  const base = editing.get(task.id);
  if (!base) return false;
  const fields = $(".task-editor", row).elements;
  return ["title", "description"].some(
    (name) => task[name] !== base[name] && task[name] !== fields[name].value,
  );
}

function removeTask(id) {
  state.tasks.delete(id);
  rowOf(id)?.remove();
  dueEdits.delete(id);
  editing.delete(id);
  updateEmptyMessage();
}

function updateEmptyMessage() {
  if (state.loading && !view.list.childElementCount) return;
  let text = "";
  if (!view.list.childElementCount) {
    const chosen = chosenProject();
    if (archivedView()) {
      text = view.statusFilter.value ? "No archived tasks with this status." : "No archived tasks.";
    } else if (view.statusFilter.value) {
      text = "No tasks with this status.";
    } else if (chosen === ALL) {
      text = "No tasks yet. Create one, or ask a teammate to assign you one.";
    } else if (chosen === PERSONAL) {
      text = "No personal tasks yet. Tasks you create outside a project are listed here.";
    } else {
      text = canEditIn(chosen)
        ? "No tasks in this project yet. Create the first one."
        : "No tasks in this project yet.";
    }
  }
  view.message.textContent = text;
}

// --- Loading ------------------------------------------------------------------------------

function listPath() {
  const params = new URLSearchParams();
  if (view.statusFilter.value) params.set("status", view.statusFilter.value);
  if (archivedView()) params.set("archived", "true");
  if (chosenProject() !== ALL) params.set("project", chosenProject());
  const query = params.toString();
  return `tasks/${query ? `?${query}` : ""}`;
}

function showFilters() {
  const chosen = chosenProject();
  let name = "Your tasks";
  if (chosen === PERSONAL) name = "Personal tasks";
  else if (chosen !== ALL) name = projectById(chosen)?.name ?? "Project tasks";
  if (archivedView()) name = chosen === ALL ? "Archived tasks" : `${name}: archived`;
  view.heading.textContent = name;
}

/** Load the first page of the list (or, with `more`, the next one). Live events that
 * arrive meanwhile wait and are applied on top. */
export async function loadTasks({ more = false } = {}) {
  const ticket = ++state.listRequest;
  state.loading = true;
  showFilters();
  if (!more) view.message.textContent = "Loading tasks…";
  view.loadMore.disabled = true;
  try {
    const { data } = await request(more ? state.next : listPath());
    if (ticket !== state.listRequest) return;
    if (!more) {
      state.tasks.clear();
      editing.clear();
      forgetThreads();
      view.list.replaceChildren();
    }
    for (const task of data.results) {
      if (!state.tasks.has(task.id) && belongsHere(task)) {
        learnTaskNames(task);
        state.tasks.set(task.id, task);
        view.list.append(newRow(task));
      }
    }
    state.next = data.next ? samePath(data.next) : null;
    state.listShown = true;
  } catch (error) {
    if (ticket !== state.listRequest) return;
    if (error instanceof SessionEnded) throw error;
    view.message.textContent = `Could not load tasks. ${problemText(error)}`;
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
  if (!more && state.link) revealLink();
}

/** Roles or projects changed: render every row again for what I may now do, and take
 * off the rows that no longer belong (a project I left). */
export function refreshRows() {
  if (!state.me) return;
  showFilters();
  for (const task of [...state.tasks.values()]) {
    const row = rowOf(task.id);
    if (!belongsHere(task)) removeTask(task.id);
    else if (row) renderRow(row, task);
  }
  updateEmptyMessage();
}

/** Whether the list is yet to be shown (nor on its way) since sign-in. */
export function listPending() {
  return !state.listShown && !state.loading;
}

// --- Changing tasks -----------------------------------------------------------------------

const STALE_MESSAGE =
  "Someone else changed this task meanwhile, so your change was not saved. " +
  "It now shows their version; make your change again if it is still needed.";

/**
 * PATCH `changes` with If-Match of `version` (by default the version shown). Resolves to
 * "saved", "stale" (412: the row now shows the current task and says so), "gone" or
 * "failed" (the problem is shown on `form`, or under the row).
 */
function saveChanges(id, changes, { version = null, form = null } = {}) {
  const previous = saving.get(id) || Promise.resolve();
  const next = previous.then(async () => {
    const shown = state.tasks.get(id);
    const row = rowOf(id);
    if (!shown || !row) return "gone";
    row.setAttribute("aria-busy", "true");
    try {
      const { data } = await request(taskPath(id), {
        method: "PATCH",
        body: changes,
        headers: { "If-Match": `"${version ?? shown.version}"` },
      });
      rowMessage(row, "");
      showTask(data);
      return "saved";
    } catch (error) {
      if (error instanceof SessionEnded) throw error;
      if (isStale(error)) {
        editing.delete(id);
        showTask(error.problem.current, { flash: true });
        const currentRow = rowOf(id);
        if (currentRow) {
          renderRow(currentRow, state.tasks.get(id));
          rowMessage(currentRow, STALE_MESSAGE, "warning");
        }
        notify(`“${error.problem.current.title}” was changed by someone else; not saved.`);
        return "stale";
      }
      if (error instanceof ApiError && error.status === 404) {
        removeTask(id);
        notify("That task is gone or no longer visible to you.");
        return "gone";
      }
      if (form) {
        showProblem(form, error);
      } else {
        renderRow(row, state.tasks.get(id) || shown); // put the controls back
        rowMessage(row, `Not saved. ${problemText(error)}`);
      }
      return "failed";
    } finally {
      rowOf(id)?.removeAttribute("aria-busy");
    }
  });
  const settled = next.catch((error) => {
    handleFailure(error);
    return "failed";
  });
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
  if (shown && !same) saveChanges(id, { due_at: value });
}

async function clearDue(row) {
  const id = row.dataset.id;
  clearTimeout(dueEdits.get(id));
  dueEdits.delete(id);
  const input = $('[data-field="due_at"]', row);
  input.value = "";
  input.focus(); // the Clear button hides with the due date
  await saveChanges(id, { due_at: null });
}

function assignTask(id, user) {
  learnNames(user);
  const shown = state.tasks.get(id);
  if (shown && shown.assignee !== user.id) saveChanges(id, { assignee: user.id });
}

async function unassign(row) {
  $('[data-slot="assignee"]', row).focus(); // the Unassign button hides once saved
  await saveChanges(row.dataset.id, { assignee: null });
}

// --- Title and description, edited in place -----------------------------------------------

function openEditor(row) {
  const task = state.tasks.get(row.dataset.id);
  if (!task) return;
  const form = $(".task-editor", row);
  editing.set(task.id, { version: task.version, title: task.title, description: task.description });
  clearProblems(form);
  form.elements.title.value = task.title;
  form.elements.description.value = task.description;
  // The assignee may change the description, not the title.
  form.elements.title.disabled = !canManage(task);
  rowMessage(row, "");
  renderRow(row, task);
  (canManage(task) ? form.elements.title : form.elements.description).focus();
}

function closeEditor(row) {
  editing.delete(row.dataset.id);
  const task = state.tasks.get(row.dataset.id);
  if (task) renderRow(row, task);
  $('[data-action="edit"]', row).focus();
}

async function saveEditor(row) {
  const id = row.dataset.id;
  const form = $(".task-editor", row);
  const base = editing.get(id);
  const shown = state.tasks.get(id);
  if (!base || !shown) return;
  clearProblems(form);
  const changes = {};
  if (!form.elements.title.disabled && form.elements.title.value !== base.title) {
    changes.title = form.elements.title.value;
  }
  if (form.elements.description.value !== base.description) {
    changes.description = form.elements.description.value;
  }
  if (!Object.keys(changes).length) {
    closeEditor(row);
    return;
  }
  // Changes to other fields since the edit began do not conflict with this one; a change
  // to the title or description does: then If-Match names the version the edit began from.
  const untouched = shown.title === base.title && shown.description === base.description;
  const version = untouched ? shown.version : base.version;
  form.setAttribute("aria-busy", "true");
  const outcome = await saveChanges(id, changes, { version, form });
  form.removeAttribute("aria-busy");
  const current = rowOf(id);
  if (outcome === "saved" && current) closeEditor(current);
  else if (outcome === "stale" && current) $('[data-action="edit"]', current).focus();
}

// --- Archive and restore ------------------------------------------------------------------

async function archiveTask(id) {
  const shown = state.tasks.get(id);
  const row = rowOf(id);
  if (!shown || !row) return;
  try {
    const { data } = await request(taskPath(id, "archive/"), {
      method: "POST",
      headers: { "If-Match": `"${shown.version}"` },
    });
    const next = row.nextElementSibling || row.previousElementSibling;
    showTask(data);
    (next ? $("select", next) : view.statusFilter).focus();
    notify(`Archived “${data.title}”.`, { label: "Undo", run: () => restoreTask(data.id) });
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    if (isStale(error)) {
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
  const shown = state.tasks.get(id);
  const row = rowOf(id);
  try {
    const { data } = await request(taskPath(id, "restore/"), {
      method: "POST",
      // Undo of an archive restores a task no longer on the list: no version to name.
      headers: shown ? { "If-Match": `"${shown.version}"` } : {},
    });
    const next = row && (row.nextElementSibling || row.previousElementSibling);
    showTask(data, { flash: true });
    // Restored from the archived list: the row went, so the focus goes to its neighbour.
    if (row && !row.isConnected) {
      (next ? $('[data-action="history"]', next) : view.archiveFilter).focus();
    }
    notify(`Restored “${data.title}”.`);
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    if (isStale(error) && rowOf(id)) {
      showTask(error.problem.current, { flash: true });
      rowMessage(
        rowOf(id),
        "Someone else changed this task meanwhile; check it and restore again if you still want to.",
        "warning",
      );
    } else {
      notify(`Could not restore the task. ${problemText(error)}`);
    }
  }
}

// --- The task of a link (/?task=<id>, as in the emails) -----------------------------------

/** The task id of the page's link, if any. */
export function linkedTaskId() {
  return new URLSearchParams(location.search).get("task");
}

function forgetLink() {
  const url = new URL(location.href);
  url.searchParams.delete("task");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

/** Fetch the linked task and set the list's filters so that it is on it; the list shows
 * and highlights it once loaded. A task the person may not see is said so plainly. */
export async function openLink(id) {
  try {
    const { data } = await request(taskPath(id));
    learnTaskNames(data);
    view.statusFilter.value = "";
    view.archiveFilter.value = data.archived_at ? "true" : "false";
    // The view that holds it: its project's (when I am in it), the personal tasks, or all.
    if (!inChosenView(data)) {
      const home = data.project ? data.project : PERSONAL;
      chooseProject(data.project && !projectById(data.project) ? ALL : home, { quiet: true });
    }
    showFilters();
    state.link = data;
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    forgetLink();
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      notify(
        `The task in your link is not visible to you (signed in as ${state.me.username}): ` +
          "it was deleted, or it is not shared with you.",
      );
    } else {
      notify(`Could not open the task in your link. ${problemText(error)}`);
    }
  }
}

function revealLink() {
  const task = state.link;
  state.link = null;
  forgetLink();
  state.pinnedId = task.id;
  if (!state.tasks.has(task.id)) showTask(task);
  const row = rowOf(task.id);
  if (!row) return;
  for (const other of view.list.querySelectorAll(".linked")) {
    other.classList.remove("linked");
    other.removeAttribute("aria-current");
  }
  row.classList.add("linked");
  row.setAttribute("aria-current", "true");
  row.scrollIntoView({ block: "center" });
  row.focus({ preventScroll: true });
}

// --- Live events --------------------------------------------------------------------------

/** Apply one event of the stream to the list. */
function applyEvent(event) {
  learnNames(event.actor);
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

/** A live event: onto the open history, and onto the list (after a load under way). */
export function liveEvent(event) {
  historyEvent(event);
  if (state.loading) state.pendingEvents.push(event);
  else applyEvent(event);
}

// --- Session ------------------------------------------------------------------------------

/** Start the list for `me`: empty, saying it is loading. */
export function startList(me) {
  state.me = me;
  state.tasks.clear();
  view.list.replaceChildren();
  view.message.textContent = "Loading tasks…";
}

export function endList() {
  state.me = null;
  state.tasks.clear();
  state.next = null;
  state.listShown = false;
  state.pendingEvents = [];
  state.listRequest += 1;
  state.loading = false;
  state.link = null;
  state.pinnedId = null;
  editing.clear();
  view.list.replaceChildren();
  view.statusFilter.value = "";
  view.archiveFilter.value = "false";
  closeHistory();
}

// --- Wiring -------------------------------------------------------------------------------

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
  saveChanges(id, { [field]: control.value });
});

view.list.addEventListener("focusout", (event) => {
  const control = event.target.closest('[data-field="due_at"]');
  const row = event.target.closest("li.task");
  if (control && row) commitDue(row.dataset.id, control);
});

view.list.addEventListener("keydown", (event) => {
  const row = event.target.closest("li.task");
  if (!row) return;
  const due = event.target.closest('[data-field="due_at"]');
  if (event.key === "Enter" && due) {
    dueEdits.set(row.dataset.id, dueEdits.get(row.dataset.id) ?? 0);
    commitDue(row.dataset.id, due);
  } else if (event.key === "Escape" && event.target.closest(".task-editor")) {
    closeEditor(row);
  }
});

view.list.addEventListener("submit", (event) => {
  const row = event.target.closest("li.task");
  if (!row || !event.target.matches(".task-editor")) return;
  event.preventDefault();
  saveEditor(row);
});

const ACTIONS = {
  edit: (row) => openEditor(row),
  "cancel-edit": (row) => closeEditor(row),
  history: (row, button) => {
    const task = state.tasks.get(row.dataset.id);
    if (task) openHistory(task, state.me, button);
  },
  comments: (row) => {
    const task = state.tasks.get(row.dataset.id);
    if (task) return toggleThread(task, state.me);
  },
  archive: (row) => archiveTask(row.dataset.id),
  restore: (row) => restoreTask(row.dataset.id),
  "clear-due": (row) => clearDue(row),
  unassign: (row) => unassign(row),
};

view.list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  const row = event.target.closest("li.task");
  if (!button || !row) return;
  Promise.resolve(ACTIONS[button.dataset.action]?.(row, button)).catch(handleFailure);
});

view.list.addEventListener("animationend", (event) => {
  if (event.target.matches?.("li.task")) event.target.classList.remove("changed");
});

for (const filter of [view.statusFilter, view.archiveFilter]) {
  filter.addEventListener("change", () => {
    state.pinnedId = null;
    loadTasks().catch(handleFailure);
  });
}

view.loadMore.addEventListener("click", () => {
  if (state.next) loadTasks({ more: true }).catch(handleFailure);
});
