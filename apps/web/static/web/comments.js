// A task's comment thread, opened under its row: the comments oldest first ("Show more
// comments" brings the next page), a box to add one, editing and deleting one's own (and
// anyone's, for the project's owners and admins), and the live comment.* events.

import { SessionEnded, problemText, request, samePath, taskPath } from "./api.js";
import { formatTime, learnNames } from "./format.js";
import { canCommentIn, canModerateIn } from "./projects.js";
import { $, clearProblems, formBusy, handleFailure, showFieldError, showProblem } from "./ui.js";

const PAGE = 50;

const list = $("#task-list");

const state = {
  me: null,
  // task id -> {task, open, loaded, comments: Map id -> comment, next, count, unseen}
  threads: new Map(),
};

function rowOf(id) {
  return list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
}

function threadOf(task) {
  let thread = state.threads.get(task.id);
  if (!thread) {
    thread = {
      task,
      open: false,
      loaded: false,
      comments: new Map(),
      next: null,
      unseen: 0,
      editing: null, // the id of my comment being edited
    };
    state.threads.set(task.id, thread);
  }
  thread.task = task;
  return thread;
}

function commentsPath(taskId, commentId = null) {
  const base = taskPath(taskId, "comments/");
  return commentId === null ? base : `${base}${encodeURIComponent(commentId)}/`;
}

// --- Who may do what ----------------------------------------------------------------------

function isAdmin() {
  return state.me.role === "admin";
}

/** Whoever sees the task comments on it, except a viewer of its project. */
function mayComment(task) {
  return task.project ? canCommentIn(task.project) : true;
}

function mayDelete(task, comment) {
  if (comment.author.id === state.me.id || isAdmin()) return true;
  return Boolean(task.project) && canModerateIn(task.project);
}

// --- Rendering ----------------------------------------------------------------------------

function ordered(thread) {
  return [...thread.comments.values()].sort(
    (a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id.localeCompare(b.id),
  );
}

function button(text, action, label) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "link small";
  element.dataset.commentAction = action;
  element.textContent = text;
  element.setAttribute("aria-label", label);
  return element;
}

function commentItem(thread, comment, editing) {
  const item = document.createElement("li");
  item.className = "comment";
  item.dataset.commentId = comment.id;
  const head = document.createElement("div");
  head.className = "comment-head";
  const author = document.createElement("strong");
  author.className = "comment-author";
  author.textContent = comment.author.id === state.me.id ? "You" : comment.author.username;
  const time = document.createElement("time");
  time.dateTime = comment.created_at;
  time.textContent = formatTime(comment.created_at);
  head.append(author, time);
  if (comment.edited) {
    const edited = document.createElement("span");
    edited.className = "comment-edited";
    edited.textContent = "edited";
    edited.title = `Edited ${formatTime(comment.updated_at)}`;
    head.append(edited);
  }
  const own = comment.author.id === state.me.id;
  const actions = document.createElement("span");
  actions.className = "comment-actions";
  // A viewer (say, an author since made one) may delete their comments, not edit them.
  if (own && !editing && mayComment(thread.task)) {
    actions.append(button("Edit", "edit", "Edit your comment"));
  }
  if (mayDelete(thread.task, comment) && !editing) {
    const whose = own ? "your comment" : `${comment.author.username}'s comment`;
    actions.append(button("Delete", "delete", `Delete ${whose}`));
  }
  head.append(actions);
  item.append(head);
  if (editing) {
    item.append(editorFor(comment));
  } else {
    const body = document.createElement("p");
    body.className = "comment-body";
    body.textContent = comment.body;
    item.append(body);
  }
  const message = document.createElement("p");
  message.className = "comment-message";
  message.setAttribute("role", "alert");
  message.hidden = true;
  item.append(message);
  return item;
}

function editorFor(comment) {
  const form = document.createElement("form");
  form.className = "comment-editor";
  form.noValidate = true;
  const problem = document.createElement("div");
  problem.className = "problem";
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  const text = document.createElement("textarea");
  text.name = "body";
  text.rows = 3;
  text.maxLength = 10000;
  text.value = comment.body;
  text.setAttribute("aria-label", "Edit your comment");
  const actions = document.createElement("div");
  actions.className = "editor-actions";
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "primary";
  save.textContent = "Save comment";
  const cancel = button("Cancel", "cancel", "Cancel editing");
  cancel.className = "secondary";
  actions.append(save, cancel);
  form.append(problem, text, actions);
  return form;
}

/** Render the thread of the task's row: its comments (keeping an edit under way), the
 * "more" button, the box (or why there is none), and the count on the row's button. */
