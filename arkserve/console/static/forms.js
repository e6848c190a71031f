// Form pieces shared by "create service" and "edit configuration": validators, env rows, instance types.

import { t } from "./i18n.js";
import { fmtMemory, fmtNum, h, icon, showError } from "./ui.js";

export const DNS_LABEL = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkPort(value) {
  const n = Number(value);
  return value !== "" && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Rows of NAME=value inputs with add/remove buttons. */
export function envEditor(initial = {}) {
  const rows = h("div.env-rows");
  const addRow = (name = "", value = "", focus = false) => {
    const n = h("input.mono", { "aria-label": t("env.name"), placeholder: t("env.name"), value: name,
      autocapitalize: "none", spellcheck: "false" });
    const v = h("input.mono", { "aria-label": t("env.value"), placeholder: t("env.value"), value,
      spellcheck: "false" });
    const row = h("div.env-row", n, h("span.eq", "="), v,
      h("button.btn.icon-btn.ghost", { type: "button", title: t("env.remove"), "aria-label": t("env.remove"),
        onclick: () => { row.remove(); add.focus(); } }, icon("trash")));
    rows.append(row);
    if (focus) n.focus();
  };
  const add = h("button.btn.small", { type: "button", onclick: () => addRow("", "", true) }, icon("plus"), t("env.add"));
  for (const [k, v] of Object.entries(initial)) addRow(k, v);
  const el = h("div.field", { dataset: { field: "env" } },
    h("div.label", t("create.env")), rows, add, h("div.hint", t("create.envHint")),
    h("div.field-error", { role: "alert" }));
  return {
    el,
    value() {
      const env = {};
      for (const row of rows.children) {
        const [n, v] = row.querySelectorAll("input");
        if (n.value.trim()) env[n.value.trim()] = v.value;
      }
      return env;
    },
    validate(form) {
      for (const row of rows.children) {
        const [n, v] = row.querySelectorAll("input");
        const name = n.value.trim();
        if (!name && !v.value) continue;
        if (!ENV_NAME.test(name)) {
          showError(form, "env", t("env.invalid", { name: name || "…" }));
          return n;
        }
      }
      return null;
    },
  };
}

export function typeSummary(it) {
  const parts = [`${fmtNum(it.cpus, 2)} vCPU`, fmtMemory(it.memory_mb),
    it.gpus ? `${it.gpus} × GPU${it.gpu_model ? ` (${it.gpu_model})` : ""}`
      : it.gpu_fraction ? t("it.gpuShare", { fraction: fmtNum(it.gpu_fraction, 3) }) : t("it.noGpu")];
  return parts.join(" · ");
}

export function typePrice(it) {
  return `${t("it.price", { price: fmtNum(it.price_per_hour, 4) })} · ${t(`billing.${it.billing}`)}`;
}

/** A <select> of instance types with a line under it describing the chosen one. */
export function instanceTypeField(types, current) {
  const select = h("select", { name: "instance_type" },
    types.map((it) => h("option", { value: it.name, selected: it.name === current },
      `${it.name} — ${typeSummary(it)}`)));
  const info = h("div.type-info");
  const describe = () => {
    const it = types.find((x) => x.name === select.value);
    info.replaceChildren(...(it ? [h("span.price", typePrice(it)),
      it.description ? h("span.muted", it.description) : null].filter(Boolean) : []));
  };
  select.addEventListener("change", describe);
  if (!types.some((it) => it.name === current) && types.length) select.value = types[0].name;
  describe();
  return { select, info };
}
