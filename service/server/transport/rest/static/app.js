// The Atelier page: choose a photo, then stylise it, explain it (saliency) or start a slow render job.
// Plain ES modules, no build step; every call goes to the public /v1 API of the server that served us.

import { getBlob, getJson, postForm } from "./api.js";
import { setupJobs } from "./job.js";
import { setupKey } from "./key.js";
import { Incomplete, setupStyleSource, styleKey, styleLabel } from "./style_source.js";
import {
  byId,
  errorText,
  extensionOf,
  hide,
  isAvailable,
  seconds,
  setAvailable,
  setStatus,
  showBlob,
} from "./ui.js";

const STYLIZE_MAX_SIDE = 1024; // the fast path downscales larger photos: quick on a CPU, ample on screen

// The chosen photo: a Blob (upload or sample) and a file name for multipart uploads.
const photo = { blob: null, name: "" };

function requirePhoto(statusEl) {
  if (!photo.blob) {
    setStatus(statusEl, "Choose a photo or a sample first.", "error");
    byId("photo-file").focus();
    return null;
  }
  return photo;
}

function choosePhoto(blob, name, label) {
  photo.blob = blob;
  photo.name = name;
  for (const id of ["stylize-input", "job-input"]) {
    showBlob(byId(id), blob);
  }
  setStatus(byId("photo-status"), `Photo: ${label}.`, "ok");
}

function setupPhoto() {
  const fileInput = byId("photo-file");
  const samples = [...document.querySelectorAll("button.sample")];
  fileInput.addEventListener("change", () => {
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      return;
    }
    samples.forEach((b) => b.setAttribute("aria-pressed", "false"));
    choosePhoto(file, file.name || "photo", `${file.name} (${Math.ceil(file.size / 1024)} KB)`);
  });
  for (const button of samples) {
    button.addEventListener("click", async () => {
      const status = byId("photo-status");
      const label = button.textContent.trim();
      try {
        const blob = await getBlob(button.dataset.src);
        samples.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
        fileInput.value = "";
        choosePhoto(blob, button.dataset.src.split("/").pop(), `sample “${label}”`);
      } catch (err) {
        setStatus(status, errorText(err), "error");
      }
    });
  }
}

// Returns the loader, which runs again when an API key is entered (a keyed server lists styles only then).
function setupStyles(source) {
  const select = byId("style-select");
  const info = byId("style-info");
  const status = byId("stylize-status");
  const describe = () => {
    const style = select.selectedOptions[0] && select.selectedOptions[0].style_info;
    info.textContent = style
      ? `${style.title}, ${style.artist}${style.year ? ` (${style.year})` : ""}. ${style.arch} net, ` +
        `version ${style.version}, ${style.precision} on ${style.provider.replace("ExecutionProvider", "")}.`
      : "";
  };
  select.addEventListener("change", describe);
  let failed = false; // the status shows why the list is missing: cleared once it loads
  return async function loadStyles() {
    try {
      const { styles } = await getJson("/v1/styles");
      select.replaceChildren();
      if (failed) {
        setStatus(status, "");
        failed = false;
      }
      if (styles.length === 0) {
        select.append(new Option("No styles are loaded on this server", ""));
        setStatus(status, "The server has no fast style models loaded.", "error");
        return;
      }
      for (const style of styles) {
        const option = new Option(styleLabel(style), styleKey(style));
        option.style_info = style;
        select.append(option);
      }
      source.setStyles(styles); // after the list is in place: the blend partners follow its choice
      describe();
    } catch (err) {
      select.replaceChildren(new Option("Styles unavailable", ""));
      info.textContent = "";
      failed = true;
      setStatus(status, errorText(err), "error");
    }
  };
}

