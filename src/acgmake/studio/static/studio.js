// acgmake studio: the page. Every button is a request to the studio's API, which runs stages in
// the run folder; the token (put in the page by the server) goes with every request that changes
// anything.
"use strict";

const TOKEN = document.querySelector('meta[name="studio-token"]').content;
const $ = (id) => document.getElementById(id);
let state = null;

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function api(method, path, body, type) {
  const headers = { "X-Studio-Token": TOKEN };
  if (body !== undefined) headers["Content-Type"] = type || "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined || type ? body : JSON.stringify(body),
  });
  const answer = (response.headers.get("content-type") || "").includes("json")
    ? await response.json()
    : {};
  if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
  return answer;
}

// A run folder file's address, changing whenever the file does (no stale picture).
function fileUrl(kind) {
  const file = state && state.files[kind];
  return file ? `/api/files/${encodeURIComponent(file.file)}?v=${file.modified}` : "";
}

async function refresh() {
  state = await api("GET", "/api/state");
  $("folder").textContent = state.folder;
  for (const [id, kind] of [["character", "character"], ["colored", "colored"]]) {
    const url = fileUrl(kind);
    if (url && $(id).dataset.url !== url) {
      $(id).src = url;
      $(id).dataset.url = url;
    }
  }
  $("colored-link").href = fileUrl("colored");
  $("layers-link").href = fileUrl("layers");
  const song = fileUrl("song");
  if (song && $("song").dataset.url !== song) {
    $("song").src = song;
    $("song").dataset.url = song;
  }
  const strip = fileUrl("colored_expressions");
  if (strip && $("expressions").dataset.url !== strip) {
    $("expressions").src = strip;
    $("expressions").dataset.url = strip;
  }
  const clip = fileUrl("clip");
  if (clip && $("clip").dataset.url !== clip) {
    $("clip").src = clip;
    $("clip").dataset.url = clip;
  }
  if (state.files.score) $("score").src = `/api/score.svg?v=${state.files.score.modified}`;
  const list = $("files");
  list.replaceChildren();
  for (const [kind, file] of Object.entries(state.files)) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = fileUrl(kind);
    link.textContent = file.file;
    item.append(link, ` (${kind}, ${Math.round(file.bytes / 1024)} KB)`);
    list.append(item);
  }
  showJob(state.job);
}

async function busy(what, work) {
  say(what + "…");
  try {
    await work();
    say("");
  } catch (error) {
    say(error.message, true);
  }
  await refresh().catch(() => {});
}

// -- lyrics -------------------------------------------------------------------------------------

function showReadings(answer) {
  const box = $("readings");
  box.replaceChildren();
  if (answer.problem) {
    const p = document.createElement("p");
    p.className = "problem";
    p.textContent = answer.problem;
    box.append(p);
  }
  for (const phrase of answer.readings || []) {
    const line = document.createElement("div");
    line.className = "phrase";
    phrase.morae.forEach((mora, i) => {
      const span = document.createElement("span");
      span.className = phrase.guessed[i] ? "mora guessed" : "mora";
      span.textContent = mora;
      line.append(span);
    });
    box.append(line);
    phrase.guesses.forEach((guess, i) => {
      const p = document.createElement("div");
      p.className = "guess";
      p.textContent = guess;
      const choice = (phrase.choices || [])[i];
      for (const [furigana, reading] of choice
        ? [[choice.keep, choice.sung], [choice.other, choice.other_reading]]
        : []) {
        if (!furigana) continue;
        const button = document.createElement("button");
        button.className = "furigana";
        button.textContent = `sing ${reading}: ${furigana}`;
        button.onclick = () =>
          busy("Writing the furigana", () => useFurigana(phrase.line, choice.written, furigana));
        p.append(" ", button);
      }
      box.append(p);
    });
  }
}

// Put furigana into the lyrics, on the line the reading was guessed on, then save and read them.
async function useFurigana(lineNumber, written, furigana) {
  const lines = $("lyrics").value.split("\n");
  const line = lines[lineNumber - 1];
  const at = line === undefined ? -1 : line.indexOf(written);
  if (at < 0) throw new Error(`line ${lineNumber} no longer has ${written}; read the lyrics again`);
  lines[lineNumber - 1] = line.slice(0, at) + furigana + line.slice(at + written.length);
  $("lyrics").value = lines.join("\n");
  await saveLyrics();
}

async function saveLyrics() {
  const answer = await api("PUT", "/api/lyrics", $("lyrics").value, "text/plain; charset=utf-8");
  showReadings(answer);
  if (answer.problem) throw new Error(answer.problem);
}

// -- character grid -----------------------------------------------------------------------------