function renderThread(thread) {
  const row = rowOf(thread.task.id);
  if (!row) return;
  renderCount(row, thread);
  const section = $(".comments", row);
  section.hidden = !thread.open;
  $('[data-action="comments"]', row).setAttribute("aria-expanded", String(thread.open));
  if (!thread.open) return;
  const listElement = $(".comment-list", section);
  // An edit under way keeps what has been typed (and the focus) through a re-render.
  const editor = listElement.querySelector(".comment-editor");
  const draft = editor?.closest("li").dataset.commentId === thread.editing ? editor : null;
  const focused = draft?.contains(document.activeElement);
  if (!thread.comments.has(thread.editing)) thread.editing = null;
  listElement.replaceChildren(
    ...ordered(thread).map((comment) => commentItem(thread, comment, comment.id === thread.editing)),
  );
  const fresh = listElement.querySelector(".comment-editor");
  if (draft && fresh) {
    fresh.replaceWith(draft);
    if (focused) $("textarea", draft).focus();
  }
  $(".comments-more", section).hidden = !thread.next;
  if (thread.loaded) {
    $(".comments-message", section).textContent = thread.comments.size
      ? ""
      : "No comments yet.";
  }
  const may = mayComment(thread.task);
  $(".comment-form", section).hidden = !may;
  $(".comments-readonly", section).hidden = may;
}

function renderCount(row, thread) {
  const badge = $(".comment-count", row);
  let text = "";
  let fresh = false;
  if (!thread.open && thread.unseen) {
    text = `${thread.unseen} new`;
    fresh = true;
  } else if (thread.loaded) {
    text = `${thread.comments.size}${thread.next ? "+" : ""}`;
  }
  badge.textContent = text ? ` ${text}` : "";
  badge.hidden = !text;
  badge.classList.toggle("fresh", fresh);
}

/** The row was (re)rendered: show the thread's state on it (rights may have changed). */
export function renderThreadOf(task) {
  const thread = state.threads.get(task.id);
  if (thread) {
    thread.task = task;
    renderThread(thread);
  }
}

// --- Loading ------------------------------------------------------------------------------

async function loadPage(thread, path) {
  const row = rowOf(thread.task.id);
  if (!row) return;
  const more = $(".comments-more", row);
  more.disabled = true;
  try {
    const { data } = await request(path);
    for (const comment of data.results) {
      learnNames(comment.author);
      thread.comments.set(comment.id, comment);
    }
    thread.next = data.next ? samePath(data.next) : null;
    thread.loaded = true;
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    const current = rowOf(thread.task.id);
    if (current) {
      $(".comments-message", current).textContent =
        `Could not load the comments. ${problemText(error)}`;
    }
    return;
  } finally {
    more.disabled = false;
  }
  renderThread(thread);
}

/** Open or close the task's thread under its row. */
export async function toggleThread(task, me) {
  state.me = me;
  const thread = threadOf(task);
  thread.open = !thread.open;
  thread.unseen = 0;
  const row = rowOf(task.id);
  if (thread.open && !thread.loaded && row) {
    $(".comments-message", row).textContent = "Loading comments…";
  }
  renderThread(thread);
  if (!thread.open) return;
  if (!thread.loaded) await loadPage(thread, `${commentsPath(task.id)}?limit=${PAGE}`);
  const current = rowOf(task.id);
  const box = current && $(".comment-form textarea", current);
  if (box && !$(".comment-form", current).hidden) box.focus();
}

// --- Changing comments --------------------------------------------------------------------

function commentMessage(item, text) {
  const message = $(".comment-message", item);
  message.textContent = text;
  message.hidden = !text;
}

