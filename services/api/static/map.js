// Journey map page: the live map of one journey type across all customers, filtered by persona, channel
// and time window, refreshed every few seconds. Same token handling as the agent page (session storage).
// Charts: Apache ECharts (vendored, SVG renderer); swimlanes: map_lanes.js. API text is never markup.
"use strict";

(() => {
  const { words, channelName, el, HIGH } = window.Journeys;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 5000;
  const charts = {};
  let doc = null, updatedAt = 0, inFlight = false, generation = 0;

  const token = () => $("token").value.trim() || sessionStorage.getItem("journeys.token") || "";

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
    if (resp.ok) return resp.json();
    let reason = resp.statusText;
    try { reason = (await resp.json()).error.reason; } catch (e) { /* keep the status text */ }
    const err = new Error(reason);
    err.status = resp.status;
    throw err;
  }

  function query() {
    const until = Date.now();
    const p = new URLSearchParams({ since: String(until - Number($("window").value)), until: String(until) });
    for (const name of ["journey", "persona", "channel"]) if ($(name).value) p.set(name, $(name).value);
    return p;
  }

  // A filter change bumps the generation: an answer to an older request is dropped, never drawn over it.
  async function load(force) {
    if (inFlight && !force) return;
    inFlight = true;
    const mine = ++generation;
    try {
      const found = await api(`/api/v1/journey-map?${query()}`);
      if (mine !== generation) return;
      doc = found;
      updatedAt = Date.now();
      document.querySelector(".token").open = false;
      render();
    } catch (e) {
      if (e.status === 401) {
        document.querySelector(".token").open = true;
        setStatus("The API token was rejected: enter it under “API token”.", true);
      } else if (e.status === 400) {
        setStatus(`Cannot show that: ${e.message}.`, true);
      } else {
        setStatus("The journey service cannot be reached; retrying.", true);
      }
    } finally {
      if (mine === generation) inFlight = false;
    }
  }

  function fill(select, values, label) {
    if (select.options.length > (select.id === "journey" ? 0 : 1)) return;
    for (const v of values) select.append(new Option(label(v), v));
  }

  function tick() {
    if (!updatedAt) return;
    const s = Math.round((Date.now() - updatedAt) / 1000);
    $("updated").textContent = `updated ${s} s ago`;
  }

  function card(id, label, value, sub) {
    const c = el("div", "card");
    c.append(el("div", "label", label));
    const v = el("div", "value", value);
    v.id = id;
    if (sub) v.append(el("span", "sub", sub));
    c.append(v);
    return c;
  }

  function pct(x) { return x === null || x === undefined ? "–" : `${Math.round(x * 100)} %`; }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  function render() {
    fill($("journey"), doc.journeys, words);
    if (!$("journey").value) $("journey").value = doc.journey;
    fill($("persona"), doc.personas, words);
    fill($("channel"), doc.channels, channelName);
    const t = doc.totals;
    const first = doc.stages[0] || { entries: 0 };
    const last = doc.stages.filter((s) => !s.terminal).slice(-1)[0] || { conversions: 0 };
    $("totals").replaceChildren(
      card("total-entries", "Stage entries", t.entries, `${first.entries} started`),
      card("total-now", "In the journey now", t.in_journey_now),
      card("total-dropoffs", "Drop-offs", t.dropoffs),
      card("total-alerts", "Open alerts", t.open_alerts),
      card("total-converted", "Completed the last stage", last.conversions),
    );
    const f = doc.filters;
    setStatus(`${words(doc.journey)} · ${f.persona ? words(f.persona) : "every persona"} · ` +
      `${f.channel ? channelName(f.channel) : "every channel"} · event time ${f.since.slice(0, 16)} → ${f.until.slice(0, 16)} UTC`);
    $("lanes").innerHTML = window.JourneyLanes.render(doc);  // escaped markup built by map_lanes.js
    $("map").hidden = false;
    renderCharts();
    renderRows();
    renderPersonas();
    tick();
  }

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init($(id), null, { renderer: "svg" });
    return charts[id];
  }

  function renderCharts() {
    const stages = doc.stages;
    const names = stages.map((s) => words(s.name));
    chart("funnel").setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 48, right: 16, top: 36, bottom: 40 },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, rotate: 20 } }, yAxis: { type: "value" },
      series: [
        { name: "entries", type: "bar", data: stages.map((s) => s.entries), itemStyle: { color: "#2f6fed" } },
        { name: "converted", type: "bar", data: stages.map((s) => s.conversions), itemStyle: { color: "#389e0d" } },
        { name: "abandoned", type: "bar", stack: "drop", data: stages.map((s) => s.dropoffs.abandoned), itemStyle: { color: HIGH } },
        { name: "stalled", type: "bar", stack: "drop", data: stages.map((s) => s.dropoffs.stalled), itemStyle: { color: "#a8071a" } },
      ],
    }, true);
    chart("emotion").setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 48, right: 48, top: 36, bottom: 40 },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, rotate: 20 } },
      yAxis: [{ type: "value", min: -1, max: 1, name: "sentiment" }, { type: "value", min: -100, max: 100, name: "NPS" }],
      series: [
        { name: "mean sentiment", type: "line", smooth: true, connectNulls: true, data: stages.map((s) => s.sentiment.mean),
          lineStyle: { width: 3 }, markLine: { silent: true, symbol: "none", data: [{ yAxis: 0 }] } },
        { name: "NPS", type: "bar", yAxisIndex: 1, barWidth: 14, data: stages.map((s) => s.nps.score),
          itemStyle: { color: "#b07aa1" } },
      ],
    }, true);
    const order = new Map(stages.map((s, i) => [s.name, i]));
    const forward = doc.transitions.filter((l) => order.get(l.to) > order.get(l.from));
    const back = doc.transitions.filter((l) => !(order.get(l.to) > order.get(l.from)));
    $("loops").textContent = back.length ? `moves back (not drawn): ${back.map((l) => `${words(l.from)} → ${words(l.to)} ${l.count}`).join(", ")}` : "";
    const used = new Set(forward.flatMap((l) => [l.from, l.to]));
    chart("sankey").setOption({
      animation: false, tooltip: { trigger: "item" },
      series: [{ type: "sankey", left: 10, right: 90, nodeAlign: "left", emphasis: { focus: "adjacency" },
        data: stages.filter((s) => used.has(s.name)).map((s) => ({ name: s.name, itemStyle: { color: s.terminal ? "#8c8c8c" : "#2f6fed" } })),
        links: forward.map((l) => ({ source: l.from, target: l.to, value: l.count })),
        label: { formatter: (p) => words(p.name) }, lineStyle: { color: "gradient", opacity: 0.4 } }],
    }, true);
  }

  function renderRows() {
    $("rows").replaceChildren(...doc.stages.map((s) => {
      const tr = el("tr", s.terminal ? "terminal" : "");
      const t = s.time_in_stage;
      const nps = s.nps.responses ? `${s.nps.score} (${s.nps.responses})` : "–";
      const emotions = Object.entries(s.emotions).sort((a, b) => b[1] - a[1]).slice(0, 2)
        .map(([e, n]) => `${words(e)} ${n}`).join(", ") || "–";
      for (const v of [words(s.name), s.entries, s.in_stage_now, pct(s.conversion_rate), s.dropoffs.abandoned,
        s.dropoffs.stalled, `${duration(t.median_seconds)} / ${duration(t.p90_seconds)}`,
        `${s.inbound} / ${s.outbound}`, s.offstage, s.sentiment.mean === null ? "–" : s.sentiment.mean.toFixed(2), emotions, nps]) {
        tr.append(el("td", "", v));
      }
      return tr;
    }));
  }

  function renderPersonas() {
    const stages = doc.stages.filter((s) => !s.terminal).map((s) => s.name);
    const head = el("tr");
    head.append(el("th", "", "Persona"), ...stages.map((s) => el("th", "", words(s))));
    $("persona-head").replaceChildren(head);
    const cells = new Map(doc.dropoffs_by_persona.map((r) => [`${r.persona}|${r.stage}`, r]));
    const personas = [...new Set(doc.dropoffs_by_persona.map((r) => r.persona))].sort();
    $("persona-rows").replaceChildren(...personas.map((p) => {
      const tr = el("tr", p === doc.filters.persona ? "chosen" : "");
      tr.append(el("td", "", words(p)));
      for (const s of stages) {
        const r = cells.get(`${p}|${s}`);
        const td = el("td", "rate", r && r.rate !== null ? `${Math.round(r.rate * 100)} % of ${r.entries}` : "–");
        if (r && r.rate) td.style.background = `rgba(212, 56, 13, ${Math.min(0.6, r.rate).toFixed(2)})`;
        tr.append(td);
      }
      return tr;
    }));
  }

  async function showPain(stage, kind) {
    const box = $("pain");
    box.hidden = false;
    box.replaceChildren(el("div", "muted", `Loading the customers behind ${words(kind)} at ${words(stage)}…`));
    const p = new URLSearchParams({ journey: doc.journey, stage, type: kind, limit: "40" });
    if ($("persona").value) p.set("persona", $("persona").value);
    try {
      const found = await api(`/api/v1/journey-map/customers?${p}`);
      const head = el("h2", "", `${words(kind)} at ${words(stage)}: ${found.count} customer${found.count === 1 ? "" : "s"}`);
      const list = el("ul");
      for (const c of found.customers) {
        const li = el("li");
        const a = el("a", "", c.customer_id);
        a.href = `/agent#journey=${encodeURIComponent(c.customer_id)}`;
        li.append(a, el("span", "muted small", ` ${words(c.persona)} · ${c.occurred_at.slice(0, 16).replace("T", " ")}`));
        list.append(li);
      }
      box.replaceChildren(head, list);
    } catch (e) {
      box.replaceChildren(el("div", "status error", `Cannot list them: ${e.message}`));
    }
  }

  function start() {
    const tok = $("token");
    tok.value = sessionStorage.getItem("journeys.token") || "";
    if (!tok.value) document.querySelector(".token").open = true;
    tok.addEventListener("change", () => { sessionStorage.setItem("journeys.token", tok.value.trim()); load(true); });
    for (const id of ["journey", "persona", "channel", "window"]) {
      $(id).addEventListener("change", () => { $("pain").hidden = true; load(true); });
    }
    $("lanes").addEventListener("click", (ev) => {
      const g = ev.target.closest(".painpt");
      if (g) showPain(g.dataset.stage, g.dataset.type);
    });
    $("lanes").addEventListener("keydown", (ev) => {
      const g = ev.target.closest(".painpt");
      if (g && (ev.key === "Enter" || ev.key === " ")) showPain(g.dataset.stage, g.dataset.type);
    });
    window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
    load();
    setInterval(load, REFRESH_MS);
    setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
