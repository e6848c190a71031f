// Admin pages (role admin only): users (create, disable/enable, delete; never your own account) and instance types
// (list, add, delete).

import { api, enc } from "./api.js";
import { session } from "./router.js";
import { t } from "./i18n.js";
import { typePrice, typeSummary } from "./forms.js";
import {
  clearErrors, confirmDialog, dialog, emptyRow, errorText, field, fmtTime, h, icon, pageHeader, showApiError,
  showError, syncRows, toast,
} from "./ui.js";

function tablePage(main, { title, intro, id, cols, addLabel, onAdd }) {
  const tbody = h("tbody");
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  main.replaceChildren(
    pageHeader(title, h("button.btn.primary", { type: "button", onclick: onAdd }, icon("plus"), addLabel)),
    h("p.page-intro.muted", intro), error,
    h("div.card.table-card", h("div.table-wrap", h("table.table", { id },
      h("thead", h("tr", cols.map((c) => h("th", { scope: "col" }, c)))), tbody))));
  return { tbody, error };
}

async function act(call, done) {
  try {
    await call();
    if (done) toast(done);
  } catch (err) { toast(errorText(err), "error"); }
}

export async function renderUsers(main) {
  const cols = [t("users.username"), t("users.role"), t("col.status"), t("col.created"), t("col.actions")];
  const { tbody, error } = tablePage(main, { title: t("nav.users"), intro: t("users.intro"), id: "users-table", cols,
    addLabel: t("users.create"), onAdd: createDialog });

  async function load() {
    try {
      const users = await api.get("/users");
      error.hidden = true;
      syncRows(tbody, users, (u) => u.username, (u) => h("tr", { dataset: { user: u.username } },
        h("td.strong", u.username, u.username === session.username ? h("span.muted", ` (${t("users.you")})`) : null),
        h("td", t(`role.${u.role}`)),
        h("td", u.disabled ? h("span.badge.off", t("users.disabled")) : h("span.badge.on", t("users.active"))),
        h("td.nowrap", fmtTime(u.created_at)),
        h("td.actions",
          u.username === session.username ? null : h("button.btn.small", { type: "button", onclick: async () => {
            if (!u.disabled && !(await confirmDialog({ title: t("users.disableTitle", { name: u.username }),
              message: t("users.disableText"), confirmLabel: t("users.disable"), danger: true }))) return;
            await act(() => api.patch(`/users/${enc(u.username)}`, { disabled: !u.disabled }));
            load();
          } }, u.disabled ? t("users.enable") : t("users.disable")),
          u.username === session.username ? null : h("button.btn.small.danger-outline", { type: "button",
            onclick: async () => {
              if (!(await confirmDialog({ title: t("users.deleteTitle", { name: u.username }), message: t("users.deleteText"),
                confirmLabel: t("common.delete"), danger: true }))) return;
              await act(() => api.del(`/users/${enc(u.username)}`), t("users.deleted"));
              load();
            } }, t("common.delete")))));
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }

  function createDialog() {
    const username = h("input", { name: "username", autocomplete: "off", autocapitalize: "none", spellcheck: "false" });
    const password = h("input", { name: "password", type: "password", autocomplete: "new-password" });
    const role = h("select", { name: "role" }, ["user", "admin"].map((r) => h("option", { value: r }, t(`role.${r}`))));
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      const bad = (!/^[a-z][a-z0-9_.-]{1,31}$/.test(username.value) && showError(form, "username", t("valid.username")))
        || (password.value.length < 8 && showError(form, "password", t("valid.password")));
      if (bad) { bad.focus(); return; }
      try {
        await api.post("/users", { username: username.value, password: password.value, role: role.value });
        dlg.close();
        toast(t("users.created"));
        load();
      } catch (err) { showApiError(form, err); }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    field(t("users.username"), username, { name: "username", hint: t("users.usernameHint") }),
    field(t("login.password"), password, { name: "password", hint: t("password.hint") }),
    field(t("users.role"), role, { name: "role" }),
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("users.create"))));
    const dlg = dialog({ title: t("users.create"), body: form });
  }

  await load();
  return undefined;
}

