// Projects: the switcher (all my tasks, personal ones, or one project's), creating a
// project, the chosen project's members (added, given a role and removed by its owners;
// anyone may leave), and the live project.* and member.* events that change them.

import { ApiError, SessionEnded, problemOf, problemText, request, samePath } from "./api.js";
import { learnNames } from "./format.js";
import { attachPicker, searchUsers } from "./picker.js";
import { $, clearProblems, formBusy, handleFailure, notify, showProblem } from "./ui.js";

// The views that are not one project: every task I can see, and my tasks in no project.
export const ALL = "all";
export const PERSONAL = "none";
export const ROLE_LABELS = { owner: "Owner", member: "Member", viewer: "Viewer" };
// Roles that create and change a project's tasks (a viewer only reads).
const EDITING_ROLES = new Set(["owner", "member"]);
const PAGE = 200;

const view = {
  switcher: $("#project-switcher"),
  newProject: $("#new-project"),
  projectForm: $("#project-form"),
  projectCancel: $("#project-cancel"),
  panel: $("#members-panel"),
  heading: $("#members-heading"),
  myRole: $("#members-role"),
  problem: $("#members-problem"),
  message: $("#members-message"),
  list: $("#member-list"),
  memberForm: $("#member-form"),
  leave: $("#leave-project"),
  leaveConfirm: $("#leave-confirm"),
  leaveText: $("#leave-text"),
  leaveYes: $("#leave-yes"),
  leaveNo: $("#leave-no"),
  actions: $("#project-actions"),
  rename: $("#rename-project"),
  archive: $("#archive-project"),
  restore: $("#restore-project"),
  renameForm: $("#rename-form"),
  renameCancel: $("#rename-cancel"),
};

const state = {
  me: null,
  projects: new Map(), // id -> project, `my_role` included
  chosen: ALL,
  members: new Map(), // project id -> {list: members or null, promise}
};

// What the rest of the page does when the choice or the rights change (set by `startProjects`).
let handlers = {
  chosen: () => {}, // another view was chosen: list its tasks
  access: () => {}, // roles or projects changed: what may be seen and done changed
};

// --- Reading the state --------------------------------------------------------------------

/** The view chosen: ALL, PERSONAL or a project's id. */
export function chosenProject() {
  return state.chosen;
}

export function projectById(id) {
  return state.projects.get(id) ?? null;
}

/** My role in the project ("owner", "member", "viewer"), or null outside it. */
export function roleIn(projectId) {
  return state.projects.get(projectId)?.my_role ?? null;
}

function isAdmin() {
  return state.me?.role === "admin";
}

/** Whether I may create and change the project's tasks: an owner or member (or an
 * admin) of a project that is not archived. */
export function canEditIn(projectId) {
  const project = state.projects.get(projectId);
  if (project?.archived_at) return false;
  return isAdmin() || EDITING_ROLES.has(project?.my_role);
}

/** Whether I may comment on the project's tasks: anyone who sees them but its viewers. */
export function canCommentIn(projectId) {
  return isAdmin() || roleIn(projectId) !== "viewer";
}

/** Whether I may delete anyone's comment on the project's tasks. */
export function canModerateIn(projectId) {
  return isAdmin() || roleIn(projectId) === "owner";
}

/** The project's name as the page shows it. */
export function projectName(projectId) {
  return state.projects.get(projectId)?.name ?? "a project";
}

// --- Members ------------------------------------------------------------------------------

async function fetchMembers(projectId) {
  const members = [];
  let path = `projects/${encodeURIComponent(projectId)}/members/?limit=${PAGE}`;
  while (path) {
    const { data } = await request(path);
    const page = Array.isArray(data) ? data : data.results;
    members.push(...page);
    path = !Array.isArray(data) && data.next ? samePath(data.next) : null;
  }
  for (const member of members) learnNames(member.user);
  return members;
}

