// The evald dashboard: plain JavaScript over the JSON API, no build step.
// Pages (by path): "/" and "/ui/" list the streams; "/ui/streams/{name}"
// shows one stream (metrics, plots, per-user lookup, "?user=" runs the
// lookup); "/ui/compare?a=..&b=.." compares two streams.
"use strict";

const KEY_STORAGE = "evald.apiKey";
const REFRESH_MS = 5000;
// Chart kinds the stream page shows, in order.
const PLOT_KINDS = ["roc", "pr", "calibration", "scores", "thresholds"];
// Smaller charts on a phone, so their text is not shrunk to nothing.
const PLOT_QUERY = window.innerWidth < 600 ? "width=480&height=360" : "width=720&height=480";

const main = document.getElementById("main");
const statusBox = document.getElementById("status");

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function headers() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
}

// A problem+json answer as an Error with its detail.
async function failure(response) {
  let detail = response.status + " " + response.statusText;
  try {
    const problem = await response.json();
    if (problem && problem.detail) detail = problem.detail;
  } catch (_) { /* not JSON: keep the status line */ }
  const err = new Error(detail);
  err.status = response.status;
  return err;
}

async function getJson(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// Fetches an SVG chart with the key and returns an object URL for an <img>
// (an <img src> could not send the Authorization header).
async function getSvgUrl(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

function showStatus(message) {
  statusBox.textContent = message;
  statusBox.hidden = !message;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function fmt(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits === undefined ? 4 : digits) : "—";
}

// "0.8123 ± 0.0100" or "0.8123 [0.79, 0.83]" when the answer has an interval.
function aucText(m) {
  const ci = m.auc_ci;
  if (ci && typeof ci.lower === "number" && typeof ci.upper === "number") {
    return fmt(m.auc) + " [" + fmt(ci.lower, 3) + ", " + fmt(ci.upper, 3) + "]";
  }
  return fmt(m.auc);
}

function ago(rfc3339) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(rfc3339)) / 1000));
  if (!Number.isFinite(seconds)) return rfc3339;
  if (seconds < 120) return seconds + " s ago";
  if (seconds < 7200) return Math.round(seconds / 60) + " min ago";
  return rfc3339.replace("T", " ").slice(0, 19);
}

function cell(field, value, text) {
  const td = el("td", { text: text, "data-field": field });
  if (typeof value === "number") td.setAttribute("data-value", String(value));
  return td;
}

function streamUrl(name) {
  return "/ui/streams/" + encodeURIComponent(name);
}

function apiStream(name) {
  return "/streams/" + encodeURIComponent(name);
}

// ---- the stream list ----

const LIST_COLUMNS = ["Stream", "Records", "Users", "AUC", "GAUC", "AP", "Log loss", "AUC error bound", "Last update"];