const GRID = 12;

function showGrid() {
  const first = Number($("grid-seed").value) || 0;
  const truncation = $("truncation").value;
  $("truncation-value").textContent = truncation;
  const grid = $("grid");
  grid.replaceChildren();
  for (let seed = first; seed < first + GRID; seed++) {
    const img = document.createElement("img");
    img.src = `/api/characters/${seed}.png?truncation=${truncation}`;
    img.title = `seed ${seed}`;
    img.alt = `seed ${seed}`;
    if (state && state.seed === seed) img.className = "chosen";
    img.onclick = () =>
      busy(`Drawing character ${seed}`, async () => {
        await api("POST", "/api/character", { seed, truncation: Number(truncation), edit: edits() });
        if (state) state.seed = seed; // the run's seed now: the grid marks it
        hints.strokes = [];
        hints.resize = true;
        await loadOptions();
        showGrid();
      });
    grid.append(img);
  }
}

// The learned edits (acgmake character --edit): mouth opens (+) or closes (-), eyes likewise.
function edits() {
  return { mouth: Number($("edit-mouth").value), eyes: Number($("edit-eyes").value) };
}

function showEdits() {
  $("edit-mouth-value").textContent = $("edit-mouth").value;
  $("edit-eyes-value").textContent = $("edit-eyes").value;
}

// -- options ------------------------------------------------------------------------------------

// One input per option of the clip's stages, built from what the server says each takes.
function optionInput(option) {
  let input;
  if (option.kind === "choice") {
    input = document.createElement("select");
    for (const choice of option.choices) {
      const item = document.createElement("option");
      item.value = item.textContent = choice;
      input.append(item);
    }
    input.value = option.value;
  } else if (option.kind === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(option.value);
  } else {
    input = document.createElement("input");
    if (option.kind === "int" || option.kind === "float") {
      input.type = "number";
      input.step = option.kind === "int" ? "1" : "any";
      if (option.min !== undefined && option.min !== null) input.min = option.min;
      if (option.max !== undefined && option.max !== null) input.max = option.max;
    }
    input.value = option.value === null ? "" : option.value;
  }
  input.id = `option-${option.stage}-${option.name}`;
  input.onchange = () => {
    let value = input.type === "checkbox" ? input.checked : input.value;
    if (input.type === "number") value = value === "" ? null : Number(value); // empty: default
    if (option.kind === "text" && value === "" && option.default === null) value = null;
    setOption(option, value);
  };
  return input;
}

function setOption(option, value) {
  return busy(`Setting ${option.option}`, async () => {
    const answer = await api("PUT", "/api/options", {
      options: { [option.stage]: { [option.name]: value } },
    });
    showOptions(answer.options);
  });
}

function showOptions(options) {
  const table = $("options");
  table.replaceChildren();
  let stage = null;
  for (const option of options) {
    if (option.stage !== stage) {
      stage = option.stage;
      const row = table.insertRow();
      const head = document.createElement("th");
      head.colSpan = 3;
      head.textContent = stage;
      row.append(head);
    }
    const row = table.insertRow();
    row.className = option.set ? "set" : "";
    const name = document.createElement("code");
    name.textContent = option.option;
    row.insertCell().append(name);
    row.insertCell().append(optionInput(option));
    const reset = document.createElement("button");
    reset.textContent = "default";
    reset.disabled = !option.set;
    reset.onclick = () => setOption(option, null);
    row.insertCell().append(reset);
    const help = table.insertRow().insertCell();
    help.colSpan = 3;
    help.className = "help";
    help.textContent = option.help;
  }
}

async function loadOptions() {
  showOptions((await api("GET", "/api/options")).options);
}

// -- hints painting -----------------------------------------------------------------------------

const hints = { strokes: [], current: null, resize: true };

function paintStrokes() {
  const canvas = $("hints");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (const stroke of hints.strokes) {
    ctx.globalCompositeOperation = stroke.erase ? "destination-out" : "source-over";
    ctx.strokeStyle = stroke.colour;
    ctx.fillStyle = stroke.colour;
    ctx.lineWidth = stroke.size;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    stroke.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (stroke.points.length === 1) {
      const [x, y] = stroke.points[0];
      ctx.arc(x, y, stroke.size / 2, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.stroke();
    }
  }
  ctx.globalCompositeOperation = "source-over";
}

function canvasPoint(event) {
  const canvas = $("hints");
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * canvas.width) / box.width,
    ((event.clientY - box.top) * canvas.height) / box.height,
  ];
}

