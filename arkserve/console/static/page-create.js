// Create an inference service: instance type and billing (pay-as-you-go / prepaid: billing-field.js), image, port,
// command, env, model (image / model market / network disk, mounted at a path, and more mounts: mounts-editor.js),
// instances, auth. "?model=NAME@VERSION" (from the model market) preselects a model.

import { api, enc } from "./api.js";
import { t } from "./i18n.js";
import { link, navigate } from "./router.js";
import { DNS_LABEL, checkPort, envEditor, instanceTypeField } from "./forms.js";
import { billingField } from "./billing-field.js";
import { mountsEditor } from "./mounts-editor.js";
import { fillImageChoices } from "./page-images.js";
import { clearErrors, errorText, field, h, icon, pageHeader, serverMessage, showError, toast } from "./ui.js";

export async function renderCreate(main) {
  let types = [];
  let models = [];
  try { types = await api.get("/instance-types"); } catch (err) { toast(errorText(err), "error"); }
  const wanted = new URLSearchParams(location.search).get("model") || "";
  try { // the market is paged: its first 1 000 models, and the one "Use in a service" asked for
    models = await api.get("/models", { limit: 1000 });
    const name = wanted.split("@")[0];
    if (name && !models.some((m) => m.name === name)) models = [...models, await api.get(`/models/${enc(name)}`)];
  } catch (err) { toast(errorText(err), "error"); }

  const name = h("input", { name: "name", required: true, maxlength: 63, autocapitalize: "none", spellcheck: "false",
    placeholder: "my-model" });
  const { select: typeSelect, info: typeInfo } = instanceTypeField(types, "cpu.small");
  const billing = billingField(typeSelect);  // pay-as-you-go / prepaid instance (docs/billing.md)
  const image = h("input.mono", { name: "image", required: true, spellcheck: "false",
    placeholder: t("create.imagePlaceholder"), list: "image-choices" });
  const imageChoices = h("datalist", { id: "image-choices" });
  fillImageChoices(imageChoices);  // the registry's images (yours and public), when there is a registry
  const port = h("input", { name: "port", type: "number", min: 1, max: 65535, value: "8000", required: true });
  const command = h("input.mono", { name: "command", required: true, spellcheck: "false",
    placeholder: "python3 app.py" });
  const health = h("input.mono", { name: "health_path", spellcheck: "false", placeholder: "/healthz" });
  const env = envEditor();
  const mounts = mountsEditor(models, wanted);
  const replicas = h("input", { name: "replicas", type: "number", min: 0, max: 1000, value: "1" });
  const auth = h("input", { type: "checkbox", name: "auth", checked: true, role: "switch" });
  const authWarn = h("div.banner.warn", { role: "alert", hidden: true }, icon("warn"), t("create.authWarning"));
  const formError = h("div.form-error", { role: "alert", hidden: true });
  const submit = h("button.btn.primary", { type: "submit" }, t("create.submit"));

  auth.addEventListener("change", () => { authWarn.hidden = auth.checked; });

  const form = h("form.create-form", { novalidate: true, onsubmit: (e) => { e.preventDefault(); create(); } },
    formError,
    section(t("create.basic"),
      field(t("create.name"), name, { name: "name", required: true, hint: t("create.nameHint") }),
      h("div", field(t("create.instanceType"), typeSelect, { name: "instance_type", required: true }), typeInfo),
      billing.el),
    section(t("create.container"),
      field(t("create.image"), image, { name: "image", required: true, hint: t("create.imageHint") }), imageChoices,
      h("div.grid-2",
        field(t("create.port"), port, { name: "port", required: true, hint: t("create.portHint") }),
        field(t("create.health"), health, { name: "health_path", hint: t("create.healthHint") })),
      field(t("create.command"), command, { name: "command", required: true, hint: t("create.commandHint") }),
      env.el),
    section(t("create.model"), mounts.el),
    section(t("create.scale"),
      field(t("create.replicas"), replicas, { name: "replicas", hint: t("create.replicasHint") })),
    h("details.card.form-section.advanced",
      h("summary", t("create.advanced")),
      h("div.field.switch-field", { dataset: { field: "auth" } },
        h("label.switch", auth, h("span.slider", { "aria-hidden": "true" }), h("span", t("create.auth"))),
        h("div.hint", t("create.authHint")), h("div.field-error", { role: "alert" })),
      authWarn),
    h("div.form-actions",
      link("/console/services", { class: "btn" }, t("common.cancel")),
      submit));

  main.replaceChildren(
    h("nav.crumbs", { "aria-label": t("nav.breadcrumb") }, link("/console/services", t("services.title")), " / ",
      h("span", t("create.title"))),
    pageHeader(t("create.title")),
    form);
  name.focus();

  function validate() {
    const errors = [];
    if (!DNS_LABEL.test(name.value.trim())) errors.push(showError(form, "name", t("valid.dns")));
    if (!typeSelect.value) errors.push(showError(form, "instance_type", t("valid.required")));
    if (!image.value.trim()) errors.push(showError(form, "image", t("valid.required")));
    if (!checkPort(port.value.trim())) errors.push(showError(form, "port", t("valid.port")));
    if (!command.value.trim()) errors.push(showError(form, "command", t("valid.required")));
    const r = Number(replicas.value);
    if (replicas.value === "" || !Number.isInteger(r) || r < 0 || r > 1000) {
      errors.push(showError(form, "replicas", t("valid.replicas")));
    }
    errors.push(mounts.validate(form));
    errors.push(env.validate(form));
    return errors.find(Boolean) || null;
  }

  async function create() {
    clearErrors(form);
    const bad = validate();
    if (bad) { bad.focus(); return; }
    const body = {
      name: name.value.trim(), instance_type: typeSelect.value, image: image.value.trim(),
      port: Number(port.value), command: command.value.trim(), env: env.value(), replicas: Number(replicas.value),
      auth: auth.checked, ...billing.value(),
    };
    const mountList = mounts.value();
    if (mountList.length) body.mounts = mountList;
    if (health.value.trim()) body.health_path = health.value.trim();
    submit.disabled = true;
    try {
      await api.post("/services", body);
      toast(t("create.done", { name: body.name }));
      navigate(`/console/services/${body.name}`);
    } catch (err) {
      if (err.code === "ServiceExists") {
        showError(form, "name", t("error.ServiceExists"));
        name.focus();
      } else { // the message loses its own "field: " prefix; a disk mount's error shows at its folder
        const input = showError(form, mounts.fieldOf(err), serverMessage(err));
        if (input) input.focus();
      }
    } finally {
      submit.disabled = false;
    }
  }
}

function section(title, ...children) {
  return h("section.card.form-section", h("h2", title), ...children);
}