/** The project's members (cached; kept current by member.* events). */
export function projectMembers(projectId) {
  let entry = state.members.get(projectId);
  if (!entry) {
    entry = { list: null, promise: null };
    entry.promise = fetchMembers(projectId).then(
      (list) => {
        entry.list = list;
        return list;
      },
      (error) => {
        if (state.members.get(projectId) === entry) state.members.delete(projectId);
        throw error;
      },
    );
    state.members.set(projectId, entry);
  }
  return entry.promise;
}

/** The people a task of the project may be assigned to: its owners and members whose
 * username (or, through the API's search, email) starts with `query`. Outside a project,
 * everyone the API finds. */
export async function findAssignees(projectId, query) {
  if (!projectId) return searchUsers(query);
  const [members, found] = await Promise.all([
    projectMembers(projectId),
    searchUsers(query).catch(() => []),
  ]);
  const start = query.toLowerCase();
  const byEmail = new Set(found.map((user) => user.id));
  return members
    .filter((member) => EDITING_ROLES.has(member.role))
    .map((member) => member.user)
    .filter((user) => user.username.toLowerCase().startsWith(start) || byEmail.has(user.id))
    .sort((a, b) => a.username.localeCompare(b.username));
}

/** Apply a member change to the cached list of its project. */
function changeCachedMember(projectId, member, removed) {
  const entry = state.members.get(projectId);
  if (!entry?.list) {
    state.members.delete(projectId); // not loaded yet: load afresh when needed
    return;
  }
  const others = entry.list.filter((each) => each.user.id !== member.user.id);
  entry.list = removed ? others : [...others, member];
  entry.promise = Promise.resolve(entry.list);
}

// --- Loading and choosing -----------------------------------------------------------------

async function fetchProjects(archived) {
  const projects = [];
  let path = `projects/?archived=${archived}&limit=${PAGE}`;
  while (path) {
    const { data } = await request(path);
    projects.push(...data.results);
    path = data.next ? samePath(data.next) : null;
  }
  return projects;
}

/** Load my projects (active and archived) and show them in the switcher. Without them
 * the page still lists tasks (as if I were in no project), and says so. */
export async function loadProjects() {
  try {
    await fetchAllProjects();
  } catch (error) {
    if (error instanceof SessionEnded) throw error;
    notify(`Could not load your projects. ${problemText(error)}`);
  }
}

async function fetchAllProjects() {
  const [active, archived] = await Promise.all([
    fetchProjects("false"),
    // Archived projects are listed apart; a server without the filter only loses those.
    fetchProjects("true").catch((error) => {
      if (error instanceof SessionEnded) throw error;
      return [];
    }),
  ]);
  state.projects = new Map([...active, ...archived].map((project) => [project.id, project]));
  state.members.clear();
  renderSwitcher();
  if (!isViewable(state.chosen)) leaveView("The project you were looking at is no longer yours.");
  renderPanel();
}

function isViewable(choice) {
  return choice === ALL || choice === PERSONAL || state.projects.has(choice);
}

function renderSwitcher() {
  const option = (value, text) => {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    return element;
  };
  const byName = [...state.projects.values()].sort((a, b) => a.name.localeCompare(b.name));
  const groups = [];
  const active = byName.filter((project) => !project.archived_at);
  const archived = byName.filter((project) => project.archived_at);
  for (const [label, projects, suffix] of [
    ["Projects", active, ""],
    ["Archived projects", archived, " (archived)"],
  ]) {
    if (!projects.length) continue;
    const group = document.createElement("optgroup");
    group.label = label;
    group.append(...projects.map((project) => option(project.id, `${project.name}${suffix}`)));
    groups.push(group);
  }
  view.switcher.replaceChildren(
    option(ALL, "All my tasks"),
    option(PERSONAL, "Personal (no project)"),
    ...groups,
  );
  view.switcher.value = state.chosen;
}

/** The project of the page's link (/?project=<id>), if any. */
export function linkedProject() {
  return new URLSearchParams(location.search).get("project");
}

