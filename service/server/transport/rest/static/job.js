// The slow-render section: submit a Gatys or DeepDream job, follow its Server-Sent Events (progress and
// preview frames), cancel it with DELETE, and fetch the result when the "done" event says it succeeded.
// Without an API key the events come through EventSource (which reconnects by itself); with one, through
// fetch() and a stream reader, since EventSource cannot send headers.

import { apiKey, deleteJson, getBlob, postForm, streamEvents } from "./api.js";
import {
  byId,
  errorText,
  extensionOf,
  hide,
  isAvailable,
  setAvailable,
  setStatus,
  showBlob,
  showUrl,
} from "./ui.js";

const PREVIEW_FRAMES = 20; // ask for about this many preview frames per job, whatever its length
const DREAM_OCTAVES = 4; // DreamOptions' default, which the page keeps: the job runs steps x octaves
const KINDS = {
  deepdream: { steps: 10, stepsLabel: "Steps per octave", name: "DeepDream" },
  gatys: { steps: 100, stepsLabel: "Steps", name: "Gatys style transfer" },
};

function describe(status) {
  const p = status.progress;
  if (!p) {
    return status.state === "queued" ? "Queued: waiting for a worker…" : `Job ${status.state}…`;
  }
  const stage = p.stage ? ` (${p.stage})` : "";
  const eta = p.eta_s !== undefined && p.eta_s !== null ? `, about ${Math.ceil(p.eta_s)} s left` : "";
  return `Step ${p.step} of ${p.total}${stage}${eta}.`;
}

export function setupJobs(requirePhoto) {
  const form = byId("job-form");
  const start = byId("job-start");
  const cancel = byId("job-cancel");
  const steps = byId("job-steps");
  const size = byId("job-size");
  const painting = byId("painting-file");
  const progress = byId("job-progress");
  const status = byId("job-status");
  const image = byId("job-image");
  const caption = byId("job-caption");
  const download = byId("job-download");
  let current = null; // {job, source} of the job this page follows
  setAvailable(cancel, false);

  const kind = () => form.querySelector('input[name="kind"]:checked').value;
  for (const radio of form.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener("change", () => {
      const spec = KINDS[kind()];
      byId("painting-field").hidden = kind() !== "gatys";
      byId("job-steps-label").textContent = spec.stepsLabel;
      steps.value = String(spec.steps);
    });
  }

  const settle = () => {
    current = null;
    setAvailable(start, true);
    setAvailable(cancel, false);
  };

  async function finish(job, final) {
    settle();
    if (final.state !== "succeeded") {
      const why = final.error ? final.error.message : `The job ended as ${final.state}.`;
      setStatus(status, why, "error");
      return;
    }
    progress.value = 1;
    try {
      const blob = await getBlob(final.urls.result);
      showBlob(image, blob, download, `${job.kind}-${job.id}.${extensionOf(blob.type)}`);
      caption.textContent = "Result";
      const total = final.timings && final.timings.total;
      setStatus(status, `Done${total ? ` in ${total.toFixed(1)} s` : ""}.`, "ok");
    } catch (err) {
      setStatus(status, errorText(err), "error");
    }
  }

  function onProgress(update) {
    if (update.progress) {
      progress.value = update.progress.fraction;
    }
    if (update.preview) {
      showUrl(image, update.preview);
      caption.textContent = `Preview, step ${update.progress ? update.progress.step : 0}`;
    }
    if (isAvailable(cancel)) {
      setStatus(status, describe(update)); // while cancelling, "Cancelling…" stays
    }
  }

  const lost = (source) => {
    if (current && current.source === source) {
      settle();
      setStatus(status, "Lost the job's event stream; the server may have restarted.", "error");
    }
  };

  // With an API key the stream is read with fetch() (EventSource cannot send the Authorization header).
  function followWithKey(job) {
    const controller = new AbortController();
    const source = { close: () => controller.abort() };
    current = { job, source };
    let ended = false;
    const onEvent = (type, data) => {
      if (type === "progress") {
        onProgress(JSON.parse(data));
      } else if (type === "done" && !ended) {
        ended = true;
        source.close(); // the server ends the stream after "done" anyway
        finish(job, JSON.parse(data));
      }
    };
    streamEvents(job.urls.events, onEvent, controller.signal).then(
      () => ended || lost(source),
      (err) => {
        if (ended || err.name === "AbortError") {
          return;
        }
        if (current && current.source === source) {
          settle();
          setStatus(status, errorText(err), "error");
        }
      },
    );
  }

  function follow(job) {
    if (apiKey()) {
      followWithKey(job);
      return;
    }
    const source = new EventSource(job.urls.events);
    current = { job, source };
    source.addEventListener("progress", (event) => onProgress(JSON.parse(event.data)));
    source.addEventListener("done", (event) => {
      source.close(); // the server ends the stream after "done"; closing stops EventSource reconnecting
      finish(job, JSON.parse(event.data));
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        lost(source);
      } else if (source.readyState === EventSource.CONNECTING) {
        setStatus(status, "Connection to the server lost; reconnecting…");
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (current || !isAvailable(start)) {
      return; // one job at a time from this page
    }
    const chosen = requirePhoto();
    if (!chosen) {
      return;
    }
    const which = kind();
    const styleFile = painting.files && painting.files[0];
    if (which === "gatys" && !styleFile) {
      setStatus(status, "Choose a painting for Gatys style transfer.", "error");
      painting.focus();
      return;
    }
    const nSteps = Number.parseInt(steps.value, 10);
    const side = Number.parseInt(size.value, 10);
    const total = which === "deepdream" ? nSteps * DREAM_OCTAVES : nSteps;
    // Unparseable numbers go to the server as they are, so its message explains the limit.
    const options = {
      steps: Number.isNaN(nSteps) ? steps.value : nSteps,
      size: Number.isNaN(side) ? size.value : side,
      preview_every: Math.max(1, Math.round((total || 1) / PREVIEW_FRAMES)),
    };
    const files =
      which === "gatys"
        ? [["content", chosen.blob, chosen.name], ["style", styleFile, styleFile.name]]
        : [["image", chosen.blob, chosen.name]];
    setAvailable(start, false);
    progress.value = 0;
    hide(image, download);
    caption.textContent = "Preview";
    setStatus(status, `Submitting a ${KINDS[which].name} job…`);
    let job;
    try {
      const response = await postForm(`/v1/jobs/${which}`, { format: "png" }, files, {
        options: JSON.stringify(options),
      });
      job = await response.json();
    } catch (err) {
      settle();
      setStatus(status, errorText(err), "error");
      return;
    }
    setAvailable(cancel, true);
    setStatus(status, describe(job));
    follow(job);
  });

  cancel.addEventListener("click", async () => {
    if (!current || !isAvailable(cancel)) {
      return;
    }
    setAvailable(cancel, false);
    setStatus(status, "Cancelling…");
    try {
      await deleteJson(current.job.urls.status); // the stream's "done" event then reports "cancelled"
    } catch (err) {
      setAvailable(cancel, true);
      setStatus(status, errorText(err), "error");
    }
  });
}
