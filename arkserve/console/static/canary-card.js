// The canary of a service (docs/canary.md): the split between the stable and the canary revision, each one's
// ready replicas, and the promote / roll back buttons, each behind a confirmation. Hidden when there is none.

import { api, enc } from "./api.js";
import { t } from "./i18n.js";
import { clear, confirmDialog, errorText, h, toast } from "./ui.js";

const grow = (el, n) => { el.style.flexGrow = String(n); return el; };  // CSSOM: the CSP allows no style attributes

export function drawCanary(el, svc, reload) {
  const c = svc.canary;
  el.hidden = !c;
  if (!c) { el.replaceChildren(); return; }
  const stableWeight = 100 - c.weight;
  const side = (cls, label, rev, weight, ready, want, image) => h(`div.canary-side.${cls}`,
    h("div.canary-label", label, " ", h("code", rev)),
    h("div.canary-weight", `${weight}%`),
    h("div.muted.small", t("canary.ready", { ready, desired: want }), " · ", h("code", image)));
  const act = async (verb) => {
    const ok = await confirmDialog({
      title: t(`canary.${verb}Title`, { name: svc.name }),
      message: t(`canary.${verb}Text`, { canary: c.revision, stable: svc.revision }),
      confirmLabel: t(`canary.${verb}`), danger: verb === "rollback" });
    if (!ok) return;
    try {
      await api.post(`/services/${enc(svc.name)}/canary/${verb}`, {});
      toast(t(`canary.${verb}Done`));
      reload();
    } catch (err) { toast(errorText(err), "error"); }
  };
  clear(el,
    h("div.card-head", h("h2", t("canary.title")),
      h("div.page-actions",
        h("button.btn.primary", { type: "button", dataset: { action: "promote" }, onclick: () => act("promote") },
          t("canary.promote")),
        h("button.btn.danger-outline", { type: "button", dataset: { action: "rollback" },
          onclick: () => act("rollback") }, t("canary.rollback")))),
    h("div.canary-bar", { role: "img", "aria-label": t("canary.split", { stable: stableWeight, canary: c.weight }) },
      grow(h("span.stable"), stableWeight), grow(h("span.canary"), c.weight)),
    h("div.canary-sides",
      side("stable", t("canary.stable"), svc.revision, stableWeight, svc.ready, svc.replicas, svc.spec.image),
      side("canary", t("canary.canary"), c.revision, c.weight, c.ready, c.replicas, c.spec.image)),
    h("p.muted.small", t("canary.hint")));
}
