// Inference services list: status, instance type, ready/desired instances, endpoint, auth.
// The server pages, searches (name prefix) and filters (status); the auto-refresh reloads only the page in view.

import { t } from "./i18n.js";
import { pager } from "./pager.js";
import { link, navigate } from "./router.js";
import { copyButton, emptyRow, errorText, fmtTime, h, icon, pageHeader, statusBadge, syncRows } from "./ui.js";

const REFRESH_MS = 3000;
const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 250;
const STATUSES = ["ready", "pending", "progressing", "updating", "degraded", "failed", "stopped", "deleting"];

export async function renderServices(main) {
  let loaded = false;
  let typing = null;
  const restart = () => list.restart();
  const search = h("input.search", { type: "search", placeholder: t("services.search"), "aria-label": t("services.search"),
    title: t("services.searchHint"), oninput: () => { clearTimeout(typing); typing = setTimeout(restart, SEARCH_DELAY_MS); } });
  const status = h("select.status-filter", { "aria-label": t("services.statusFilter"), onchange: restart },
    h("option", { value: "" }, t("services.allStatuses")),
    STATUSES.map((s) => h("option", { value: s }, t(`status.${s}`))));
  const tbody = h("tbody", emptyRow(7, t("common.loading")));
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  const filtered = () => Boolean(search.value.trim() || status.value);
  const list = pager({ path: "/services", size: PAGE_SIZE,
    query: () => ({ prefix: search.value.trim().toLowerCase(), status: status.value }),
    show: (items) => {
      loaded = true;
      tbody.parentElement.removeAttribute("aria-busy");
      if (items.length) syncRows(tbody, items, (s) => s.name, row);
      else if (filtered()) tbody.replaceChildren(emptyRow(7, t("services.noMatch")));
      else {
        tbody.replaceChildren(h("tr.empty", h("td", { colspan: 7 }, h("div.empty-state",
          h("p", t("services.empty")),
          h("button.btn.primary", { type: "button", onclick: () => navigate("/console/services/new") },
            icon("plus"), t("services.create"))))));
      }
    },
    fail: (err) => {
      error.hidden = !err;
      if (err) error.textContent = errorText(err);
      if (err && !loaded) tbody.replaceChildren();
    } });

  main.replaceChildren(
    pageHeader(t("services.title"),
      h("button.btn.primary", { type: "button", onclick: () => navigate("/console/services/new") },
        icon("plus"), t("services.create"))),
    h("p.page-intro.muted", t("services.intro")),
    error,
    h("div.card.table-card",
      h("div.toolbar", search, status, h("div.spacer"), list.note, list.element,
        h("button.btn.icon-btn.ghost", { type: "button", title: t("common.refresh"), "aria-label": t("common.refresh"),
          onclick: () => list.load() }, icon("refresh"))),
      h("div.table-wrap", h("table.table", { id: "services-table", "aria-busy": "true" },
        h("thead", h("tr", [t("col.name"), t("col.status"), t("col.instanceType"), t("col.instances"),
          t("col.endpoint"), t("col.auth"), t("col.created")].map((c) => h("th", { scope: "col" }, c)))),
        tbody))));

  function row(s) {
    const why = [s.reason, s.message].filter(Boolean).join(": ");
    return h("tr", { dataset: { service: s.name } },
      h("td", link(`/console/services/${s.name}`, { class: "strong" }, s.name)),
      h("td", statusBadge(s.status, why), s.status !== "ready" && s.reason ? h("div.sub.muted", { title: why }, s.reason) : null),
      h("td", s.spec.instance_type),
      h("td", h("span.count", { dataset: { ready: s.ready, desired: s.replicas } }, `${s.ready}/${s.replicas}`), " ",
        s.canary ? h("span.canary-count.muted", t("services.canaryCount", { ready: s.canary.ready,
          desired: s.canary.replicas })) : null, s.canary ? " " : null,
        link(`/console/services/${s.name}/instances`, { class: "small" }, t("services.details"))),
      h("td.endpoint", h("code", s.endpoint), copyButton(() => s.endpoint, t("services.copyEndpoint"))),
      h("td", s.spec.auth ? h("span.badge.on", icon("lock"), t("auth.on")) : h("span.badge.warn", t("auth.off"))),
      h("td.nowrap", fmtTime(s.created_at)));
  }

  await list.load();
  const stop = list.watch(REFRESH_MS);
  return () => { clearTimeout(typing); stop(); };
}
