// Logs tab: instance picker, live follow (fetch + ReadableStream over text/plain), search filter, download.

import { raw, enc } from "./api.js";
import { t } from "./i18n.js";
import { clear, errorText, fmtClock, h, icon } from "./ui.js";

const MAX_LINES = 5000;
const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z (\S+) ?(.*)$/;

function parse(text) {
  const m = LINE.exec(text);
  if (!m) return { ts: null, replica: "", text, raw: text };
  const frac = (m[2] || ".0").slice(0, 4);
  return { ts: Date.parse(`${m[1]}${frac}Z`), replica: m[3], text: m[4], raw: text };
}

export function mountLogs(panel, ctx) {
  let lines = [];
  let controller = null;
  const replicaColors = new Map();
  const picker = h("select", { "aria-label": t("logs.instance"), name: "replica" });
  const search = h("input.search", { type: "search", placeholder: t("logs.search"), "aria-label": t("logs.search") });
  const follow = h("input", { type: "checkbox", checked: true, name: "follow" });
  const state = h("span.live-state.muted", { "aria-live": "polite" });
  const view = h("div.logview", { role: "log", tabindex: "0", "aria-label": t("tab.logs") });

  panel.append(h("div.card.logs-card",
    h("div.toolbar",
      h("label.inline", t("logs.instance"), " ", picker),
      search,
      h("label.inline.check", follow, t("logs.follow")),
      state,
      h("div.spacer"),
      h("button.btn.small", { type: "button", onclick: download }, icon("download"), t("logs.download"))),
    view));

  function fillPicker(svc) {
    const ids = svc.instances.map((r) => r.id);
    const have = [...picker.options].map((o) => o.value).slice(1);
    if (picker.options.length && JSON.stringify(have) === JSON.stringify(ids)) return;
    const chosen = picker.value;
    clear(picker, h("option", { value: "" }, t("logs.all")),
      ids.map((id) => h("option", { value: id }, id)));
    if (chosen && !ids.includes(chosen)) picker.append(h("option", { value: chosen }, chosen));
    picker.value = chosen;
  }

  function colorOf(replica) {
    if (!replicaColors.has(replica)) replicaColors.set(replica, replicaColors.size % 6);
    return replicaColors.get(replica);
  }

  function lineEl(l) {
    return h("div.logline", { dataset: { replica: l.replica } },
      h("span.log-time", { title: l.ts ? new Date(l.ts).toISOString() : "" }, l.ts ? fmtClock(l.ts) : ""),
      l.replica ? h(`span.log-replica.c${colorOf(l.replica)}`, l.replica) : null,
      h("span.log-text", l.text));
  }

  const matches = (l) => {
    const q = search.value.trim().toLowerCase();
    return !q || l.raw.toLowerCase().includes(q);
  };

  function redraw() {
    const shown = lines.filter(matches);
    view.replaceChildren(...(shown.length ? shown.map(lineEl) : [h("div.log-empty.muted", t("logs.empty"))]));
    view.scrollTop = view.scrollHeight;
  }

  function add(batch) {
    const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
    lines.push(...batch);
    const dropped = lines.length > MAX_LINES ? lines.splice(0, lines.length - MAX_LINES).length : 0;
    if (dropped) { redraw(); return; }
    const shown = batch.filter(matches);
    if (!shown.length) return;
    const empty = view.querySelector(".log-empty");
    if (empty) empty.remove();
    view.append(...shown.map(lineEl));
    if (atBottom) view.scrollTop = view.scrollHeight;
  }

  async function start() {
    if (controller) controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    lines = [];
    redraw();
    state.textContent = follow.checked ? t("logs.connecting") : "";
    try {
      const res = await raw("GET", `/services/${enc(ctx.name)}/logs`, { signal,
        query: { replica: picker.value, tail: 1000, follow: follow.checked ? "true" : "" } });
      if (follow.checked) state.textContent = t("logs.live");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const parts = (rest + value).split("\n");
        rest = parts.pop();
        add(parts.filter((p) => p.length).map(parse));
      }
      if (rest) add([parse(rest)]);
      if (!lines.length) redraw();
      state.textContent = follow.checked ? t("logs.ended") : "";
    } catch (err) {
      if (err.name === "AbortError") return;
      state.textContent = errorText(err);
    }
  }

  function download() {
    const text = lines.filter(matches).map((l) => l.raw).join("\n") + "\n";
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    const a = h("a", { href: url, download: `${ctx.name}${picker.value ? `-${picker.value}` : ""}.log` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(redraw, 150); });
  picker.addEventListener("change", start);
  follow.addEventListener("change", start);
  if (ctx.service()) fillPicker(ctx.service());
  const off = ctx.onUpdate(fillPicker);
  start();
  return () => { off(); clearTimeout(timer); if (controller) controller.abort(); };
}
