// Agent view: look a caller up and show their journey at a glance. Plain browser JS, no build step;
// every text from the API is inserted as text (or escaped for chart tooltips), never as markup.
"use strict";

(() => {
  const COLORS = {
    web: "#4e79a7", mobile_app: "#f28e2b", email: "#59a14f", sms: "#17becf", phone: "#e15759", ivr: "#bcbd22",
    chat: "#b07aa1", social: "#ff9da7", store: "#9c755f", field: "#7f6a93", other: "#8c8c8c",
  };
  const CHANNEL_NAMES = { mobile_app: "app", ivr: "IVR", sms: "SMS", web: "web", email: "e-mail" };
  const ALERT_NAMES = {
    channel_switch: "Channel switch", device_switch: "Device switch", department_handoff: "Department hand-off",
    repeat_contact: "Repeat contact", stall: "Journey stalled", dropoff_spike: "Drop-off spike",
  };
  const HIGH = "#d4380d";
  const $ = (id) => document.getElementById(id);
  let chart = null;

  const words = (s) => String(s).replace(/_/g, " ");
  const channelName = (c) => CHANNEL_NAMES[c] || words(c);
  const colorOf = (c) => COLORS[c] || COLORS.other;
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function when(iso) {
    const d = new Date(iso);
    return d.toLocaleString(undefined, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  }

  function ago(iso) {
    const mins = Math.round((Date.now() - new Date(iso).getTime()) / 60000);
    if (mins < 1) return "just now";
    if (mins < 90) return `${mins} min ago`;
    if (mins < 48 * 60) return `${Math.round(mins / 60)} h ago`;
    return `${Math.round(mins / 1440)} days ago`;
  }

  function duration(seconds) {
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
    return `${Math.round(seconds / 86400)} days`;
  }

  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.className = isError ? "status error" : "status";
  }

  function detect(kind, q) {
    if (kind !== "auto") return kind;
    if (/^c_[0-9a-f]{8,64}$/.test(q)) return "journey";
    if (q.includes("@")) return "email";
    if (/^\+?[\d\s().-]{6,}$/.test(q)) return "phone";
    return "customer_id";
  }

  async function search(kind, q) {
    const by = detect(kind, q);
    const url = by === "journey" ? `/api/v1/journeys/${encodeURIComponent(q)}`
      : `/api/v1/journeys/lookup?${by}=${encodeURIComponent(q)}`;
    setStatus("Looking up…");
    let resp;
    try {
      const token = $("token").value.trim() || sessionStorage.getItem("journeys.token") || "";
      resp = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    } catch (e) {
      setStatus("The journey service cannot be reached. Try again in a moment.", true);
      return;
    }
    if (resp.ok) {
      document.querySelector(".token").open = false;
      render(await resp.json());
      return;
    }
    $("journey").hidden = true;
    let reason = "";
    try { reason = (await resp.json()).error.reason; } catch (e) { reason = resp.statusText; }
    if (resp.status === 401) {
      document.querySelector(".token").open = true;
      setStatus("The API token was rejected: enter it under “API token”.", true);
    } else if (resp.status === 404) {
      setStatus(`No journey found for that ${by === "journey" ? "journey id" : words(by)}.`, true);
    } else if (resp.status === 400) {
      setStatus(`Cannot search for that: ${reason}.`, true);
    } else {
      setStatus(`The journey service is unavailable (${resp.status}). Try again in a moment.`, true);
    }
  }

  function flaggedIds(doc) {
    const ids = new Set();
    for (const a of doc.open_alerts) for (const id of (a.evidence.event_ids || [])) ids.add(id);
    return ids;
  }

  function renderWho(doc) {
    $("cid").textContent = doc.customer_id;
    const ids = $("ids");
    ids.replaceChildren();
    for (const [type, values] of Object.entries(doc.identifiers)) {
      for (const v of values) {
        const chip = el("span", "chip");
        chip.append(el("b", null, words(type)), v);
        ids.append(chip);
      }
    }
    $("aliases").textContent = doc.aliases && doc.aliases.length ? `Merged from ${doc.aliases.join(", ")}` : "";
  }

  function renderFacts(doc) {
    const s = doc.summary;
    const last = $("last");
    last.replaceChildren();
    if (s.last_seen) {
      last.append(`${channelName(s.last_channel || "")}`, el("span", "sub", `${ago(s.last_seen)} · ${when(s.last_seen)}`));
    }
    const count = $("count");
    count.replaceChildren(String(s.touchpoint_count),
      el("span", "sub", `${s.inbound} in · ${s.outbound} out${doc.truncated ? " · older ones trimmed" : ""}`));
    const mood = $("mood");
    mood.replaceChildren();
    const trend = s.sentiment_trend || [];
    if (trend.length) {
      const lastS = trend[trend.length - 1];
      const arrow = trend.length > 1 ? (lastS < trend[0] - 0.1 ? " ↘" : lastS > trend[0] + 0.1 ? " ↗" : " →") : "";
      const withEmotion = doc.touchpoints.filter((t) => t.emotion).pop();
      const v = el("span", lastS < 0 ? "neg" : "pos", `${lastS > 0 ? "+" : ""}${lastS.toFixed(1)}${arrow}`);
      mood.append(v, el("span", "sub", withEmotion ? `feeling ${withEmotion.emotion}` : "sentiment"));
    } else {
      mood.append("–");
    }
    const nps = $("nps");
    nps.replaceChildren();
    if (s.last_nps === null || s.last_nps === undefined) {
      nps.append("–");
    } else {
      const group = s.last_nps <= 6 ? "detractor" : s.last_nps <= 8 ? "passive" : "promoter";
      nps.append(el("span", `badge ${group}`, s.last_nps), el("span", "sub", group));
    }
  }

  function evidenceText(a, byId) {
    const e = a.evidence;
    const parts = [];
    if (e.channels) parts.push(e.channels.map(channelName).join(" → "));
    if (e.devices) parts.push(e.devices.join(" → "));
    if (e.departments) parts.push(e.departments.map(words).join(" → "));
    if (e.count !== undefined && a.type !== "dropoff_spike") parts.push(`${e.count} contacts`);
    if (e.stage) parts.push(`stuck at ${words(e.stage)}`);
    if (e.sla_seconds !== undefined) parts.push(`SLA ${duration(e.sla_seconds)}`);
    if (e.window_seconds !== undefined) parts.push(`within ${duration(e.window_seconds)}`);
    const steps = (e.event_ids || []).map((id) => {
      const t = byId.get(id);
      return t ? `${words(t.touchpoint)} (${channelName(t.channel)}, ${when(t.occurred_at)})` : id;
    });
    return { summary: parts.join(" · "), steps };
  }

  function renderAlerts(doc, byId) {
    const box = $("alerts");
    box.replaceChildren();
    for (const a of doc.open_alerts) {
      const card = el("div", `alert ${a.severity}`);
      card.dataset.alertId = a.alert_id;
      const { summary, steps } = evidenceText(a, byId);
      const title = el("div", "title", `${ALERT_NAMES[a.type] || words(a.type)}: ${a.title || summary}`);
      const ev = el("div", "evidence");
      ev.append(a.title && summary ? `${summary} — ` : "", `Evidence: `);
      steps.forEach((s, i) => { if (i) ev.append(" → "); ev.append(el("code", null, s)); });
      card.append(el("span", "sev", a.severity), title, ev);
      box.append(card);
    }
  }

  function renderStages(doc) {
    const box = $("stages");
    box.replaceChildren();
    const byType = new Map();
    for (const t of doc.touchpoints) {
      if (!t.journey) continue;
      const steps = byType.get(t.journey.type) || [];
      const failed = t.outcome === "failure" || t.outcome === "abandoned";
      const prev = steps[steps.length - 1];
      if (prev && prev.stage === t.journey.stage) prev.failed = prev.failed || failed;
      else steps.push({ stage: t.journey.stage, failed });
      byType.set(t.journey.type, steps);
    }
    for (const [type, steps] of byType) {
      const row = el("div", "stage-row");
      row.append(el("span", "jt", words(type)));
      const current = doc.summary.stages[type] || steps[steps.length - 1].stage;
      steps.forEach((s, i) => {
        if (i) row.append(el("span", "arrow", "→"));
        const isLast = i === steps.length - 1 && s.stage === current;
        row.append(el("span", `step${isLast ? " current" : ""}${s.failed ? " failed" : ""}`,
          `${words(s.stage)}${s.failed ? " ✕" : ""}`));
      });
      box.append(row);
    }
  }

  function tooltip(t) {
    const lines = [`<b>${esc(words(t.touchpoint))}</b>`, `${esc(channelName(t.channel))} · ${esc(when(t.occurred_at))}`,
      `${esc(t.direction)} · ${esc(t.visibility)}`];
    for (const k of ["department", "intent", "outcome", "emotion"]) if (t[k]) lines.push(`${k}: ${esc(words(t[k]))}`);
    if (t.journey) lines.push(`stage: ${esc(words(t.journey.type))} / ${esc(words(t.journey.stage))}`);
    if (typeof t.sentiment === "number") lines.push(`sentiment: ${t.sentiment.toFixed(2)}`);
    if (typeof t.nps === "number") lines.push(`NPS: ${t.nps}`);
    return lines.join("<br>");
  }

  function chartOption(doc, flagged) {
    const tps = doc.touchpoints;
    const lanes = [...new Set(tps.map((t) => t.channel))];
    const times = tps.map((t) => new Date(t.occurred_at).getTime());
    const pad = Math.max(60000, (Math.max(...times) - Math.min(...times)) * 0.04);
    const min = Math.min(...times) - pad;
    const max = Math.max(...times) + pad;
    const point = (t) => ({
      value: [t.occurred_at, t.channel], tp: t,
      symbol: t.direction === "outbound" ? "triangle" : "circle",
      symbolSize: t.direction === "outbound" ? 17 : 15,
      itemStyle: t.visibility === "offstage"
        ? { color: "#fff", borderColor: colorOf(t.channel), borderWidth: 2, borderType: "dashed" }
        : { color: colorOf(t.channel), borderColor: "#fff", borderWidth: 1 },
    });
    const sentiments = tps.filter((t) => typeof t.sentiment === "number")
      .map((t) => ({ value: [t.occurred_at, t.sentiment], tp: t }));
    const npsLines = tps.filter((t) => typeof t.nps === "number")
      .map((t) => ({ xAxis: t.occurred_at, label: { formatter: `NPS ${t.nps}` } }));
    const xAxis = (gridIndex, show) => ({
      type: "time", gridIndex, min, max, axisLabel: { show, color: "#6b7385" },
      splitLine: { show: true, lineStyle: { color: "#f0f2f6" } }, axisLine: { lineStyle: { color: "#cfd5e0" } },
    });
    return {
      animationDuration: 300,
      tooltip: { trigger: "item", formatter: (p) => (p.data && p.data.tp ? tooltip(p.data.tp) : "") },
      grid: [{ left: 90, right: 30, top: 24, height: 230 }, { left: 90, right: 30, top: 300, height: 90 }],
      xAxis: [xAxis(0, false), xAxis(1, true)],
      yAxis: [
        { type: "category", data: lanes, gridIndex: 0, axisTick: { show: false },
          axisLabel: { formatter: channelName, color: "#3a4257", fontWeight: 600 },
          splitLine: { show: true, lineStyle: { color: "#f0f2f6" } } },
        { type: "value", gridIndex: 1, min: -1, max: 1, interval: 1, name: "sentiment", nameLocation: "middle",
          nameGap: 40, nameTextStyle: { color: "#6b7385" }, axisLabel: { color: "#6b7385" } },
      ],
      dataZoom: [{ type: "inside", xAxisIndex: [0, 1] }],
      series: [
        { name: "path", type: "line", silent: true, symbol: "none", z: 1, xAxisIndex: 0, yAxisIndex: 0,
          data: tps.map((t) => [t.occurred_at, t.channel]), lineStyle: { color: "#c3cad8", width: 1, type: "dashed" } },
        { name: "alert", type: "effectScatter", xAxisIndex: 0, yAxisIndex: 0, z: 2, symbolSize: 28,
          rippleEffect: { brushType: "stroke", scale: 2.2 }, silent: true,
          itemStyle: { color: "rgba(212,56,13,0.18)", borderColor: HIGH, borderWidth: 2 },
          data: tps.filter((t) => flagged.has(t.event_id)).map((t) => [t.occurred_at, t.channel]) },
        { name: "touchpoints", type: "scatter", xAxisIndex: 0, yAxisIndex: 0, z: 3, data: tps.map(point),
          label: { show: true, position: "top", distance: 8, fontSize: 11, color: "#3a4257",
            formatter: (p) => words(p.data.tp.touchpoint) } },
        { name: "sentiment", type: "line", xAxisIndex: 1, yAxisIndex: 1, smooth: 0.3, data: sentiments,
          symbol: "circle", symbolSize: 8, lineStyle: { width: 2.5, color: "#5b6478" }, areaStyle: { color: "#5b6478", opacity: 0.08 },
          itemStyle: { color: (p) => (p.data.value[1] < 0 ? HIGH : "#389e0d") },
          label: { show: true, fontSize: 10, color: "#6b7385", formatter: (p) => (p.data.tp.emotion || "") },
          markLine: { symbol: "none", lineStyle: { color: "#2f6fed", type: "solid", width: 1.5 },
            label: { color: "#2f6fed", fontWeight: 700 }, data: npsLines } },
      ],
    };
  }

  function renderChart(doc, flagged) {
    if (!window.echarts) return;
    if (!chart) chart = window.echarts.init($("chart"), null, { renderer: "canvas" });
    chart.setOption(chartOption(doc, flagged), true);
  }

  function renderRows(doc, flagged) {
    const rows = $("rows");
    rows.replaceChildren();
    for (const t of [...doc.touchpoints].reverse()) {
      const tr = el("tr", flagged.has(t.event_id) ? "flagged" : "");
      tr.dataset.eventId = t.event_id;
      const ch = el("td");
      const dot = el("span", "dot");
      dot.style.background = colorOf(t.channel);
      ch.append(dot, channelName(t.channel));
      const dir = `${t.direction === "outbound" ? "↗ out" : "↘ in"}${t.visibility === "offstage" ? " · offstage" : ""}`;
      const sent = el("td", typeof t.sentiment === "number" ? (t.sentiment < 0 ? "neg" : "pos") : "",
        typeof t.sentiment === "number" ? t.sentiment.toFixed(1) : "");
      tr.append(el("td", null, when(t.occurred_at)), ch, el("td", null, words(t.touchpoint)), el("td", "muted", dir),
        el("td", null, t.journey ? words(t.journey.stage) : ""), el("td", null, t.outcome ? words(t.outcome) : ""),
        sent, el("td", null, t.department ? words(t.department) : ""));
      rows.append(tr);
    }
  }

  function render(doc) {
    const byId = new Map(doc.touchpoints.map((t) => [t.event_id, t]));
    const flagged = flaggedIds(doc);
    $("journey").hidden = false;
    const n = doc.open_alerts.length;
    setStatus(n ? `${n} open alert${n > 1 ? "s" : ""} on this journey.` : "No open alerts on this journey.");
    renderWho(doc);
    renderFacts(doc);
    renderAlerts(doc, byId);
    renderStages(doc);
    renderRows(doc, flagged);
    renderChart(doc, flagged);
  }

  function start() {
    const token = $("token");
    token.value = sessionStorage.getItem("journeys.token") || "";
    if (!token.value) document.querySelector(".token").open = true;
    token.addEventListener("change", () => sessionStorage.setItem("journeys.token", token.value.trim()));
    $("search").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("journeys.token", token.value.trim());
      const q = $("query").value.trim();
      if (q) search($("kind").value, q);
    });
    window.addEventListener("resize", () => chart && chart.resize());
    // Screen-pop from telephony: /agent#phone=+447700900958. A fragment never reaches the server's logs.
    const fromFragment = () => {
      const m = /^#(phone|email|journey|customer_id|account_id|loyalty_id|device_id|cookie_id)=(.+)$/
        .exec(location.hash);
      if (!m) return;
      $("kind").value = m[1];
      $("query").value = decodeURIComponent(m[2]);
      search(m[1], $("query").value);
    };
    window.addEventListener("hashchange", fromFragment);
    fromFragment();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