function rememberChoice() {
  const url = new URL(location.href);
  if (state.chosen === ALL) url.searchParams.delete("project");
  else url.searchParams.set("project", state.chosen);
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

/** Choose a view (ALL, PERSONAL or a project's id) and keep it in the URL. With
 * `quiet`, the list is not reloaded (the caller loads it). */
export function chooseProject(choice, { quiet = false } = {}) {
  state.chosen = isViewable(choice) ? choice : ALL;
  view.switcher.value = state.chosen;
  rememberChoice();
  hideLeaveConfirm();
  renderPanel();
  if (!quiet) handlers.chosen(state.chosen);
}

/** Choose the project of the page's link, once my projects are loaded; one that is not
 * mine is said so plainly. */
export function chooseLinkedProject() {
  const linked = linkedProject();
  if (!linked) return;
  if (isViewable(linked)) {
    chooseProject(linked, { quiet: true });
    return;
  }
  chooseProject(ALL, { quiet: true });
  notify(
    `The project in your link is not visible to you (signed in as ${state.me.username}): ` +
      "it was deleted, or you are not one of its members.",
  );
}

/** Back to all my tasks, saying why. */
function leaveView(message) {
  chooseProject(ALL);
  notify(message);
}

// --- Creating a project -------------------------------------------------------------------

function showProjectForm(show) {
  view.projectForm.hidden = !show;
  view.newProject.setAttribute("aria-expanded", String(show));
  if (show) {
    clearProblems(view.projectForm);
    view.projectForm.elements.name.focus();
  } else {
    view.projectForm.reset();
    view.newProject.focus();
  }
}

async function createProject() {
  const form = view.projectForm;
  clearProblems(form);
  formBusy(form, true);
  try {
    const { data } = await request("projects/", {
      method: "POST",
      body: { name: form.elements.name.value.trim() },
    });
    state.projects.set(data.id, data);
    renderSwitcher();
    showProjectForm(false);
    chooseProject(data.id);
    notify(`Created the project “${data.name}”. Add people to it under Members.`);
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
}

// --- The members panel --------------------------------------------------------------------

function showPanelProblem(error) {
  const problem = problemOf(error);
  const title = document.createElement("strong");
  title.className = "problem-title";
  title.textContent = problem.title || "Error";
  const detail = document.createElement("p");
  detail.className = "problem-detail";
  detail.textContent = problem.detail || "";
  view.problem.replaceChildren(title, detail);
  view.problem.hidden = false;
}

function clearPanelProblem() {
  view.problem.hidden = true;
  view.problem.replaceChildren();
}

function memberItem(project, member) {
  const owner = project.my_role === "owner" || isAdmin();
  const mine = member.user.id === state.me.id;
  const item = document.createElement("li");
  item.className = "member";
  item.dataset.userId = String(member.user.id);
  const name = document.createElement("span");
  name.className = "member-name";
  name.textContent = mine ? `${member.user.username} (you)` : member.user.username;
  item.append(name);
  if (owner && !project.archived_at) {
    const role = document.createElement("select");
    role.className = "member-role";
    role.dataset.memberAction = "role";
    role.setAttribute("aria-label", `Role of ${member.user.username}`);
    for (const [value, label] of Object.entries(ROLE_LABELS)) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      role.append(option);
    }
    role.value = member.role;
    item.append(role);
    if (!mine) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link small";
      remove.dataset.memberAction = "remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${member.user.username}`);
      item.append(remove);
    }
  } else {
    const badge = document.createElement("span");
    badge.className = "badge role-badge";
    badge.dataset.role = member.role;
    badge.textContent = ROLE_LABELS[member.role] ?? member.role;
    item.append(badge);
  }
  return item;
}

function roleSentence(project) {
  const archived = project.archived_at ? " It is archived: its tasks only read." : "";
  switch (project.my_role) {
    case "owner":
      return `You are an owner: you add people, change their roles and remove them.${archived}`;
    case "member":
      return `You are a member: you create and change the project's tasks.${archived}`;
    case "viewer":
      return "You are a viewer: you can read the project's tasks and comments, not change them.";
    default:
      return `You see this project as an admin.${archived}`;
  }
}

