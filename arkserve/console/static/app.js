// Entry point: checks the session, draws the frame (top bar, user menu, side navigation) and routes.

import { api, onSessionExpired, setCsrf } from "./api.js";
import { LANGS, lang, setLang, t } from "./i18n.js";
import { link, navigate, session, setRouteHandler } from "./router.js";
import { clear, errorText, h, icon } from "./ui.js";
import { renderLogin } from "./page-login.js";
import { renderServices } from "./page-services.js";
import { renderCreate } from "./page-create.js";
import { renderService } from "./page-service.js";
import { renderModel, renderModels } from "./page-models.js";
import { renderImages } from "./page-images.js";
import { renderDisk } from "./page-disk.js";
import { renderKeys, renderPassword } from "./page-settings.js";
import { renderInstanceTypes, renderUsers } from "./page-admin.js";
import { renderBilling, renderBillingAdmin } from "./page-billing.js";
import { renderHosts } from "./page-hosts.js";

const root = document.getElementById("app");
let cleanup = null;
let closeUserMenu = null;
document.addEventListener("click", (e) => { if (closeUserMenu) closeUserMenu(e); });

const ROUTES = [
  [/^\/(?:console\/?)?(?:services\/?)?$/, renderServices, "services"],
  [/^\/console\/services\/new$/, renderCreate, "services"],
  [/^\/console\/services\/([a-z0-9-]+)(?:\/(instances|logs|requests|events|metrics))?$/, renderService, "services"],
  [/^\/console\/models\/?$/, renderModels, "models"],
  [/^\/console\/disk(?:\/(.*))?$/, renderDisk, "disk"],
  [/^\/console\/images(?:\/(public|private))?\/?$/, renderImages, "images"],
  [/^\/console\/models\/([a-z0-9][a-z0-9._-]{0,63})$/, renderModel, "models"],
  [/^\/console\/settings(?:\/keys)?$/, renderKeys, "keys"],
  [/^\/console\/settings\/password$/, renderPassword, "password"],
  [/^\/console\/admin(?:\/users)?$/, renderUsers, "users", true],
  [/^\/console\/admin\/instance-types$/, renderInstanceTypes, "instance-types", true],
  [/^\/console\/admin\/hosts$/, renderHosts, "hosts", true],
  [/^\/console\/billing\/?$/, renderBilling, "billing"],
  [/^\/console\/admin\/billing$/, renderBillingAdmin, "billing-admin", true],
];

function stopPage() {
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
}

let routeSeq = 0;

async function route() {
  const seq = ++routeSeq;
  stopPage();
  document.querySelectorAll("dialog[open]").forEach((d) => d.close());
  const path = location.pathname;
  if (path === "/console/login" || !session.username) {
    if (!session.username) {
      const next = path === "/console/login" ? new URLSearchParams(location.search).get("next") : path;
      if (path !== "/console/login") history.replaceState(null, "", "/console/login" + (next && next !== "/" ? `?next=${encodeURIComponent(next)}` : ""));
      document.title = `${t("login.title")} · arkserve`;
      root.className = "login-root";
      cleanup = renderLogin(root, { onLoggedIn: loggedIn, next });
      return;
    }
    navigate("/console/services", { replace: true });
    return;
  }
  const found = ROUTES.find(([re]) => re.test(path));
  const [re, render, nav, adminOnly] = found || [null, null, ""];
  const main = frame(nav);
  if (!render || (adminOnly && session.role !== "admin")) {
    const denied = Boolean(render);  // the page exists; this account may not open it
    clear(main, h("div.card.notfound", h("h1", t(denied ? "denied.title" : "notfound.title")),
      h("p", t(denied ? "denied.text" : "notfound.text")),
      link("/console/services", { class: "btn primary" }, t("nav.services"))));
    return;
  }
  const params = path.match(re).slice(1).filter((p) => p !== undefined);
  let stop;
  try {
    stop = await render(main, ...params);
  } catch (err) {  // a page that could not even start says why, instead of staying blank
    console.error(err);
    if (seq === routeSeq) clear(main, h("div.banner.error", { role: "alert" }, errorText(err)));
    return;
  }
  if (seq === routeSeq) cleanup = stop;
  else if (typeof stop === "function") stop();  // the user moved on while the page was loading
}

