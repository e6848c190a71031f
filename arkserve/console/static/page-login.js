// The login page: username + password -> POST /api/v1/session (cookie + CSRF token); language switch.

import { api } from "./api.js";
import { LANGS, lang, setLang, t } from "./i18n.js";
import { clear, clearErrors, errorText, field, h } from "./ui.js";

export function renderLogin(root, { onLoggedIn, next }) {
  const draw = () => {
    const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none",
      spellcheck: "false" });
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const error = h("div.form-error", { role: "alert", hidden: true });
    const submit = h("button.btn.primary.block", { type: "submit" }, t("login.submit"));
    const form = h("form.login-card", { novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!username.value || !password.value) {
        error.textContent = t("login.missing");
        error.hidden = false;
        (username.value ? password : username).focus();
        return;
      }
      submit.disabled = true;
      try {
        const s = await api.post("/session", { username: username.value.trim(), password: password.value });
        onLoggedIn(s, next);
      } catch (err) {
        error.textContent = err.code === "LoginFailed" ? t("login.failed") : errorText(err);
        error.hidden = false;
        password.select();
        password.focus();
      } finally {
        submit.disabled = false;
      }
    } },
    h("div.login-brand", h("img", { src: "/static/favicon.svg", alt: "", width: 40, height: 40 }),
      h("div", h("div.login-name", "arkserve"), h("div.muted", t("login.tagline")))),
    h("h1", t("login.title")),
    error,
    field(t("login.username"), username, { name: "username" }),
    field(t("login.password"), password, { name: "password" }),
    submit,
    h("div.login-foot",
      h("label.lang-pick", t("menu.language"), " ",
        h("select", { name: "lang", "aria-label": t("menu.language"), onchange: (e) => { setLang(e.target.value); draw(); } },
          Object.entries(LANGS).map(([code, l]) => h("option", { value: code, selected: code === lang() }, l.label)))),
      h("span.muted", t("login.hint"))));
    root.removeAttribute("aria-busy");
    clear(root, h("div.login-wrap", form));
    username.focus();
  };
  draw();
}
