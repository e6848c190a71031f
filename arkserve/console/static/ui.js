// Small DOM helpers shared by the pages: element builder, formatting, copy, toasts, dialogs, polling.

import { locale, t, tOr } from "./i18n.js";

/** h("div.card", {onclick, title, ...}, child, ...): builds elements; strings become text nodes (never HTML). */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className += (el.className ? " " : "") + v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected" || k === "open") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

const ICONS = {
  copy: "M9 9h10v10H9zM5 15V5h10",
  pencil: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
  plus: "M12 5v14M5 12h14",
  trash: "M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  refresh: "M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6",
  download: "M12 4v11M7 10l5 5 5-5M5 20h14",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21c1-4 4-6 8-6s7 2 8 6",
  chevron: "M6 9l6 6 6-6",
  close: "M6 6l12 12M18 6 6 18",
  warn: "M12 3 2 20h20L12 3zM12 10v4M12 17v.5",
  lock: "M6 11h12v9H6zM8 11V8a4 4 0 0 1 8 0v3",
  globe: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18",
  eye: "M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12zM12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
};

export function icon(name, cls = "") {
  return svg("svg", { viewBox: "0 0 24 24", class: `icon ${cls}`, "aria-hidden": "true", focusable: "false" },
    svg("path", { d: ICONS[name] }));
}

export function clear(el, ...children) { el.replaceChildren(); append(el, children); return el; }