function frame(active) {
  root.className = "shell";
  root.removeAttribute("aria-busy");
  const navItem = (key, href, label) => h("li", link(href, { class: active === key ? "active" : "",
    "aria-current": active === key ? "page" : undefined }, label));
  const main = h("main.content", { id: "main", tabindex: "-1" });
  clear(root,
    h("header.topbar",
      link("/console/services", { class: "brand" }, h("img", { src: "/static/favicon.svg", alt: "", width: 24, height: 24 }),
        h("span", "arkserve"), h("span.brand-sub", t("brand.console"))),
      h("div.spacer"),
      userMenu()),
    h("nav.sidebar", { "aria-label": t("nav.label") },
      h("div.nav-group", t("nav.group.inference")),
      h("ul", navItem("services", "/console/services", t("nav.services")),
        navItem("models", "/console/models", t("nav.models")),
        navItem("images", "/console/images", t("nav.images")),
        navItem("disk", "/console/disk", t("nav.disk"))),
      h("div.nav-group", t("nav.group.account")),
      h("ul", navItem("billing", "/console/billing", t("nav.billing")),
        navItem("keys", "/console/settings/keys", t("nav.keys")),
        navItem("password", "/console/settings/password", t("nav.password"))),
      session.role === "admin" ? [h("div.nav-group", t("nav.group.admin")),
        h("ul", navItem("users", "/console/admin/users", t("nav.users")),
          navItem("instance-types", "/console/admin/instance-types", t("nav.instanceTypes")),
          navItem("hosts", "/console/admin/hosts", t("nav.hosts")),
          navItem("billing-admin", "/console/admin/billing", t("nav.billingAdmin")))] : null),
    main);
  return main;
}

function userMenu() {
  const menu = h("div.menu", { role: "menu", hidden: true });
  const button = h("button.user-button", { type: "button", "aria-haspopup": "menu", "aria-expanded": "false",
    onclick: () => toggle(menu.hidden) }, icon("user"), h("span.user-name", session.username), icon("chevron"));
  const toggle = (open) => {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("a, button").focus();
  };
  const item = (label, onclick, attrs = {}) => h("button.menu-item", { type: "button", role: "menuitem", ...attrs,
    onclick: () => { toggle(false); onclick(); } }, label);
  menu.append(...[
    h("div.menu-head", h("strong", session.username), h("span.muted", t(`role.${session.role}`))),
    item(t("menu.settings"), () => navigate("/console/settings/keys")),
    item(t("nav.password"), () => navigate("/console/settings/password")),
    h("div.menu-sep"),
    h("div.menu-label", icon("globe"), t("menu.language")),
    Object.entries(LANGS).map(([code, l]) => item(l.label, () => switchLang(code),
      { "aria-checked": String(lang() === code), class: lang() === code ? "checked" : "", lang: l.tag,
        role: "menuitemradio" })),
    h("div.menu-sep"),
    item(t("menu.logout"), logout)].flat());
  const wrap = h("div.user-menu", button, menu);
  wrap.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !menu.hidden) { toggle(false); button.focus(); }
  });
  closeUserMenu = (e) => { if (!wrap.contains(e.target)) toggle(false); };
  return wrap;
}

export function switchLang(code) {
  setLang(code);
  route();
}

async function logout() {
  try { await api.del("/session"); } catch { /* already gone */ }
  session.username = "";
  setCsrf("");
  navigate("/console/login", { replace: true });
}

function loggedIn(s, next) {
  Object.assign(session, { username: s.username, role: s.role, expiresAt: s.expires_at });
  setCsrf(s.csrf_token);
  navigate(next && next.startsWith("/console/") && next !== "/console/login" ? next : "/console/services",
    { replace: true });
}

function expired() {
  if (!session.username) return;
  session.username = "";
  setCsrf("");
  route();
}
onSessionExpired(expired);

// Tabs share the session cookie: a login (or logout) in another tab replaces this tab's session. Looked at again
// when the tab comes back into view, so it never shows one user's name over another user's data: another user's
// session is taken up (the frame redrawn with their name and menu), none sends it to the login page.
async function recheckSession() {
  if (!session.username || document.visibilityState === "hidden") return;
  let s;
  try {
    s = await api.get("/session");
  } catch (err) {
    if (err.status === 401) expired();
    return;  // the API unreachable: the page's own polls say so
  }
  if (s.username === session.username) return;
  Object.assign(session, { username: s.username, role: s.role, expiresAt: s.expires_at });
  setCsrf(s.csrf_token);
  route();
}
window.addEventListener("focus", recheckSession);
document.addEventListener("visibilitychange", recheckSession);

setRouteHandler(route);

(async () => {
  try {
    const s = await api.get("/session");
    Object.assign(session, { username: s.username, role: s.role, expiresAt: s.expires_at });
    setCsrf(s.csrf_token);
  } catch { /* not logged in */ }
  route();
})();
