// Taskhub in the browser: sign in, list and change tasks over the REST API, and apply
// everyone's changes live from the event stream at /ws/tasks/.
//
// This module is the page's entry: the session (sign in, register, sign out), the
// new-task form and the routing of live events. The API client, the stream, the list, the
// projects (switcher and members), the comment threads, the person picker and the history
// dialog are modules of their own.

import {
  API,
  ApiError,
  SessionEnded,
  onRefreshFailure,
  problemText,
  randomKey,
  readProblem,
  accessToken,
  request,
  scheduleRefresh,
  tokens,
} from "./api.js";
import { commentEvent, startComments } from "./comments.js";
import { fromLocalInput } from "./format.js";
import { MIN_QUERY, attachPicker } from "./picker.js";
import {
  ALL,
  PERSONAL,
  canEditIn,
  chooseLinkedProject,
  chosenProject,
  endProjects,
  findAssignees,
  linkedProject,
  loadProjects,
  projectById,
  projectEvent,
  startProjects,
} from "./projects.js";
import { reconnectNow, startLive, stopLive } from "./stream.js";
import {
  endList,
  linkedTaskId,
  listPending,
  liveEvent,
  loadTasks,
  openLink,
  refreshRows,
  showTask,
  startList,
} from "./tasks.js";
import {
  $,
  clearNotice,
  clearProblems,
  formBusy,
  handleFailure,
  notify,
  onFailure,
  showFieldError,
  showProblem,
} from "./ui.js";

const view = {
  session: $("#session"),
  connection: $("#connection"),
  meName: $("#me-name"),
  logout: $("#logout"),
  auth: $("#auth-view"),
  authHeading: $("#auth-heading"),
  authMessage: $("#auth-message"),
  loginForm: $("#login-form"),
  registerForm: $("#register-form"),
  switchText: $("#switch-text"),
  switchAuth: $("#switch-auth"),
  app: $("#app-view"),
  createForm: $("#create-form"),
  createHeading: $("#new-task-heading"),
  createReadonly: $("#create-readonly"),
};

let me = null;

// --- Session ------------------------------------------------------------------------------

/** Anything that ends the session sends the user back to sign in; other failures are
 * reported. */
function failed(error) {
  if (error instanceof SessionEnded) {
    endSession("Your session has ended. Please sign in again.");
    return;
  }
  console.error(error);
  notify(problemText(error));
}

onFailure(failed);
onRefreshFailure(failed);

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

/** Send a live event to the part of the page it concerns. */
function applyLiveEvent(event) {
  const kind = event.type.split(".")[0];
  if (kind === "task") liveEvent(event);
  else if (kind === "comment") commentEvent(event, me);
  else projectEvent(event);
}

/** Load my projects, then the list: events after the stream's hello arrive live. */
async function loadAll() {
  await loadProjects();
  updateCreateForm();
  await loadTasks();
}

const streamHandlers = {
  state: setConnection,
  fresh: () => loadAll().catch(handleFailure),
  event: applyLiveEvent,
  // The stream is not there yet: show the list anyway, live updates follow on connect.
  closedBeforeHello: () => {
    if (listPending()) loadTasks().catch(handleFailure);
  },
  failure: handleFailure,
};

const projectHandlers = {
  chosen: () => {
    createKey = randomKey(); // the same form sent to another project is another request
    updateCreateForm();
    loadTasks().catch(handleFailure);
  },
  // Added to a project: in the view of all my tasks, its tasks join the list.
  access: ({ reload = false } = {}) => {
    updateCreateForm();
    if (reload && chosenProject() === ALL) loadTasks().catch(handleFailure);
    else refreshRows();
  },
};

async function enterApp() {
  const { data } = await request("auth/me/");
  me = data;
  view.meName.textContent = me.username;
  view.auth.hidden = true;
  view.session.hidden = false;
  view.app.hidden = false;
  startList(me);
  startComments(me);
  startProjects(me, projectHandlers);
  // A link to a project (/?project=<id>) or a task (the emails' /?task=<id>) is kept
  // through sign-in and opened now.
  await loadProjects();
  chooseLinkedProject();
  updateCreateForm();
  $("#create-title").focus();
  const linked = linkedTaskId();
  if (linked) await openLink(linked);
  updateCreateForm();
  startLive(streamHandlers);
}

function endSession(message = "") {
  stopLive();
  tokens.clear();
  endList();
  endProjects();
  me = null;
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
  view.authMessage.textContent = linkedTaskId()
    ? "Sign in to see the task you were sent a link to."
    : linkedProject()
      ? "Sign in to see the project you were sent a link to."
      : "";
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

// --- Signing in and registering -----------------------------------------------------------

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

view.logout.addEventListener("click", () => {
  logOut();
});

// --- The new-task form --------------------------------------------------------------------

let createKey = randomKey();

/** The project a new task goes into: the one chosen, or none. */
function newTaskProject() {
  const chosen = chosenProject();
  return chosen === ALL || chosen === PERSONAL ? null : chosen;
}

// In a project, the assignee is one of its owners and members.
const createAssignee = attachPicker(view.createForm.elements.assignee, {
  source: (query) => findAssignees(newTaskProject(), query),
});

/** The form says where the new task goes; a viewer of the chosen project gets no form. */
function updateCreateForm() {
  const project = newTaskProject();
  const may = !project || canEditIn(project);
  const name = project ? (projectById(project)?.name ?? "the project") : "";
  view.createHeading.textContent = project ? `New task in “${name}”` : "New personal task";
  view.createForm.hidden = !may;
  view.createReadonly.hidden = may;
  if (!may) {
    view.createReadonly.textContent = projectById(project)?.archived_at
      ? `“${name}” is archived: its tasks only read.`
      : `You are a viewer of “${name}”: you can read its tasks, not create or change them.`;
  }
}

/** The assignee's id for the new task: null for nobody, the picked person, or the one
 * person whose username was typed in full. Undefined when the text names no one. */
async function chosenAssignee() {
  const text = view.createForm.elements.assignee.value.trim();
  if (!text) return null;
  const picked = createAssignee.picked;
  if (picked && picked.username === text) return picked.id;
  if (text.length < MIN_QUERY) return undefined;
  const found = await findAssignees(newTaskProject(), text);
  const exact = found.filter((user) => user.username.toLowerCase() === text.toLowerCase());
  return exact.length === 1 ? exact[0].id : undefined;
}

view.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = view.createForm;
  clearProblems(form);
  const fields = form.elements;
  formBusy(form, true);
  try {
    const assignee = await chosenAssignee();
    if (assignee === undefined) {
      showFieldError(
        form,
        fields.assignee,
        "Pick a person from the list (type 2 or more letters of their username or email), " +
          "or leave this empty.",
      );
      return;
    }
    const body = {
      title: fields.title.value,
      description: fields.description.value,
      priority: fields.priority.value,
      due_at: fromLocalInput(fields.due_at.value),
      assignee,
    };
    const project = newTaskProject();
    if (project) body.project = project;
    // The same key for retries of this very form, so a double submit makes one task.
    const { data } = await request("tasks/", {
      method: "POST",
      body,
      headers: { "Idempotency-Key": createKey },
    });
    createKey = randomKey();
    form.reset();
    createAssignee.set(null);
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

// Back online or back to the tab: reconnect now rather than when the backoff says.
window.addEventListener("online", reconnectNow);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") reconnectNow();
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