function renderMembers(project, members) {
  const sorted = [...members].sort(
    (a, b) =>
      Object.keys(ROLE_LABELS).indexOf(a.role) - Object.keys(ROLE_LABELS).indexOf(b.role) ||
      a.user.username.localeCompare(b.user.username),
  );
  view.list.replaceChildren(...sorted.map((member) => memberItem(project, member)));
  view.message.textContent = `${members.length} ${members.length === 1 ? "member" : "members"}`;
}

/** Show the chosen project's members (or hide the panel outside a project). */
function renderPanel() {
  const project = state.projects.get(state.chosen);
  view.panel.hidden = !project;
  if (!project) return;
  view.heading.textContent = `Members of “${project.name}”`;
  view.myRole.textContent = roleSentence(project);
  const owner = project.my_role === "owner" || isAdmin();
  view.memberForm.hidden = !owner || Boolean(project.archived_at);
  view.actions.hidden = !owner;
  view.rename.hidden = Boolean(project.archived_at);
  view.archive.hidden = Boolean(project.archived_at);
  view.restore.hidden = !project.archived_at;
  if (!owner || project.archived_at) showRenameForm(false, { focus: false });
  view.leave.hidden = !project.my_role || !view.leaveConfirm.hidden;
  const entry = state.members.get(project.id);
  if (entry?.list) {
    renderMembers(project, entry.list);
    return;
  }
  view.list.replaceChildren();
  view.message.textContent = "Loading members…";
  projectMembers(project.id).then(
    (members) => {
      if (state.chosen === project.id) renderMembers(state.projects.get(project.id), members);
    },
    (error) => {
      if (error instanceof SessionEnded) return handleFailure(error);
      if (state.chosen === project.id) {
        view.message.textContent = `Could not load the members. ${problemText(error)}`;
      }
    },
  );
}

function memberPath(projectId, userId = null) {
  const base = `projects/${encodeURIComponent(projectId)}/members/`;
  return userId === null ? base : `${base}${encodeURIComponent(userId)}/`;
}

const memberPicker = attachPicker(view.memberForm.elements.user);

