// Hosts (admins): each host's CPUs, memory and GPUs — capacity, allocated, free — and who holds each GPU.

import { api } from "./api.js";
import { t } from "./i18n.js";
import { link } from "./router.js";
import { emptyRow, errorText, fmtMemory, fmtNum, fmtTime, h, pageHeader, poll } from "./ui.js";

const REFRESH_MS = 5000;

function amount(used, cap, fmt) {
  return t("hosts.usedOf", { used: fmt(used), cap: fmt(cap) });
}

function meter(used, cap) {
  const pct = cap > 0 ? Math.min(100, Math.round((used / cap) * 100)) : 0;
  return h("meter.host-meter", { min: 0, max: 100, value: pct, high: 90, title: `${pct}%` });
}

function holders(gpu) {
  if (!gpu.holders.length) return h("span.badge.s-ready", t("hosts.gpuFree"));
  return h("div.holders", gpu.holders.map((x) => h("div.holder",
    link(`/console/services/${x.service}`, x.service), " ",
    h("span.muted", `${x.replica} · ${x.owner}`),
    x.share_mb ? h("span.muted", ` · ${t("hosts.share", { mem: fmtMemory(x.share_mb) })}`) : null,
    x.billing === "prepaid" ? h("span.muted", ` · ${t("hosts.prepaid")}`) : null)));
}

function hostCard(host) {
  const cap = host.capacity, used = host.allocated, free = host.free;
  const cpu = (v) => fmtNum(v, 2);
  const rows = host.gpus.map((g) => h("tr", { dataset: { gpu: String(g.index) } },
    h("td.strong", String(g.index)), h("td", g.model), h("td", fmtMemory(g.memory_mb)),
    h("td", g.free ? "—" : fmtMemory(g.free_memory_mb)), h("td", holders(g))));
  const gpus = host.gpus.length
    ? h("div.table-wrap", h("table.table.gpu-table", h("thead", h("tr",
      [t("hosts.gpu"), t("hosts.model"), t("hosts.memory"), t("hosts.shareFree"), t("hosts.heldBy")]
        .map((c) => h("th", { scope: "col" }, c)))), h("tbody", rows)))
    : h("p.muted.no-gpu", host.gpu_error ? t("hosts.noGpuWhy", { why: host.gpu_error }) : t("hosts.noGpu"));
  return h("div.card.host-card", { dataset: { host: host.name } },
    h("div.host-head", h("h2", host.name), h("span.muted", `${host.runtime} · ${t("hosts.updated")} `
      + fmtTime(host.updated_at))),
    h("div.grid-3.host-amounts",
      h("div", h("div.label", "vCPU"), h("div.value", amount(used.cpus, cap.cpus, cpu)), meter(used.cpus, cap.cpus),
        h("div.muted", t("hosts.free", { free: cpu(free.cpus) }))),
      h("div", h("div.label", t("hosts.memory")), h("div.value", amount(used.memory_mb, cap.memory_mb, fmtMemory)),
        meter(used.memory_mb, cap.memory_mb), h("div.muted", t("hosts.free", { free: fmtMemory(free.memory_mb) }))),
      h("div", h("div.label", "GPU"), h("div.value", amount(used.gpus, cap.gpus, String)), meter(used.gpus, cap.gpus),
        h("div.muted", t("hosts.free", { free: String(free.gpus) })))),
    h("p.muted.small", t("hosts.replicas", { n: used.replicas || 0 })),
    gpus);
}

export async function renderHosts(main) {
  const list = h("div.hosts", { id: "hosts" });
  const error = h("div.banner.error", { hidden: true, role: "alert" });
  main.replaceChildren(pageHeader(t("nav.hosts")), h("p.page-intro.muted", t("hosts.intro")), error, list);

  async function load() {
    try {
      const hosts = await api.get("/hosts");
      error.hidden = true;
      if (!hosts.length) {
        list.replaceChildren(h("div.card", h("table.table", h("tbody", emptyRow(1, t("hosts.empty"))))));
        return;
      }
      list.replaceChildren(...hosts.map(hostCard));
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  }

  await load();
  return poll(load, REFRESH_MS);
}
