// The network disk: a folder browser with breadcrumbs, uploads (picked or dropped) with per-file progress and
// cancel, download, rename, delete with confirmation, and the usage bar against the quota. An upload or a rename
// onto an existing file offers Replace, with confirmation (the API's overwrite).

import { api, csrfToken, enc } from "./api.js";
import { t } from "./i18n.js";
import { link } from "./router.js";
import { confirmDialog, dialog, emptyRow, errorText, field, fmtTime, h, icon, pageHeader, toast } from "./ui.js";
import { fmtBytes } from "./page-models.js";

const BASE = "/console/disk";

function urlPath(path) { return path.split("/").filter(Boolean).map(enc).join("/"); }
/** One segment of the page's URL: decoded, or as typed when it is no valid %-encoding ("50%"). */
function decodeSegment(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}
function join(dir, name) { return dir ? `${dir}/${name}` : name; }
function pageOf(path) { return path ? `${BASE}/${urlPath(path)}` : BASE; }

function crumbs(path) {
  const parts = path.split("/").filter(Boolean);
  const items = [parts.length ? link(BASE, t("disk.root")) : h("span", { "aria-current": "page" }, t("disk.root"))];
  parts.forEach((p, i) => {
    const here = parts.slice(0, i + 1).join("/");
    items.push(" / ", i === parts.length - 1 ? h("span", { "aria-current": "page" }, p) : link(pageOf(here), p));
  });
  return h("nav.crumbs", { id: "disk-crumbs", "aria-label": t("nav.breadcrumb") }, items);
}

/** PUT one file with XHR (fetch has no upload progress); resolves with the entry, rejects with an error (its
 * text, and the API's code: PathExists when the name is taken and `overwrite` was not asked for). */
function putFile(path, file, onProgress, overwrite = false) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("PUT", `/api/v1/disk/files/${urlPath(path)}${overwrite ? "?overwrite=true" : ""}`);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText || "{}"); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(body);
      else reject(Object.assign(new Error(body.code ? errorText(body) : `HTTP ${xhr.status}`), { code: body.code }));
    };
    xhr.onerror = () => reject(new Error(t("disk.uploadFailed")));
    xhr.onabort = () => reject(new Error(t("disk.cancelled")));
    xhr.send(file);
  });
  return { done, cancel: () => xhr.abort() };
}

