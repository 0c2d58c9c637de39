// Agent view, live: the journey on screen follows the server's event stream (new touchpoints, alerts,
// other agents' acknowledgements), the agent acknowledges and resolves alerts with a note, and "what comes
// next" counts down to each open journey's SLA. The stream is read with fetch (EventSource cannot send the
// Authorization header); it reconnects by itself with a growing pause, and the badge says which state it is in.
"use strict";

window.JourneyLive = (() => {
  const { words, el, when } = window.Journeys;
  const $ = (id) => document.getElementById(id);
  let stream = null;      // {cid, abort: AbortController}
  let clockSkew = 0;      // server time - local time, ms: countdowns use the server's clock
  let next = [];          // the last "what comes next" received
  let render = null;      // agent.js's renderer of a journey document

  const token = () => $("token").value.trim() || sessionStorage.getItem("journeys.token") || "";

  function badge(state, text) {
    const b = $("live");
    b.hidden = false;
    b.className = `live ${state}`;
    b.textContent = text;
    b.dataset.state = state;
  }

  // -- the stream --------------------------------------------------------------------------------
  function follow(cid) {
    if (stream && stream.cid === cid) return;
    stop();
    stream = { cid, abort: new AbortController(), attempt: 0 };
    connect(stream);
  }

  function stop() {
    if (stream) stream.abort.abort();
    stream = null;
  }

  async function connect(s) {
    while (stream === s) {
      badge("connecting", s.attempt ? "● reconnecting…" : "● connecting…");
      let failed = "the live feed stopped";
      try {
        const resp = await fetch(`/api/v1/journeys/${encodeURIComponent(s.cid)}/events`, {
          headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" }, signal: s.abort.signal,
        });
        if (resp.status === 401 || resp.status === 403 || resp.status === 404) {
          badge("off", resp.status === 404 ? "○ not live: journey gone" : "○ not live: token refused");
          return;  // retrying cannot help
        }
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        await read(s, resp.body.getReader());
      } catch (e) {
        if (stream !== s) return;  // stopped on purpose (another customer, or a new search)
        failed = e.message || String(e);
      }
      if (stream !== s) return;
      s.attempt += 1;
      const wait = Math.min(15, 2 ** Math.min(s.attempt - 1, 4));
      badge("down", `○ offline, retrying in ${wait} s`);
      $("live").title = failed;
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
  }

  async function read(s, reader) {
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data && stream === s) onEvent(s, name, JSON.parse(data));
      }
    }
  }

  function onEvent(s, name, body) {
    if (name === "gone") {
      badge("off", "○ not live: journey erased");
      stop();
      return;
    }
    if (name !== "journey") return;
    s.attempt = 0;
    badge("on", "● live");
    $("live").title = `updated ${new Date().toLocaleTimeString()}`;
    clockSkew = Date.parse(body.server_time) - Date.now();
    next = body.next || [];
    if (render) render(body.journey, { live: true });
    renderNext();
  }

  // -- acknowledge / resolve ---------------------------------------------------------------------
  function decorateAlert(card, alert, customerId) {
    const h = alert.handling;
    if (h) {
      card.classList.add(h.state);
      const who = el("div", "handled", `${h.state === "resolved" ? "Resolved" : "Acknowledged"} by ${h.by}, ${when(h.at)}`);
      if (h.note) who.append(el("span", "note", ` — “${h.note}”`));
      card.append(who);
    }
    const form = el("form", "act");
    const note = el("input");
    Object.assign(note, { type: "text", maxLength: 500, placeholder: "Note (optional)", name: "note" });
    note.setAttribute("aria-label", "Note");
    form.append(note);
    const buttons = h && h.state === "acknowledged" ? ["resolve"] : ["acknowledge", "resolve"];
    for (const action of buttons) {
      const b = el("button", `act-${action}`, action === "acknowledge" ? "Acknowledge" : "Resolve");
      b.type = "button";
      b.addEventListener("click", () => act(card, alert, customerId, action, note.value, form));
      form.append(b);
    }
    card.append(form);
  }

  async function act(card, alert, customerId, action, note, form) {
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    let message = "";
    try {
      const resp = await fetch(`/api/v1/alerts/${encodeURIComponent(alert.alert_id)}/${action}`, {
        method: "POST", body: JSON.stringify({ note, customer_id: customerId }),
        headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" },
      });
      if (resp.ok) {
        // Done: the stream brings the change to this page as to every other one. The note is sent, so
        // clear it (in the card on screen now: a live update may have redrawn it meanwhile).
        for (const c of [card, ...document.querySelectorAll(".alert")]) {
          const input = c.dataset.alertId === alert.alert_id && c.querySelector("input[name=note]");
          if (input) input.value = "";
        }
        for (const b of form.querySelectorAll("button")) b.disabled = false;
        return;
      }
      try { message = (await resp.json()).error.reason; } catch (e) { message = resp.statusText; }
    } catch (e) {
      message = "the journey service cannot be reached";
    }
    for (const b of form.querySelectorAll("button")) b.disabled = false;
    const err = form.querySelector(".err") || form.appendChild(el("span", "err"));
    err.textContent = `Not saved: ${message}. Try again.`;
  }

  // -- what comes next -----------------------------------------------------------------------------
  function left(seconds) {
    const s = Math.abs(seconds);
    const text = s < 60 ? `${Math.floor(s)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`
      : s < 172800 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(s / 86400)} days`;
    return seconds >= 0 ? `${text} left` : `overdue by ${text}`;
  }

  function renderNext() {
    const box = $("next");
    const card = $("next-card");
    card.hidden = !next.length;
    box.replaceChildren();
    for (const j of next) {
      const row = el("div", `next-row${j.stalled ? " stalled" : ""}`);
      row.dataset.journey = j.journey;
      row.append(el("span", "jt", words(j.journey)), el("span", "step here", words(j.stage)));
      for (const s of j.next_stages) row.append(el("span", "arrow", "→"), el("span", "step", words(s)));
      if (j.outcomes.length) row.append(el("span", "arrow", "→"), el("span", "muted small", j.outcomes.map(words).join(" / ")));
      const count = el("span", "countdown");
      if (j.deadline) count.dataset.deadline = j.deadline;
      else count.textContent = "no SLA clock";
      row.append(count);
      if (j.stalled) row.append(el("span", "stall-tag", "stalled"));
      box.append(row);
    }
    tick();
  }

  function tick() {
    const now = Date.now() + clockSkew;
    for (const c of document.querySelectorAll("#next .countdown[data-deadline]")) {
      const secs = (Date.parse(c.dataset.deadline) - now) / 1000;
      c.textContent = `${left(secs)} (SLA ${when(c.dataset.deadline)})`;
      c.classList.toggle("overdue", secs < 0);
      c.classList.toggle("soon", secs >= 0 && secs < 3600);
    }
  }

  function init(renderer) {
    render = renderer;
    setInterval(tick, 1000);
  }

  return { follow, stop, decorateAlert, init };
})();
