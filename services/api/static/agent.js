// Agent view: look a caller up and show their journey at a glance. Plain browser JS, no build step;
// every text from the API is inserted as text (or escaped for chart tooltips), never as markup.
"use strict";

(() => {
  const { ALERT_NAMES, words, channelName, colorOf, el, when } = window.Journeys;
  const $ = (id) => document.getElementById(id);
  let chart = null;

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
      const doc = await resp.json();
      render(doc);
      window.JourneyLive.follow(doc.customer_id);  // from now on the journey updates itself
      return;
    }
    window.JourneyLive.stop();
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
    // A live update redraws the cards: a note being typed (and its focus) must survive it.
    const typed = new Map();
    for (const input of box.querySelectorAll(".alert input[name=note]")) {
      typed.set(input.closest(".alert").dataset.alertId, [input.value, input === document.activeElement]);
    }
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
      window.JourneyLive.decorateAlert(card, a, doc.customer_id);
      box.append(card);
      const input = card.querySelector("input[name=note]");
      const [value, focused] = typed.get(a.alert_id) || ["", false];
      if (input) { input.value = value; if (focused) input.focus(); }
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

  function renderChart(doc, flagged) {
    if (!window.echarts) return;
    if (!chart) chart = window.echarts.init($("chart"), null, { renderer: "canvas" });
    chart.setOption(window.JourneyChart.option(doc, flagged), true);
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
    window.JourneyWhy.show(doc.customer_id, doc.identifiers, doc.aliases);  // a link, merge or split shows at once
  }

  function start() {
    window.JourneyLive.init(render);
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
