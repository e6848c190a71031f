// Inference services list: status, instance type, ready/desired instances, endpoint, auth.
// The server pages, searches (name prefix) and filters (status); the auto-refresh reloads only the page in view.

import { raw } from "./api.js";
import { t } from "./i18n.js";
import { link, navigate } from "./router.js";
import { copyButton, emptyRow, errorText, fmtTime, h, icon, pageHeader, poll, statusBadge, syncRows } from "./ui.js";

const REFRESH_MS = 3000;
const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 250;
const STATUSES = ["ready", "pending", "progressing", "updating", "degraded", "failed", "stopped", "deleting"];

export async function renderServices(main) {
  let items = [];
  let total = 0;
  let next = null; // the cursor of the page after this one (null: this is the last page)
  let cursors = [null]; // cursors[i] loads page i; the last entry is the page in view
  let loaded = false;
  let seq = 0; // answers to an older query (the search moved on) are dropped
  let typing = null;
  const search = h("input.search", { type: "search", placeholder: t("services.search"), "aria-label": t("services.search"),
    title: t("services.searchHint"), oninput: () => { clearTimeout(typing); typing = setTimeout(restart, SEARCH_DELAY_MS); } });
  const status = h("select.status-filter", { "aria-label": t("services.statusFilter"), onchange: () => restart() },
    h("option", { value: "" }, t("services.allStatuses")),
    STATUSES.map((s) => h("option", { value: s }, t(`status.${s}`))));
  const prev = h("button.btn.small", { type: "button", "aria-label": t("services.prevPage"), disabled: true,
    onclick: () => { if (cursors.length > 1) { cursors = cursors.slice(0, -1); load(); } } }, "‹ ", t("services.prevPage"));
  const more = h("button.btn.small", { type: "button", "aria-label": t("services.nextPage"), disabled: true,
    onclick: () => { if (next) { cursors = [...cursors, next]; load(); } } }, t("services.nextPage"), " ›");
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
      h("div.toolbar", search, status, h("div.spacer"), note, h("div.pager", prev, more),
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

  const filtered = () => Boolean(search.value.trim() || status.value);

  function draw() {
    if (!loaded) tbody.replaceChildren(emptyRow(7, t("common.loading")));
    else if (!items.length && !filtered()) {
      tbody.replaceChildren(h("tr.empty", h("td", { colspan: 7 }, h("div.empty-state",
        h("p", t("services.empty")),
        h("button.btn.primary", { type: "button", onclick: () => navigate("/console/services/new") },
          icon("plus"), t("services.create"))))));
    } else if (!items.length) tbody.replaceChildren(emptyRow(7, t("services.noMatch")));
    else syncRows(tbody, items, (s) => s.name, row);
    const first = (cursors.length - 1) * PAGE_SIZE;
    note.textContent = loaded && items.length ? t("services.range", { from: first + 1, to: first + items.length, total }) : "";
    prev.disabled = cursors.length <= 1;
    more.disabled = !next;
    if (loaded) tbody.parentElement.removeAttribute("aria-busy");
  }

  function restart() { // a new search or filter starts again at the first page
    cursors = [null];
    load();
  }

  async function load() {
    const mine = ++seq;
    const query = { limit: PAGE_SIZE, cursor: cursors[cursors.length - 1], prefix: search.value.trim().toLowerCase(),
      status: status.value };
    try {
      const res = await raw("GET", "/services", { query });
      const body = await res.json();
      if (mine !== seq) return;
      if (!body.length && cursors.length > 1) { // the rest of the list went away (deleted): back one page
        cursors = cursors.slice(0, -1);
        return load();
      }
      items = body;
      total = Number(res.headers.get("X-Total-Count") || body.length);
      next = res.headers.get("X-Next-Cursor");
      loaded = true;
      error.hidden = true;
    } catch (err) {
      if (mine !== seq) return;
      if (err.code === "InvalidCursor") return restart();
      error.textContent = errorText(err);
      error.hidden = false;
    }
    draw();
  }

  draw();
  await load();
  const stop = poll(load, REFRESH_MS);
  return () => { clearTimeout(typing); stop(); };
}
