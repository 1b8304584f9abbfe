// The tareas dashboard page: draws the state the server pushes over Server-Sent Events. Every
// string from the queue (worker names, task ids, reasons, payloads) reaches the DOM through
// textContent or setAttribute, never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (selector) => document.querySelector(selector);

/** Builds an HTML element; children are nodes or text (strings become text nodes). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(key, String(value));
  }
  element.append(...children.map((child) => child instanceof Node ? child : String(child)));
  return element;
}

/** Builds an SVG element, like h(). */
function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(key, String(value));
  }
  element.append(...children.map((child) => child instanceof Node ? child : String(child)));
  return element;
}

let state = null;
let dead = null; // the dead letters, pushed apart from the state: only when they change
let clockOffset = 0; // server clock minus this page's clock
let token = "";
const drawn = new Map(); // panel → the JSON it was last drawn from

// ---------------------------------------------------------------------------------------------
// The token: from #token=… in the address (then removed from it), else typed in.

function setupToken() {
  const match = /^#token=(.+)$/.exec(location.hash);
  if (match) {
    token = decodeURIComponent(match[1]);
    history.replaceState(null, "", location.pathname);
  } else {
    token = sessionStorage.getItem("tareas-token") ?? "";
  }
  if (token) sessionStorage.setItem("tareas-token", token);
  const input = $("#token");
  input.value = token;
  input.addEventListener("input", () => {
    token = input.value.trim();
    sessionStorage.setItem("tareas-token", token);
  });
}

// ---------------------------------------------------------------------------------------------
// The stream: EventSource reconnects by itself; a watchdog catches a stream that went silent.

let source;
let lastMessage = 0;

function setStream(status) {
  const badge = $("#stream-status");
  badge.className = `stream ${status}`;
  badge.textContent = status === "live"
    ? "live"
    : status === "lost"
    ? "stream lost: reconnecting…"
    : "connecting…";
}

function connect() {
  source?.close();
  source = new EventSource("/events");
  source.addEventListener("state", (message) => {
    lastMessage = Date.now();
    setStream("live");
    state = JSON.parse(message.data);
    clockOffset = state.now - Date.now();
    render();
  });
  source.addEventListener("dead", (message) => {
    dead = JSON.parse(message.data);
    drawDead(dead);
  });
  source.addEventListener("error", () => {
    setStream("lost");
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
  });
}

setInterval(() => {
  if (lastMessage !== 0 && Date.now() - lastMessage > 5000) {
    setStream("lost");
    lastMessage = Date.now();
    connect();
  }
}, 1000);

// ---------------------------------------------------------------------------------------------
// Panels

function changed(panel, data) {
  const json = JSON.stringify(data);
  if (drawn.get(panel) === json) return false;
  drawn.set(panel, json);
  return true;
}

function render() {
  const { snapshot } = state;
  $("#queue-name").textContent = state.queue;
  document.title = `tareas · ${state.queue}`;
  const error = $("#broker-error");
  error.hidden = state.error === null;
  error.textContent = state.error ?? "";
  const waiting = $("#waiting");
  waiting.hidden = state.declared;
  waiting.textContent = state.declared ? "" : `waiting for queue ${state.queue} to be declared`;
  document.body.classList.toggle("waiting", !state.declared);
  const count = (n) => state.declared ? n : "–";
  $("#ready").textContent = count(snapshot.ready);
  $("#in-hand").textContent = count(snapshot.unacked);
  $("#consumers").textContent = count(snapshot.consumers);
  $("#dead-count").textContent = count(snapshot.dead);
  $("#rate").textContent = snapshot.ratePerSecond.toFixed(2);
  if (changed("rate", state.rate)) drawRate(state.rate);
  drawWorkers(snapshot, state.workersNotShown);
  if (changed("failures", state.failures)) drawFailures(state.failures);
  drawTimeline();
}

