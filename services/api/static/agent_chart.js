// The journey chart: touchpoints in a lane per channel on a time axis, and the sentiment curve with
// emotions and NPS below it, sharing the time axis (Apache ECharts option).
"use strict";

window.JourneyChart = (() => {
  const { HIGH, words, channelName, colorOf, esc, when } = window.Journeys;

  function tooltip(t) {
    const lines = [`<b>${esc(words(t.touchpoint))}</b>`, `${esc(channelName(t.channel))} · ${esc(when(t.occurred_at))}`,
      `${esc(t.direction)} · ${esc(t.visibility)}`];
    for (const k of ["department", "intent", "outcome", "emotion"]) if (t[k]) lines.push(`${k}: ${esc(words(t[k]))}`);
    if (t.journey) lines.push(`stage: ${esc(words(t.journey.type))} / ${esc(words(t.journey.stage))}`);
    if (typeof t.sentiment === "number") lines.push(`sentiment: ${t.sentiment.toFixed(2)}`);
    if (typeof t.nps === "number") lines.push(`NPS: ${t.nps}`);
    return lines.join("<br>");
  }

  function option(doc, flagged) {
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
          // Names fit up to a few dozen touchpoints; beyond that the tooltip and the table carry them.
          label: { show: tps.length <= 30, position: "top", distance: 8, fontSize: 11, color: "#3a4257",
            formatter: (p) => words(p.data.tp.touchpoint) } },
        { name: "sentiment", type: "line", xAxisIndex: 1, yAxisIndex: 1, data: sentiments,
          symbol: "circle", symbolSize: 8, lineStyle: { width: 2.5, color: "#5b6478" }, areaStyle: { color: "#5b6478", opacity: 0.08 },
          itemStyle: { color: (p) => (p.data.value[1] < 0 ? HIGH : "#389e0d") },
          label: { show: true, fontSize: 10, color: "#6b7385", formatter: (p) => (p.data.tp.emotion || "") },
          markLine: { symbol: "none", lineStyle: { color: "#2f6fed", type: "solid", width: 1.5 },
            label: { color: "#2f6fed", fontWeight: 700 }, data: npsLines } },
      ],
    };
  }

  return { option };
})();
