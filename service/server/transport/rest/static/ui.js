// Small DOM helpers shared by the page's sections.

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) {
    throw new Error(`index.html has no element #${id}`);
  }
  return el;
}

// kind: "info" (work in progress), "ok" (done) or "error" (the API's message).
export function setStatus(el, text, kind = "info") {
  el.textContent = text;
  el.dataset.kind = kind;
}

export function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

// Object URLs keep their blob alive until revoked: one live URL per <img> and its download link.
const liveUrls = new WeakMap();

export function showBlob(img, blob, link, filename) {
  const old = liveUrls.get(img);
  const url = URL.createObjectURL(blob);
  liveUrls.set(img, url);
  img.src = url;
  img.hidden = false;
  if (link) {
    link.href = url;
    link.download = filename;
    link.hidden = false;
  }
  if (old) {
    // after the new image is in place, so the old one never flashes blank
    setTimeout(() => URL.revokeObjectURL(old), 0);
  }
}

export function showUrl(img, url) {
  img.src = url;
  img.hidden = false;
}

export function hide(...elements) {
  for (const el of elements) {
    el.hidden = true;
  }
}

export function extensionOf(contentType) {
  const sub = (contentType || "").split(";")[0].split("/")[1] || "bin";
  return sub === "jpeg" ? "jpg" : sub;
}

export function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

// Buttons are marked unavailable with aria-disabled, not disabled: a disabled button drops the keyboard
// focus, which would leave a keyboard user nowhere while a request runs.
export function setAvailable(button, available) {
  button.setAttribute("aria-disabled", String(!available));
}

export function isAvailable(button) {
  return button.getAttribute("aria-disabled") !== "true";
}