function drawRate(rate) {
  const chart = $("#rate-chart");
  let max = 1;
  for (const n of rate) max = Math.max(max, n);
  const width = 300 / rate.length;
  chart.replaceChildren(
    ...rate.map((n, i) =>
      s("rect", {
        x: (i * width + 0.5).toFixed(1),
        width: (width - 1).toFixed(1),
        y: (48 - (n / max) * 46).toFixed(1),
        height: ((n / max) * 46).toFixed(1),
      }, s("title", {}, `${n} completed`))
    ),
  );
}

function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() + clockOffset - Date.parse(iso)) / 1000));
  return `${seconds} s ago`;
}

function drawWorkers(snapshot, notShown) {
  const rows = snapshot.workers.map((worker) =>
    h(
      "tr",
      { "data-worker": worker.name, "data-state": worker.state },
      h("td", { class: "mono name" }, worker.name),
      h("td", {}, h("span", { class: `state ${worker.state}` }, worker.state)),
      h("td", { class: "num in-hand" }, worker.inHand),
      h("td", { class: "num completed" }, worker.completed),
      h("td", { class: "num failed" }, worker.failed),
      h("td", { class: "mono node" }, worker.node ?? ""),
      h("td", { class: "seen" }, worker.state === "online" ? "now" : ago(worker.lastSeen)),
      h(
        "td",
        { class: "running" },
        ...worker.running.map(runningTask),
        worker.runningNotShown > 0 ? `… and ${worker.runningNotShown} more` : "",
      ),
    )
  );
  $("#workers tbody").replaceChildren(...rows);
  $("#workers-note").textContent = snapshot.workers.length === 0
    ? "no worker seen yet (workers report every few seconds)"
    : notShown > 0
    ? `${notShown} more workers not shown (deno task status --json lists them)`
    : snapshot.workersDropped > 0
    ? `${snapshot.workersDropped} worker names seen least recently were dropped`
    : "";
}

/** Progress as text: a fraction as a percentage, an object's JSON as it came. */
function progressText(progress) {
  return typeof progress === "number" ? `${Math.floor(progress * 100)}%` : progress;
}

/** A task a worker runs, in its row: `#3 resize`, then a bar and 40%, or the object reported. */
function runningTask(task) {
  const label = `#${task.seq}${task.name === null ? "" : ` ${task.name}`}`;
  const shown = task.progress === null
    ? []
    : typeof task.progress === "number"
    ? [" ", h("progress", { max: 1, value: task.progress }), ` ${progressText(task.progress)}`]
    : [" ", h("span", { class: "mono" }, task.progress)];
  return h(
    "span",
    { class: "task", "data-task": task.taskId, "data-progress": task.progress },
    h("span", { class: "mono" }, label),
    ...shown,
  );
}

function time(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "?" : date.toLocaleTimeString();
}

function drawFailures(failures) {
  $("#failures tbody").replaceChildren(
    ...failures.map((failure) =>
      h(
        "tr",
        { class: failure.type === "task.dead" ? "dead" : "failed", "data-task": failure.taskId },
        h("td", {}, time(failure.at)),
        h("td", { class: "mono" }, `#${failure.seq} ${failure.taskId}`),
        h("td", { class: "num" }, failure.attempt),
        h("td", { class: "mono" }, failure.worker),
        h(
          "td",
          {},
          failure.type === "task.dead" ? "dead-lettered: " : "",
          failure.reason ?? "",
        ),
      )
    ),
  );
}

