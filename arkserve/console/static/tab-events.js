// Events tab: what happened to the service (created, scaled, replica started/failed, ...), newest first.

import { api, enc } from "./api.js";
import { t, tOr } from "./i18n.js";
import { emptyRow, errorText, fmtTime, h, poll, syncRows } from "./ui.js";

export function mountEvents(panel, ctx) {
  const tbody = h("tbody");
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  panel.append(error, h("div.card.table-card", h("div.table-wrap", h("table.table", { id: "events-table" },
    h("thead", h("tr", [t("col.time"), t("col.kind"), t("col.instance"), t("col.message")]
      .map((c) => h("th", { scope: "col" }, c)))),
    tbody))));
  tbody.append(emptyRow(4, t("common.loading")));

  async function load() {
    try {
      const events = (await api.get(`/services/${enc(ctx.name)}/events`, { limit: 500 })).reverse();
      error.hidden = true;
      if (!events.length) { tbody.replaceChildren(emptyRow(4, t("events.empty"))); return; }
      syncRows(tbody, events, (e) => `${e.time}-${e.kind}-${e.replica}-${e.message}`, (e) => h("tr",
        h("td.nowrap", fmtTime(e.time)), h("td", h(`span.kind.k-${e.kind}`, tOr(`event.${e.kind}`, e.kind))),
        h("td", e.replica ? h("code", e.replica) : "—"), h("td.msg", e.message)));
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }
  load();
  return poll(load, 5000);
}
