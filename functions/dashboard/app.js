/* The fraud analysts' dashboard: plain JS, hand-written SVG charts, no external requests.
   Same-origin calls with the sign-in cookie (App Service Authentication): no key in any URL. */
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const page = new URL(window.location.href);
  const apiBase = page.pathname.replace(/\/dashboard(\/.*)?$/, "") || "/api";
  const state = { cursor: null, hours: 72, loading: false, shown: 0 };
  window.dashboardReady = { alerts: false, stats: false };

  function api(path, params) {
    const url = new URL(apiBase + "/" + path, page.origin);
    Object.entries(params || {}).forEach(([k, v]) => { if (v !== null && v !== undefined) url.searchParams.set(k, v); });
    return url.toString();
  }
  // Every response body is read to its end before the caller moves on. fetch() resolves on the
  // headers; Chromium leaves a body nobody reads in flight (it drains it itself only ~50 ms later),
  // so a reload or navigation in that window aborts the request (requestfailed: net::ERR_ABORTED)
  // although the server answered in full.
  // A body that is not JSON reads as {}; one that cannot be read fails the call, unless the status
  // already says it failed.
  async function readJson(response) {
    let text;
    try { text = await response.text(); } catch (err) { if (response.ok) throw err; return {}; }
    try { return text ? JSON.parse(text) : {}; } catch (err) { return {}; }
  }
  async function getJson(path, params) {
    const response = await fetch(api(path, params), { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await readJson(response);
    if (!response.ok) throw new Error(body.message || (path + ": HTTP " + response.status));
    return body;
  }
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    children.flat().forEach((c) => { if (c !== null && c !== undefined) node.append(c.nodeType ? c : String(c)); });
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function status(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("error", !!isError);
  }
  const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, "").slice(0, 19) : "");
  const fmtNum = (v, d) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d === undefined ? 2 : d));
  function fmtAmount(v, currency) {
    if (v === null || v === undefined) return "–";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }) + (currency ? " " + currency : "");
  }

  // -- the alert queue ------------------------------------------------------------------------
  function alertRow(a) {
    const tr = el("tr", { "data-txn": a.transaction_id });
    const activity = el("ul", { class: "activity" }, (a.recent_activity || []).map((r) =>
      el("li", { title: r.transaction_id || "" },
        fmtTime(r.timestamp).slice(5, 16) + " · " + fmtAmount(r.transaction_amount, r.currency) +
        (r.risk_level ? " · " + r.risk_level : ""))));
    if (!(a.recent_activity || []).length) activity.append(el("li", { text: "none" }));
    const fraud = el("button", { type: "button", class: "fraud", "data-label": "fraud", text: "Fraud" });
    const legit = el("button", { type: "button", class: "legit", "data-label": "legitimate", text: "Legitimate" });
    fraud.addEventListener("click", () => verdict(a, "fraud", tr));
    legit.addEventListener("click", () => verdict(a, "legitimate", tr));
    tr.append(
      el("td", { text: fmtTime(a.time), title: a.transaction_id }),
      el("td", {}, el("span", { class: "risk " + a.risk_level, text: a.risk_level })),
      el("td", { class: "num", text: fmtNum(a.score, 3) }),
      el("td", { class: "num", text: fmtAmount(a.amount, a.currency) }),
      el("td", { text: a.customer_id }),
      el("td", { text: [a.channel, a.merchant_id, a.device_id].filter(Boolean).join(" · ") || "–" }),
      el("td", {}, el("ul", { class: "reasons" }, (a.reasons || []).map((r) => el("li", { text: r })))),
      el("td", {}, activity),
      el("td", { class: "verdict" }, fraud, legit),
    );
    return tr;
  }
  function updateCount() {
    const rows = $("alert-rows").children.length;
    $("queue-count").textContent = "(" + rows + (state.cursor ? "+" : "") + ")";
    $("queue-empty").hidden = rows > 0;
    $("more").hidden = !state.cursor;
  }
  async function loadAlerts(reset) {
    if (state.loading) return;
    state.loading = true;
    try {
      if (reset) state.cursor = null;
      const body = await getJson("alerts", { limit: 50, hours: state.hours, cursor: reset ? null : state.cursor });
      const tbody = $("alert-rows");
      if (reset) tbody.replaceChildren();
      const present = new Set(Array.from(tbody.children, (r) => r.dataset.txn));
      body.alerts.filter((a) => !present.has(a.transaction_id)).forEach((a) => tbody.append(alertRow(a)));
      state.cursor = body.next_cursor;
      showAnalyst(body.analyst);
      updateCount();
      window.dashboardReady.alerts = true;
    } finally {
      state.loading = false;
    }
  }
  async function verdict(alert, label, tr) {
    tr.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    tr.classList.add("leaving");
    try {
      const response = await fetch(api("labels"), {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ transaction_id: alert.transaction_id, label: label, customer_id: alert.customer_id, source: "analyst" }),
      });
      const body = await readJson(response);  // the 202's body too: see readJson
      if (!response.ok) throw new Error(body.message || "HTTP " + response.status);
      tr.remove();
      updateCount();
      const current = (body.current || []).find((c) => c.transaction_id === alert.transaction_id) || {};
      showVerdict(current, alert.transaction_id, label);
      status("recorded " + alert.transaction_id + " as " + label + (current.labelled_by ? " by " + current.labelled_by : ""));
    } catch (err) {
      tr.classList.remove("leaving");
      tr.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      status("verdict on " + alert.transaction_id + " failed: " + err.message, true);
    }
  }

  const labelName = (v) => (v === 1 ? "fraud" : v === 0 ? "legitimate" : "–");
  function showVerdict(current, txn, label) {
    const rows = $("verdict-rows");
    Array.from(rows.children).filter((r) => r.dataset.txn === txn).forEach((r) => r.remove());
    rows.prepend(el("tr", { "data-txn": txn },
      el("td", { text: txn }),
      el("td", { class: "label", text: current.label === undefined ? label : labelName(current.label) }),
      el("td", { class: "by", text: current.labelled_by || "–" }),
      el("td", { text: current.previous_label === undefined || current.previous_label === null ? "–" : labelName(current.previous_label) }),
      el("td", { class: "num", text: current.history === undefined ? "–" : String(current.history) })));
  }
  function showAnalyst(analyst) {
    if (analyst && analyst.name) {
      $("analyst-name").textContent = analyst.name;
      $("analyst-badge").title = (analyst.roles || []).join(", ");
    }
  }

  // -- charts --------------------------------------------------------------------------------
  function frame(w, h) { return svg("svg", { viewBox: "0 0 " + w + " " + h, role: "img", preserveAspectRatio: "xMidYMid meet" }); }
  function noData(container, text) {
    const s = frame(420, 60);
    s.append(svg("text", { x: 210, y: 34, "text-anchor": "middle", class: "nodata" }, text || "no data yet"));
    container.replaceChildren(s);
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
  }
  function legend(s, x, y, items) {
    items.forEach(([cls, label], i) => {
      const g = svg("g", { class: "legend", transform: "translate(" + (x + i * 110) + "," + y + ")" });
      g.append(svg("rect", { x: 0, y: -8, width: 10, height: 10, class: cls }), svg("text", { x: 14, y: 1 }, label));
      s.append(g);
    });
  }

  function volumeChart(container, volume, rate) {
    const hours = Object.keys(volume).sort();
    if (!hours.length) return noData(container);
    const W = 560, H = 230, L = 48, R = 44, T = 18, B = 36, w = W - L - R, h = H - T - B;
    const s = frame(W, H);
    const vmax = niceMax(Math.max(...hours.map((k) => volume[k])));
    const rmax = niceMax(Math.max(0.0001, ...hours.map((k) => rate[k] || 0)));
    for (let i = 0; i <= 4; i++) {
      const y = T + h - (h * i) / 4;
      s.append(svg("line", { x1: L, x2: L + w, y1: y, y2: y, class: "grid" }));
      s.append(svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, ((vmax * i) / 4).toLocaleString("en-US", { maximumFractionDigits: vmax <= 20 ? 1 : 0 })));
      s.append(svg("text", { x: L + w + 4, y: y + 3 }, ((rmax * i * 100) / 4).toFixed(rmax < 0.04 ? 2 : 1) + "%"));
    }
    const step = w / hours.length, bw = Math.max(1, step * 0.8);
    const points = [];
    hours.forEach((k, i) => {
      const bh = (h * volume[k]) / vmax, x = L + i * step + (step - bw) / 2;
      const bar = svg("rect", { x: x, y: T + h - bh, width: bw, height: bh, class: "bar" });
      bar.append(svg("title", {}, k + ": " + volume[k] + " decisions, alert rate " + fmtNum((rate[k] || 0) * 100, 2) + "%"));
      s.append(bar);
      points.push([L + i * step + step / 2, T + h - (h * (rate[k] || 0)) / rmax]);
    });
    s.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), class: "line" }));
    if (points.length <= 48) points.forEach(([x, y]) => s.append(svg("circle", { cx: x, cy: y, r: 2, class: "dot" })));
    const every = Math.ceil(hours.length / 8);
    hours.forEach((k, i) => {
      if (i % every) return;
      s.append(svg("text", { x: L + i * step + step / 2, y: T + h + 14, "text-anchor": "middle" }, k.slice(5, 13).replace("T", " ") + "h"));
    });
    s.append(svg("line", { x1: L, x2: L + w, y1: T + h, y2: T + h, class: "axis" }));
    legend(s, L, H - 6, [["bar", "decisions / hour"], ["dot", "alert rate (High)"]]);
    container.replaceChildren(s);
  }

  function driftChart(container, features, thresholds) {
    const names = Object.keys(features || {}).sort((a, b) => features[b].psi - features[a].psi);
    if (!names.length) return noData(container, "no drift figures (no monitoring report yet)");
    const rowH = 16, L = 170, R = 56, T = 20, B = 26, W = 560, w = W - L - R, H = T + B + names.length * rowH;
    const s = frame(W, H);
    // the axis stops at 1 (or 2.5x the alert threshold): PSI beyond is off the scale and drawn clipped
    const top = Math.max(thresholds.alert * 2.5, 1);
    const max = niceMax(Math.max(thresholds.alert * 1.25, Math.min(top, Math.max(...names.map((n) => features[n].psi || 0)))));
    const xOf = (v) => L + (w * Math.min(v, max)) / max;
    names.forEach((n, i) => {
      const f = features[n], y = T + i * rowH;
      s.append(svg("text", { x: L - 6, y: y + rowH - 5, "text-anchor": "end" }, n));
      const bar = svg("rect", { x: L, y: y + 2, width: Math.max(1, xOf(f.psi || 0) - L), height: rowH - 5, class: f.status || "ok" });
      bar.append(svg("title", {}, n + ": PSI " + fmtNum(f.psi, 4) + " (" + (f.status || "?") +
        (f.alert_at ? ", alert at " + fmtNum(f.alert_at, 2) : "") + ")" + (f.test ? ", " + f.test + " p=" + fmtNum(f.p_value, 4) : "") +
        (f.moved ? "; " + f.moved : "") + (f.reason ? "; " + f.reason : "")));
      s.append(bar);
      s.append(svg("text", { x: xOf(f.psi || 0) + 4, y: y + rowH - 5 }, fmtNum(f.psi, 3) + ((f.psi || 0) > max ? " ▸" : "")));
    });
    [["th-warn", thresholds.warn, "warn"], ["th-alert", thresholds.alert, "alert"]].forEach(([cls, v, label]) => {
      s.append(svg("line", { x1: xOf(v), x2: xOf(v), y1: T - 4, y2: T + names.length * rowH, class: cls }));
      s.append(svg("text", { x: xOf(v) + (label === "warn" ? -3 : 3), y: T - 7, "text-anchor": label === "warn" ? "end" : "start" }, label + " " + v));
    });
    s.append(svg("line", { x1: L, x2: L, y1: T, y2: T + names.length * rowH, class: "axis" }));
    legend(s, L, H - 6, [["ok", "ok"], ["warn", "warn"], ["alert", "alert"], ["excluded", "never alarmed"]]);
    container.replaceChildren(s);
  }

  function groupedBars(container, groups, series, opts) {
    if (!groups.length) return noData(container, opts.empty);
    const W = 560, H = 220, L = 48, R = 12, T = 16, B = 40, w = W - L - R, h = H - T - B;
    const s = frame(W, H);
    const max = opts.max || niceMax(Math.max(...groups.flatMap((g) => series.map(([key]) => g.values[key] || 0))));
    for (let i = 0; i <= 4; i++) {
      const y = T + h - (h * i) / 4;
      s.append(svg("line", { x1: L, x2: L + w, y1: y, y2: y, class: "grid" }));
      s.append(svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" }, opts.tick((max * i) / 4)));
    }
    const gw = w / groups.length, bw = Math.min(60, (gw * 0.7) / series.length);
    groups.forEach((g, gi) => {
      const x0 = L + gi * gw + (gw - bw * series.length) / 2;
      series.forEach(([key, cls, label], si) => {
        const v = g.values[key];
        const bh = v === null || v === undefined ? 0 : (h * Math.min(v, max)) / max;
        const bar = svg("rect", { x: x0 + si * bw, y: T + h - bh, width: bw - 2, height: Math.max(bh, 0.5), class: cls });
        bar.append(svg("title", {}, g.label + " " + label + ": " + opts.value(v)));
        s.append(bar);
        s.append(svg("text", { x: x0 + si * bw + bw / 2 - 1, y: T + h - bh - 3, "text-anchor": "middle" }, opts.value(v)));
      });
      s.append(svg("text", { x: L + gi * gw + gw / 2, y: T + h + 14, "text-anchor": "middle" }, g.label));
    });
    s.append(svg("line", { x1: L, x2: L + w, y1: T + h, y2: T + h, class: "axis" }));
    if (series.length > 1) legend(s, L, H - 6, series.map(([, cls, label]) => [cls, label]));
    container.replaceChildren(s);
  }

  function renderStats(stats) {
    const note = stats.source === "monitoring_report"
      ? "latest monitoring report " + fmtTime(stats.run_at) + " UTC · " + ((stats.window || {}).decisions ?? "?") + " decisions"
      : stats.note || "computed from the audit log";
    $("stats-source").textContent = note;
    volumeChart($("chart-volume"), stats.volume_per_hour || {}, stats.alert_rate_per_hour || {});
    driftChart($("chart-drift"), (stats.drift || {}).features || {}, stats.psi_thresholds || { warn: 0.1, alert: 0.2 });
    const at = ((stats.performance || {}).at_thresholds) || {};
    groupedBars($("chart-perf"), Object.keys(at).sort((a, b) => at[a].threshold - at[b].threshold).map((k) => ({
      label: k + " (> " + at[k].threshold + ")", values: { precision: at[k].precision, recall: at[k].recall } })),
      [["precision", "bar", "precision"], ["recall", "bar2", "recall"]],
      { max: 1, tick: (v) => v.toFixed(2), value: (v) => fmtNum(v, 2), empty: "no matured decisions yet (labels take the maturity to arrive)" });
    const lat = stats.latency_ms || {};
    groupedBars($("chart-latency"), ["p50", "p95", "p99"].filter((k) => lat[k] !== null && lat[k] !== undefined)
      .map((k) => ({ label: k, values: { ms: lat[k] } })), [["ms", "bar", "ms"]],
      { tick: (v) => v.toLocaleString("en-US", { maximumFractionDigits: 1 }), value: (v) => fmtNum(v, 1), empty: "no latency figures yet" });
    const dist = stats.score_distribution;
    $("fig-scores").hidden = !(dist && dist.counts);
    if (dist && dist.counts) {
      groupedBars($("chart-scores"), dist.counts.map((c, i) => ({ label: fmtNum(dist.edges[i], 1), values: { n: c } })),
        [["n", "bar", "decisions"]], { tick: (v) => Math.round(v).toLocaleString(), value: (v) => (v ? String(v) : ""), empty: "" });
    }
    renderModel(stats.model || {});
  }

  function renderModel(model) {
    $("model-version").textContent = model.version || "none published";
    const facts = [["current version", model.version || "–"], ["serving in this process", model.serving_version || "not loaded yet"],
      ["promoted at", fmtTime(model.promoted_at) || "–"], ["previous version", model.previous || "–"]];
    $("model-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    $("model-history").replaceChildren(...(model.history || []).map((v) => el("tr", { class: v.current ? "current" : "" },
      el("td", { text: v.version + (v.current ? " (current)" : "") }), el("td", { text: fmtTime(v.created_at) }),
      el("td", { class: "num", text: fmtNum(v.roc_auc, 3) }), el("td", { class: "num", text: fmtNum(v.average_precision, 3) }),
      el("td", { text: v.promoted === undefined || v.promoted === null ? "–" : (v.promoted ? "promoted" : "refused") +
        (v.promotion_reason ? ": " + v.promotion_reason : "") }))));
  }

  async function loadStats() {
    const stats = await getJson("stats");
    renderStats(stats);
    showAnalyst(stats.analyst);
    window.dashboardReady.stats = true;
  }

  async function refresh() {
    delete document.body.dataset.ready;
    status("loading…");
    const results = await Promise.allSettled([loadAlerts(true), loadStats()]);
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length) status(failed.map((r) => r.reason.message).join("; "), true);
    else status("updated " + new Date().toLocaleTimeString());
    window.dashboardReady.done = true;
    document.body.dataset.ready = failed.length ? "error" : "ok";  // for tests and monitoring probes
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("refresh").addEventListener("click", refresh);
    $("more").addEventListener("click", () => loadAlerts(false).catch((e) => status(e.message, true)));
    $("hours").addEventListener("change", (e) => { state.hours = Number(e.target.value); loadAlerts(true).catch((err) => status(err.message, true)); });
    refresh();
  });
})();
