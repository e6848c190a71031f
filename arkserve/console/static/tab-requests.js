// Requests tab: the gateway's request log with the replica that served each request, and how requests
// spread over the instances (this is where load balancing shows).

import { api, enc } from "./api.js";
import { t } from "./i18n.js";
import { clear, emptyRow, errorText, fmtMs, fmtNum, fmtTime, h, poll, syncRows } from "./ui.js";

const LIMIT = 200;

export function mountRequests(panel, ctx) {
  const tbody = h("tbody");
  const spread = h("div.spread", { id: "replica-spread" });
  const summary = h("span.muted");
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  panel.append(error,
    h("div.card", h("div.card-head", h("h2", t("requests.byInstance")), summary), spread),
    h("div.card.table-card", h("div.table-wrap", h("table.table", { id: "requests-table" },
      h("thead", h("tr", [t("col.time"), t("col.instance"), t("col.method"), t("col.path"), t("col.statusCode"),
        t("col.latency"), t("col.requestId")].map((c) => h("th", { scope: "col" }, c)))),
      tbody))));
  tbody.append(emptyRow(7, t("common.loading")));

  function drawSpread(rows) {
    const counts = new Map();
    for (const r of rows) counts.set(r.replica || "—", (counts.get(r.replica || "—") || 0) + 1);
    summary.textContent = rows.length ? t("requests.lastN", { n: rows.length }) : "";
    if (!rows.length) { clear(spread, h("p.muted", t("requests.empty"))); return; }
    const max = Math.max(...counts.values());
    clear(spread, [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([replica, n]) =>
      h("div.spread-row", { dataset: { replica, count: n } },
        h("code.spread-name", replica),
        h("div.bar", h("div.bar-fill", { "data-w": Math.round((n / max) * 100) })),
        h("span.spread-num", `${fmtNum(n)} · ${fmtNum((n / rows.length) * 100, 0)}%`))));
    // widths through CSSOM (allowed by the CSP, unlike style="" attributes)
    spread.querySelectorAll(".bar-fill").forEach((b) => { b.style.width = `${b.dataset.w}%`; });
  }

  async function load() {
    try {
      const rows = await api.get(`/services/${enc(ctx.name)}/requests`, { limit: LIMIT });
      error.hidden = true;
      drawSpread(rows);
      if (!rows.length) { tbody.replaceChildren(emptyRow(7, t("requests.empty"))); return; }
      syncRows(tbody, rows, (r) => r.request_id || `${r.time}`, (r) => h("tr", { dataset: { replica: r.replica } },
        h("td.nowrap", fmtTime(r.time)), h("td", h("code", r.replica || "—")), h("td", r.method),
        h("td.path", { title: r.path }, r.path),
        h("td", h(`span.code.c${String(r.status)[0]}xx`, String(r.status))), h("td.num", fmtMs(r.latency_ms)),
        h("td", h("code.small", r.request_id))));
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }
  load();
  return poll(load, 3000);
}
