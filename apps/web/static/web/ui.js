// Shared pieces of the page: the notice bar, problems shown on forms, and the one place
// that failures go to.
//
// User data only ever reaches the page through textContent and form values, never as HTML.

import { ApiError, problemOf } from "./api.js";

export const $ = (selector, root = document) => root.querySelector(selector);

// --- Failures -----------------------------------------------------------------------------

let failureHandler = (error) => console.error(error);

/** Set what happens to a failure nobody else handled (the app: end the session or say so). */
export function onFailure(handler) {
  failureHandler = handler;
}

export function handleFailure(error) {
  failureHandler(error);
}

// --- The notice bar -----------------------------------------------------------------------

const notice = {
  box: $("#notice"),
  text: $("#notice-text"),
  action: $("#notice-action"),
  dismiss: $("#notice-dismiss"),
};
let noticeAction = null;

/** Say something in the notice bar, optionally with one action button. */
export function notify(text, action = null) {
  notice.text.textContent = text;
  noticeAction = action;
  notice.action.hidden = !action;
  if (action) notice.action.textContent = action.label;
  notice.box.hidden = false;
}

export function clearNotice() {
  notice.box.hidden = true;
  notice.text.textContent = "";
  noticeAction = null;
}

notice.dismiss.addEventListener("click", clearNotice);
notice.action.addEventListener("click", () => {
  const action = noticeAction;
  clearNotice();
  action?.run();
});

// --- Forms --------------------------------------------------------------------------------

export function formBusy(form, busy) {
  for (const button of form.querySelectorAll('button[type="submit"]')) button.disabled = busy;
  form.setAttribute("aria-busy", String(busy));
}

export function clearProblems(form) {
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

/** Show one message under one input of a form (a field error found by the page itself). */
export function showFieldError(form, input, text) {
  const problem = { title: "Check this field", detail: "", errors: { [input.name]: [text] } };
  showProblem(form, new ApiError(400, problem));
}

/** Show an API problem on a form: title and detail on top, each field's messages under
 * its input (messages for fields the form does not have stay in the top box). */
export function showProblem(form, error) {
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
