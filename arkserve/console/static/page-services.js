// Inference services list: status, instance type, ready/desired instances, endpoint, auth; search; auto-refresh.

import { api } from "./api.js";
import { t } from "./i18n.js";
import { link, navigate } from "./router.js";
import { copyButton, emptyRow, errorText, fmtTime, h, icon, pageHeader, poll, statusBadge, syncRows } from "./ui.js";

const REFRESH_MS = 3000;

export async function renderServices(main) {
  let items = [];
  let loaded = false;
  const search = h("input.search", { type: "search", placeholder: t("services.search"), "aria-label": t("services.search"),
    oninput: () => draw() });
  const tbody = h("tbody");
  const note = h("div.list-note.muted", { "aria-live": "polite" });
  const error = h("div.banner.error", { hidden: true, role: "alert" });

  main.replaceChildren(
    pageHeader(t("services.title"),
      h("button.btn.primary", { type: "button", onclick: () => navigate("/console/services/new") },
        icon("plus"), t("services.create"))),
    h("p.page-intro.muted", t("services.intro")),
    error,
    h("div.card.table-card",
      h("div.toolbar", search, h("div.spacer"), note,
        h("button.btn.icon-btn.ghost", { type: "button", title: t("common.refresh"), "aria-label": t("common.refresh"),
          onclick: () => load() }, icon("refresh"))),
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
        link(`/console/services/${s.name}/instances`, { class: "small" }, t("services.details"))),
      h("td.endpoint", h("code", s.endpoint), copyButton(() => s.endpoint, t("services.copyEndpoint"))),
      h("td", s.spec.auth ? h("span.badge.on", icon("lock"), t("auth.on")) : h("span.badge.warn", t("auth.off"))),
      h("td.nowrap", fmtTime(s.created_at)));
  }

  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = items.filter((s) => !q || s.name.includes(q));
    if (!loaded) tbody.replaceChildren(emptyRow(7, t("common.loading")));
    else if (!items.length) {
      tbody.replaceChildren(h("tr.empty", h("td", { colspan: 7 }, h("div.empty-state",
        h("p", t("services.empty")),
        h("button.btn.primary", { type: "button", onclick: () => navigate("/console/services/new") },
          icon("plus"), t("services.create"))))));
    } else if (!shown.length) tbody.replaceChildren(emptyRow(7, t("services.noMatch")));
    else syncRows(tbody, shown, (s) => s.name, row);
    note.textContent = loaded ? t("services.count", { n: shown.length, total: items.length }) : "";
    if (loaded) tbody.parentElement.removeAttribute("aria-busy");
  }

  async function load() {
    try {
      items = await api.get("/services");
      loaded = true;
      error.hidden = true;
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
    draw();
  }

  draw();
  await load();
  return poll(load, REFRESH_MS);
}
