// A list the server pages (keyset cursors in X-Next-Cursor, the count in X-Total-Count): Previous/Next buttons,
// a "from–to of total" note, a restart at the first page when the search or a filter changes, and a refresh
// that reloads only the page in view. The services list, the model market and the images page use it.

import { raw } from "./api.js";
import { t } from "./i18n.js";
import { h, poll } from "./ui.js";

/** `query()` gives the filters, `show(items)` draws a page, `fail(err)` an error (null: the error is over). */
export function pager({ path, size, query, show, fail }) {
  let cursors = [null]; // cursors[i] loads page i; the last entry is the page in view
  let next = null;
  let shown = 0;
  let total = 0;
  let seq = 0; // answers to an older query (the search moved on) are dropped
  let inView = null; // the filters (JSON) of the page in view
  const prev = h("button.btn.small", { type: "button", "aria-label": t("common.prevPage"), disabled: true,
    onclick: () => { if (cursors.length > 1) { cursors = cursors.slice(0, -1); load(); } } }, "‹ ", t("common.prevPage"));
  const more = h("button.btn.small", { type: "button", "aria-label": t("common.nextPage"), disabled: true,
    onclick: () => { if (next) { cursors = [...cursors, next]; load(); } } }, t("common.nextPage"), " ›");
  const note = h("div.list-note.muted", { "aria-live": "polite" });

  function draw() {
    const first = (cursors.length - 1) * size;
    note.textContent = shown ? t("common.range", { from: first + 1, to: first + shown, total }) : "";
    prev.disabled = cursors.length <= 1;
    more.disabled = !next;
  }

  async function load() {
    const mine = ++seq;
    const filters = query();
    try {
      const res = await raw("GET", path, { query: { ...filters, limit: size, cursor: cursors[cursors.length - 1] } });
      const body = await res.json();
      if (mine !== seq) return;
      if (!body.length && cursors.length > 1) { // the rest of the list went away (deleted): back one page
        cursors = cursors.slice(0, -1);
        return load();
      }
      inView = JSON.stringify(filters);
      next = res.headers.get("X-Next-Cursor");
      total = Number(res.headers.get("X-Total-Count") || body.length);
      shown = body.length;
      fail(null);
      show(body);
    } catch (err) {
      if (mine !== seq) return;
      if (err.code === "InvalidCursor") return restart(true); // the filters moved away from the cursor's
      fail(err);
    }
    draw();
  }

  // A new search or filter starts again at the first page. The same filters as the page in view (a search typed
  // and typed back, or a debounced search that fires after a click on Next) reload that page instead.
  function restart(force = false) {
    if (force || JSON.stringify(query()) !== inView) cursors = [null];
    return load();
  }

  return { element: h("div.pager", prev, more), note, load, restart: () => restart(),
    first: () => cursors.length === 1, watch: (ms) => poll(load, ms) };
}