async function addMember() {
  const form = view.memberForm;
  const projectId = state.chosen;
  clearProblems(form);
  clearPanelProblem();
  const text = form.elements.user.value.trim();
  if (!text) {
    form.elements.user.focus();
    return;
  }
  const picked = memberPicker.picked;
  // A picked person by id; otherwise what was typed (a username or an email) as it is.
  const user = picked && picked.username === text ? picked.id : text;
  formBusy(form, true);
  try {
    const { data } = await request(memberPath(projectId), {
      method: "POST",
      body: { user, role: form.elements.role.value },
    });
    learnNames(data.user);
    memberAdded(projectId, data);
    form.elements.user.value = "";
    memberPicker.set(null);
    form.elements.role.value = "member";
    notify(`Added ${data.user.username} as ${ROLE_LABELS[data.role]?.toLowerCase() ?? data.role}.`);
    form.elements.user.focus();
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
}

function memberAdded(projectId, member) {
  changeCachedMember(projectId, member, false);
  const project = state.projects.get(projectId);
  if (project && member.user.id === state.me.id) project.my_role = member.role;
  if (state.chosen === projectId) renderPanel();
}

async function changeRole(select) {
  const projectId = state.chosen;
  const userId = Number(select.closest("li").dataset.userId);
  const entry = state.members.get(projectId);
  const before = entry?.list?.find((member) => member.user.id === userId);
  clearPanelProblem();
  select.disabled = true;
  try {
    const { data } = await request(memberPath(projectId, userId), {
      method: "PATCH",
      body: { role: select.value },
    });
    memberAdded(projectId, data);
    if (userId === state.me.id) handlers.access();
    notify(`${data.user.username} is now ${ROLE_LABELS[data.role]?.toLowerCase() ?? data.role}.`);
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    if (before) select.value = before.role; // the role did not change
    showPanelProblem(error);
    if (error instanceof ApiError && error.status === 404) await refreshMembers(projectId);
  } finally {
    select.disabled = false;
  }
}

async function removeMember(userId) {
  const projectId = state.chosen;
  const project = state.projects.get(projectId);
  const entry = state.members.get(projectId);
  const member = entry?.list?.find((each) => each.user.id === userId);
  clearPanelProblem();
  try {
    await request(memberPath(projectId, userId), { method: "DELETE" });
    if (userId === state.me.id) {
      dropProject(projectId, `You left “${project?.name ?? "the project"}”.`);
      return;
    }
    if (member) changeCachedMember(projectId, member, true);
    renderPanel();
    notify(`Removed ${member?.user.username ?? "them"} from “${project?.name}”.`);
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    showPanelProblem(error);
  }
}

async function refreshMembers(projectId) {
  state.members.delete(projectId);
  if (state.chosen === projectId) renderPanel();
}

function hideLeaveConfirm() {
  view.leaveConfirm.hidden = true;
}

/** Take a project I am no longer in off the page; leave its view, saying `message`. */
function dropProject(projectId, message) {
  state.projects.delete(projectId);
  state.members.delete(projectId);
  renderSwitcher();
  if (state.chosen === projectId) {
    chooseProject(ALL);
  } else {
    handlers.access();
  }
  notify(message);
}

// --- Renaming, archiving and restoring (owners) --------------------------------------------

function showRenameForm(show, { focus = true } = {}) {
  const form = view.renameForm;
  form.hidden = !show;
  view.rename.setAttribute("aria-expanded", String(show));
  if (show) {
    clearProblems(form);
    form.elements.name.value = state.projects.get(state.chosen)?.name ?? "";
    form.elements.name.select();
    if (focus) form.elements.name.focus();
  } else if (focus) {
    view.rename.focus();
  }
}

/** The project as the API now shows it: into the switcher, the panel and the rows. */
function projectChanged(project) {
  const known = state.projects.get(project.id);
  if (known && known.version > project.version) return;
  state.projects.set(project.id, { ...known, ...project });
  renderSwitcher();
  if (state.chosen === project.id) renderPanel();
  handlers.access();
}

async function renameProject() {
  const form = view.renameForm;
  const project = state.projects.get(state.chosen);
  if (!project) return;
  clearProblems(form);
  formBusy(form, true);
  try {
    const { data } = await request(`projects/${encodeURIComponent(project.id)}/`, {
      method: "PATCH",
      body: { name: form.elements.name.value.trim() },
      headers: { "If-Match": `"${project.version}"` },
    });
    showRenameForm(false);
    projectChanged(data);
    notify(`Renamed the project to “${data.name}”.`);
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    if (error instanceof ApiError && error.status === 412 && error.problem.current) {
      projectChanged(error.problem.current);
    }
    showProblem(form, error);
  } finally {
    formBusy(form, false);
  }
}

async function setArchived(archived) {
  const project = state.projects.get(state.chosen);
  if (!project) return;
  clearPanelProblem();
  const action = archived ? "archive" : "restore";
  try {
    const { data } = await request(`projects/${encodeURIComponent(project.id)}/${action}/`, {
      method: "POST",
    });
    projectChanged(data);
    (archived ? view.restore : view.archive).focus();
    notify(
      archived
        ? `Archived “${data.name}”: its tasks only read until it is restored.`
        : `Restored “${data.name}”.`,
    );
  } catch (error) {
    if (error instanceof SessionEnded) return handleFailure(error);
    showPanelProblem(error);
  }
}

// --- Live events --------------------------------------------------------------------------

/** Apply a project.* or member.* event. */
export function projectEvent(event) {
  learnNames(event.actor);
  const snapshot = event.project;
  if (!snapshot) return;
  const byMe = event.actor?.id === state.me?.id;
  const known = state.projects.get(snapshot.id);
  switch (event.type) {
    case "project.updated":
    case "project.archived":
    case "project.restored": {
      if (!known || known.version > snapshot.version) return;
      const renamed = known.name !== snapshot.name;
      const archivedChanged = Boolean(known.archived_at) !== Boolean(snapshot.archived_at);
      state.projects.set(snapshot.id, { ...known, ...snapshot });
      renderSwitcher();
      if (state.chosen === snapshot.id) renderPanel();
      if (renamed || archivedChanged) handlers.access();
      if (!byMe && archivedChanged) {
        const what = snapshot.archived_at ? "archived" : "restored";
        notify(`${event.actor?.username ?? "Someone"} ${what} the project “${snapshot.name}”.`);
      }
      break;
    }
    case "project.deleted":
      if (known) dropProject(snapshot.id, `The project “${known.name}” was deleted.`);
      break;
    case "member.added":
    case "member.updated":
      learnNames(event.member.user);
      if (event.member.user.id === state.me.id && !known) {
        // Added to a project: it appears, and so do its tasks.
        state.projects.set(snapshot.id, { ...snapshot, my_role: event.member.role });
        renderSwitcher();
        handlers.access({ reload: true });
        if (!byMe) {
          notify(
            `${event.actor?.username ?? "Someone"} added you to “${snapshot.name}” as ` +
              `${ROLE_LABELS[event.member.role]?.toLowerCase() ?? event.member.role}.`,
          );
        }
        break;
      }
      if (!known) return;
      memberAdded(snapshot.id, event.member);
      if (event.member.user.id === state.me.id) handlers.access();
      break;
    case "member.removed":
      if (!known) return;
      if (event.member.user.id === state.me.id) {
        const message = byMe
          ? `You left “${known.name}”.`
          : `${event.actor?.username ?? "Someone"} removed you from “${known.name}”.`;
        dropProject(snapshot.id, message);
        break;
      }
      changeCachedMember(snapshot.id, event.member, true);
      if (state.chosen === snapshot.id) renderPanel();
      break;
    default:
      break;
  }
}

// --- Session ------------------------------------------------------------------------------

export function startProjects(me, with_) {
  state.me = me;
  handlers = with_;
  state.chosen = ALL;
}

export function endProjects() {
  state.me = null;
  state.projects.clear();
  state.members.clear();
  state.chosen = ALL;
  view.panel.hidden = true;
  view.projectForm.hidden = true;
  hideLeaveConfirm();
  renderSwitcher();
}

// --- Wiring -------------------------------------------------------------------------------

view.switcher.addEventListener("change", () => chooseProject(view.switcher.value));

view.newProject.addEventListener("click", () => showProjectForm(view.projectForm.hidden));
view.projectCancel.addEventListener("click", () => showProjectForm(false));
view.projectForm.addEventListener("submit", (event) => {
  event.preventDefault();
  createProject();
});
view.projectForm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") showProjectForm(false);
});

