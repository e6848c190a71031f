// Settings: access keys (list, create + show SK once, reveal with password, copy, disable/enable, delete)
// and changing one's own password.

import { api, enc } from "./api.js";
import { t } from "./i18n.js";
import {
  clearErrors, confirmDialog, copyButton, dialog, emptyRow, errorText, field, fmtTime, h, icon, pageHeader,
  showApiError, showError, syncRows, toast,
} from "./ui.js";

export async function renderKeys(main) {
  const tbody = h("tbody");
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  main.replaceChildren(
    pageHeader(t("keys.title"), h("button.btn.primary", { type: "button", onclick: createDialog }, icon("plus"),
      t("keys.create"))),
    h("p.page-intro.muted", t("keys.intro")),
    error,
    h("div.card.table-card", h("div.table-wrap", h("table.table", { id: "keys-table" },
      h("thead", h("tr", [t("keys.ak"), t("keys.sk"), t("keys.description"), t("col.status"), t("col.created"),
        t("keys.lastUsed"), t("col.actions")].map((c) => h("th", { scope: "col" }, c)))),
      tbody))));

  async function load() {
    try {
      const keys = await api.get("/keys");
      error.hidden = true;
      if (!keys.length) { tbody.replaceChildren(emptyRow(7, t("keys.empty"))); return; }
      syncRows(tbody, keys, (k) => k.access_key, row);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }

  function row(k) {
    return h("tr", { dataset: { ak: k.access_key } },
      h("td.keycell", h("code", k.access_key), copyButton(() => k.access_key, t("keys.copyAk"))),
      h("td.keycell", h("code.masked", "••••••••••••"),
        h("button.btn.small.ghost", { type: "button", onclick: () => revealDialog(k.access_key) }, icon("eye"),
          t("keys.reveal"))),
      h("td", k.description || h("span.muted", "—")),
      h("td", k.enabled ? h("span.badge.on", t("keys.enabled")) : h("span.badge.off", t("keys.disabled"))),
      h("td.nowrap", fmtTime(k.created_at)),
      h("td.nowrap", k.last_used_at ? fmtTime(k.last_used_at) : h("span.muted", t("keys.never"))),
      h("td.actions",
        h("button.btn.small", { type: "button", onclick: () => toggle(k) }, k.enabled ? t("keys.disable") : t("keys.enable")),
        h("button.btn.small.danger-outline", { type: "button", onclick: () => remove(k) }, t("common.delete"))));
  }

  async function toggle(k) {
    if (k.enabled && !(await confirmDialog({ title: t("keys.disableTitle"), message: t("keys.disableText", { ak: k.access_key }),
      confirmLabel: t("keys.disable"), danger: true }))) return;
    try {
      await api.patch(`/keys/${enc(k.access_key)}`, { enabled: !k.enabled });
      toast(k.enabled ? t("keys.disabledDone") : t("keys.enabledDone"));
    } catch (err) { toast(errorText(err), "error"); }
    load();
  }

  async function remove(k) {
    if (!(await confirmDialog({ title: t("keys.deleteTitle"), message: t("keys.deleteText", { ak: k.access_key }),
      confirmLabel: t("common.delete"), danger: true }))) return;
    try {
      await api.del(`/keys/${enc(k.access_key)}`);
      toast(t("keys.deleted"));
    } catch (err) { toast(errorText(err), "error"); }
    load();
  }

  function secretBox(ak, sk) {
    return h("div.secret", { id: "secret-box" },
      h("div.secret-row", h("span.secret-label", "AK"), h("code", { id: "secret-ak" }, ak), copyButton(() => ak, t("keys.copyAk"))),
      h("div.secret-row", h("span.secret-label", "SK"), h("code", { id: "secret-sk" }, sk), copyButton(() => sk, t("keys.copySk"))));
  }

  function createDialog() {
    const desc = h("input", { name: "description", maxlength: 200 });
    const body = h("div");
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      try {
        const made = await api.post("/keys", { description: desc.value.trim() });
        body.replaceChildren(h("div.banner.warn", icon("warn"), t("keys.onlyOnce")), secretBox(made.access_key, made.secret_key),
          h("div.dialog-foot.inline", h("button.btn.primary", { type: "button", onclick: () => dlg.close() }, t("keys.saved"))));
        load();
      } catch (err) { showApiError(form, err); }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    field(t("keys.description"), desc, { name: "description", hint: t("keys.descriptionHint") }),
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("keys.create"))));
    body.append(form);
    const dlg = dialog({ title: t("keys.create"), body });
  }

  function revealDialog(ak) {
    const password = h("input", { type: "password", name: "password", autocomplete: "current-password" });
    const body = h("div");
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!password.value) { showError(form, "password", t("valid.required")); password.focus(); return; }
      try {
        const out = await api.post(`/keys/${enc(ak)}/reveal`, { password: password.value });
        body.replaceChildren(secretBox(out.access_key, out.secret_key),
          h("div.dialog-foot.inline", h("button.btn.primary", { type: "button", onclick: () => dlg.close() }, t("common.close"))));
      } catch (err) {
        if (err.code === "WrongPassword") { showError(form, "password", t("error.WrongPassword")); password.select(); }
        else showApiError(form, err);
      }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    h("p.muted", t("keys.revealText", { ak })),
    field(t("login.password"), password, { name: "password" }),
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("keys.reveal"))));
    body.append(form);
    const dlg = dialog({ title: t("keys.revealTitle"), body });
  }

  await load();
  return undefined;
}

export function renderPassword(main) {
  const current = h("input", { type: "password", name: "current_password", autocomplete: "current-password" });
  const next = h("input", { type: "password", name: "new_password", autocomplete: "new-password", minlength: 8 });
  const again = h("input", { type: "password", name: "confirm", autocomplete: "new-password" });
  const form = h("form.card.narrow", { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    const bad = (!current.value && showError(form, "current_password", t("valid.required")))
      || (next.value.length < 8 && showError(form, "new_password", t("valid.password")))
      || (next.value !== again.value && showError(form, "confirm", t("valid.mismatch")));
    if (bad) { bad.focus(); return; }
    try {
      await api.post("/me/password", { current_password: current.value, new_password: next.value });
      form.reset();
      toast(t("password.done"));
    } catch (err) {
      if (err.code === "WrongPassword") showError(form, "current_password", t("error.WrongPassword")).focus();
      else showApiError(form, err);
    }
  } },
  h("div.form-error", { role: "alert", hidden: true }),
  field(t("password.current"), current, { name: "current_password" }),
  field(t("password.new"), next, { name: "new_password", hint: t("password.hint") }),
  field(t("password.confirm"), again, { name: "confirm" }),
  h("div.form-actions", h("button.btn.primary", { type: "submit" }, t("password.submit"))));
  main.replaceChildren(pageHeader(t("password.title")), form);
  current.focus();
}
