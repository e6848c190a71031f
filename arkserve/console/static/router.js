// Client-side routing (History API under /console/...) and the logged-in session shared by the pages.

import { h } from "./ui.js";

export const session = { username: "", role: "", expiresAt: 0 };
let handler = () => {};

export function setRouteHandler(fn) { handler = fn; }

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else if (path !== location.pathname + location.search) history.pushState(null, "", path);
  handler();
}

/** An <a> that navigates inside the console (a modified click still opens a new tab). */
export function link(href, attrs, ...children) {
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  return h("a", { ...attrs, href, onclick: (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  } }, ...children);
}

window.addEventListener("popstate", () => handler());
