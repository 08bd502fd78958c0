// How values read on the page: labels, dates in the browser's time zone, people by name.

export const STATUS_LABELS = { todo: "To do", in_progress: "In progress", done: "Done" };
export const PRIORITY_LABELS = { low: "Low", medium: "Medium", high: "High", urgent: "Urgent" };

export const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});

export function formatTime(iso) {
  return dateTimeFormat.format(new Date(iso));
}

/** An RFC 3339 time as the value of a datetime-local input, in the browser's time zone. */
export function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** A datetime-local value (local time) as RFC 3339 UTC, or null when empty. */
export function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

// --- People -------------------------------------------------------------------------------

// Usernames by user id, from everything the API has named (task creators and assignees,
// event actors, search results): history's `changes` name the assignee by id only.
const names = new Map();

/** Remember the names in `{id, username}` objects (null and undefined are skipped). */
export function learnNames(...users) {
  for (const user of users) {
    if (user && Number.isInteger(user.id) && user.username) names.set(user.id, user.username);
  }
}

export function learnTaskNames(task) {
  learnNames(task.created_by, task.assignee_user);
}

/** A user id as the page names them: "you", their username, or (never seen) their id. */
export function personName(id, me) {
  if (id === null || id === undefined) return "nobody";
  if (me && id === me.id) return "you";
  return names.get(id) ?? `user ${id}`;
}
