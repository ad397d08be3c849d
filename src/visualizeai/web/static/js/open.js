// Start page: "Open a saved analysis". Uploads the chosen .npz and opens its analysis page by key; the page
// then draws it from the server's copy, without running (or even having) the model.

import { analysisPath, openSaved } from "./lib/api.js";

const form = document.getElementById("open-form");
const input = document.getElementById("saved-file");
const submit = document.getElementById("open-submit");
const status = document.getElementById("open-status");
const error = document.getElementById("open-error");

function showError(message) {
  error.textContent = message;
  error.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = input.files && input.files[0];
  error.hidden = true;
  if (!file) {
    showError("Choose a saved analysis (.npz) first.");
    return;
  }
  submit.disabled = true;
  status.textContent = `Opening ${file.name}…`;
  try {
    const meta = await openSaved(file);
    window.location.assign(analysisPath(meta.key, "opened=file"));
  } catch (err) {
    status.textContent = "";
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    submit.disabled = false;
  }
});
