// Start page: the analysis form. Without script the form posts to /analysis, which runs the analysis and
// answers 303 to /analysis/{key}. With it, the same fields go to POST /api/v1/analyze while the time elapsed
// is shown; then the analysis page opens by key, so the text never travels in a URL. A refusal is shown in
// place (as text) and the text stays in the form.

import { analysisPath, analyze } from "../lib/api.js";

const TICK_MS = 100;

const form = document.getElementById("analyze-form");
const textArea = document.getElementById("text");
const modelSelect = document.getElementById("model");
const submit = document.getElementById("analyze-submit");
const status = document.getElementById("analyze-status");
const error = document.getElementById("analyze-error");

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

function modelName() {
  const option = modelSelect.selectedOptions[0];
  return option ? option.textContent.split(" — ")[0].trim() : "the model";
}

function showError(message) {
  error.textContent = message;
  error.hidden = false;
}

/** The server's refusal of a text over the character limit, said before megabytes are sent for nothing. */
function tooLong(text) {
  const most = Number(form.dataset.maxChars);
  if (!(most > 0) || text.length <= most) return null; // UTF-16 units: never fewer than characters
  const chars = [...text].length;
  if (chars <= most) return null;
  return `Text is ${chars.toLocaleString("en-US")} characters long; the limit is ${most.toLocaleString("en-US")}.`;
}

async function run() {
  const text = textArea.value;
  const refusal = tooLong(text);
  if (refusal) {
    form.dataset.state = "error";
    showError(refusal);
    return;
  }
  const chars = text.length.toLocaleString("en-US");
  const what = `Tokenizing ${chars} characters and running ${modelName()}…`;
  const started = performance.now();
  const tick = () => {
    status.textContent = `${what} ${seconds(performance.now() - started)}`;
  };
  error.hidden = true;
  error.textContent = "";
  submit.disabled = true;
  form.setAttribute("aria-busy", "true");
  form.dataset.state = "running";
  tick();
  const timer = setInterval(tick, TICK_MS);
  try {
    // the key and sizes only: the analysis page reads the metadata (the token table) once, by key
    const meta = await analyze(modelSelect.value, text, { brief: true });
    clearInterval(timer);
    status.textContent = `Analysed ${meta.n.toLocaleString("en-US")} tokens in ${seconds(performance.now() - started)}; opening…`;
    form.dataset.state = "done";
    window.location.assign(analysisPath(meta.key));
  } catch (err) {
    clearInterval(timer);
    status.textContent = "";
    form.dataset.state = "error";
    showError(err instanceof Error ? err.message : String(err));
    submit.disabled = false;
  } finally {
    form.removeAttribute("aria-busy");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (submit.disabled) return;
  run();
});

// Coming back to this page from the analysis (back button, page cache): the form is usable again.
window.addEventListener("pageshow", () => {
  submit.disabled = false;
  if (form.dataset.state === "done") {
    status.textContent = "";
    delete form.dataset.state;
  }
});
