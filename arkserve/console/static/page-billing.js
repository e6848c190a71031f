// Billing: the caller's balance, this month's spend, a daily spend chart, the month's statement (with CSV export)
// and prepaid instances (end dates, auto-renew on/off, buy more). Admins: every user's balance and quotas, with
// top-up and quota dialogs (renderBillingAdmin), a page of users at a time from GET /billing/accounts.

import { api, enc } from "./api.js";
import { lineChart } from "./chart.js";
import { locale, t } from "./i18n.js";
import { pager } from "./pager.js";
import {
  clearErrors, dialog, emptyRow, errorText, field, fmtNum, fmtTime, h, pageHeader, showApiError, toast,
} from "./ui.js";

const money = (v, cur) => `${Number(v || 0).toLocaleString(locale(), { minimumFractionDigits: 2,
  maximumFractionDigits: 2 })} ${cur || ""}`.trim();
const PAGE_SIZE = 50;
const thisMonth = () => new Date().toISOString().slice(0, 7);

function table(id, cols, tbody) {
  return h("div.card.table-card", h("div.table-wrap", h("table.table", { id },
    h("thead", h("tr", cols.map((c) => h("th", { scope: "col" }, c)))), tbody)));
}

function buyDialog(types, done) {
  const type = h("select", { name: "instance_type" }, types.map((x) => h("option", { value: x.name },
    `${x.name} (${fmtNum(x.price_per_hour, 2)}/h)`)));
  const count = h("input", { type: "number", name: "count", min: 1, value: 1 });
  const period = h("select", { name: "period" }, h("option", { value: "month" }, t("billing.month")),
    h("option", { value: "year" }, t("billing.year")));
  const renew = h("input", { type: "checkbox", name: "auto_renew" });
  const form = h("form.form", { id: "prepaid-buy-form" }, h("div.form-error", { hidden: true, role: "alert" }), field(t("billing.instanceType"), type, { name: "instance_type" }),
    field(t("billing.count"), count, { name: "count" }), field(t("billing.period"), period, { name: "period" }),
    h("label.check", renew, " ", t("billing.autoRenew")));
  const d = dialog({ title: t("billing.buyTitle"), body: [h("p.muted", t("billing.buyIntro")), form], actions: [
    h("button.btn", { type: "button", onclick: () => d.close() }, t("common.cancel")),
    h("button.btn.primary", { type: "submit", form: "prepaid-buy-form" }, t("billing.buy"))] });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await api.post("/billing/prepaid", { instance_type: type.value, count: Number(count.value), period: period.value,
        auto_renew: renew.checked });
      d.close();
      toast(t("billing.bought"));
      done();
    } catch (err) { showApiError(form, err); }
  });
}

export async function renderBilling(main) {
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  const cards = h("div.stat-cards", { id: "billing-cards" });
  const chart = h("div.card", { id: "billing-chart" });
  const month = h("input", { type: "month", id: "billing-month", value: thisMonth() });
  const stBody = h("tbody", emptyRow(5, t("common.loading")));
  const stTotal = h("p.muted", { id: "billing-statement-total" });
  const csv = h("a.btn.small", { id: "billing-csv", download: "" }, t("billing.csv"));
  const ppBody = h("tbody", emptyRow(6, t("common.loading")));
  let types = [];
  main.replaceChildren(pageHeader(t("nav.billing")), h("p.page-intro.muted", t("billing.intro")), error, cards,
    h("h2.section", t("billing.daily")), chart,
    h("h2.section", t("billing.statement")), h("div.toolbar", month, csv), table("billing-statement",
      [t("billing.service"), t("billing.instanceType"), t("billing.mode"), t("billing.hours"), t("billing.amount")], stBody),
    stTotal,
    h("h2.section", t("billing.prepaid"), " ", h("button.btn.small.primary", { type: "button", id: "prepaid-buy",
      onclick: () => buyDialog(types, load) }, t("billing.buy"))),
    table("billing-prepaid", [t("billing.instanceType"), t("billing.count"), t("billing.inUse"), t("billing.ends"),
      t("billing.autoRenew"), t("billing.price")], ppBody));

  async function loadStatement() {
    const st = await api.get("/billing/statement", { month: month.value || thisMonth() });
    csv.href = `/api/v1/billing/statement?format=csv&month=${enc(st.month)}`;
    stBody.replaceChildren(...(st.lines.length ? st.lines.map((l) => h("tr", h("td.strong", l.service),
      h("td", l.instance_type), h("td", t(`billing.mode.${l.billing}`)), h("td", fmtNum(l.hours, 2)),
      h("td", money(l.amount, st.currency)))) : [emptyRow(5, t("billing.noUsage"))]));
    stTotal.textContent = t("billing.totals", { usage: money(st.usage, st.currency), prepaid: money(st.prepaid, st.currency),
      topups: money(st.topups, st.currency), closing: money(st.closing_balance, st.currency) });
  }

  async function load() {
    try {
      const [bal, days, pre] = await Promise.all([api.get("/billing/balance"), api.get("/billing/daily", { days: 30 }),
        api.get("/billing/prepaid")]);
      types = await api.get("/instance-types");
      error.hidden = true;
      const low = bal.enforced && bal.balance <= bal.overdraft_limit;
      cards.replaceChildren(
        h("div.card.stat", { id: "billing-balance" }, h("div.muted", t("billing.balance")),
          h(low ? "div.big.bad" : "div.big", money(bal.balance, bal.currency)),
          low ? h("div.field-error", t("billing.low")) : null),
        h("div.card.stat", { id: "billing-month-spent" }, h("div.muted", t("billing.monthSpent", { month: bal.month })),
          h("div.big", money(bal.month_spent, bal.currency))));
      const times = days.map((d) => Date.parse(`${d.day}T12:00:00Z`));
      chart.replaceChildren(lineChart({ times, series: [{ label: t("billing.spend"), values: days.map((d) => d.amount) }],
        start: times[0] - 43200000, end: times[times.length - 1] + 43200000, step: true, title: t("billing.daily"),
        fmt: (v) => fmtNum(v, 2) }));
      ppBody.replaceChildren(...(pre.length ? pre.map((p) => h("tr", { dataset: { prepaid: p.id } },
        h("td.strong", p.instance_type), h("td", p.count), h("td", p.in_use), h("td.nowrap", fmtTime(p.ends_at, false)),
        h("td", h("label.check", h("input", { type: "checkbox", checked: p.auto_renew, onchange: async (e) => {
          try {
            await api.patch(`/billing/prepaid/${p.id}`, { auto_renew: e.target.checked });
            toast(e.target.checked ? t("billing.renewOn") : t("billing.renewOff"));
          } catch (err) { toast(errorText(err), "error"); }
        } }))),
        h("td", money(p.price, bal.currency)))) : [emptyRow(6, t("billing.noPrepaid"))]));
      await loadStatement();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }
  month.addEventListener("change", () => loadStatement().catch((err) => toast(errorText(err), "error")));
  await load();
}

function amountDialog(username, done) {
  const amount = h("input", { type: "number", name: "amount", min: "0.01", step: "0.01", required: true });
  const note = h("input", { type: "text", name: "note" });
  const form = h("form.form", { id: "topup-form" }, h("div.form-error", { hidden: true, role: "alert" }), field(t("billing.amount"), amount, { name: "amount", required: true }),
    field(t("billing.note"), note, { name: "note" }));
  const d = dialog({ title: t("billing.topupTitle", { name: username }), body: form, actions: [
    h("button.btn", { type: "button", onclick: () => d.close() }, t("common.cancel")),
    h("button.btn.primary", { type: "submit", form: "topup-form" }, t("billing.topup"))] });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await api.post("/billing/topup", { username, amount: Number(amount.value), note: note.value });
      d.close();
      toast(t("billing.toppedUp"));
      done();
    } catch (err) { showApiError(form, err); }
  });
}

