// The vidcls page: pick or drop a video, preview it, send it to /predict, show the answer.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { maxMb: null, request: null, objectUrl: null };

const FORMATS = "MP4, WebM, MOV, AVI or MKV";

function formatBytes(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

/** Show exactly one of the result panels. */
function show(panel) {
  for (const id of ["empty", "loading", "error", "answer"]) $(id).hidden = id !== panel;
  if (panel !== "answer") $("frames-card").hidden = true;
}

function showError(title, text) {
  $("error-title").textContent = title;
  $("error-text").textContent = text;
  show("error");
}

/** Turn an HTTP status into words a person can act on. */
function explain(status, detail) {
  const limit = state.maxMb ? `${state.maxMb} MB` : "the server's limit";
  switch (status) {
    case 413:
      return ["This video is too large", `The server accepts videos up to ${limit}. Try a shorter clip or a smaller file.`];
    case 415:
      return ["We couldn't read this file as a video",
        `It may be damaged, or not a video at all. ${FORMATS} files usually work.`];
    case 400:
    case 422:
      return ["The upload didn't come through", typeof detail === "string" ? detail : "Please pick the video again."];
    default:
      return ["Something went wrong on the server", "Please try again in a moment. If it keeps happening, the server log has the details."];
  }
}

async function loadModelInfo() {
  try {
    const response = await fetch("/health");
    if (!response.ok) return;
    const info = await response.json();
    state.maxMb = info.max_upload_mb;
    $("model-text").textContent = `Model ${info.model} · ${info.labels} labels · ${info.device}`;
    $("model").hidden = false;
    $("limits").textContent = `${FORMATS} · up to ${info.max_upload_mb} MB`;
  } catch {
    // The page still works; the first upload will report that the server is unreachable.
  }
}

function preview(file) {
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = URL.createObjectURL(file);
  showPreview(true);
  $("video").src = state.objectUrl;
  $("file-name").textContent = file.name;
  $("file-name").title = file.name;
  $("file-size").textContent = formatBytes(file.size);
  $("dropzone").hidden = true;
  $("player").hidden = false;
  $("change").hidden = false;
}

/** The player, or a placeholder when the browser cannot decode the file (AVI, say). */
function showPreview(playable) {
  $("video").hidden = !playable;
  $("no-preview").hidden = playable;
}

function renderBars(topK) {
  const list = $("bars");
  list.replaceChildren();
  const fills = [];
  for (const { label, score } of topK) {
    const item = document.createElement("li");
    item.className = "bar";
    const head = document.createElement("div");
    head.className = "bar-head";
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${(score * 100).toFixed(1)}%`;
    head.append(name, value);
    const track = document.createElement("div");
    track.className = "bar-track";
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    track.append(fill);
    item.append(head, track);
    list.append(item);
    fills.push([fill, score]);
  }
  // Set widths on the next frame so the bars animate from zero.
  requestAnimationFrame(() => fills.forEach(([fill, score]) => { fill.style.width = `${Math.max(score * 100, 0.5)}%`; }));
}

function renderChips(result, clips) {
  const chips = [`${Math.round(result.time_ms)} ms`, `${formatSeconds(result.duration)} video`, `${clips} clips`, `model ${result.model}`];
  $("chips").replaceChildren(...chips.map((text) => {
    const chip = document.createElement("li");
    chip.textContent = text;
    return chip;
  }));
}

function renderFrames(frames) {
  $("frames").replaceChildren(...frames.map((src, index) => {
    const item = document.createElement("li");
    const image = document.createElement("img");
    image.src = src;
    image.alt = `Frame ${index + 1} of ${frames.length}`;
    const number = document.createElement("span");
    number.textContent = index + 1;
    item.append(image, number);
    return item;
  }));
  $("frames-caption").textContent = `${frames.length} frames from the middle of the video, cropped the way the model sees them`;
  $("frames-card").hidden = frames.length === 0;
}

async function classify(file) {
  state.request?.abort();
  const request = new AbortController();
  state.request = request;
  show("loading");
  const clips = 4;
  const body = new FormData();
  body.append("file", file);
  let response;
  let payload = {};
  try {
    response = await fetch(`/predict?top_k=5&clips=${clips}&frames=true`, { method: "POST", body, signal: request.signal });
    payload = await response.json().catch(() => ({}));
  } catch (error) {
    if (error.name !== "AbortError") showError("Can't reach the server", "Check that vidcls serve is still running, then try again.");
    return;
  }
  if (request !== state.request) return; // a newer file was picked meanwhile
  if (!response.ok) {
    showError(...explain(response.status, payload.detail));
    return;
  }
  renderBars(payload.top_k);
  renderChips(payload, clips);
  show("answer");
  renderFrames(payload.frames);
}

function pick(file) {
  if (!file) return;
  preview(file);
  if (state.maxMb && file.size > state.maxMb * 1024 * 1024) {
    showError(...explain(413));
    return;
  }
  classify(file);
}

function setUpDropTarget(target) {
  target.addEventListener("dragover", (event) => {
    event.preventDefault();
    target.classList.add("dragging");
  });
  target.addEventListener("dragleave", (event) => {
    if (!target.contains(event.relatedTarget)) target.classList.remove("dragging");
  });
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    target.classList.remove("dragging");
    pick(event.dataTransfer.files[0]);
  });
}

$("file").addEventListener("change", (event) => {
  pick(event.target.files[0]);
  event.target.value = ""; // picking the same file again still triggers a change
});
$("dropzone").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("file").click();
  }
});
$("video").addEventListener("error", () => showPreview(false));
setUpDropTarget($("video-card"));
loadModelInfo();
