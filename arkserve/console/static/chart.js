// A small inline-SVG line chart: time on x, values on y, gaps for missing points, hover readout.

import { fmtClock, fmtNum, h, svg } from "./ui.js";

const W = 560;
const H = 190;
const PAD = { l: 46, r: 12, t: 12, b: 24 };

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * times: x positions (ms); series: [{label, values: [number|null]}]; start/end: x range (ms);
 * fmt: y value formatter. Returns an element (legend + svg + readout).
 */
export function lineChart({ times, series, start, end, fmt = (v) => fmtNum(v, 2), title, step = false, integer = false }) {
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  let top = niceMax(Math.max(0, ...all));
  if (integer) top = Math.max(4, Math.ceil(top / 4) * 4);  // ticks at whole numbers
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (ms) => PAD.l + ((ms - start) / Math.max(1, end - start)) * iw;
  const y = (v) => PAD.t + ih - (v / top) * ih;

  const grid = [];
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i;
    grid.push(svg("line", { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: PAD.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, fmt(v)));
  }
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const ms = start + ((end - start) / ticks) * i;
    grid.push(svg("text", { x: x(ms), y: H - 6, class: "axis", "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" },
      fmtClock(ms, end - start < 20 * 60 * 1000)));
  }

  const paths = series.map((s, si) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      const px = x(times[i]).toFixed(1);
      const py = y(v).toFixed(1);
      if (step && pen) d += `H${px}`;
      d += `${pen ? "L" : "M"}${px},${py}`;
      pen = true;
    });
    // a point without neighbours would be invisible as a line: draw it as a dot
    const has = (i) => i >= 0 && i < s.values.length && s.values[i] !== null && s.values[i] !== undefined;
    const dots = s.values.map((v, i) => (has(i) && !has(i - 1) && !has(i + 1)
      ? svg("circle", { cx: x(times[i]).toFixed(1), cy: y(v).toFixed(1), r: 2.5, class: `dot s${si}` }) : null));
    return svg("g", {}, svg("path", { d, class: `line s${si}` }), dots);
  });

  const cursor = svg("line", { y1: PAD.t, y2: PAD.t + ih, class: "cursor", visibility: "hidden" });
  const readout = h("div.chart-readout", "\u00a0");
  const overlay = svg("rect", { x: PAD.l, y: PAD.t, width: iw, height: ih, class: "overlay" });
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title || "" },
    grid, paths, cursor, overlay);
  overlay.addEventListener("mousemove", (e) => {
    if (!times.length) return;
    const box = root.getBoundingClientRect();
    const ms = start + ((((e.clientX - box.left) / box.width) * W - PAD.l) / iw) * (end - start);
    let best = 0;
    times.forEach((tm, i) => { if (Math.abs(tm - ms) < Math.abs(times[best] - ms)) best = i; });
    const cx = x(times[best]);
    cursor.setAttribute("x1", cx);
    cursor.setAttribute("x2", cx);
    cursor.setAttribute("visibility", "visible");
    readout.textContent = `${fmtClock(times[best])}  ` + series.map((s) => {
      const v = s.values[best];
      return `${s.label}: ${v === null || v === undefined ? "—" : fmt(v)}`;
    }).join("  ");
  });
  overlay.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); readout.textContent = "\u00a0"; });

  const legend = h("div.legend", series.map((s, si) => h("span.key", h(`i.sw.s${si}`), s.label)));
  return h("div.chart-box", legend, root, readout);
}
