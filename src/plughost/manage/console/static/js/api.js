// The management API from the browser. The key lives in session storage (never in a URL) and goes
// with every request as `Authorization: Bearer <key>`; failures become ApiError with the
// server's `{error: {code, message, detail}}`.

const KEY = "plughost.key";

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

/** Told when the server refuses the key (the app shows the sign-in page). */
export const auth = new EventTarget();

export function authHeaders() {
  return { Authorization: `Bearer ${session.key ?? ""}` };
}

export async function api(method, path, body) {
  const headers = authHeaders();
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "unreachable", `the host does not answer (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const code = typeof error === "string" ? error : error.code || `http_${response.status}`;
    const message = (typeof error === "object" && error.message) || data?.message || response.statusText;
    if (response.status === 401) auth.dispatchEvent(new CustomEvent("unauthorized", { detail: message }));
    throw new ApiError(response.status, code, message, error.detail ?? data);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);

/** `path?k=v&…` with empty values left out. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}
