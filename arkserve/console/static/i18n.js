// Translation: one table per language (lang-en.js, lang-zh.js); t("key", {var}) fills {var} placeholders.

import en from "./lang-en.js";
import zh from "./lang-zh.js";

export const LANGS = { en: { table: en, label: "English", tag: "en" }, zh: { table: zh, label: "简体中文", tag: "zh-CN" } };
const STORAGE_KEY = "arkserve.lang";
let current = pick();

function pick() {
  let saved = null;
  try { saved = localStorage.getItem(STORAGE_KEY); } catch { /* storage disabled */ }
  if (saved && LANGS[saved]) return saved;
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const p of prefs) {
    const base = String(p).toLowerCase().split("-")[0];
    if (LANGS[base]) return base;
  }
  return "en";
}

export function lang() { return current; }
export function locale() { return LANGS[current].tag; }

export function setLang(code) {
  if (!LANGS[code]) return;
  current = code;
  try { localStorage.setItem(STORAGE_KEY, code); } catch { /* storage disabled */ }
  document.documentElement.lang = LANGS[code].tag;
}

export function t(key, vars) {
  let text = LANGS[current].table[key];
  if (text === undefined) {
    console.warn(`i18n: missing "${key}" in ${current}`);
    text = en[key] !== undefined ? en[key] : key;
  }
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k])));
  return text;
}

/** t() for a key that may not exist (e.g. a status value from the server): falls back to the raw value. */
export function tOr(key, fallback) {
  const text = LANGS[current].table[key];
  return text === undefined ? fallback : text;
}

document.documentElement.lang = LANGS[current].tag;
