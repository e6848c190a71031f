// Service details: status, endpoint + signed examples, tabs (instances, logs, requests, events, metrics),
// scaling (pencil), configuration edits (rolling update) and deletion with a typed confirmation.

import { api, enc, platformRuntime } from "./api.js";
import { drawCanary } from "./canary-card.js";
import { t } from "./i18n.js";
import { link, navigate, session } from "./router.js";
import { checkPort, envEditor, instanceTypeField } from "./forms.js";
import { mountEvents } from "./tab-events.js";
import { mountLogs } from "./tab-logs.js";
import { mountMetrics } from "./tab-metrics.js";
import { mountRequests } from "./tab-requests.js";
import {
  clear, clearErrors, copyButton, dialog, emptyRow, errorText, field, fmtAge, fmtTime, h, icon, poll,
  showApiError, showError, stateBadge, statusBadge, syncRows, toast,
} from "./ui.js";

const REFRESH_MS = 3000;
const TABS = ["instances", "logs", "requests", "events", "metrics"];
const TAB_MOUNT = { logs: mountLogs, requests: mountRequests, events: mountEvents, metrics: mountMetrics };

export async function renderService(main, name, tab = "instances") {
  let svc = null;
  let gone = false;
  let runtime = "";  // only a hint next to the port: the page works without it
  try { runtime = await platformRuntime(); } catch { /* /healthz failed once: asked again on the next visit */ }
  const listeners = new Set();
  const head = h("div.page-head");
  const banner = h("div.status-banner", { "aria-live": "polite" });
  const canaryCard = h("div.card.canary-card", { hidden: true });
  const overview = h("div.card.overview");
  const example = h("div.card.example");
  const tabBar = h("div.tabs", { role: "tablist", "aria-label": t("details.tabs") });
  const panel = h("div.tab-panel", { role: "tabpanel" });
  let stopTab = null;
  let currentTab = null;

  clear(main,
    h("nav.crumbs", { "aria-label": t("nav.breadcrumb") }, link("/console/services", t("services.title")), " / ",
      h("span", name)),
    head, banner, canaryCard, h("div.details-grid", overview, example), tabBar, panel);

  const ctx = {
    name,
    service: () => svc,
    onUpdate(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  };

  async function load() {
    try {
      const fresh = await api.get(`/services/${enc(name)}`);
      const changed = JSON.stringify(fresh) !== JSON.stringify(svc);
      svc = fresh;
      if (changed) { drawHead(); drawBanner(); drawOverview(); drawCanary(canaryCard, svc, load); }
      listeners.forEach((fn) => fn(svc));
    } catch (err) {
      if (err.code === "ServiceNotFound") {
        gone = true;
        clear(main, h("div.card.notfound", h("h1", t("details.gone", { name })),
          link("/console/services", { class: "btn primary" }, t("nav.services"))));
      } else toast(errorText(err), "error");
    }
  }

  function drawHead() {
    clear(head,
      h("h1", name, " ", statusBadge(svc.status, [svc.reason, svc.message].filter(Boolean).join(": "))),
      h("div.page-actions",
        h("button.btn", { type: "button", onclick: editDialog }, icon("pencil"), t("details.edit")),
        h("button.btn.danger-outline", { type: "button", onclick: deleteDialog }, icon("trash"), t("details.delete"))));
  }

  function drawBanner() {
    banner.className = `status-banner s-${svc.status}`;
    clear(banner, h("strong", svc.reason || svc.status), svc.message ? h("span", svc.message) : null);
  }

  function drawOverview() {
    const s = svc.spec;
    const dl = (rows) => h("dl.props", rows.filter(Boolean).map(([k, v]) => h("div.prop", h("dt", k), h("dd", v))));
    clear(overview, h("h2", t("details.overview")), dl([
      [t("col.endpoint"), h("span.endpoint", h("code", svc.endpoint), copyButton(() => svc.endpoint))],
      [t("col.auth"), s.auth ? h("span.badge.on", icon("lock"), t("auth.on"))
        : h("span.badge.warn", { title: t("create.authWarning") }, t("auth.off"))],
      [t("col.instanceType"), s.instance_type],
      [t("create.image"), h("code", s.image)],
      [t("create.command"), h("code", s.command)],
      [t("create.port"), [runtime === "local" ? h("span.port-local", { title: t("create.portHint") },
        t("details.portLocal")) : String(s.port), h("span.muted", " · ", t("create.health"), " "),
        s.health_path ? h("code", s.health_path) : h("span.muted", t("details.tcpProbe"))]],
      [t("create.env"), Object.keys(s.env).length ? h("div.env-list", Object.entries(s.env).map(([k, v]) =>
        h("code", `${k}=${v}`))) : h("span.muted", "—")],
      s.model.source === "image" ? null
        : [t("create.model"), `${t(`model.${s.model.source}`)}: ${s.model.ref} → ${s.model.mount_path || "—"}`],
      (s.mounts || []).length ? [t("details.mounts"), h("div.mount-list", s.mounts.map((m) => h("div.mount",
        h("code", m.mount_path), " ← ", m.source === "model"
          ? [t("model.market"), " ", h("code", m.ref), " ", h("code.digest", { title: m.digest }, m.digest)]
          : [t("model.disk"), " ", h("code", m.ref)],
        " ", h("span.badge", m.read_only ? t("details.ro") : t("details.rw")))))] : null,
      svc.owner === session.username ? null : [t("details.owner"), svc.owner],
      [t("col.created"), fmtTime(svc.created_at)],
    ]));
    drawExample();
  }

  function drawExample() {
    const url = `${svc.endpoint}/`;
    const tls = url.startsWith("https:");
    const python = svc.spec.auth ? [
      "import requests",
      "from arkserve.sdk import ArkRequestsAuth",
      "",
      `# ${t("example.keysComment")}`,
      tls ? `# ${t("example.caComment")}` : null,
      'auth = ArkRequestsAuth("YOUR_AK", "YOUR_SK")',
      `url = "${url}"`,
      "r = requests.get(url, auth=auth, timeout=30)",
      "print(r.status_code, r.text)",
    ] : [
      "import requests",
      "",
      `# ${t("example.public")}`,
      tls ? `# ${t("example.caComment")}` : null,
      `url = "${url}"`,
      "r = requests.get(url, timeout=30)",
      "print(r.status_code, r.text)",
    ];
    const cacert = tls ? "--cacert ~/.arkserve/tls/ca.pem " : "";
    const curl = svc.spec.auth ? [
      `# ${t("example.curlComment")}`,
      `URL=${url}`,
      `eval curl ${cacert}"$(arkserve sign GET "$URL")" "$URL"`,
      "",
      `# ${t("example.cliComment")}`,
      `arkserve invoke ${svc.name} /`,
    ] : [`curl ${cacert}${url}`];
    const code = { python: python.filter((l) => l !== null).join("\n"), curl: curl.join("\n") };
    const pre = h("pre.code");
    const show = (which) => {
      clear(pre, h("code", code[which]));
      pick.forEach((b) => b.setAttribute("aria-selected", String(b.dataset.lang === which)));
      active = which;
    };
    let active = "python";
    const pick = ["python", "curl"].map((k) => h("button.seg", { type: "button", role: "tab", dataset: { lang: k },
      onclick: () => show(k) }, k === "python" ? "Python" : "curl"));
    clear(example,
      h("div.card-head", h("h2", t("example.title")), h("div.segmented", { role: "tablist" }, pick),
        copyButton(() => code[active], t("example.copy"))),
      h("p.muted.small", svc.spec.auth ? t("example.signed") : t("example.unsigned")),
      pre);
    show(active);
  }

  // ---- tabs ----
  function drawTabs() {
    clear(tabBar, TABS.map((k) => h("button.tab", { type: "button", role: "tab", id: `tab-${k}`,
      "aria-selected": String(k === currentTab), onclick: () => selectTab(k, true) }, t(`tab.${k}`))));
  }

  function selectTab(k, push) {
    if (k === currentTab) return;
    if (typeof stopTab === "function") stopTab();
    currentTab = k;
    if (push) history.pushState(null, "", `/console/services/${name}${k === "instances" ? "" : `/${k}`}`);
    drawTabs();
    panel.setAttribute("aria-labelledby", `tab-${k}`);
    panel.replaceChildren();
    stopTab = k === "instances" ? mountInstances(panel) : TAB_MOUNT[k](panel, ctx);
  }

  function mountInstances(el) {
    const tbody = h("tbody");
    const count = h("span.count-big");
    el.append(h("div.card.table-card",
      h("div.card-head",
        h("h2", t("tab.instances"), " ", count),
        h("button.btn.icon-btn.ghost.pencil", { type: "button", title: t("scale.title"), "aria-label": t("scale.title"),
          onclick: scaleDialog }, icon("pencil"))),
      h("div.table-wrap", h("table.table", { id: "instances-table" },
        h("thead", h("tr", [t("col.id"), t("col.state"), t("details.revision"), t("col.endpoint"), t("col.restarts"),
          t("col.age"), t("col.lastError")].map((c) => h("th", { scope: "col" }, c)))),
        tbody))));
    const draw = (s) => {
      const a = s.spec.autoscale;
      count.textContent = t("details.readyOf", { ready: s.ready, desired: s.replicas })
        + (a ? ` · ${t("scale.autoBadge", { min: a.min, max: a.max })}` : "");
      const items = s.instances.map((r) => ({ ...r, age: fmtAge(r.started_at) }));
      if (!items.length) tbody.replaceChildren(emptyRow(7, s.replicas ? t("details.starting") : t("details.noInstances")));
      else syncRows(tbody, items, (r) => r.id, (r) => h("tr", { dataset: { replica: r.id, state: r.state } },
        h("td", h("code", r.id)), h("td", stateBadge(r.state)), h("td", h("code", r.revision),
          s.canary && r.revision === s.canary.revision ? [" ", h("span.badge.canary", t("canary.canary"))] : null),
        h("td", r.endpoint ? h("code", r.endpoint) : "—"), h("td.num", String(r.restarts)),
        h("td.nowrap", { title: r.started_at ? fmtTime(r.started_at) : "" }, r.age),
        h("td.last-error", { title: r.last_error }, r.last_error || "—")));
    };
    if (svc) draw(svc);
    return ctx.onUpdate(draw);
  }

  // ---- dialogs ----
  function scaleDialog() {
    // manual: a count; automatic: the autoscaler's bounds and target (docs/autoscaling.md)
    const auto = svc.spec.autoscale;
    const input = h("input", { type: "number", min: 0, max: 1000, value: String(svc.replicas), name: "replicas" });
    const num = (n, v, step) => h("input", { type: "number", min: 0, max: 1000, step: step || 1, name: n, value: String(v) });
    const aMin = num("auto-min", auto ? auto.min : 0);
    const aMax = num("auto-max", auto ? auto.max : Math.max(8, svc.replicas));
    const aTarget = num("auto-target", auto ? auto.target : 4, "any");
    const mode = (value, label) => h("label.check", { dataset: { scaleMode: value } },
      h("input", { type: "radio", name: "scale-mode", value, checked: (value === "auto") === Boolean(auto),
        onchange: show }), " ", label);
    const manualBox = h("div", field(t("scale.target"), input, { name: "replicas", hint: t("scale.hint") }));
    const autoBox = h("div.autoscale-fields",
      field(t("scale.min"), aMin, { name: "auto-min", hint: t("scale.minHint") }),
      field(t("scale.max"), aMax, { name: "auto-max" }),
      field(t("scale.perReplica"), aTarget, { name: "auto-target", hint: t("scale.perReplicaHint") }));
    function show() {
      const automatic = form.querySelector("input[name=scale-mode]:checked").value === "auto";
      manualBox.hidden = automatic;
      autoBox.hidden = !automatic;
    }
    const whole = (el, lo) => el.value !== "" && Number.isInteger(Number(el.value)) && Number(el.value) >= lo
      && Number(el.value) <= 1000;
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      const automatic = form.querySelector("input[name=scale-mode]:checked").value === "auto";
      let body;
      if (automatic) {
        if (!whole(aMin, 0)) { showError(form, "auto-min", t("valid.replicas")); return; }
        if (!whole(aMax, 1) || Number(aMax.value) < Number(aMin.value)) {
          showError(form, "auto-max", t("valid.autoMax"));
          return;
        }
        if (!(Number(aTarget.value) > 0)) { showError(form, "auto-target", t("valid.autoTarget")); return; }
        body = { autoscale: { min: Number(aMin.value), max: Number(aMax.value), target: Number(aTarget.value) } };
      } else {
        const n = Number(input.value);
        if (!whole(input, 0)) {
          showError(form, "replicas", t("valid.replicas"));
          input.focus();
          return;
        }
        body = auto ? { autoscale: null, replicas: n } : { replicas: n };
      }
      try {
        svc = await api.patch(`/services/${enc(name)}`, body);
        dlg.close();
        toast(automatic ? t("scale.autoDone", { min: body.autoscale.min, max: body.autoscale.max })
          : t("scale.done", { n: body.replicas }));
        load();
      } catch (err) { showApiError(form, err); }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    h("p.muted", t("scale.current", { ready: svc.ready, desired: svc.replicas })),
    h("div.billing-choices", { role: "radiogroup", "aria-label": t("scale.mode") },
      mode("manual", t("scale.manual")), mode("auto", t("scale.auto"))),
    manualBox, autoBox,
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("scale.submit"))));
    const dlg = dialog({ title: t("scale.title"), body: form });
    show();
    if (!auto) input.select();
  }

  async function editDialog() {
    let types = [];
    try { types = await api.get("/instance-types"); } catch { types = []; }
    const s = svc.spec;
    const image = h("input.mono", { value: s.image, spellcheck: "false" });
    const command = h("input.mono", { value: s.command, spellcheck: "false" });
    const port = h("input", { type: "number", min: 1, max: 65535, value: String(s.port) });
    const health = h("input.mono", { value: s.health_path || "", spellcheck: "false", placeholder: "/healthz" });
    const { select: typeSelect, info } = instanceTypeField(types, s.instance_type);
    const env = envEditor(s.env);
    const canaryPct = h("input", { type: "number", min: 1, max: 99, placeholder: "10", name: "canary" });
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      const bad = (!image.value.trim() && showError(form, "image", t("valid.required")))
        || (!command.value.trim() && showError(form, "command", t("valid.required")))
        || (!checkPort(port.value.trim()) && showError(form, "port", t("valid.port")))
        || env.validate(form);
      if (bad) { bad.focus(); return; }
      const next = { image: image.value.trim(), command: command.value.trim(), port: Number(port.value),
        health_path: health.value.trim() || null, instance_type: typeSelect.value || s.instance_type, env: env.value() };
      const patch = {};
      for (const [k, v] of Object.entries(next)) if (JSON.stringify(v) !== JSON.stringify(s[k] ?? null)) patch[k] = v;
      if (!Object.keys(patch).length) { dlg.close(); return; }
      if (canaryPct.value !== "") {  // a canary beside the stable revision instead of a rolling update
        const pct = Number(canaryPct.value);
        if (!Number.isInteger(pct) || pct < 1 || pct > 99) { showError(form, "canary", t("canary.valid")); return; }
        patch.canary = pct;
      }
      try {
        svc = await api.patch(`/services/${enc(name)}`, patch);
        dlg.close();
        toast(t(patch.canary ? "canary.started" : "edit.done"));
        load();
      } catch (err) { showApiError(form, err); }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    h("div.note", icon("warn"), t("edit.rollNote")),
    field(t("create.image"), image, { name: "image" }),
    field(t("create.command"), command, { name: "command" }),
    h("div.grid-2", field(t("create.port"), port, { name: "port" }),
      field(t("create.health"), health, { name: "health_path" })),
    h("div", field(t("create.instanceType"), typeSelect, { name: "instance_type" }), info),
    env.el,
    field(t("canary.field"), canaryPct, { name: "canary", hint: t("canary.fieldHint") }),
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")),
      h("button.btn.primary", { type: "submit" }, t("edit.submit"))));
    const dlg = dialog({ title: t("edit.title"), body: form, wide: true });
  }

  function deleteDialog() {
    const input = h("input", { autocomplete: "off", spellcheck: "false", autocapitalize: "none" });
    const go = h("button.btn.danger", { type: "submit", disabled: true }, t("delete.submit"));
    input.addEventListener("input", () => { go.disabled = input.value !== name; });
    const form = h("form", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      if (input.value !== name) return;
      try {
        await api.del(`/services/${enc(name)}`);
        dlg.close();
        toast(t("delete.done", { name }));
        navigate("/console/services");
      } catch (err) { showApiError(form, err); }
    } },
    h("div.form-error", { role: "alert", hidden: true }),
    h("p", t("delete.warning", { n: svc.instances.length })),
    field(t("delete.typeName", { name }), input, { name: "confirm" }),
    h("div.dialog-foot.inline", h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")), go));
    const dlg = dialog({ title: t("delete.title", { name }), body: form });
  }

  await load();
  if (gone) return undefined;
  selectTab(TABS.includes(tab) ? tab : "instances", false);
  const stopPoll = poll(load, REFRESH_MS);
  return () => { stopPoll(); if (typeof stopTab === "function") stopTab(); };
}
