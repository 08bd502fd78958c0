// The REST API client: tokens, their refresh, and calls that turn error answers into
// ApiError (carrying the RFC 9457 problem document).

export const API = "/api/v1";
const TOKENS_KEY = "taskhub.tokens";
// Refresh the access token this long before it expires, so requests rarely meet a 401.
const REFRESH_AHEAD_MS = 60_000;
// A token this close to expiry is not worth sending.
const EXPIRY_SLACK_MS = 10_000;

// --- Errors -------------------------------------------------------------------------------

/** An error answer from the API, carrying its RFC 9457 problem document. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The session is over (no tokens, or the refresh token was refused). */
export class SessionEnded extends Error {}

export function problemOf(error) {
  if (error instanceof ApiError) return error.problem;
  return { title: "Something went wrong", detail: String(error.message || error) };
}

export function problemText(error) {
  const problem = problemOf(error);
  return [problem.title, problem.detail].filter(Boolean).join(": ");
}

/** Whether `error` is a 412 that carries the task as it is now. */
export function isStale(error) {
  return error instanceof ApiError && error.status === 412 && Boolean(error.problem.current);
}

// --- Tokens -------------------------------------------------------------------------------

// Told about a failure of the background refresh (the app ends the session on it).
let onBackgroundFailure = (error) => console.error(error);

export function onRefreshFailure(handler) {
  onBackgroundFailure = handler;
}

export const tokens = {
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
export function refreshTokens() {
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
export async function accessToken() {
  const pair = tokens.get();
  if (!pair) throw new SessionEnded();
  if (expiresAt(pair.access) - Date.now() < EXPIRY_SLACK_MS) return refreshTokens();
  return pair.access;
}

export function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const pair = tokens.get();
  if (!pair) return;
  const wait = Math.max(5_000, expiresAt(pair.access) - Date.now() - REFRESH_AHEAD_MS);
  refreshTimer = setTimeout(() => refreshTokens().catch(onBackgroundFailure), wait);
}

// --- HTTP ---------------------------------------------------------------------------------

function networkError() {
  return new ApiError(0, {
    title: "Network error",
    detail: "The server could not be reached. Check your connection and try again.",
  });
}

export async function readProblem(response) {
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
export async function request(path, { method = "GET", body, headers = {}, auth = true } = {}) {
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

/** The API path of one task, or of one of its actions (`archive/`, `history/`, ...). */
export function taskPath(id, action = "") {
  return `${API}/tasks/${encodeURIComponent(id)}/${action}`;
}

/** A full URL from the API (pagination links) as a same-origin path. */
export function samePath(link) {
  const url = new URL(link, location.href);
  return url.pathname + url.search;
}

export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
