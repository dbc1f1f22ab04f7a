// Small builders shared by the administration screens under admin/: page heads, tables, labelled fields, and
// a form whose failed save is shown beside the field the server names ("field: what is wrong").

import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { lang, t, tx } from "../i18n.js";

export { tx };

let seq = 0;

export function button(key, onClick, cls = "btn", props = {}) {
  return tx("button", key, null, { class: cls, type: "button", on: { click: onClick }, ...props });
}

export function pageHead(titleKey, leadKey, ...actions) {
  return h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" }, tx("h2", titleKey, null, { class: "admin__title" }),
      tx("p", leadKey, null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, ...actions));
}

export function table(id, headKeys, rows, emptyKey) {
  if (!rows.length) return h("div", { class: "card empty-card" }, tx("p", emptyKey));
  return h("div", { class: "card table-wrap" }, h("table", { class: "table", id },
    h("thead", {}, h("tr", {}, ...headKeys.map((k) => (k ? tx("th", k) : h("th", {}))))),
    h("tbody", {}, ...rows)));
}

export function field(key, control, { path = "", hintKey = "", required = false } = {}) {
  control.id = control.id || `ak${++seq}`;
  return h("div", { class: "field", dataset: { path } },
    h("label", { class: "field__label", attrs: { for: control.id } }, tx("span", key),
      required ? h("span", { class: "req", attrs: { "aria-hidden": "true" }, text: " *" }) : null),
    control,
    hintKey ? tx("p", hintKey, null, { class: "field__hint" }) : null,
    h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }));
}

export function input(value, attrs = {}, type = "text") {
  return h("input", { type, value: value === null || value === undefined ? "" : String(value), attrs });
}

export function select(options, value, attrs = {}) {
  const el = h("select", { attrs }, ...options.map((o) => (o.key ? tx("option", o.key, null, { value: o.value })
    : h("option", { value: o.value, text: o.text }))));
  el.value = value === null || value === undefined ? "" : String(value);
  return el;
}

export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.sentences && err.sentences[lang()]) return err.sentences[lang()];
    return err.status === 0 ? t("error.network") : err.detail || t("error.generic", { status: err.status });
  }
  return String((err && err.message) || err);
}

/** The field a refusal names: the problem's first {field, message}, else "field: what is wrong" in its text. */
function fieldError(err, text) {
  const first = err instanceof ApiError && err.errors.length && err.errors[0].field ? err.errors[0] : null;
  if (first) return { path: String(first.field), message: err.code === "validation_failed" ? first.message : text };
  const m = /^([A-Za-z_][\w.]*): (.+)$/s.exec(text);
  return m ? { path: m[1], message: m[2] } : null;
}

/** A form with a footer (error line, Cancel, submit); onSubmit's failure is shown beside the named field. */
export function form(id, submitKey, onCancel, onSubmit, onAuthLost, ...children) {
  const error = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
  const submit = tx("button", submitKey, null, { class: "btn btn--primary form-submit", type: "submit" });
  const el = h("form", { class: "card admin-form", id, attrs: { novalidate: true } }, ...children,
    h("div", { class: "form-footer" }, error, h("div", { class: "form-footer__buttons" },
      button("admin.cancel", onCancel, "btn form-cancel"), submit)));
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    for (const box of el.querySelectorAll(".field--invalid")) box.classList.remove("field--invalid");
    for (const p of el.querySelectorAll(".field__error")) p.hidden = true;
    error.hidden = true;
    submit.disabled = true;
    try {
      await onSubmit(el);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        onAuthLost(err);
        return;
      }
      const text = errorText(err);
      error.textContent = text;
      error.hidden = false;
      const m = fieldError(err, text);
      const box = m && el.querySelector(`[data-path="${CSS.escape(m.path.split(".")[0])}"]`);
      if (box) {
        box.classList.add("field--invalid");
        const slot = box.querySelector(".field__error");
        slot.textContent = m.message;
        slot.hidden = false;
        const control = box.querySelector("input, select, textarea");
        if (control) control.focus();
      }
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

export function notice(key, params, onClose) {
  return h("div", { class: "notice", attrs: { role: "status" } }, tx("span", key, params, { class: "notice__text" }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("banner.dismiss") }, text: "×",
      on: { click: onClose } }));
}

export function chips(texts) {
  if (!texts.length) return h("span", { class: "muted", text: t("contact.none") });
  return h("span", { class: "chips" }, ...texts.map((x) => h("span", { class: "chip", text: x })));
}
