// Metrics tab: requests/s, latency p50/p99, 4xx/5xx errors and ready instances, drawn as SVG charts.

import { api, enc } from "./api.js";
import { t } from "./i18n.js";
import { lineChart } from "./chart.js";
import { clear, errorText, fmtMs, fmtNum, h, poll } from "./ui.js";

const WINDOWS = { "15m": "30s", "1h": "1m", "6h": "5m", "24h": "15m" };
const REFRESH_MS = 5000;

export function mountMetrics(panel, ctx) {
  const readyHistory = [];  // sampled while the tab is open: [ms, ready, desired]
  const windowPick = h("select", { name: "window", "aria-label": t("metrics.window") },
    Object.keys(WINDOWS).map((w) => h("option", { value: w }, t(`metrics.w${w}`))));
  const stats = h("div.stats");
  const charts = h("div.charts");
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  panel.append(error,
    h("div.toolbar.plain", h("label.inline", t("metrics.window"), " ", windowPick), h("div.spacer"),
      h("span.muted.small", t("metrics.source"))),
    stats, charts);

  const stat = (label, value, sub) => h("div.card.stat", h("div.stat-label", label), h("div.stat-value", value),
    sub ? h("div.stat-sub.muted", sub) : null);
  const card = (title, chart, note) => h("div.card.chart-card", h("h3", title), chart,
    note ? h("div.muted.small", note) : null);

  function draw(m) {
    const step = m.step_s * 1000;
    const times = m.buckets.map((b) => b.time * 1000 + step / 2);
    const start = m.start * 1000;
    const end = m.end * 1000;
    const errors = m.totals.errors_4xx + m.totals.errors_5xx;
    clear(stats,
      stat(t("metrics.readyNow"), `${m.ready}/${m.desired}`, t("metrics.readySub")),
      stat(t("metrics.requests"), fmtNum(m.totals.requests), t("metrics.rpsAvg", { rps: fmtNum(m.totals.rps, 2) })),
      stat(t("metrics.p99"), fmtMs(m.totals.p99_ms), t("metrics.p50is", { p50: fmtMs(m.totals.p50_ms) })),
      stat(t("metrics.errors"), fmtNum(errors), `4xx ${fmtNum(m.totals.errors_4xx)} · 5xx ${fmtNum(m.totals.errors_5xx)}`));
    const now = Date.now();
    readyHistory.push([now, m.ready, m.desired]);
    while (readyHistory.length && readyHistory[0][0] < start) readyHistory.shift();
    clear(charts,
      card(t("metrics.rps"), lineChart({ title: t("metrics.rps"), times, start, end,
        series: [{ label: t("metrics.rpsShort"), values: m.buckets.map((b) => b.rps) }] })),
      card(t("metrics.latency"), lineChart({ title: t("metrics.latency"), times, start, end, fmt: (v) => fmtNum(v, 1),
        series: [{ label: "p50 (ms)", values: m.buckets.map((b) => b.p50_ms) },
          { label: "p99 (ms)", values: m.buckets.map((b) => b.p99_ms) }] })),
      card(t("metrics.errorsChart"), lineChart({ title: t("metrics.errorsChart"), times, start, end, fmt: (v) => fmtNum(v, 0), integer: true,
        series: [{ label: "4xx", values: m.buckets.map((b) => b.errors_4xx) },
          { label: "5xx", values: m.buckets.map((b) => b.errors_5xx) }] })),
      card(t("metrics.inflightChart"), lineChart({ title: t("metrics.inflightChart"), times, start, end,
        fmt: (v) => fmtNum(v, 1),
        series: [{ label: t("metrics.inflight"), values: m.buckets.map((b) => b.inflight) }] }), t("metrics.inflightNote")),
      card(t("metrics.readyChart"), lineChart({ title: t("metrics.readyChart"), start, end, step: true, integer: true, fmt: (v) => fmtNum(v, 0),
        times: readyHistory.map((r) => r[0]),
        series: [{ label: t("metrics.ready"), values: readyHistory.map((r) => r[1]) },
          { label: t("metrics.desired"), values: readyHistory.map((r) => r[2]) }] }), t("metrics.readyNote")));
  }

  async function load() {
    try {
      const w = windowPick.value;
      const m = await api.get(`/services/${enc(ctx.name)}/metrics`, { window: w, step: WINDOWS[w] });
      error.hidden = true;
      draw(m);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }
  windowPick.addEventListener("change", load);
  load();
  return poll(load, REFRESH_MS);
}