function setupStylize(source) {
  const form = byId("stylize-form");
  const strength = byId("strength");
  const strengthValue = byId("strength-value");
  const status = byId("stylize-status");
  const button = byId("stylize-button");
  const showStrength = () => {
    strengthValue.textContent = `${Math.round(Number(strength.value) * 100)} %`;
  };
  strength.addEventListener("input", showStrength);
  showStrength();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!isAvailable(button)) {
      return; // the previous request is still running
    }
    const chosen = requirePhoto(status);
    if (!chosen) {
      return;
    }
    let choice;
    try {
      choice = source.choice();
    } catch (err) {
      if (!(err instanceof Incomplete)) {
        throw err;
      }
      setStatus(status, err.message, "error");
      err.control.focus();
      return;
    }
    setAvailable(button, false);
    setStatus(status, `Stylising with ${choice.what}…`);
    const started = performance.now();
    try {
      const params = {
        ...choice.params,
        strength: strength.value,
        preserve_color: byId("preserve-color").checked,
        max_side: STYLIZE_MAX_SIDE,
        format: "jpeg",
        quality: 92,
      };
      const files = [["image", chosen.blob, chosen.name], ...choice.files];
      const response = await postForm("/v1/stylize", params, files);
      const blob = await response.blob();
      const name = `atelier-${choice.slug}.${extensionOf(blob.type)}`;
      showBlob(byId("stylize-result"), blob, byId("stylize-download"), name);
      const model = response.headers.get("X-Atelier-Model") || choice.slug;
      setStatus(status, `Done in ${seconds(performance.now() - started)} with ${model}.`, "ok");
    } catch (err) {
      hide(byId("stylize-result"), byId("stylize-download"));
      setStatus(status, errorText(err), "error");
    } finally {
      setAvailable(button, true);
    }
  });
}

// The top-k list from the X-Atelier-Predictions header; returns the predictions shown.
function showClasses(list, header) {
  list.replaceChildren();
  let predictions = [];
  try {
    predictions = JSON.parse(header || "[]");
  } catch {
    predictions = [];
  }
  for (const p of predictions) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = p.label;
    const bar = document.createElement("meter");
    bar.min = 0;
    bar.max = 1;
    bar.value = p.probability;
    bar.setAttribute("aria-hidden", "true");
    const value = document.createElement("span");
    value.className = "prob";
    value.textContent = `${(p.probability * 100).toFixed(1)} %`;
    item.append(label, bar, value);
    list.append(item);
  }
  return predictions;
}

async function setupSaliency() {
  const select = byId("saliency-method");
  const status = byId("saliency-status");
  const button = byId("saliency-button");
  try {
    const config = await getJson("/ui/config.json");
    select.replaceChildren(...config.saliency_methods.map((m) => new Option(m.replaceAll("_", " "), m)));
    select.value = config.saliency_default;
  } catch (err) {
    select.replaceChildren(new Option("Methods unavailable", ""));
    setStatus(status, errorText(err), "error");
  }
  byId("saliency-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!isAvailable(button)) {
      return; // the previous request is still running
    }
    const chosen = requirePhoto(status);
    if (!chosen || !select.value) {
      return;
    }
    setAvailable(button, false);
    setStatus(status, `Computing ${select.value}…`);
    const started = performance.now();
    try {
      const params = { method: select.value, output: "overlay", top_k: 5 };
      const response = await postForm("/v1/saliency", params, [["image", chosen.blob, chosen.name]]);
      const blob = await response.blob();
      showBlob(byId("saliency-result"), blob, byId("saliency-download"), `saliency-${select.value}.png`);
      const shown = showClasses(byId("saliency-classes"), response.headers.get("X-Atelier-Predictions"));
      const target = response.headers.get("X-Atelier-Target");
      const match = shown.find((p) => String(p.index) === target);
      const what = match ? `“${match.label}”` : `class ${target}`;
      setStatus(status, `Done in ${seconds(performance.now() - started)}; the map explains ${what}.`, "ok");
    } catch (err) {
      hide(byId("saliency-result"), byId("saliency-download"));
      byId("saliency-classes").replaceChildren();
      setStatus(status, errorText(err), "error");
    } finally {
      setAvailable(button, true);
    }
  });
}

const source = setupStyleSource();
const loadStyles = setupStyles(source);
setupKey(loadStyles);
setupPhoto();
setupStylize(source);
setupJobs(() => requirePhoto(byId("job-status")));
await Promise.all([loadStyles(), setupSaliency()]);
document.body.dataset.ready = "true"; // for tests and scripts: styles and methods are listed