export async function renderInstanceTypes(main) {
  const cols = [t("col.name"), t("it.resources"), t("it.priceCol"), t("it.description"), t("col.actions")];
  const { tbody, error } = tablePage(main, { title: t("nav.instanceTypes"), intro: t("it.intro"), id: "types-table",
    cols, addLabel: t("it.add"), onAdd: addDialog });

  async function load() {
    try {
      const types = await api.get("/instance-types");
      error.hidden = true;
      if (!types.length) { tbody.replaceChildren(emptyRow(5, t("it.empty"))); return; }
      syncRows(tbody, types, (it) => it.name, (it) => h("tr", { dataset: { type: it.name } },
        h("td.strong", it.name), h("td", typeSummary(it)), h("td", typePrice(it)),
        h("td", it.description || h("span.muted", "—")),
        h("td.actions", h("button.btn.small.danger-outline", { type: "button", onclick: async () => {
          if (!(await confirmDialog({ title: t("it.deleteTitle", { name: it.name }), message: t("it.deleteText"),
            confirmLabel: t("common.delete"), danger: true }))) return;
          await act(() => api.del(`/instance-types/${enc(it.name)}`), t("it.deleted"));
          load();
        } }, t("common.delete")))));
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }

  function addDialog() {
    const inp = (name, attrs = {}) => h("input", { name, ...attrs });
    const f = {
      name: inp("name", { placeholder: "gpu.a10", autocapitalize: "none", spellcheck: "false" }),
      cpus: inp("cpus", { type: "number", min: 0.1, step: 0.1, value: "2" }),
      memory_mb: inp("memory_mb", { type: "number", min: 1, value: "4096" }),
      gpus: inp("gpus", { type: "number", min: 0, max: 64, value: "0" }),
      gpu_model: inp("gpu_model", { placeholder: "A10" }),
      gpu_fraction: inp("gpu_fraction", { type: "number", min: 0, max: 0.99, step: 0.05, value: "0" }),
      price_per_hour: inp("price_per_hour", { type: "number", min: 0, step: 0.01, value: "0" }),
      billing: h("select", { name: "billing" }, ["payg", "reserved"].map((b) => h("option", { value: b }, t(`billing.${b}`)))),
      description: inp("description", { maxlength: 200 }),
    };
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!/^[a-z0-9][a-z0-9.-]{0,63}$/.test(f.name.value)) { showError(form, "name", t("valid.typeName")).focus(); return; }
      const body = { name: f.name.value, cpus: Number(f.cpus.value), memory_mb: Number(f.memory_mb.value),
        gpus: Number(f.gpus.value), gpu_fraction: Number(f.gpu_fraction.value), gpu_model: f.gpu_model.value,
        price_per_hour: Number(f.price_per_hour.value),
        billing: f.billing.value, description: f.description.value };
      try {
        await api.post("/instance-types", body);
        dlg.close();
        toast(t("it.added"));
        load();
      } catch (err) { showApiError(form, err); }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    field(t("col.name"), f.name, { name: "name", required: true }),
    h("div.grid-3", field("vCPU", f.cpus, { name: "cpus" }), field(t("it.memory"), f.memory_mb, { name: "memory_mb" }),
      field("GPU", f.gpus, { name: "gpus" })),
    field(t("it.gpuFraction"), f.gpu_fraction, { name: "gpu_fraction" }),
    h("div.grid-3", field(t("it.gpuModel"), f.gpu_model, { name: "gpu_model" }),
      field(t("it.pricePerHour"), f.price_per_hour, { name: "price_per_hour" }),
      field(t("it.billing"), f.billing, { name: "billing" })),
    field(t("it.description"), f.description, { name: "description" }),
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("it.add"))));
    const dlg = dialog({ title: t("it.add"), body: form, wide: true });
  }

  await load();
  return undefined;
}