view.memberForm.addEventListener("submit", (event) => {
  event.preventDefault();
  addMember();
});

view.list.addEventListener("change", (event) => {
  const select = event.target.closest('[data-member-action="role"]');
  if (select) changeRole(select);
});

view.list.addEventListener("click", (event) => {
  const button = event.target.closest('[data-member-action="remove"]');
  if (button) removeMember(Number(button.closest("li").dataset.userId));
});

view.rename.addEventListener("click", () => showRenameForm(view.renameForm.hidden));
view.renameCancel.addEventListener("click", () => showRenameForm(false));
view.renameForm.addEventListener("submit", (event) => {
  event.preventDefault();
  renameProject();
});
view.renameForm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") showRenameForm(false);
});
view.archive.addEventListener("click", () => setArchived(true));
view.restore.addEventListener("click", () => setArchived(false));

view.leave.addEventListener("click", () => {
  const project = state.projects.get(state.chosen);
  if (!project) return;
  clearPanelProblem();
  view.leaveText.textContent =
    `Leave “${project.name}”? You will no longer see its tasks unless they are ` +
    "yours or assigned to you.";
  view.leaveConfirm.hidden = false;
  view.leave.hidden = true;
  view.leaveNo.focus();
});

view.leaveNo.addEventListener("click", () => {
  hideLeaveConfirm();
  view.leave.hidden = false;
  view.leave.focus();
});

view.leaveYes.addEventListener("click", () => {
  hideLeaveConfirm();
  view.leave.hidden = false;
  removeMember(state.me.id);
});