async function sendHints() {
  const canvas = $("hints");
  const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
  const started = performance.now();
  await busy("Colouring", async () => {
    const answer = await api("PUT", "/api/hints", blob, "image/png");
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    $("colour-time").textContent = `stroke → picture ${seconds} s (colorize ${answer.seconds} s)`;
  });
}

function setUpCanvas() {
  const canvas = $("hints");
  const picture = $("character");
  picture.addEventListener("load", () => {
    if (canvas.width !== picture.naturalWidth || canvas.height !== picture.naturalHeight) {
      canvas.width = picture.naturalWidth;
      canvas.height = picture.naturalHeight;
      hints.strokes = [];
    }
    paintStrokes();
  });
  canvas.addEventListener("pointerdown", (event) => {
    if (!canvas.width) return;
    canvas.setPointerCapture(event.pointerId);
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    hints.current = {
      colour: $("brush-colour").value,
      size: Number($("brush-size").value) * scale,
      erase: $("eraser").checked,
      points: [canvasPoint(event)],
    };
    hints.strokes.push(hints.current);
    paintStrokes();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!hints.current) return;
    hints.current.points.push(canvasPoint(event));
    paintStrokes();
  });
  const end = () => {
    if (!hints.current) return;
    hints.current = null;
    sendHints();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("undo").onclick = () => {
    hints.strokes.pop();
    paintStrokes();
    sendHints();
  };
  $("clear-hints").onclick = () => {
    hints.strokes = [];
    paintStrokes();
    busy("Colouring", () => api("DELETE", "/api/hints"));
  };
}

// -- clip ---------------------------------------------------------------------------------------

let polling = null;

function showJob(job) {
  const list = $("progress");
  list.replaceChildren();
  if (!job) return;
  for (const stage of job.stages) {
    const item = document.createElement("li");
    item.className = stage.state;
    const part =
      stage.total && stage.state === "running"
        ? ` ${Math.round((100 * stage.done) / stage.total)}%`
        : "";
    item.textContent = `${stage.name}: ${stage.state}${part} ${stage.note || ""}`;
    list.append(item);
  }
  const end = document.createElement("li");
  end.textContent =
    job.state === "running"
      ? `running ${job.seconds} s`
      : `${job.state} in ${job.seconds} s ${job.error}`;
  end.className = job.state === "failed" ? "failed" : "";
  list.append(end);
  if (job.state === "running" && !polling) {
    polling = setInterval(async () => {
      const answer = await api("GET", "/api/job").catch(() => ({ job: null }));
      if (!answer.job || answer.job.state !== "running") {
        clearInterval(polling);
        polling = null;
        await refresh();
      } else {
        showJob(answer.job);
      }
    }, 700);
  }
}

function render(target) {
  return busy("Starting", async () => {
    await saveLyrics();
    await api("POST", "/api/render", { target });
  });
}

// -- start --------------------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", async () => {
  setUpCanvas();
  $("save-lyrics").onclick = () => busy("Reading", saveLyrics);
  $("compose").onclick = () =>
    busy("Composing", async () => {
      await saveLyrics();
      await api("POST", "/api/compose");
    });
  $("make-song").onclick = () => render("song");
  $("render").onclick = () => render("clip");
  $("grid-seed").onchange = showGrid;
  $("truncation").onchange = showGrid;
  $("edit-mouth").oninput = showEdits;
  $("edit-eyes").oninput = showEdits;
  $("apply-edits").onclick = () =>
    busy("Drawing the character with its edits", async () => {
      await api("POST", "/api/character", {
        seed: state ? state.seed : 0,
        truncation: Number($("truncation").value),
        edit: edits(),
      });
      hints.strokes = [];
      hints.resize = true;
      await loadOptions();
    });
  $("grid-prev").onclick = () => {
    $("grid-seed").value = Math.max(0, Number($("grid-seed").value) - GRID);
    showGrid();
  };
  $("grid-next").onclick = () => {
    $("grid-seed").value = Number($("grid-seed").value) + GRID;
    showGrid();
  };
  try {
    await refresh();
    const lyrics = await api("GET", "/api/lyrics");
    $("lyrics").value = lyrics.text;
    const chosen = state.options.character || {};
    if (chosen.truncation !== undefined) $("truncation").value = chosen.truncation;
    for (const part of (chosen.edit || "").split(",")) {
      const [name, value] = part.split("=");
      if ((name === "mouth" || name === "eyes") && value !== undefined) {
        $(`edit-${name}`).value = Number(value);
      }
    }
    showEdits();
    await loadOptions();
    $("grid-seed").value = Math.floor(state.seed / GRID) * GRID;
    showGrid();
    if (lyrics.text) showReadings(await api("POST", "/api/readings", { text: lyrics.text }));
  } catch (error) {
    say(error.message, true);
  }
});