async function listPage() {
  document.title = "Streams · evald";
  const body = el("tbody");
  const table = el("table", { id: "streams" },
    el("thead", {}, el("tr", {}, ...LIST_COLUMNS.map((c) => el("th", { text: c })))), body);
  const empty = el("p", { className: "muted", text: "No streams yet. Send records with POST /streams/{name} or `evald push`." });
  main.replaceChildren(el("h1", { text: "Streams" }), el("div", { className: "table-wrap" }, table), empty,
    compareForm([]));
  const refresh = async () => {
    try {
      const streams = await getJson("/streams");
      const metrics = await Promise.all(streams.map((s) =>
        getJson(apiStream(s.name) + "/metrics").catch((e) => ({ error: e.message }))));
      body.replaceChildren(...streams.map((s, i) => streamRow(s, metrics[i])));
      empty.hidden = streams.length > 0;
      main.querySelector("form.compare").replaceWith(compareForm(streams.map((s) => s.name)));
      showStatus("");
    } catch (e) {
      showStatus("Could not load the streams: " + e.message);
    }
    document.body.setAttribute("data-ready", "1");
  };
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

function streamRow(s, m) {
  const gauc = m.gauc ? m.gauc.value : undefined;
  const row = el("tr", { "data-stream": s.name },
    el("td", {}, el("a", { href: streamUrl(s.name), text: s.name })),
    cell("count", s.count, String(s.count)),
    cell("users", s.users, String(s.users)),
    cell("auc", m.auc, m.error ? m.error : aucText(m)),
    cell("gauc", gauc, fmt(gauc)),
    cell("average_precision", m.average_precision, fmt(m.average_precision)),
    cell("log_loss", m.log_loss, fmt(m.log_loss)),
    cell("auc_error_bound", m.auc_error_bound, typeof m.auc_error_bound === "number" ? m.auc_error_bound.toExponential(1) : "—"),
    el("td", { text: ago(s.updated_at), title: s.updated_at }));
  return row;
}

function compareForm(names) {
  const pick = (id) => el("select", { name: id, id: "compare-" + id },
    ...names.map((n) => el("option", { value: n, text: n })));
  const form = el("form", { className: "inline compare", action: "/ui/compare", method: "get" },
    el("strong", { text: "Compare two streams:" }), pick("a"), el("span", { text: "vs" }), pick("b"),
    el("button", { type: "submit", text: "Compare" }));
  const b = form.querySelector("#compare-b");
  if (names.length > 1) b.selectedIndex = 1;
  form.hidden = names.length < 2;
  return form;
}

// ---- one stream ----

function metricsTable(m) {
  const rows = [
    ["Records", m.count, String(m.count), "count"],
    ["Positives / negatives", undefined, m.positives + " / " + m.negatives, "classes"],
    ["AUC", m.auc, aucText(m), "auc"],
    ["GAUC", m.gauc ? m.gauc.value : undefined, fmt(m.gauc ? m.gauc.value : undefined), "gauc"],
    ["Average precision", m.average_precision, fmt(m.average_precision), "average_precision"],
    ["Log loss", m.log_loss, fmt(m.log_loss), "log_loss"],
    ["Threshold", m.threshold, String(m.threshold), "threshold"],
    ["Precision", m.precision, fmt(m.precision), "precision"],
    ["Recall", m.recall, fmt(m.recall), "recall"],
    ["F1", m.f1, fmt(m.f1), "f1"],
    ["Accuracy", m.accuracy, fmt(m.accuracy), "accuracy"],
    ["AUC error bound", m.auc_error_bound, typeof m.auc_error_bound === "number" ? m.auc_error_bound.toExponential(1) : "—", "auc_error_bound"],
  ];
  const tbody = el("tbody", {}, ...rows.map(([label, value, text, field]) =>
    el("tr", {}, el("th", { text: label, scope: "row" }), cell(field, value, text))));
  const table = el("table", { className: "metrics" }, tbody);
  const wrap = el("div", { className: "table-wrap narrow" }, table);
  if (m.warnings && m.warnings.length) {
    return el("div", {}, wrap, el("ul", { className: "muted" }, ...m.warnings.map((w) => el("li", { text: w }))));
  }
  return wrap;
}

// A figure whose image is fetched with the key; `data-loaded` is set once it
// has decoded, `data-failed` with the problem's detail otherwise.
function plotFigure(path, kind, caption) {
  const img = el("img", { alt: caption, "data-kind": kind });
  const figure = el("figure", { "data-kind": kind }, img, el("figcaption", { text: caption }));
  const done = getSvgUrl(path).then((url) => new Promise((resolve) => {
    img.onload = () => { img.setAttribute("data-loaded", "1"); resolve(); };
    img.onerror = () => { figure.setAttribute("data-failed", "the image did not decode"); resolve(); };
    img.src = url;
  })).catch((e) => {
    figure.setAttribute("data-failed", e.message);
    figure.append(el("p", { className: "problem", text: e.message }));
  });
  return { figure, done };
}

const CAPTIONS = {
  roc: "ROC curve", pr: "Precision-recall curve", calibration: "Calibration (reliability) curve",
  scores: "Score distribution by class", thresholds: "Precision, recall and F1 by threshold",
};

function plotGrid(base, kinds) {
  const figures = kinds.map((k) => plotFigure(base + "/plots/" + k + "?" + PLOT_QUERY, k, CAPTIONS[k] || k));
  return { grid: el("div", { className: "plots" }, ...figures.map((f) => f.figure)), done: Promise.all(figures.map((f) => f.done)) };
}

async function streamPage(name) {
  document.title = name + " · evald";
  const userInput = el("input", { id: "user-id", name: "user", placeholder: "user id", required: true });
  const userOut = el("div", { id: "user-result" });
  const userForm = el("form", { className: "inline", id: "user-form" },
    el("label", { htmlFor: "user-id", text: "Look up a user:" }), userInput, el("button", { type: "submit", text: "Show" }));
  const metricsBox = el("div", { id: "stream-metrics" }, el("p", { text: "Loading…" }));
  const plots = plotGrid(apiStream(name), PLOT_KINDS);
  main.replaceChildren(
    el("h1", {}, "Stream ", el("code", { text: name })),
    metricsBox, el("h2", { text: "Plots" }), plots.grid,
    el("h2", { text: "Per user" }), userForm, userOut);
  userForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const user = userInput.value.trim();
    const url = new URL(location.href);
    url.searchParams.set("user", user);
    history.replaceState(null, "", url);
    showUser(name, user, userOut);
  });
  const work = [plots.done];
  work.push(getJson(apiStream(name) + "/metrics")
    .then((m) => metricsBox.replaceChildren(metricsTable(m)))
    .catch((e) => metricsBox.replaceChildren(el("p", { className: "problem", text: e.message }))));
  const user = new URLSearchParams(location.search).get("user");
  if (user) {
    userInput.value = user;
    work.push(showUser(name, user, userOut));
  }
  await Promise.all(work);
  document.body.setAttribute("data-ready", "1");
}

