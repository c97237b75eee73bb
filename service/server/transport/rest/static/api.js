// Calls to the Atelier /v1 API. Every failure becomes an ApiError whose message is the server's own
// text (the "message" of {"error": {"reason", "message"}}), so the page shows what the API says.

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
  return new ApiError(message, reason, response.status);
}

async function call(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
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