export async function renderDisk(main, rawPath = "") {
  const path = rawPath.split("/").filter(Boolean).map(decodeSegment).join("/");
  const body = h("tbody", emptyRow(5, t("common.loading")));
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  const bar = h("progress.usage-bar", { id: "disk-usage-bar", max: 1, value: 0 });
  const usageText = h("span.muted", { id: "disk-usage" });
  const uploads = h("ul.upload-list", { id: "disk-uploads", "aria-live": "polite" });
  const picker = h("input", { type: "file", multiple: true, hidden: true, id: "disk-file-input",
    onchange: () => { startUploads([...picker.files]); picker.value = ""; } });
  const showError = (err) => { error.textContent = errorText(err); error.hidden = false; };
  let listed = new Map(); // name -> entry of the folder in view
  const confirmReplace = (name) => confirmDialog({ title: t("disk.replaceTitle", { name }), danger: true,
    message: t("disk.replaceMessage", { name }), confirmLabel: t("disk.replace") });

  async function refresh() {
    try {
      const [listing, usage] = await Promise.all([
        api.get(path ? `/disk/list/${urlPath(path)}` : "/disk/list"), api.get("/disk/usage")]);
      listed = new Map(listing.entries.map((e) => [e.name, e]));
      body.replaceChildren(...(listing.entries.length ? listing.entries.map(row) : [emptyRow(5, t("disk.empty"))]));
      bar.max = usage.limit || 1;
      bar.value = Math.min(usage.used, usage.limit);
      usageText.textContent = t("disk.usage", { used: fmtBytes(usage.used), limit: fmtBytes(usage.limit) });
    } catch (err) {
      body.replaceChildren(emptyRow(5, "—"));
      showError(err);
    }
  }

  function row(e) {
    const full = e.path;
    const name = e.type === "folder" ? link(pageOf(full), { class: "folder-link" }, `${e.name}/`)
      : h("span", e.name);
    return h("tr", { dataset: { name: e.name, type: e.type } },
      h("td", name), h("td.nowrap", t(`disk.type.${e.type}`)),
      h("td.nowrap", e.type === "file" ? fmtBytes(e.size) : "—"), h("td.nowrap", fmtTime(e.modified, false)),
      h("td.actions",
        e.type === "file" ? h("a.btn.small", { href: `/api/v1/disk/files/${urlPath(full)}`, download: e.name,
          "aria-label": `${t("disk.download")}: ${e.name}` }, icon("download"), t("disk.download")) : null,
        h("button.btn.small", { type: "button", "aria-label": `${t("disk.rename")}: ${e.name}`,
          onclick: () => rename(e) }, icon("pencil"), t("disk.rename")),
        h("button.btn.small.danger", { type: "button", "aria-label": `${t("disk.delete")}: ${e.name}`,
          onclick: () => remove(e) }, icon("trash"), t("disk.delete"))));
  }

  function rename(e) {
    const input = h("input", { name: "name", value: e.name, required: true, autocomplete: "off" });
    const form = h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      const move = (overwrite) => api.post("/disk/move", { src: e.path, dst: join(path, name), overwrite });
      try {
        try {
          await move(false);
        } catch (err) { // onto an existing file: replace it, once confirmed (the API never replaces a folder)
          const there = listed.get(name);
          if (err.code !== "PathExists" || !there || there.type === "folder" || e.type === "folder") throw err;
          if (!await confirmReplace(name)) return;
          await move(true);
        }
        dlg.close();
        toast(t("disk.renamed"));
        refresh();
      } catch (err) { form.querySelector(".field-error").textContent = errorText(err); }
    } }, field(t("disk.newName"), input, { name: "name", required: true }),
    h("div.dialog-foot", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("disk.rename"))));
    const dlg = dialog({ title: t("disk.renameTitle", { name: e.name }), body: form });
  }

  async function remove(e) {
    const ok = await confirmDialog({ title: t("disk.deleteTitle", { name: e.name }), danger: true,
      message: t(e.type === "folder" ? "disk.deleteFolder" : "disk.deleteFile", { name: e.name }),
      confirmLabel: t("disk.delete") });
    if (!ok) return;
    try {
      await api.del(`/disk/files/${urlPath(e.path)}${e.type === "folder" ? "?recursive=true" : ""}`);
      toast(t("disk.deleted", { name: e.name }));
      refresh();
    } catch (err) { showError(err); }
  }

  function newFolder() {
    const input = h("input", { name: "path", required: true, autocomplete: "off" });
    const form = h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api.post("/disk/mkdir", { path: join(path, input.value.trim()) });
        dlg.close();
        refresh();
      } catch (err) { form.querySelector(".field-error").textContent = errorText(err); }
    } }, field(t("disk.folderName"), input, { name: "path", required: true }),
    h("div.dialog-foot", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("disk.create"))));
    const dlg = dialog({ title: t("disk.newFolder"), body: form });
  }

  function startUploads(files) {
    for (const file of files) {
      const progress = h("progress", { max: 1, value: 0 });
      const pct = h("span.muted.nowrap", "0%");
      const status = h("span.upload-status");
      const cancelBtn = h("button.btn.small", { type: "button", "aria-label": `${t("disk.cancel")}: ${file.name}` },
        icon("close"), t("disk.cancel"));
      const item = h("li.upload-item", { dataset: { name: file.name } }, h("span.upload-name", file.name),
        progress, pct, status, cancelBtn);
      uploads.append(item);
      send(item, file, progress, pct, status, cancelBtn, false);
    }
  }

  // One try of an upload. The name taken (409 PathExists): says so and offers Replace, which asks first and then
  // uploads again with ?overwrite=true; cancelling that question leaves the existing file as it is.
  function send(item, file, progress, pct, status, cancelBtn, overwrite) {
    item.classList.remove("failed");
    item.append(cancelBtn);
    status.textContent = "";
    const up = putFile(join(path, file.name), file, (loaded, total) => {
      progress.max = total || 1;
      progress.value = loaded;
      pct.textContent = `${Math.floor((100 * loaded) / (total || 1))}%`;
    }, overwrite);
    cancelBtn.onclick = () => up.cancel();
    up.done.then(() => {
      progress.value = progress.max;
      pct.textContent = "100%";
      status.textContent = t("disk.uploaded");
      item.classList.add("done");
      cancelBtn.remove();
      refresh();
    }, (err) => {
      item.classList.add("failed");
      cancelBtn.remove();
      if (err.code !== "PathExists" || overwrite) {
        status.textContent = err.message;
        return;
      }
      status.textContent = t("disk.exists", { name: file.name });
      const replace = h("button.btn.small", { type: "button", "aria-label": `${t("disk.replace")}: ${file.name}`,
        onclick: async () => {
          if (!await confirmReplace(file.name)) return;
          replace.remove();
          send(item, file, progress, pct, status, cancelBtn, true);
        } }, t("disk.replace"));
      item.append(replace);
    });
  }

  const drop = h("div.card.table-card.dropzone", { id: "disk-drop",
    ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      startUploads([...e.dataTransfer.files]);
    } },
  h("div.table-wrap", h("table.table", { id: "disk-table" },
    h("thead", h("tr", [t("disk.col.name"), t("disk.col.type"), t("disk.col.size"), t("disk.col.modified"), ""]
      .map((c) => h("th", { scope: "col" }, c)))), body)),
  h("p.muted.drop-hint", t("disk.dropHint")));

  main.replaceChildren(
    pageHeader(t("disk.title"), h("div.usage", bar, usageText),
      h("button.btn", { type: "button", id: "disk-new-folder", onclick: newFolder }, icon("plus"), t("disk.newFolder")),
      h("button.btn.primary", { type: "button", id: "disk-upload", onclick: () => picker.click() }, icon("plus"),
        t("disk.upload")), picker),
    h("p.page-intro.muted", t("disk.intro")), crumbs(path), error, uploads, drop);
  await refresh();
  return null;
}

