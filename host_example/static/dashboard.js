// The Midnight Command Center: the tiles from /api/v2/dashboard (compared with the previous
// period), the charts from /events/analytics over the chosen range, both narrowed to the
// chosen instance and channel; then the live stream, with an ETag-aware slow poll for the
// numbers. No build step, nothing from the internet.
"use strict";

const API = "/api/v2";
const POLL_MS = 30000;
const FEED_LIMIT = 50;
const HOUR_MS = 3600 * 1000;
const ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu",
  "Asia/Tokyo", "Australia/Sydney"];
const RANGES = { "24h": [24, "last 24 h"], "7d": [24 * 7, "last 7 days"], "30d": [24 * 30, "last 30 days"] };

const state = {
  key: null, etag: null, zone: null, stream: null, timer: null,
  range: "24h", instance: "", channel: "", instances: new Set(),
};
const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

function readKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get("key");
  if (fromLink) {
    sessionStorage.setItem("omniKey", fromLink);
    history.replaceState(null, "", location.pathname);  // keep the key out of the address bar
  }
  return sessionStorage.getItem("omniKey");
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function askForKey() {
  $("board").hidden = true;
  $("key-form").hidden = false;
  $("key").focus();
}

function setupZones() {
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zones = [...new Set([local, ...ZONES])];
  for (const zone of zones) {
    const option = document.createElement("option");
    option.value = zone;
    option.textContent = zone === local ? `${zone} (this browser)` : zone;
    $("zone").append(option);
  }
  state.zone = sessionStorage.getItem("omniZone") || "UTC";
  $("zone").value = state.zone;
  $("zone").addEventListener("change", () => {
    state.zone = $("zone").value;
    sessionStorage.setItem("omniZone", state.zone);
    state.etag = null;
    load();
  });
}

function setupFilters() {
  const changed = () => { state.etag = null; load(); };
  $("instance").addEventListener("change", () => { state.instance = $("instance").value; changed(); });
  $("channel").addEventListener("change", () => { state.channel = $("channel").value; changed(); });
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => {
      state.range = button.dataset.range;
      for (const other of document.querySelectorAll("[data-range]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      loadCharts();
    });
  }
}

// The chosen zone, instance and channel as query arguments.
function filters() {
  const params = new URLSearchParams({ timezone: state.zone });
  if (state.instance) params.set("instanceId", state.instance);
  if (state.channel) params.set("channel", state.channel);
  return params;
}

async function request(url, headers) {
  try {
    return await fetch(url, { headers: { "x-api-key": state.key, ...headers } });
  } catch (err) {
    showError("The API is unreachable; retrying.");
    return null;
  }
}

// Whether the answer is an error (shown; a refused key asks for another).
async function refused(response) {
  if (response.status === 401) {
    sessionStorage.removeItem("omniKey");
    showError("That API key was refused.");
    askForKey();
    return true;
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    showError(body.error ? body.error.message : `The API answered ${response.status}.`);
    return true;
  }
  return false;
}

async function load() {
  const params = filters();
  params.set("compare", "previous_period");
  const response = await request(`${API}/dashboard?${params}`, state.etag ? { "If-None-Match": state.etag } : {});
  if (!response) return;
  if (response.status !== 304) {
    if (await refused(response)) return;
    showError("");
    state.etag = response.headers.get("ETag");
    render(await response.json());
  }
  await loadCharts();
}

// The charts: the range's timeline (traffic and failure-rate sparklines) and breakdowns.
async function loadCharts() {
  const [hours, label] = RANGES[state.range];
  const params = filters();
  params.set("since", new Date(Date.now() - hours * HOUR_MS).toISOString());
  const response = await request(`${API}/events/analytics?${params}`, {});
  if (!response || await refused(response)) return;
  const a = await response.json();
  for (const name of ["total", "lastHour", "perHour", "perMinute"]) {
    sparkline(tileEl(name).querySelector(".spark"), a.timeline, (b) => b.count);
  }
  sparkline(tileEl("failureRate").querySelector(".spark"), a.timeline,
    (b) => (b.count ? (b.failed / b.count) * 100 : 0));
  for (const el of document.querySelectorAll(".range-label")) el.textContent = label;
  renderBreakdowns(a.byChannel, a.byDirection);
  for (const id of Object.keys(a.instances)) addInstance(id);
  $("board").dataset.range = state.range;
}

function addInstance(id) {
  if (state.instances.has(id)) return;
  state.instances.add(id);
  const option = document.createElement("option");
  option.value = id;
  option.textContent = id;
  $("instance").append(option);
}

function tileEl(name) {
  return document.querySelector(`[data-testid="tile-${name}"]`);
}

// "+12 % vs previous 24 h": the relative change; "new" when the earlier value was 0.
function delta(el, now, before, what) {
  el.classList.remove("up", "down");
  el.dataset.change = "";
  if (before === undefined) {
    el.textContent = "";
    return;
  }
  let text = "new";
  if (before === 0 && now === 0) {
    text = "±0 %";
    el.dataset.change = "0";
  } else if (before !== 0) {
    const change = ((now - before) / before) * 100;
    const sign = change > 0 ? "+" : change < 0 ? "−" : "±";
    text = `${sign}${number.format(Math.abs(Math.round(change)))} %`;
    el.dataset.change = String(change);
    if (change) el.classList.add(change > 0 ? "up" : "down");
  }
  el.textContent = `${text} ${what}`;
}

function tile(name, value, text, now, before, what) {
  const el = tileEl(name);
  const valueEl = el.querySelector(".value");
  valueEl.textContent = text;
  valueEl.dataset.value = String(value);
  delta(el.querySelector(".delta"), now, before, what);
}

