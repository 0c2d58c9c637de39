// Shared by the agent page scripts: channel colours and names, text helpers. Loaded first.
"use strict";

window.Journeys = (() => {
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

  return { COLORS, CHANNEL_NAMES, ALERT_NAMES, HIGH, words, channelName, colorOf, esc, el, when };
})();