function quotaDialog(q, done) {
  const input = (name) => h("input", { type: "number", name, min: 0, value: q[name] ?? "", placeholder: t("billing.unlimited") });
  const inputs = { max_replicas: input("max_replicas"), max_gpus: input("max_gpus"), max_prepaid: input("max_prepaid") };
  const form = h("form.form", { id: "quota-form" }, h("div.form-error", { hidden: true, role: "alert" }), Object.entries(inputs).map(([k, el]) =>
    field(t(`billing.${k}`), el, { name: k })));
  const d = dialog({ title: t("billing.quotaTitle", { name: q.username }), body: form, actions: [
    h("button.btn", { type: "button", onclick: () => d.close() }, t("common.cancel")),
    h("button.btn.primary", { type: "submit", form: "quota-form" }, t("billing.save"))] });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value === "" ? null : Number(el.value)]));
    try {
      await api.put(`/quotas/${enc(q.username)}`, body);
      d.close();
      toast(t("billing.quotaSaved"));
      done();
    } catch (err) { showApiError(form, err); }
  });
}

export async function renderBillingAdmin(main) {
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  const tbody = h("tbody", emptyRow(5, t("common.loading")));
  const limit = (v) => (v === null || v === undefined ? "∞" : v);
  // One request per page of users (GET /billing/accounts), not two per user.
  const list = pager({ path: "/billing/accounts", size: PAGE_SIZE, query: () => ({}),
    show: (accounts) => tbody.replaceChildren(...(accounts.length ? accounts.map((a) => h("tr", { dataset: { user: a.username } },
      h("td.strong", a.username), h("td", money(a.balance, a.currency)), h("td", money(a.month_spent, a.currency)),
      h("td.muted", t("billing.quotaLine", { r: a.used_replicas, rm: limit(a.max_replicas), g: a.used_gpus,
        gm: limit(a.max_gpus), p: a.used_prepaid, pm: limit(a.max_prepaid) })),
      h("td.actions", h("button.btn.small", { type: "button", onclick: () => amountDialog(a.username, list.load) },
        t("billing.topup")),
      h("button.btn.small", { type: "button", onclick: () => quotaDialog(a, list.load) }, t("billing.setQuota")))))
      : [emptyRow(5, "—")])),
    fail: (err) => {
      error.hidden = !err;
      if (err) error.textContent = errorText(err);
    } });
  main.replaceChildren(pageHeader(t("nav.billingAdmin")), h("p.page-intro.muted", t("billing.adminIntro")), error,
    h("div.card.table-card", h("div.toolbar", h("div.spacer"), list.note, list.element),
      h("div.table-wrap", h("table.table", { id: "billing-accounts" }, h("thead", h("tr", [t("users.username"),
        t("billing.balance"), t("billing.monthSpentShort"), t("billing.quotas"), t("col.actions")]
        .map((c) => h("th", { scope: "col" }, c)))), tbody))));
  await list.load();
}
