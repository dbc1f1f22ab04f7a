// The REST API client for the browser: the session cookie travels by itself; writes carry X-CSRF-Token.
// Errors are application/problem+json ({status, code, detail}) and surface as ApiError.

const BASE = "/api/v1";
let csrfToken = "";

export class ApiError extends Error {
  constructor(status, code, detail, errors, sentences) {
    super(detail || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = Array.isArray(errors) ? errors : []; // a problem's list of {field or where, message}
    this.sentences = sentences || null; // {en, ru} where the server gives both (outbound refusals)
  }
}

export function setCsrfToken(token) {
  csrfToken = token || "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json, application/problem+json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, "network_error", "");
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  let data = null;
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.code) || "http_error", (data && data.detail) || "",
      data && data.errors, data && data.sentences);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => api("PATCH", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);
