// The Create form's resource choice: pay-as-you-go, a prepaid instance (with the caller's free prepaid instances
// of the chosen type), or prepaid first and the rest pay-as-you-go; and what happens when a prepaid one expires.

import { api } from "./api.js";
import { t } from "./i18n.js";
import { h } from "./ui.js";

/** typeSelect: the form's instance type <select>. Returns { el, value() } (value: the spec's billing fields). */
export function billingField(typeSelect) {
  let free = {};
  const name = "billing";
  const radio = (value, label) => h("label.check", { dataset: { billing: value } },
    h("input", { type: "radio", name, value, checked: value === "auto" }), " ", label);
  const choices = h("div.billing-choices", { role: "radiogroup", "aria-label": t("create.billing") },
    radio("payg", t("billing.mode.payg")), radio("prepaid", t("create.billingPrepaid")),
    radio("auto", t("create.billingAuto")));
  const freeLine = h("div.hint", { id: "create-prepaid-free" });
  const expiry = h("select", { name: "on_prepaid_expiry", id: "create-prepaid-expiry" },
    h("option", { value: "payg" }, t("create.expiryPayg")), h("option", { value: "stop" }, t("create.expiryStop")));
  const expiryField = h("div.field", { dataset: { field: "on_prepaid_expiry" } },
    h("label", { for: "create-prepaid-expiry" }, t("create.expiry")), expiry);
  const chosen = () => choices.querySelector("input:checked").value;
  const update = () => {
    const n = free[typeSelect.value] || 0;
    freeLine.textContent = t("create.prepaidFree", { n, type: typeSelect.value });
    expiryField.hidden = chosen() === "payg";
  };
  typeSelect.addEventListener("change", update);
  choices.addEventListener("change", update);
  api.get("/billing/prepaid-free").then((rows) => {
    free = Object.fromEntries(rows.map((r) => [r.instance_type, r.free]));
    update();
  }).catch(() => update());
  update();
  const el = h("div.field", { dataset: { field: "billing" } },
    h("label", t("create.billing")), choices, freeLine, h("div.field-error", { role: "alert" }), expiryField);
  return { el, value: () => ({ billing: chosen(), on_prepaid_expiry: chosen() === "payg" ? "payg" : expiry.value }) };
}
