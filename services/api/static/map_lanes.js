// Journey map: the stages × channels swimlanes as SVG — volumes at each crossing, a pain-point lane
// (open alerts, clickable), the departments' lane with hand-offs and failed hand-offs. Plain SVG markup;
// every name comes from the API and is escaped.
"use strict";

window.JourneyLanes = (() => {
  const { colorOf, channelName, words, esc, HIGH } = window.Journeys;
  const W = 1200, LEFT = 140, ROW = 46, HEAD = 44;
  const ALERT_COLORS = { stall: "#a8071a", channel_switch: HIGH, repeat_contact: "#d46b08",
    department_handoff: "#d48806", device_switch: "#7cb305", dropoff_spike: "#531dab" };

  function text(x, y, body, cls, anchor) {
    return `<text x="${x}" y="${y}" class="${cls || ""}" text-anchor="${anchor || "middle"}">${esc(body)}</text>`;
  }

  function bubble(cx, cy, value, max, fill, label, sub) {
    if (!value) return "";
    const r = 5 + 16 * Math.sqrt(value / Math.max(1, max));
    let out = `<circle cx="${cx}" cy="${cy}" r="${r.toFixed(1)}" fill="${fill}" fill-opacity="0.85"></circle>`;
    out += r >= 10 ? text(cx, cy + 4, label, "num") : text(cx + r + 10, cy + 4, label, "sub");
    if (sub) out += text(cx, cy + r + 11, sub, "sub");
    return out;
  }

  function render(doc) {
    const stages = doc.stages;
    const colW = (W - LEFT) / Math.max(1, stages.length);
    const x = (i) => LEFT + colW * i + colW / 2;
    const totals = {};
    for (const s of stages) for (const [ch, v] of Object.entries(s.channels)) totals[ch] = (totals[ch] || 0) + v.touches;
    const channels = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
    const depts = {};
    for (const s of stages) for (const [d, n] of Object.entries(s.departments)) depts[d] = (depts[d] || 0) + n;
    const deptNames = Object.keys(depts).sort((a, b) => depts[b] - depts[a]);
    const maxTouch = Math.max(1, ...stages.flatMap((s) => Object.values(s.channels).map((v) => v.touches)));
    const maxDept = Math.max(1, ...stages.flatMap((s) => Object.values(s.departments)));
    const rows = channels.length + 1 + deptNames.length + 1;
    const H = HEAD + ROW * rows + 20;
    let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="journey map swimlanes">`;
    stages.forEach((s, i) => {
      if (i % 2 === 0) svg += `<rect x="${LEFT + colW * i}" y="0" width="${colW}" height="${H}" fill="#f7f9fc"></rect>`;
      svg += text(x(i), 16, words(s.name) + (s.terminal ? " ◼" : ""), "head");
      svg += text(x(i), 32, `${s.entries} in · ${s.in_stage_now} now`, "sub");
    });
    let y = HEAD;
    for (const ch of channels) {
      svg += `<line x1="0" x2="${W}" y1="${y + ROW / 2}" y2="${y + ROW / 2}" stroke="${colorOf(ch)}" stroke-opacity="0.25" stroke-width="2"></line>`;
      svg += text(8, y + ROW / 2 + 4, channelName(ch), "lane-name", "start");
      stages.forEach((s, i) => {
        const v = s.channels[ch];
        if (v) svg += `<g class="crossing" data-stage="${esc(s.name)}" data-channel="${esc(ch)}">` +
          bubble(x(i), y + ROW / 2, v.touches, maxTouch, colorOf(ch), v.touches, v.entries ? `(${v.entries})` : "") + "</g>";
      });
      y += ROW;
    }
    // Pain points: open alerts by type at each stage, clickable.
    svg += `<line x1="0" x2="${W}" y1="${y + ROW / 2}" y2="${y + ROW / 2}" stroke="${HIGH}" stroke-opacity="0.25" stroke-width="2"></line>`;
    svg += text(8, y + ROW / 2 + 4, "pain points", "lane-name", "start");
    stages.forEach((s, i) => {
      const kinds = Object.entries(s.alerts).sort((a, b) => b[1] - a[1]).slice(0, 3);
      kinds.forEach(([kind, n], k) => {
        const cx = x(i) + (k - (kinds.length - 1) / 2) * 34;
        svg += `<g class="painpt" data-stage="${esc(s.name)}" data-type="${esc(kind)}" tabindex="0" role="button">` +
          `<title>${esc(words(kind))}: ${n} open at ${esc(words(s.name))}</title>` +
          `<circle cx="${cx}" cy="${y + ROW / 2}" r="${(7 + Math.min(9, Math.sqrt(n) * 2)).toFixed(1)}" fill="${ALERT_COLORS[kind] || HIGH}"></circle>` +
          text(cx, y + ROW / 2 + 4, n, "num") + "</g>";
      });
    });
    y += ROW;
    for (const d of deptNames) {
      svg += text(8, y + ROW / 2 + 4, words(d), "lane-name", "start");
      stages.forEach((s, i) => {
        svg += bubble(x(i), y + ROW / 2, s.departments[d] || 0, maxDept, "#5b6b8c", s.departments[d] || 0, "");
      });
      y += ROW;
    }
    svg += text(8, y + ROW / 2 + 4, "hand-offs", "lane-name", "start");
    stages.forEach((s, i) => {
      if (!s.handoffs) return;
      svg += text(x(i), y + ROW / 2 + 4, `${s.handoffs} hand-offs`, "sub");
      if (s.handoff_failures) {
        svg += `<circle cx="${x(i)}" cy="${y + ROW / 2 + 16}" r="8" fill="#d48806"></circle>` +
          text(x(i), y + ROW / 2 + 20, s.handoff_failures, "num");
      }
    });
    return svg + "</svg>";
  }

  return { render };
})();
