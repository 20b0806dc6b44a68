// Small SVG charts for the console, written for it (no library): bars, stacked bars, a heatmap.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

const Charts = {
  STAGE_COLORS: {
    transcription_delay_ms: "#8fb3e8", end_of_turn_delay_ms: "#f2b872",
    llm_ttft_ms: "#2e5aac", tts_ttfb_ms: "#5fb88a",
  },

  // One bar per [label, value]; labels every few bars so they do not overlap.
  bars(points, { width = 720, height = 180, title = "" } = {}) {
    const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height + 30}`, width: "100%", role: "img",
                               "aria-label": title, class: "chart-bars" });
    const max = Math.max(1, ...points.map((p) => p[1]));
    const step = width / Math.max(1, points.length);
    const every = Math.ceil(points.length / 10);
    points.forEach(([label, value], i) => {
      const h = (value / max) * height;
      const bar = svgEl("rect", { x: i * step + 1, y: height - h, width: Math.max(1, step - 2), height: h,
                                  fill: "#2e5aac" });
      bar.appendChild(svgEl("title", {}, `${label}: ${value}`));
      svg.appendChild(bar);
      if (i % every === 0) svg.appendChild(svgEl("text", { x: i * step, y: height + 14 }, label));
    });
    svg.appendChild(svgEl("text", { x: width - 4, y: 10, "text-anchor": "end" }, `max ${max}`));
    return svg;
  },

  // One horizontal bar per turn, split into its latency stages (ms).
  latency(turns, { width = 720, row = 20 } = {}) {
    const stages = Object.keys(Charts.STAGE_COLORS);
    const totals = turns.map((t) => stages.reduce((sum, s) => sum + (t[s] || 0), 0));
    const max = Math.max(1, ...totals);
    const left = 90;
    const svg = svgEl("svg", { viewBox: `0 0 ${width} ${turns.length * row + 10}`, width: "100%",
                               role: "img", "aria-label": "latency per turn", class: "latency-bars" });
    turns.forEach((turn, i) => {
      let x = left;
      svg.appendChild(svgEl("text", { x: 0, y: i * row + 14 }, `#${turn.sequence_number} ${turn.role}`));
      for (const stage of stages) {
        const ms = turn[stage] || 0;
        if (!ms) continue;
        const w = (ms / max) * (width - left - 70);
        const rect = svgEl("rect", { x, y: i * row + 3, width: Math.max(1, w), height: row - 6,
                                     fill: Charts.STAGE_COLORS[stage], class: "latency-segment" });
        rect.appendChild(svgEl("title", {}, `${stage.replace(/_ms$/, "")}: ${Math.round(ms)} ms`));
        svg.appendChild(rect);
        x += w;
      }
      if (totals[i]) svg.appendChild(svgEl("text", { x: x + 4, y: i * row + 14 }, `${Math.round(totals[i])} ms`));
    });
    return svg;
  },

  // Calls by ISO weekday (rows) and hour (columns).
  heatmap(cells, { cell = 24 } = {}) {
    const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const max = Math.max(1, ...cells.map((c) => c[2]));
    const counts = new Map(cells.map(([d, h, n]) => [`${d}:${h}`, n]));
    const left = 36;
    const svg = svgEl("svg", { viewBox: `0 0 ${left + 24 * cell} ${7 * cell + 18}`, width: "100%",
                               role: "img", "aria-label": "peak hours", class: "heatmap" });
    days.forEach((name, d) => {
      svg.appendChild(svgEl("text", { x: 0, y: d * cell + 16 }, name));
      for (let h = 0; h < 24; h++) {
        const n = counts.get(`${d + 1}:${h}`) || 0;
        const shade = n ? 0.15 + 0.85 * (n / max) : 0.04;
        const rect = svgEl("rect", { x: left + h * cell, y: d * cell, width: cell - 2, height: cell - 2,
                                     fill: "#2e5aac", "fill-opacity": shade.toFixed(2) });
        rect.appendChild(svgEl("title", {}, `${name} ${h}:00 — ${n} call(s)`));
        svg.appendChild(rect);
      }
    });
    for (let h = 0; h < 24; h += 3) {
      svg.appendChild(svgEl("text", { x: left + h * cell, y: 7 * cell + 14 }, `${h}h`));
    }
    return svg;
  },
};

window.Charts = Charts;
