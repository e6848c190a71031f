// The Create form's "Model" section: where the service's model comes from (included in the image, the model
// market, or a folder on the network disk) and where it is mounted, plus any further mounts (a second model, a
// data folder, a writable output folder). Row i is the API's mounts[i]: its fields are named "mounts.i.…" so an
// API error lands next to the field it names.

import { t } from "./i18n.js";
import { field, h, icon, showError } from "./ui.js";

/** One mount: source (the first row also offers "included in the image"), model or folder, writable, path. */
function mountRow(models, { first, wanted, onRemove }) {
  const sources = first ? ["image", "market", "disk"] : ["market", "disk"];
  const source = h("select", {}, sources.map((s) =>
    h("option", { value: s, selected: s === "market" && Boolean(wanted) }, t(`model.${s}`))));
  const marketRef = h("select.mono", {}, models.flatMap((m) => [...m.versions].reverse().map((v) =>
    h("option", { value: `${m.name}@${v.version}`, selected: `${m.name}@${v.version}` === wanted },
      `${m.name} @ ${v.version}${m.public ? "" : ` (${t("models.private")})`}`))));
  const diskRef = h("input.mono", { spellcheck: "false", placeholder: first ? "/models/resnet34" : "/datasets/flowers" });
  const rw = h("input", { type: "checkbox" });
  const mount = h("input.mono", { spellcheck: "false", value: first ? "/ark/models" : "", placeholder: "/data" });
  const remove = first ? null : h("button.btn.icon-btn.ghost.mount-remove", { type: "button", onclick: onRemove },
    icon("trash"));
  const fields = {
    source: field("", source), ref: field("", marketRef, { hint: models.length ? t("create.modelMarketHint")
      : t("create.modelMarketEmpty") }),
    disk: field("", diskRef, { hint: first ? t("create.modelDiskHint") : null }),
    mount_path: field("", mount, { hint: first ? t("create.mountHint") : null }),
  };
  const rwLabel = h("span");
  const rwField = h("label.check", rw, " ", rwLabel);
  const el = h("div.mount-row", remove ? h("div.mount-row-head", h("h3"), remove) : null,
    h("div.grid-2", fields.source, h("div", fields.ref, fields.disk, rwField)), fields.mount_path);

  const row = {
    el, source, marketRef, diskRef, mount,
    /** Number the row (its fields' names and, after the first, its labels). */
    setIndex(i) {
      for (const [key, box] of Object.entries(fields)) box.dataset.field = `mounts.${i}.${key}`;
      for (const [key, input] of [["source", source], ["ref", marketRef], ["disk", diskRef], ["mount_path", mount]]) {
        input.id = `f-mounts-${i}-${key}`;
        input.name = `mounts.${i}.${key}`;
        input.setAttribute("aria-describedby", `${input.id}-err`);
        fields[key].querySelector(".field-error").id = `${input.id}-err`;
        fields[key].querySelector("label").htmlFor = input.id;
      }
      rw.name = `mounts.${i}.rw`;
      const prefix = first ? "" : `${t("create.mountN", { n: i + 1 })}: `;
      const label = (key, text) => { fields[key].querySelector("label").textContent = prefix + text; };
      label("source", t("create.modelSource"));
      label("ref", t("create.modelMarketRef"));
      label("disk", t("create.modelDiskRef"));
      label("mount_path", t("create.mountPath"));
      rwLabel.textContent = prefix + t("create.mountRw");
      if (remove) {
        el.querySelector("h3").textContent = t("create.mountN", { n: i + 1 });
        remove.title = t("create.mountRemove", { n: i + 1 });
        remove.setAttribute("aria-label", remove.title);
      }
    },
    sync() {
      const s = source.value;
      fields.ref.hidden = s !== "market";
      fields.disk.hidden = rwField.hidden = s !== "disk";
      fields.mount_path.hidden = s === "image";
    },
    validate(form, i) {
      const errors = [];
      const s = source.value;
      if (s === "market" && !marketRef.value) errors.push(showError(form, `mounts.${i}.ref`, t("valid.required")));
      if (s === "disk" && !diskRef.value.trim()) errors.push(showError(form, `mounts.${i}.disk`, t("valid.required")));
      if (s !== "image" && !mount.value.trim().startsWith("/")) {
        errors.push(showError(form, `mounts.${i}.mount_path`, t("valid.absolute")));
      }
      return errors;
    },
    value() {
      const market = source.value === "market";
      return { source: market ? "model" : "disk", ref: market ? marketRef.value : diskRef.value.trim(),
        mount_path: mount.value.trim(), read_only: market || !rw.checked };
    },
  };
  source.addEventListener("change", () => row.sync());
  for (const box of Object.values(fields)) {  // an error stays until its field is changed
    box.addEventListener("input", () => {
      box.classList.remove("invalid");
      box.querySelector(".field-error").textContent = "";
    });
  }
  row.sync();
  return row;
}

/** The Model section's contents: {el, value() → mounts[] (empty: model in the image), validate(form), fieldOf(err)}. */
export function mountsEditor(models, wanted = "") {
  const rows = [];
  const list = h("div.mount-rows");
  const note = h("div.note", icon("lock"), t("model.readOnlyNote"));
  const add = h("button.btn.small.mount-add", { type: "button", onclick: () => addRow(true) }, icon("plus"),
    t("create.mountAdd"));
  const renumber = () => rows.forEach((r, i) => r.setIndex(i));
  const sync = () => {
    const imageOnly = rows[0].source.value === "image";
    for (const r of rows.slice(1)) r.el.hidden = imageOnly;
    add.hidden = note.hidden = imageOnly;
  };
  function addRow(focus) {
    const row = mountRow(models, { first: rows.length === 0, wanted: rows.length === 0 ? wanted : "",
      onRemove: () => {
        rows.splice(rows.indexOf(row), 1);
        row.el.remove();
        renumber();
        add.focus();
      } });
    rows.push(row);
    list.append(row.el);
    renumber();
    if (rows.length === 1) row.source.addEventListener("change", sync);
    if (focus) row.source.focus();
  }
  addRow(false);
  sync();
  const active = () => (rows[0].source.value === "image" ? [] : rows);
  return {
    el: h("div.mounts-editor", list, add, note),
    value: () => active().map((r) => r.value()),
    validate: (form) => active().flatMap((r, i) => r.validate(form, i)).find(Boolean) || null,
    /** The form field an API error about mounts[i].ref belongs to (a disk row shows it by its folder). */
    fieldOf(err) {
      const m = /^mounts\.(\d+)\.ref$/.exec(err.field || "");
      const row = m ? active()[Number(m[1])] : null;
      return row && row.source.value === "disk" ? `mounts.${m[1]}.disk` : err.field;
    },
  };
}