// ---- formatting (browser time zone, current language) ----
export function fmtTime(ts, withSeconds = true) {
  if (ts === null || ts === undefined) return "—";
  return new Date(ts * 1000).toLocaleString(locale(), { year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: withSeconds ? "2-digit" : undefined, hour12: false });
}
export function fmtClock(ms, withSeconds = true) {
  return new Date(ms).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit",
    second: withSeconds ? "2-digit" : undefined, hour12: false });
}
export function fmtAge(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return t("age.s", { n: Math.floor(s) });
  if (s < 3600) return t("age.m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("age.h", { n: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t("age.d", { n: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}
export function fmtNum(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return Number(v).toLocaleString(locale(), { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
export function fmtMs(v) { return v === null || v === undefined ? "—" : `${fmtNum(v, v < 10 ? 2 : 1)} ms`; }
export function fmtMemory(mb) { return mb >= 1024 ? `${fmtNum(mb / 1024, 1)} GiB` : `${mb} MiB`; }

export function statusBadge(status, title) {
  return h(`span.badge.s-${status}`, { title: title || undefined }, tOr(`status.${status}`, status));
}
export function stateBadge(state) { return h(`span.badge.s-${state}`, tOr(`state.${state}`, state)); }

// ---- clipboard and toasts ----
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = h("textarea.offscreen", { readonly: true }, text);
    document.body.append(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  toast(t("common.copied"));
}

export function copyButton(getText, label) {
  return h("button.btn.icon-btn.ghost", { type: "button", title: label || t("common.copy"),
    "aria-label": label || t("common.copy"), onclick: (e) => { e.preventDefault(); copyText(getText()); } },
  icon("copy"));
}

let toastBox = null;
export function toast(message, kind = "ok") {
  if (!toastBox || !toastBox.isConnected) {
    toastBox = h("div.toasts", { role: "status", "aria-live": "polite" });
    document.body.append(toastBox);
  }
  const item = h(`div.toast.${kind}`, message);
  toastBox.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 6000 : 2500);
}

/** The text of an API error in the current language: the table's `error.<code>` filled with the error's values.
 * Values: the body's own (`field`, `balance`, `used`...; a word the table knows as `error.value.<word>` is
 * translated), `name` (the first "quoted" name in the API's message), `message` (the API's English message) and
 * `detail` (that message without its "field: " prefix). A `[...]` part is kept only when all its values exist. */
export function errorText(err) {
  if (!err) return "";
  const message = err.message || String(err);
  const template = err.code ? tOr(`error.${err.code}`, null) : null;
  if (!template) return message;
  const vars = { message, detail: detailOf(err, message), name: (message.match(/"([^"]+)"/) || [])[1] };
  for (const [k, v] of Object.entries(err.details || err)) {
    if (typeof v === "number") vars[k] = fmtNum(v, 2);
    else if (typeof v === "string" && !(k in vars)) vars[k] = tOr(`error.value.${v}`, v);
  }
  const has = (k) => vars[k] !== undefined && vars[k] !== null && vars[k] !== "";
  const fill = (text) => text.replace(/\{(\w+)\}/g, (m, k) => (has(k) ? String(vars[k]) : m));
  return fill(template.replace(/\[([^[\]]*)\]/g,
    (m, part) => ([...part.matchAll(/\{(\w+)\}/g)].every(([, k]) => has(k)) ? part : "")));
}

function detailOf(err, message) {
  const msg = err.field && message.startsWith(`${err.field}: `) ? message.slice(err.field.length + 2) : message;
  return msg.replace(/^Value error, /, "");
}

// ---- dialogs (native <dialog>: modal, Escape closes, focus stays inside) ----
export function dialog({ title, body, actions, onclose, wide }) {
  const dlg = h(`dialog.dialog${wide ? ".wide" : ""}`, { "aria-label": title },
    h("header.dialog-head", h("h2", title),
      h("button.btn.icon-btn.ghost", { type: "button", "aria-label": t("common.close"), onclick: () => dlg.close() },
        icon("close"))),
    h("div.dialog-body", body),
    actions ? h("footer.dialog-foot", actions) : null);
  dlg.addEventListener("close", () => { dlg.remove(); if (onclose) onclose(); });
  document.body.append(dlg);
  dlg.showModal();
  const first = dlg.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
  if (first) first.focus();
  return dlg;
}

/** A yes/no question; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel, danger }) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = h(`button.btn.${danger ? "danger" : "primary"}`, { type: "button",
      onclick: () => { answer = true; dlg.close(); } }, confirmLabel || t("common.confirm"));
    const dlg = dialog({ title, body: h("p", message), onclose: () => resolve(answer),
      actions: [h("button.btn", { type: "button", onclick: () => dlg.close() }, t("common.cancel")), ok] });
    ok.focus();
  });
}

// ---- forms: labelled fields with an error slot next to the input ----
export function field(label, input, { hint, name, required } = {}) {
  const id = input.id || `f-${name || Math.random().toString(36).slice(2)}`;
  input.id = id;
  const err = h("div.field-error", { id: `${id}-err`, role: "alert" });
  input.setAttribute("aria-describedby", `${id}-err`);
  return h("div.field", { dataset: { field: name || "" } },
    h("label", { for: id }, label, required ? h("span.req", { "aria-hidden": "true" }, " *") : null),
    input, hint ? h("div.hint", hint) : null, err);
}

export function clearErrors(form) {
  form.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
  form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  const top = form.querySelector(".form-error");
  if (top) { top.textContent = ""; top.hidden = true; }
}

/** Show an error under the field named `name` (dotted API path; falls back to a parent field, then the form top). */
export function showError(form, name, message) {
  let key = name || "";
  let box = null;
  while (key) {
    box = form.querySelector(`.field[data-field="${CSS.escape(key)}"]`);
    if (box) break;
    key = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
  }
  if (!box) {
    const top = form.querySelector(".form-error");
    if (top) { top.textContent = message; top.hidden = false; }
    return null;
  }
  box.classList.add("invalid");
  box.querySelector(".field-error").textContent = message;
  const input = box.querySelector("input, select, textarea");
  if (input) input.setAttribute("aria-invalid", "true");
  return input;
}

/** The API's message without the "field: " prefix and pydantic's "Value error, ". */
export function serverMessage(err) {
  return detailOf(err || {}, errorText(err));
}

export function showApiError(form, err) {
  const input = showError(form, err.field, serverMessage(err));
  if (input) input.focus();
}

// ---- polling: one timer per page, paused while the tab is hidden, never overlapping ----
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (e) { if (e && e.name !== "AbortError") console.debug("poll:", e); }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}

/** Keyed row update: reuses <tr>s by key and rebuilds a row only when its data changed (keeps focus and scroll). */
export function syncRows(tbody, items, keyOf, render) {
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  const rows = items.map((item) => {
    const key = keyOf(item);
    const sig = JSON.stringify(item);
    let tr = old.get(key);
    if (!tr || tr.dataset.sig !== sig) {
      const fresh = render(item);
      fresh.dataset.key = key;
      fresh.dataset.sig = sig;
      if (tr) tr.replaceWith(fresh);
      tr = fresh;
    }
    return tr;
  });
  rows.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
  while (tbody.children.length > rows.length) tbody.lastElementChild.remove();
}

export function pageHeader(title, ...right) {
  return h("div.page-head", h("h1", title), h("div.page-actions", right));
}

export function emptyRow(cols, text) { return h("tr.empty", h("td", { colspan: cols }, text)); }
