// Images in the platform registry: tabs Public / Private (one row per tag, with a copy-pull-command button), paged
// and searched (name prefix) on the server, the refresh reloading only the page in view; the user's storage
// against their quota, and the "Push commands" dialog (docker login, tag, push).

import { api } from "./api.js";
import { t } from "./i18n.js";
import { navigate } from "./router.js";
import { pager } from "./pager.js";
import { copyButton, copyText, dialog, emptyRow, errorText, fmtTime, h, icon, pageHeader, syncRows, toast } from "./ui.js";
import { fmtBytes } from "./page-models.js";

const TABS = ["public", "private"];
const PAGE_SIZE = 20; // repositories (each with its tags, one row a tag)
const REFRESH_MS = 5000;
const SEARCH_DELAY_MS = 250;

function pullCommand(tag) { return `docker pull ${tag.image}`; }

function tagRow({ r, tag }, toggle) {
  return h("tr", { dataset: { image: tag.image } },
    h("td.nowrap", h("code", r.name)), h("td.nowrap", tag.tag),
    h("td.nowrap", h("code.digest", { title: tag.digest }, tag.digest.replace("sha256:", "").slice(0, 12))),
    h("td.nowrap", fmtBytes(tag.size)), h("td.nowrap", tag.pushed_at ? fmtTime(tag.pushed_at, false) : "—"),
    h("td.nowrap", r.public ? h("span.badge.on", icon("globe"), t("images.public")) : h("span.badge", icon("lock"),
      t("images.private")), toggle && !r.name.startsWith("ark-public/") ? h("button.btn.small.ghost", { type: "button",
      onclick: () => toggle(r) }, t(r.public ? "images.makePrivate" : "images.makePublic")) : null),
    h("td.actions", h("button.btn.small", { type: "button", title: pullCommand(tag), "aria-label": t("images.copyPull"),
      onclick: () => copyText(pullCommand(tag)) }, icon("copy"), "docker pull")));
}

function pushDialog(cmds) {
  const line = (label, text) => h("div.cmd-line", h("div.muted", label),
    h("div.cmd-row", h("code", text), copyButton(() => text, `${t("common.copy")}: ${label}`)));
  dialog({ title: t("images.pushTitle"), wide: true, body: h("div.push-commands", { id: "push-commands" },
    h("p.muted", t("images.pushIntro", { registry: cmds.registry, namespace: cmds.namespace })),
    line(t("images.step.login"), cmds.login),
    line(t("images.step.loginKey"), cmds.login_with_key),
    line(t("images.step.tag"), cmds.tag),
    line(t("images.step.push"), cmds.push),
    h("p.muted", t("images.pushRun")),
    h("div.cmd-row", h("code", `arkserve service create my-app --image ${cmds.push.split(" ").pop()} --port 8000 `
      + "--command \"python3 app.py\""))) });
}

export async function renderImages(main, tab = "private") {
  const current = TABS.includes(tab) ? tab : "private";
  let typing = null;
  const tabBar = h("div.tabs", { role: "tablist", "aria-label": t("images.title") },
    TABS.map((k) => h("button.tab", { type: "button", role: "tab", id: `tab-${k}`, "aria-selected": String(k === current),
      onclick: () => navigate(`/console/images/${k}`) }, t(`images.tab.${k}`))));
  const body = h("tbody", emptyRow(7, t("common.loading")));
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  const quota = h("span.muted.quota", { id: "image-quota" });
  const search = h("input.search", { type: "search", placeholder: t("images.search"), "aria-label": t("images.search"),
    title: t("images.searchHint"), oninput: () => { clearTimeout(typing); typing = setTimeout(() => list.restart(), SEARCH_DELAY_MS); } });
  const pushBtn = h("button.btn.primary", { type: "button", onclick: async () => {
    try { pushDialog(await api.get("/images/push-commands")); } catch (err) {
      error.textContent = errorText(err); error.hidden = false;
    }
  } }, icon("plus"), t("images.pushCommands"));
  const toggle = current === "private" ? async (repo) => {
    try {
      await api.put(`/images/${repo.name}/visibility`, { public: !repo.public });
      toast(t(repo.public ? "images.nowPrivate" : "images.nowPublic", { name: repo.name }));
      await list.load();
    } catch (err) { toast(errorText(err), "error"); }
  } : null;
  const list = pager({ path: "/images", size: PAGE_SIZE,
    query: () => ({ public: current === "public" ? "true" : "", prefix: search.value.trim().toLowerCase() }),
    show: (repos) => {
      const items = repos.flatMap((r) => r.tags.map((tag) => ({ r, tag })));
      if (items.length) syncRows(body, items, (x) => x.tag.image, (x) => tagRow(x, toggle));
      else body.replaceChildren(emptyRow(7, search.value.trim() ? t("images.noMatch") : t(`images.empty.${current}`)));
    },
    fail: (err) => {
      error.hidden = !err;
      if (err) { error.textContent = errorText(err); body.replaceChildren(emptyRow(7, "—")); }
    } });
  main.replaceChildren(pageHeader(t("images.title"), quota, pushBtn),
    h("p.page-intro.muted", t("images.intro")), error, tabBar,
    h("div.card.table-card", { role: "tabpanel", "aria-labelledby": `tab-${current}` },
      h("div.toolbar", search, h("div.spacer"), list.note, list.element),
      h("div.table-wrap", h("table.table", { id: "images-table" },
        h("thead", h("tr", [t("images.col.repository"), t("images.col.tag"), t("images.col.digest"),
          t("images.col.size"), t("images.col.pushedAt"), t("images.col.visibility"), t("images.col.pull")]
          .map((c) => h("th", { scope: "col" }, c)))), body))));

  async function loadQuota() {
    try {
      const q = await api.get("/images/quota");
      quota.textContent = t("images.quota", { used: fmtBytes(q.used_bytes), quota: fmtBytes(q.quota_bytes) });
    } catch { /* the list shows why the registry cannot be read */ }
  }
  await Promise.all([list.load(), loadQuota()]);
  const stop = list.watch(REFRESH_MS);
  return () => { clearTimeout(typing); stop(); };
}

/** Fill a <datalist> with the images a service may run: yours, then the public ones (the Create form's picker).
 *  Without a registry (the local runtime) the list stays empty. */
export async function fillImageChoices(list) {
  for (const pub of [false, true]) {
    try {
      const repos = await api.get("/images", { public: pub ? "true" : "", limit: 500 }); // the first 500 of each
      list.append(...repos.flatMap((r) => r.tags.map((tag) => h("option", { value: tag.image },
        `${r.name}:${tag.tag} · ${t(pub ? "images.public" : "images.private")}`))));
    } catch { return; /* no registry here */ }
  }
}
