// The person picker: a text input that finds people by the start of their username or
// email (GET /api/v1/users/?search=) and lets one be picked from a list. An ARIA 1.2
// combobox: arrow keys move through the list, Enter picks, Escape closes.

import { SessionEnded, problemText, request } from "./api.js";
import { learnNames } from "./format.js";
import { handleFailure } from "./ui.js";

// The API searches from 2 characters on.
export const MIN_QUERY = 2;
const SEARCH_DELAY_MS = 150;

let pickers = 0;

/** Everyone whose username or email starts with `query` (the API's search). */
export async function searchUsers(query) {
  const { data } = await request(`users/?search=${encodeURIComponent(query)}`);
  return data.results;
}

/**
 * Make `input` (inside an element of class `picker`) a person picker. `onPick(user)` is
 * called with `{id, username}` when a person is picked; `onLeave()` when focus leaves the
 * input without a pick since the last typing. `source(query)` finds the people to offer
 * (everyone, by default; a project task's picker offers its owners and members); it may
 * be replaced later through the returned `source`. Returns `{ picked, set(user), isOpen,
 * source }`.
 */
export function attachPicker(
  input,
  { onPick = () => {}, onLeave = () => {}, source = searchUsers } = {},
) {
  const base = input.id || `picker-${++pickers}`;
  const popup = document.createElement("div");
  popup.className = "picker-popup";
  popup.hidden = true;
  const list = document.createElement("ul");
  list.id = `${base}-options`;
  list.className = "picker-options";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "People");
  const status = document.createElement("p");
  status.className = "picker-status";
  status.setAttribute("role", "status");
  popup.append(list, status);
  input.after(popup);

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", list.id);
  input.autocomplete = "off";
  input.spellcheck = false;

  let users = []; // the people listed now
  let active = -1; // the option the arrow keys are on
  let searchTimer = null;
  let searches = 0; // bumped per search; a late answer to an older one is dropped
  const picker = {
    picked: null, // {id, username}, picked since the last typing
    /** Show `user` (or nobody) as picked, without calling onPick. */
    set(user) {
      picker.picked = user;
      input.value = user ? user.username : "";
      close();
    },
    isOpen: () => !popup.hidden,
    source,
  };

  function open() {
    popup.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function close() {
    clearTimeout(searchTimer);
    searches += 1;
    popup.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    list.replaceChildren();
    users = [];
    active = -1;
  }

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  function render() {
    list.replaceChildren(
      ...users.map((user, index) => {
        const option = document.createElement("li");
        option.id = `${base}-option-${index}`;
        option.className = "picker-option";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(index === active));
        option.dataset.index = String(index);
        option.textContent = user.username;
        return option;
      }),
    );
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", `${base}-option-${active}`);
      list.children[active].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  async function search() {
    const query = input.value.trim();
    if (query.length < MIN_QUERY) {
      close();
      if (query) {
        open();
        say(`Type at least ${MIN_QUERY} letters of a username or email.`);
      }
      return;
    }
    const ticket = ++searches;
    open();
    say("Searching…");
    try {
      const found = await picker.source(query);
      if (ticket !== searches) return;
      users = found;
      learnNames(...users);
      active = users.length ? 0 : -1;
      render();
      say(users.length ? "" : `No one found for “${query}”.`);
    } catch (error) {
      if (ticket !== searches) return;
      if (error instanceof SessionEnded) return handleFailure(error);
      users = [];
      render();
      say(`Could not search. ${problemText(error)}`);
    }
  }

  function pick(user) {
    picker.set(user);
    onPick(user);
  }

  input.addEventListener("input", () => {
    picker.picked = null;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, SEARCH_DELAY_MS);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!users.length) {
        if (popup.hidden) search();
        return;
      }
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + users.length) % users.length;
      render();
    } else if (event.key === "Enter" && !popup.hidden) {
      // Enter picks from the open list instead of submitting the form.
      event.preventDefault();
      if (active >= 0) pick(users[active]);
    } else if (event.key === "Escape" && !popup.hidden) {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });

  input.addEventListener("blur", () => {
    close();
    if (!picker.picked) onLeave();
  });

  // Pressing an option must not take the focus from the input (that would close the list).
  list.addEventListener("mousedown", (event) => event.preventDefault());
  list.addEventListener("click", (event) => {
    const option = event.target.closest('[role="option"]');
    if (option) pick(users[Number(option.dataset.index)]);
  });

  return picker;
}
