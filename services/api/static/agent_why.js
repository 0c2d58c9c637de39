// Agent view, "why one customer": each identifier of the customer on screen (masked, as the API gives it)
// with the recorded link that made it part of them — the rule (minted, linked, merged), the event, when —
// from GET /api/v1/customers/{id}/why. Read again when a drawn journey's identifiers or aliases change (a
// link, a merge or a split, live), not on every touchpoint: each read is an audited access to the customer.
// An answer that comes back after a newer request is dropped.
"use strict";

window.JourneyWhy = (() => {
  const { words, el, when } = window.Journeys;
  const $ = (id) => document.getElementById(id);
  const RULES = { mint: "minted", link: "linked", merge: "merged" };
  let asked = 0;  // the latest request: earlier answers are stale
  let shownFor = "";
  let drawnFrom = "";  // the identifiers and aliases the panel on screen was read for
  let askedFrom = "";  // ... and those of the request in flight

  const token = () => $("token").value.trim() || sessionStorage.getItem("journeys.token") || "";
  const chip = (i) => { const c = el("span", "chip"); c.append(el("b", null, words(i.type)), i.masked); return c; };

  async function show(cid, identifiers, aliases) {
    const from = JSON.stringify([cid, identifiers, aliases]);
    if (from === drawnFrom || from === askedFrom) return;
    drawnFrom = "";
    askedFrom = from;
    const mine = ++asked;
    if (shownFor !== cid) { $("why").replaceChildren(); $("why-note").textContent = "Loading…"; }
    let text = "";
    try {
      const resp = await fetch(`/api/v1/customers/${encodeURIComponent(cid)}/why`, {
        headers: { Authorization: `Bearer ${token()}` },
      });
      if (mine !== asked) return;
      askedFrom = "";
      if (resp.ok) {
        const body = await resp.json();
        if (mine !== asked) return;
        draw(cid, new Set(aliases || []), body);
        drawnFrom = from;
        return;
      }
      text = resp.status === 404 ? "No recorded links for this customer."
        : resp.status === 401 || resp.status === 403 ? "This token may not see why these are one customer."
          : `Not available right now (${resp.status}).`;
    } catch (e) {
      if (mine !== asked) return;
      askedFrom = "";
      text = "The journey service cannot be reached.";
    }
    if (shownFor !== cid) $("why").replaceChildren();
    $("why-note").textContent = text;
  }

  // One row per identifier, by the link that brought it (the first naming it as linked); merges get a row of
  // their own, naming the identifiers the event came with and the customers it joined. A split keeps the
  // merging event's link on both sides: a merged customer that is no longer among the aliases was split off.
  function draw(cid, aliases, body) {
    shownFor = cid;
    const box = $("why");
    box.replaceChildren();
    const seen = new Set();
    for (const link of body.links) {
      const rows = link.rule === "merge" ? [null] : [];
      for (const i of link.linked) {
        const k = `${i.type}:${i.masked}`;
        if (!seen.has(k)) { seen.add(k); rows.push(i); }
      }
      for (const ident of rows) {
        const parted = link.rule === "merge" && link.merged.some((m) => m === cid || !aliases.has(m));
        const row = el("div", `why-row ${link.rule}${parted ? " parted" : ""}`);
        row.dataset.rule = link.rule;
        if (ident) row.append(chip(ident));
        else for (const i of link.with) row.append(chip(i));
        row.append(el("span", `rule ${link.rule}`, RULES[link.rule] || words(link.rule)));
        let what = link.why;
        if (link.rule === "merge" && link.merged.length) {
          what += `: ${link.merged.join(", ")} joined${parted ? " — split apart since" : ""}`;
        }
        else if (link.rule === "link" && link.with.length) what += " —";
        const detail = el("span", "muted small", what);
        row.append(detail);
        if (ident && link.rule === "link") for (const i of link.with) row.append(chip(i));
        row.append(el("span", "why-when small", `event ${link.event_id} · ${when(link.occurred_at)}`));
        box.append(row);
      }
    }
    $("why-note").textContent = body.links.length ? "" : "No recorded links (a customer stitched before links were kept).";
  }

  return { show };
})();