function sparkline(svg, timeline, value) {
  const values = timeline.map(value);
  const max = Math.max(1, ...values);
  const width = Math.max(1, values.length - 1);
  svg.setAttribute("viewBox", `0 0 ${width} 40`);
  svg.setAttribute("preserveAspectRatio", "none");
  const points = values.map((v, i) => `${i},${(38 - (v / max) * 36).toFixed(2)}`).join(" ");
  svg.innerHTML = `<polyline points="${points}"></polyline>`;
  svg.dataset.points = String(values.length);
  if (timeline.length) {
    svg.setAttribute("aria-label", `${timeline[0].bucket} to ${timeline[timeline.length - 1].bucket}`);
  }
}

function render(d) {
  const e = d.events;
  const p = e.previous || {};
  $("board").hidden = false;
  $("key-form").hidden = true;
  tile("total", e.total, number.format(e.total), e.last24h, p.last24h, "in 24 h vs previous 24 h");
  tile("lastHour", e.lastHour, number.format(e.lastHour ?? 0), e.lastHour, p.lastHour, "vs previous hour");
  tile("perHour", e.perHour, number.format(e.perHour ?? 0), e.perHour, p.perHour, "vs previous 24 h");
  tile("perMinute", e.perMinute, number.format(e.perMinute ?? 0), e.perMinute, p.perMinute,
    "vs previous hour");
  tile("failureRate", e.failureRate, `${number.format(e.failureRate)} %`, e.failed24h, p.failed24h,
    "failures vs previous 24 h");

  const a = d.automations;
  $("auto-running").textContent = a.running ? "running" : "stopped";
  $("auto-total").textContent = a.totalExecutions === undefined ? "–" : number.format(a.totalExecutions);
  $("auto-success").textContent = a.successRate === undefined ? "–" : `${number.format(a.successRate)} %`;
  $("dead-pending").textContent = number.format(d.deadLetters.pending);
  $("dead-total").textContent = number.format(d.deadLetters.total);
  $("inst-connected").textContent = number.format(d.instances.connected);
  $("inst-total").textContent = number.format(d.instances.total);
  $("uptime").textContent = `${Math.floor(d.system.uptime / 60)} min`;
  $("db-latency").textContent = d.system.dbLatency === null ? "down" : `${d.system.dbLatency} ms`;
  const healthy = d.system.status === "healthy";
  $("system").textContent = `${d.system.status} · NATS ${d.system.natsConnected ? "up" : "off"}`;
  $("system").className = `pill ${healthy ? "ok" : "bad"}`;
}

function renderBreakdowns(byChannel, byDirection) {
  const channels = Object.entries(byChannel || {}).sort((a, b) => b[1] - a[1]);
  const top = Math.max(1, ...channels.map(([, n]) => n));
  $("channels").replaceChildren(...channels.map(([channel, n]) => {
    const li = document.createElement("li");
    li.dataset.channel = channel;
    li.innerHTML = `<span></span><span class="track"><span class="fill"></span></span><b></b>`;
    li.children[0].textContent = channel;
    li.querySelector(".fill").style.width = `${(n / top) * 100}%`;
    li.children[2].textContent = number.format(n);
    return li;
  }));
  const dir = byDirection || { inbound: 0, outbound: 0 };
  const all = Math.max(1, dir.inbound + dir.outbound);
  $("inbound").textContent = number.format(dir.inbound);
  $("outbound").textContent = number.format(dir.outbound);
  $("inbound-bar").style.width = `${(dir.inbound / all) * 100}%`;
  $("outbound-bar").style.width = `${(dir.outbound / all) * 100}%`;
}

function feedRow(kind, data) {
  const li = document.createElement("li");
  li.className = "fresh";
  li.dataset.id = data.id || "";
  const time = document.createElement("time");
  const at = data.receivedAt ? new Date(data.receivedAt) : new Date();
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString(undefined, { timeZone: state.zone });
  const what = document.createElement("span");
  what.textContent = kind === "instance.status"
    ? (data.isConnected ? "instance connected" : "instance disconnected")
    : data.eventType;
  const channel = document.createElement("span");
  channel.textContent = data.channel || "–";
  const detail = document.createElement("span");
  detail.textContent = [data.direction, data.instanceId].filter(Boolean).join(" · ");
  li.append(time, what, channel, detail);
  $("feed").prepend(li);
  $("feed-empty").hidden = true;
  while ($("feed").children.length > FEED_LIMIT) $("feed").lastElementChild.remove();
}

function follow() {
  if (state.stream) state.stream.close();
  const stream = new EventSource(`${API}/events/stream?api_key=${encodeURIComponent(state.key)}`);
  state.stream = stream;
  const mark = (text, ok) => {
    $("feed-state").textContent = text;
    $("feed-state").className = `pill ${ok ? "ok" : "bad"}`;
  };
  stream.addEventListener("connected", () => mark("live", true));
  stream.addEventListener("event.received", (m) => feedRow("event.received", JSON.parse(m.data)));
  stream.addEventListener("instance.status", (m) => feedRow("instance.status", JSON.parse(m.data)));
  stream.addEventListener("status", (m) => mark(JSON.parse(m.data).natsConnected ? "live" : "NATS down", JSON.parse(m.data).natsConnected));
  stream.addEventListener("reset", () => { state.etag = null; load(); });
  stream.onerror = () => mark("reconnecting", false);  // EventSource retries by itself
}

function start() {
  state.key = readKey();
  setupZones();
  setupFilters();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("omniKey", $("key").value.trim());
    state.key = $("key").value.trim();
    state.etag = null;
    boot();
  });
  if (!state.key) {
    askForKey();
    return;
  }
  boot();
}

async function boot() {
  await load();
  if (!$("board").hidden) {
    follow();
    clearInterval(state.timer);
    state.timer = setInterval(load, POLL_MS);
  }
}

start();