async function addComment(row, form) {
  const thread = state.threads.get(row.dataset.id);
  if (!thread) return;
  clearProblems(form);
  const body = form.elements.body.value;
  if (!body.trim()) {
    showFieldError(form, form.elements.body, "Write something first.");
    return;
  }
  formBusy(form, true);
  try {
    const { data } = await request(commentsPath(thread.task.id), {
      method: "POST",
      body: { body },
    });
    learnNames(data.author);
    thread.comments.set(data.id, data);
    form.reset();
    renderThread(thread);
    form.elements.body.focus();
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
}

async function saveEdit(row, item, form) {
  const thread = state.threads.get(row.dataset.id);
  const comment = thread?.comments.get(item.dataset.commentId);
  if (!comment) return;
  clearProblems(form);
  const body = form.elements.body.value;
  if (body === comment.body) {
    thread.editing = null;
    renderThread(thread);
    return;
  }
  formBusy(form, true);
  try {
    const { data } = await request(commentsPath(thread.task.id, comment.id), {
      method: "PATCH",
      body: { body },
    });
    thread.editing = null;
    thread.comments.set(data.id, data);
    renderThread(thread);
    rowOf(thread.task.id)
      ?.querySelector(`li[data-comment-id="${CSS.escape(data.id)}"] button`)
      ?.focus();
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
}

async function deleteComment(row, item) {
  const thread = state.threads.get(row.dataset.id);
  const comment = thread?.comments.get(item.dataset.commentId);
  if (!comment) return;
  item.setAttribute("aria-busy", "true");
  try {
    await request(commentsPath(thread.task.id, comment.id), { method: "DELETE" });
    thread.comments.delete(comment.id);
    renderThread(thread);
    $(".comment-form textarea", row)?.focus();
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    if (error.status === 404) {
      thread.comments.delete(comment.id); // deleted meanwhile
      renderThread(thread);
      return;
    }
    commentMessage(item, `Not deleted. ${problemText(error)}`);
  } finally {
    item.removeAttribute("aria-busy");
  }
}

function editComment(row, item) {
  const thread = state.threads.get(row.dataset.id);
  const comment = thread?.comments.get(item.dataset.commentId);
  if (!comment) return;
  thread.editing = comment.id;
  renderThread(thread);
  const text = row.querySelector(".comment-editor textarea");
  text.focus();
  text.setSelectionRange(text.value.length, text.value.length);
}

function cancelEdit(row, item) {
  const thread = state.threads.get(row.dataset.id);
  if (!thread) return;
  thread.editing = null;
  renderThread(thread);
  rowOf(row.dataset.id)
    ?.querySelector(`li[data-comment-id="${CSS.escape(item.dataset.commentId)}"] button`)
    ?.focus();
}

// --- Live events --------------------------------------------------------------------------

/** Apply a comment.* event: onto the open thread, and onto the count on the task's row. */
export function commentEvent(event, me) {
  state.me = me;
  learnNames(event.actor);
  const comment = event.comment;
  const taskId = comment?.task ?? event.task?.id;
  if (!comment || !taskId) return;
  const thread = state.threads.get(taskId);
  const row = rowOf(taskId);
  if (!row) return;
  switch (event.type) {
    case "comment.created":
    case "comment.updated": {
      learnNames(comment.author);
      if (!thread) {
        // A thread never opened: the row only counts what is new.
        if (event.type === "comment.created" && comment.author.id !== me.id) {
          const fresh = threadOf({ id: taskId, project: event.task?.project ?? null });
          fresh.unseen += 1;
          renderCount(row, fresh);
        }
        return;
      }
      const known = thread.comments.get(comment.id);
      if (known && Date.parse(known.updated_at) > Date.parse(comment.updated_at)) return;
      const isNew = !known;
      if (thread.loaded || thread.open) thread.comments.set(comment.id, comment);
      if (isNew && !thread.open && comment.author.id !== me.id) thread.unseen += 1;
      renderThread(thread);
      if (isNew && thread.open) {
        const item = row.querySelector(`li[data-comment-id="${CSS.escape(comment.id)}"]`);
        item?.classList.add("changed");
      }
      break;
    }
    case "comment.deleted":
      if (!thread) return;
      thread.comments.delete(comment.id);
      renderThread(thread);
      break;
    default:
      break;
  }
}

// --- Session ------------------------------------------------------------------------------

export function startComments(me) {
  state.me = me;
  state.threads.clear();
}

/** Forget every thread (the list was loaded afresh: its rows are new). */
export function forgetThreads() {
  state.threads.clear();
}

// --- Wiring -------------------------------------------------------------------------------

list.addEventListener("submit", (event) => {
  const row = event.target.closest("li.task");
  if (!row) return;
  if (event.target.matches(".comment-form")) {
    event.preventDefault();
    addComment(row, event.target);
  } else if (event.target.matches(".comment-editor")) {
    event.preventDefault();
    saveEdit(row, event.target.closest("li.comment"), event.target);
  }
});

list.addEventListener("click", (event) => {
  const control = event.target.closest("[data-comment-action]");
  const row = event.target.closest("li.task");
  if (row && event.target.closest(".comments-more")) {
    const thread = state.threads.get(row.dataset.id);
    if (thread?.next) loadPage(thread, thread.next);
    return;
  }
  if (!control || !row) return;
  const item = control.closest("li.comment");
  const run = { edit: editComment, delete: deleteComment, cancel: cancelEdit }[
    control.dataset.commentAction
  ];
  run?.(row, item);
});

list.addEventListener("keydown", (event) => {
  const row = event.target.closest("li.task");
  const editor = event.target.closest(".comment-editor");
  if (row && editor && event.key === "Escape") {
    event.stopPropagation();
    cancelEdit(row, editor.closest("li.comment"));
  }
  // Ctrl+Enter (or Cmd+Enter) sends the comment being written.
  const form = event.target.closest(".comment-form, .comment-editor");
  if (row && form && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
