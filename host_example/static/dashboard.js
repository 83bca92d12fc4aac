// The Midnight Command Center: one request to /api/v2/dashboard, then the live stream,
// with an ETag-aware slow poll for the numbers. No build step, nothing from the internet.
"use strict";

const API = "/api/v2";
const POLL_MS = 30000;
const FEED_LIMIT = 50;
const ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu",
  "Asia/Tokyo", "Australia/Sydney"];

const state = { key: null, etag: null, zone: null, stream: null, timer: null };
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

async function load() {
  const headers = { "x-api-key": state.key };
  if (state.etag) headers["If-None-Match"] = state.etag;
  let response;
  try {
    response = await fetch(`${API}/dashboard?timezone=${encodeURIComponent(state.zone)}`, { headers });
  } catch (err) {
    showError("The API is unreachable; retrying.");
    return;
  }
  if (response.status === 304) return;
  if (response.status === 401) {
    sessionStorage.removeItem("omniKey");
    showError("That API key was refused.");
    askForKey();
    return;
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    showError(body.error ? body.error.message : `The API answered ${response.status}.`);
    return;
  }
  showError("");
  state.etag = response.headers.get("ETag");
  render(await response.json());
}

function tile(name, value, text, timeline) {
  const el = document.querySelector(`[data-testid="tile-${name}"]`);
  const valueEl = el.querySelector(".value");
  valueEl.textContent = text;
  valueEl.dataset.value = String(value);
  sparkline(el.querySelector(".spark"), timeline || []);
}

function sparkline(svg, timeline) {
  const counts = timeline.map((b) => b.count);
  const max = Math.max(1, ...counts);
  const width = Math.max(1, counts.length - 1);
  svg.setAttribute("viewBox", `0 0 ${width} 40`);
  svg.setAttribute("preserveAspectRatio", "none");
  const points = counts.map((c, i) => `${i},${(38 - (c / max) * 36).toFixed(2)}`).join(" ");
  svg.innerHTML = `<polyline points="${points}"></polyline>`;
  svg.dataset.points = String(counts.length);
  if (timeline.length) {
    svg.setAttribute("aria-label", `${timeline[0].bucket} to ${timeline[timeline.length - 1].bucket}`);
  }
}

function render(d) {
  const e = d.events;
  $("board").hidden = false;
  $("key-form").hidden = true;
  tile("total", e.total, number.format(e.total), e.timeline);
  tile("lastHour", e.lastHour, number.format(e.lastHour ?? 0), e.timeline);
  tile("perHour", e.perHour, number.format(e.perHour ?? 0), e.timeline);
  tile("perMinute", e.perMinute, number.format(e.perMinute ?? 0), e.timeline);
  tile("failureRate", e.failureRate, `${number.format(e.failureRate)} %`, e.timeline);

  const channels = Object.entries(e.byChannel || {}).sort((a, b) => b[1] - a[1]);
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

  const dir = e.byDirection || { inbound: 0, outbound: 0 };
  const all = Math.max(1, dir.inbound + dir.outbound);
  $("inbound").textContent = number.format(dir.inbound);
  $("outbound").textContent = number.format(dir.outbound);
  $("inbound-bar").style.width = `${(dir.inbound / all) * 100}%`;
  $("outbound-bar").style.width = `${(dir.outbound / all) * 100}%`;

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
