// Taskhub in the browser: sign in, list and change tasks over the REST API, and apply
// everyone's changes live from the event stream at /ws/tasks/.
//
// This module is the page's entry: the session (sign in, register, sign out) and the
// new-task form. The API client, the stream, the list, the person picker and the history
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
import { fromLocalInput } from "./format.js";
import { MIN_QUERY, attachPicker } from "./picker.js";
import { reconnectNow, startLive, stopLive } from "./stream.js";
import {
  endList,
  linkedTaskId,
  listPending,
  liveEvent,
  loadTasks,
  openLink,
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
};

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

const streamHandlers = {
  state: setConnection,
  fresh: () => loadTasks().catch(handleFailure),
  event: liveEvent,
  // The stream is not there yet: show the list anyway, live updates follow on connect.
  closedBeforeHello: () => {
    if (listPending()) loadTasks().catch(handleFailure);
  },
  failure: handleFailure,
};

async function enterApp() {
  const { data: me } = await request("auth/me/");
  view.meName.textContent = me.username;
  view.auth.hidden = true;
  view.session.hidden = false;
  view.app.hidden = false;
  startList(me);
  $("#create-title").focus();
  // A link to a task (the emails' /?task=<id>) is kept through sign-in and opened now.
  const linked = linkedTaskId();
  if (linked) await openLink(linked);
  startLive(streamHandlers);
}

function endSession(message = "") {
  stopLive();
  tokens.clear();
  endList();
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
const createAssignee = attachPicker(view.createForm.elements.assignee);

/** The assignee's id for the new task: null for nobody, the picked person, or the one
 * person whose username was typed in full. Undefined when the text names no one. */
async function chosenAssignee() {
  const text = view.createForm.elements.assignee.value.trim();
  if (!text) return null;
  const picked = createAssignee.picked;
  if (picked && picked.username === text) return picked.id;
  if (text.length < MIN_QUERY) return undefined;
  const { data } = await request(`users/?search=${encodeURIComponent(text)}`);
  const exact = data.results.filter((user) => user.username.toLowerCase() === text.toLowerCase());
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