async function showUser(name, user, out) {
  out.replaceChildren(el("p", { text: "Loading…" }));
  const base = apiStream(name) + "/users/" + encodeURIComponent(user);
  try {
    const m = await getJson(base + "/metrics");
    const roc = plotFigure(base + "/plots/roc?width=560&height=400", "user-roc", "ROC curve of user " + user);
    out.replaceChildren(el("div", { "data-user": user }, metricsTable(m)), el("div", { className: "plots single" }, roc.figure));
    await roc.done;
  } catch (e) {
    out.replaceChildren(el("p", { className: "problem", "data-user-error": "1", text: e.message }));
  }
}

// ---- compare ----

async function comparePage() {
  document.title = "Compare · evald";
  const params = new URLSearchParams(location.search);
  const a = params.get("a") || "";
  const b = params.get("b") || "";
  let names = [];
  try {
    names = (await getJson("/streams")).map((s) => s.name);
  } catch (e) {
    showStatus("Could not load the streams: " + e.message);
  }
  const form = compareForm(names);
  form.hidden = false;
  if (a) form.querySelector("#compare-a").value = a;
  if (b) form.querySelector("#compare-b").value = b;
  main.replaceChildren(el("h1", { text: "Compare two streams" }), form);
  if (a && b) {
    const result = el("div", { id: "compare-result" }, el("p", { text: "Loading…" }));
    const pa = plotGrid(apiStream(a), ["roc"]);
    const pb = plotGrid(apiStream(b), ["roc"]);
    main.append(result, el("div", { className: "plots" }, pa.grid, pb.grid));
    await Promise.all([pa.done, pb.done, showComparison(a, b, result)]);
  }
  document.body.setAttribute("data-ready", "1");
}

async function showComparison(a, b, out) {
  try {
    const c = await getJson(apiStream(a) + "/compare/" + encodeURIComponent(b));
    const row = (label, field, d) => el("tr", {},
      el("th", { text: label, scope: "row" }),
      cell(field, d ? d.value : undefined, fmt(d ? d.value : undefined)),
      el("td", { text: d && typeof d.lower === "number" ? "[" + fmt(d.lower) + ", " + fmt(d.upper) + "]" : "—" }),
      el("td", { text: d && typeof d.p_value === "number" ? "p = " + d.p_value.toPrecision(3) : "—" }));
    const rows = [
      el("tr", {}, el("th", { text: "" }), el("th", { text: "value" }), el("th", { text: "interval" }), el("th", { text: "test" })),
      row("AUC of " + a, "auc_a", { value: c.a && c.a.auc, lower: c.a && c.a.auc_ci && c.a.auc_ci.lower, upper: c.a && c.a.auc_ci && c.a.auc_ci.upper }),
      row("AUC of " + b, "auc_b", { value: c.b && c.b.auc, lower: c.b && c.b.auc_ci && c.b.auc_ci.lower, upper: c.b && c.b.auc_ci && c.b.auc_ci.upper }),
      row("AUC difference (b − a)", "auc_diff", c.auc_diff),
      row("GAUC difference (b − a)", "gauc_diff", c.gauc_diff),
    ];
    const notes = (c.warnings || []).map((w) => el("li", { text: w }));
    out.replaceChildren(el("div", { className: "table-wrap narrow" }, el("table", {}, el("tbody", {}, ...rows))),
      el("ul", { className: "muted" }, ...notes));
  } catch (e) {
    out.replaceChildren(el("p", { className: "problem", text: "Comparison unavailable: " + e.message }));
  }
}

// ---- start ----

function keyForm() {
  const input = document.getElementById("api-key");
  input.value = apiKey();
  document.getElementById("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
    location.reload();
  });
}

function route() {
  const path = location.pathname.replace(/\/+$/, "");
  const stream = path.match(/^\/ui\/streams\/([^/]+)$/);
  if (stream) return streamPage(decodeURIComponent(stream[1]));
  if (path === "/ui/compare") return comparePage();
  return listPage();
}

keyForm();
route();
