// The optional API key field. A server started with ATELIER_API_KEYS_FILE answers 401 to calls without a
// valid key; the key typed here goes on every call (api.js) and stays in this tab's sessionStorage only.

import { apiKey, setApiKey, whenUnauthorized } from "./api.js";
import { byId, setStatus } from "./ui.js";

const KEPT = "Kept in this tab only, until it closes.";

// changed(): what to reload once a key is entered or changed (the lists that needed one).
export function setupKey(changed) {
  const form = byId("key-form");
  const input = byId("api-key");
  const status = byId("key-status");
  input.value = apiKey();
  const apply = () => {
    const key = input.value.trim();
    if (key === apiKey()) {
      return;
    }
    setApiKey(key);
    input.removeAttribute("aria-invalid");
    setStatus(status, key ? `Key set. ${KEPT}` : "No key: calls are sent without one.", "ok");
    changed();
  };
  input.addEventListener("change", apply);
  form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the field applies the key; nothing is posted anywhere
    apply();
  });
  whenUnauthorized((error) => {
    input.setAttribute("aria-invalid", "true");
    setStatus(status, error.message, "error");
  });
}
