// Calls to the Atelier /v1 API. Every failure becomes an ApiError whose message is the server's own
// text (the "message" of {"error": {"reason", "message"}}), so the page shows what the API says.
// With an API key typed into the page, every call sends it as "Authorization: Bearer KEY". The key lives
// in sessionStorage (this tab only, gone when it closes): never localStorage, a cookie or a URL, where it
// would outlive the session or leak into logs and history.

const KEY_ITEM = "atelier.apiKey";
export const KEY_HINT = "Enter a valid key in the “API key” field at the top of the page.";
let onUnauthorized = () => {};

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM) || "";
  } catch {
    return ""; // storage disabled: the page still works against an open server
  }
}

export function setApiKey(key) {
  try {
    if (key) {
      sessionStorage.setItem(KEY_ITEM, key);
    } else {
      sessionStorage.removeItem(KEY_ITEM);
    }
  } catch {
    // storage disabled: nothing to keep
  }
}

// fn(apiError) runs on every 401, so the page can point at the key field.
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

function withKey(headers) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : { ...headers };
}

export class ApiError extends Error {
  constructor(message, reason, status) {
    super(message);
    this.name = "ApiError";
    this.reason = reason;
    this.status = status;
  }
}

export async function errorFrom(response) {
  let message = `The server answered ${response.status} ${response.statusText}.`;
  let reason = `http_${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === "string") {
      message = body.error.message;
      reason = body.error.reason || reason;
    }
  } catch {
    // not JSON (a proxy's error page, say): the status line is all there is
  }
  if (response.status === 401) {
    const error = new ApiError(`${message} ${KEY_HINT}`, reason, response.status);
    onUnauthorized(error);
    return error;
  }
  return new ApiError(message, reason, response.status);
}

async function call(url, init = {}) {
  let response;
  try {
    response = await fetch(url, { ...init, headers: withKey(init.headers) });
  } catch (err) {
    if (err.name === "AbortError") {
      throw err; // the page stopped it (a closed event stream): not the server's doing
    }
    throw new ApiError(`The server did not answer (${err.message}).`, "network", 0);
  }
  if (!response.ok) {
    throw await errorFrom(response);
  }
  return response;
}

function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null) {
      query.set(key, String(value));
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function getJson(path) {
  return (await call(path, { headers: { Accept: "application/json" } })).json();
}

// POST multipart/form-data: files is [[field, blob, filename], ...], fields a {name: text} object.
export async function postForm(path, params, files, fields) {
  const form = new FormData();
  for (const [field, blob, filename] of files) {
    form.append(field, blob, filename);
  }
  for (const [name, value] of Object.entries(fields || {})) {
    form.append(name, value);
  }
  return call(withQuery(path, params), { method: "POST", body: form });
}

export async function getBlob(path) {
  return (await call(path)).blob();
}

export async function deleteJson(path) {
  return (await call(path, { method: "DELETE", headers: { Accept: "application/json" } })).json();
}

// Server-Sent Events over fetch(), for when a key is set: EventSource cannot send an Authorization
// header. Calls onEvent(type, data) per event (the WHATWG format: "event:", "data:" lines, a blank line
// ends an event, ":" starts a comment); resolves when the server ends the stream. Unlike EventSource it
// does not reconnect: a dropped stream rejects and the caller says so.
export async function streamEvents(path, onEvent, signal) {
  const response = await call(path, { headers: { Accept: "text/event-stream" }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += value;
    const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = blocks.pop(); // an unfinished event waits for its blank line
    for (const block of blocks) {
      let type = "message";
      const data = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") {
          type = text;
        } else if (field === "data") {
          data.push(text);
        }
      }
      if (data.length > 0) {
        onEvent(type, data.join("\n"));
      }
    }
  }
}