function drawDead(dead) {
  $("#dead-total").textContent = dead.error
    ? `(cannot list: ${dead.error})`
    : dead.total > dead.letters.length
    ? `(showing ${dead.letters.length} of ${dead.total})`
    : `(${dead.total})`;
  $("#dead-letters tbody").replaceChildren(
    ...dead.letters.map((letter) => {
      const requeue = h("button", { type: "button", class: "requeue" }, "Requeue");
      requeue.addEventListener("click", () => act("/api/requeue", { id: letter.id }));
      const content = letter.payload ?? letter.body;
      return h(
        "tr",
        { "data-id": letter.id },
        h("td", { class: "mono id" }, letter.id),
        h(
          "td",
          { class: "reason" },
          letter.reason,
          letter.worker === null ? "" : h("span", { class: "worker" }, `by ${letter.worker}`),
          h(
            "pre",
            { class: "payload" },
            `${letter.payload === null ? "body" : "payload"}: ${content}`,
          ),
        ),
        h("td", { class: "num" }, letter.attempts ?? "?"),
        h("td", {}, letter.deadAt ? time(letter.deadAt) : "?"),
        h("td", { class: "num" }, `${letter.size} B`),
        h("td", {}, requeue),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Timeline: drawn like the SVG timeline of `produce --wait`, the last minutes scrolling by.

const LANE = 24;
const BAR = 16;
const PAD = 6;
const NAME_WIDTH = 170;
/** Rows drawn at most, as many as the server sends workers. */
const MAX_ROWS = 100;

function drawTimeline() {
  if (state === null) return;
  const svg = $("#timeline");
  const width = Math.max(400, svg.clientWidth || 900);
  const windowMs = Number($("#window").value) * 1000;
  const now = Date.now() + clockOffset;
  const start = now - windowMs;
  const chartWidth = width - NAME_WIDTH - 16;
  const x = (ms) => NAME_WIDTH + ((ms - start) / windowMs) * chartWidth;

  // One row per worker: those with bars first (in the timeline's order), then the others.
  const rows = [...state.timeline.rows];
  const known = new Set(rows.map((row) => row.worker));
  for (const worker of state.snapshot.workers) {
    if (rows.length >= MAX_ROWS) break;
    if (!known.has(worker.name)) rows.push({ worker: worker.name, lanes: 1, bars: [] });
  }
  const states = new Map(state.snapshot.workers.map((w) => [w.name, w.state]));

  const axis = 22;
  let y = axis + 4;
  const children = [
    s(
      "defs",
      {},
      s(
        "pattern",
        {
          id: "hatch",
          patternUnits: "userSpaceOnUse",
          width: 6,
          height: 6,
          patternTransform: "rotate(45)",
        },
        s("rect", { width: 6, height: 6, fill: "#fde4e4" }),
        s("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#e57373", "stroke-width": 3 }),
      ),
      s(
        "clipPath",
        { id: "chart" },
        s("rect", { x: NAME_WIDTH, y: 0, width: chartWidth, height: 10000 }),
      ),
    ),
  ];
  const stepMs = windowMs <= 60_000 ? 10_000 : 60_000;
  const grid = s("g", { class: "axis" });
  // Ticks at fixed offsets from now: the grid stays put while the bars scroll by.
  for (let ago = 0; ago <= windowMs; ago += stepMs) {
    const gx = x(now - ago).toFixed(1);
    grid.append(
      s("line", { class: "grid", x1: gx, x2: gx, y1: axis, y2: 10000 }),
      s(
        "text",
        { class: "tick", x: gx, y: axis - 6, "text-anchor": ago === 0 ? "end" : "middle" },
        ago === 0 ? "now" : `-${ago / 1000}s`,
      ),
    );
  }
  children.push(grid);

  rows.forEach((row, index) => {
    const height = Math.max(1, row.lanes) * LANE + 2 * PAD;
    const group = s("g", { class: "row", "data-worker": row.worker });
    if (index % 2 === 0) {
      group.append(s("rect", { class: "stripe", x: 0, y, width, height }));
    }
    const workerState = states.get(row.worker);
    group.append(
      s(
        "text",
        { class: "name", x: 6, y: y + PAD + LANE / 2 + 4 },
        row.worker.length > 22 ? `${row.worker.slice(0, 21)}…` : row.worker,
        ...(workerState && workerState !== "online"
          ? [
            s(
              "tspan",
              { dx: 6, fill: workerState === "lost" ? "#c62828" : "#9e9e9e" },
              workerState,
            ),
          ]
          : []),
      ),
    );
    const bars = s("g", { "clip-path": "url(#chart)" });
    for (const bar of row.bars) {
      const end = bar.status === "running" ? Math.max(bar.end, now) : bar.end;
      if (end < start) continue;
      const x0 = x(bar.start);
      const w = Math.max(2, x(end) - x0 - 1);
      const top = y + PAD + bar.lane * LANE + (LANE - BAR) / 2;
      const classes = `bar ${bar.status}${bar.redelivered ? " redelivered" : ""}`;
      const tooltip = [
        `#${bar.seq} task ${bar.taskId}`,
        `attempt ${bar.attempt}${bar.redelivered ? " (redelivered)" : ""}`,
        `${bar.status} after ${((end - bar.start) / 1000).toFixed(1)} s`,
        `worker ${row.worker}`,
        ...(bar.progress === null ? [] : [`progress: ${progressText(bar.progress)}`]),
        ...(bar.reason ? [`reason: ${bar.reason}`] : []),
      ].join("\n");
      const g = s(
        "g",
        {
          class: classes,
          "data-task": bar.taskId,
          "data-attempt": bar.attempt,
          "data-seq": bar.seq,
          "data-progress": bar.progress,
        },
        s(
          "rect",
          { x: x0.toFixed(1), y: top, width: w.toFixed(1), height: BAR, rx: 3 },
          s("title", {}, tooltip),
        ),
      );
      if (typeof bar.progress === "number") {
        // The share done, as a darker band along the bottom of the running bar.
        g.append(s("rect", {
          class: "progress",
          x: x0.toFixed(1),
          y: top + BAR - 4,
          width: (w * Math.min(1, Math.max(0, bar.progress))).toFixed(1),
          height: 4,
        }));
      }
      const done = typeof bar.progress === "number" ? ` ${progressText(bar.progress)}` : "";
      const label = `${bar.redelivered ? "↻ " : ""}#${bar.seq}${done}`;
      if (label.length * 6.6 + 8 <= w) {
        g.append(
          s(
            "text",
            { x: (x0 + w / 2).toFixed(1), y: top + BAR / 2 + 4, "text-anchor": "middle" },
            label,
          ),
        );
      }
      if (bar.status === "interrupted") {
        const cx = x0 + w;
        const cy = top + BAR / 2;
        g.append(s("path", {
          class: "cross",
          d: `M${cx - 5},${cy - 5} L${cx + 5},${cy + 5} M${cx + 5},${cy - 5} L${cx - 5},${cy + 5}`,
        }));
      }
      bars.append(g);
    }
    group.append(bars);
    children.push(group);
    y += height;
  });
  if (rows.length === 0) {
    children.push(s("text", { class: "tick", x: NAME_WIDTH, y: axis + 24 }, "no task seen yet"));
    y += 36;
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${y + 4}`);
  svg.setAttribute("height", y + 4);
  svg.replaceChildren(...children);
}

// ---------------------------------------------------------------------------------------------
// Actions: the token travels in a header, which another site's page cannot send here.

async function act(path, body = {}) {
  const result = $("#action-result");
  result.className = "";
  result.textContent = "…";
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-tareas-token": token },
      body: JSON.stringify(body),
    });
    const reply = await response.json().catch(() => ({
      ok: false,
      message: `HTTP ${response.status}`,
    }));
    result.className = reply.ok ? "ok" : "error";
    result.textContent = reply.message;
  } catch (error) {
    result.className = "error";
    result.textContent = `Request failed: ${error.message}`;
  }
}

function setup() {
  setupToken();
  $("#actions").addEventListener("submit", (event) => event.preventDefault());
  $("#requeue-all").addEventListener("click", () => act("/api/requeue-all"));
  $("#purge").addEventListener("click", () => {
    const total = dead?.total ?? 0;
    if (confirm(`Delete all ${total} dead letters for good?`)) act("/api/purge");
  });
  $("#window").addEventListener("change", drawTimeline);
  setInterval(drawTimeline, 250);
  connect();
}

setup();
