// The model market: cards with search and task/framework filters, paged and searched on the server (the refresh
// reloads only the page in view); a model's page with its README, versions, files and "Use in a service" (opens
// Create with the mount filled in).

import { api } from "./api.js";
import { t } from "./i18n.js";
import { link, navigate } from "./router.js";
import { markdown } from "./markdown.js";
import { pager } from "./pager.js";
import { clear, copyButton, errorText, fmtTime, h, icon, pageHeader, syncRows } from "./ui.js";

const PAGE_SIZE = 24;
const REFRESH_MS = 5000;
const SEARCH_DELAY_MS = 250;

export function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}

function useHref(name, version) {
  return `/console/services/new?model=${encodeURIComponent(`${name}@${version}`)}`;
}

function visibility(m) {
  return m.public ? h("span.badge.on", icon("globe"), t("models.public")) : h("span.badge", icon("lock"), t("models.private"));
}

export async function renderModels(main) {
  let loaded = false;
  let typing = null;
  const restart = () => list.restart();
  const search = h("input.search", { type: "search", placeholder: t("models.search"), "aria-label": t("models.search"),
    title: t("models.searchHint"), oninput: () => { clearTimeout(typing); typing = setTimeout(restart, SEARCH_DELAY_MS); } });
  const task = h("select", { "aria-label": t("models.task"), onchange: restart });
  const framework = h("select", { "aria-label": t("models.framework"), onchange: restart });
  const grid = h("div.model-grid", { id: "model-cards", "aria-busy": "true" }, h("p.muted", t("common.loading")));
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  const filtered = () => Boolean(search.value.trim() || task.value || framework.value);
  const list = pager({ path: "/models", size: PAGE_SIZE,
    query: () => ({ q: search.value.trim(), task: task.value, framework: framework.value }),
    show: (items) => {
      loaded = true;
      grid.removeAttribute("aria-busy");
      if (items.length) syncRows(grid, items, (m) => m.name, card);
      else grid.replaceChildren(h("p.empty-state.muted", filtered() ? t("models.noMatch") : t("models.empty")));
    },
    fail: (err) => {
      error.hidden = !err;
      if (err) error.textContent = errorText(err);
      if (err && !loaded) grid.replaceChildren();
    } });
  main.replaceChildren(pageHeader(t("models.title")), h("p.page-intro.muted", t("models.intro")), error,
    h("div.card.toolbar.model-toolbar", search, task, framework, h("div.spacer"), list.note, list.element), grid);

  const options = (select, values, all) => {
    select.replaceChildren(h("option", { value: "" }, all), ...values.map((v) => h("option", { value: v }, v)));
  };
  try { // the filters' values over every model you can see, not only this page's
    const facets = await api.get("/model-facets");
    options(task, facets.tasks, t("models.allTasks"));
    options(framework, facets.frameworks, t("models.allFrameworks"));
  } catch (err) {
    error.textContent = errorText(err);
    error.hidden = false;
  }

  function card(m) {
    const latest = m.versions[m.versions.length - 1];
    const summary = (m.description || "").split("\n").find((l) => l.trim() && !l.startsWith("#")) || "";
    return h("article.card.model-card", { dataset: { model: m.name } },
      h("h2", link(`/console/models/${m.name}`, m.name)),
      h("p.muted.model-summary", summary.replace(/[*`]/g, "")),
      h("div.model-tags", m.task ? h("span.tag", m.task) : null, m.framework ? h("span.tag", m.framework) : null,
        visibility(m)),
      h("div.model-meta.muted", `${t("models.publisher")}: ${m.owner}`, " · ",
        latest ? `v${latest.version} · ${fmtBytes(m.size)}` : t("models.noVersions")));
  }

  await list.load();
  const stop = list.watch(REFRESH_MS);
  return () => { clearTimeout(typing); stop(); };
}

export async function renderModel(main, name) {
  let m;
  try {
    m = await api.get(`/models/${name}`);
  } catch (err) {
    main.replaceChildren(h("div.banner.error", { role: "alert" }, errorText(err)));
    return;
  }
  const versions = [...m.versions].reverse();
  const chosen = h("select", { "aria-label": t("models.version") },
    versions.map((v) => h("option", { value: v.version }, `v${v.version}`)));
  const files = h("tbody");
  const digest = h("code.digest");
  const use = h("button.btn.primary", { type: "button", onclick: () => navigate(useHref(m.name, chosen.value)) },
    icon("plus"), t("models.use"));
  const drawFiles = () => {
    const v = m.versions.find((x) => x.version === chosen.value);
    digest.textContent = v ? v.digest : "";
    files.replaceChildren(...(v ? v.files.map((f) => h("tr", h("td", h("code", f.path)), h("td.nowrap", fmtBytes(f.size)),
      h("td", h("code.digest", { title: f.sha256 }, f.sha256.slice(0, 16) + "…")))) : []));
  };
  chosen.addEventListener("change", drawFiles);
  clear(main,
    h("nav.crumbs", { "aria-label": t("nav.breadcrumb") }, link("/console/models", t("models.title")), " / ",
      h("span", m.name)),
    pageHeader(m.name, versions.length ? use : null),
    h("div.model-tags", m.task ? h("span.tag", m.task) : null, m.framework ? h("span.tag", m.framework) : null,
      m.license ? h("span.tag", m.license) : null, visibility(m),
      h("span.muted", `${t("models.publisher")}: ${m.owner}`)),
    m.mounted_by.length ? h("p.muted", t("models.mountedBy", { names: m.mounted_by.join(", ") })) : null,
    h("div.model-layout",
      h("section.card.model-readme", h("h2", t("models.readme")),
        m.description ? markdown(m.description) : h("p.muted", t("models.noReadme"))),
      h("section.card.model-side",
        h("h2", t("models.versions")),
        h("table.table", { id: "versions-table" }, h("thead", h("tr", [t("models.version"), t("models.size"),
          t("col.created")].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", versions.map((v) => h("tr", h("td", `v${v.version}`), h("td.nowrap", fmtBytes(v.size)),
          h("td.nowrap", fmtTime(v.created_at, false)))))),
        h("h2", t("models.files")), h("div.field", chosen),
        h("div.digest-line", h("span.muted", t("models.digest")), " ", digest, copyButton(() => digest.textContent)),
        h("table.table", { id: "files-table" }, h("thead", h("tr", [t("col.path"), t("models.size"), "SHA-256"]
          .map((c) => h("th", { scope: "col" }, c)))), files))));
  drawFiles();
}
