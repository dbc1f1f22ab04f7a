// What the channel and queue screens share: the screen state, render/go, and the small builders (labelled
// fields, copy buttons, errors shown beside the field the server names). Split out of admin.js.

import { ApiError, get } from "../api.js";
import { h } from "../dom.js";
import { lang, t, tx } from "../i18n.js";

export { tx };

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
export const WEEKDAYS = ["tue", "wed", "thu", "fri"];
export const SECTIONS = ["channels", "queues"];
export const NEEDS = {
  channels: ["types", "channels", "teams", "queues"],
  queues: ["queues", "teams", "skills", "strategies"],
};
// What a list refreshes while it is open (the rest changes only through these screens).
export const LIVE = { channels: ["channels"], queues: ["queues"] };
// The settings key the server sets when a provider's endpoint is gone (channels/base.py OUTBOUND_DISABLED):
// shown as a warning, never as a field; saving the settings without it resumes replies.
export const OUTBOUND_DISABLED = "outbound_disabled";
export const PATHS = {
  types: "/channel-types", channels: "/channels", teams: "/teams", queues: "/queues", skills: "/skills",
  strategies: "/routing/strategies",
};
export const QUEUE_DEFAULTS = {
  priority: 0, strategy: "least_busy", sl_target_percent: 80, sl_target_seconds: 60, accept_timeout_seconds: 120,
  wait_notice_seconds: 120, manager_wait_seconds: 900, manager_wait_expiry: "ask", enabled: true,
};

export const state = {
  root: null,
  onError: () => {},
  onChannelsChanged: () => {},
  section: null,
  mode: "list", // list | pick | create | edit | result | queue
  data: {},
  editing: null, // the channel or queue being edited (null: a new one)
  type: null, // the channel type of the open form
  result: null, // {channel, generated}: what a new channel's creator sees once
  confirmDelete: null, // the queue awaiting confirmation
  notice: null, // {key, params}: what the last action did
  signature: "",
  request: 0,
};

// ---- wiring from main.js ---------------------------------------------------------------------------------

// Each section's screens by mode; admin.js fills it from channels.js and queues.js.
export const screens = {};


export function render(force) {
  const signature = JSON.stringify([lang(), state.section, state.mode, state.notice, state.confirmDelete,
    NEEDS[state.section].map((k) => state.data[k])]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  const focus = focusKey();
  state.root.replaceChildren(screens[state.section][state.mode]());
  restoreFocus(focus);
  state.root.dataset.section = state.section;
  state.root.dataset.mode = state.mode;
}

/** Where keyboard focus is in a list, so that a refresh with new figures does not take it away. */
export function focusKey() {
  const active = document.activeElement;
  if (!active || !state.root.contains(active) || active === state.root) return null;
  const row = active.closest("[data-channel-id], [data-queue-id]");
  const cls = [...active.classList].find((c) => !c.startsWith("btn")) || active.tagName.toLowerCase();
  return { row: row ? (row.dataset.channelId ? `[data-channel-id="${row.dataset.channelId}"]`
    : `[data-queue-id="${row.dataset.queueId}"]`) : "", cls, id: active.id };
}

export function restoreFocus(key) {
  if (!key) return;
  const target = key.id ? state.root.querySelector(`#${CSS.escape(key.id)}`)
    : state.root.querySelector(`${key.row} .${CSS.escape(key.cls)}`);
  if (target) target.focus();
}

export function go(mode, extra = {}) {
  Object.assign(state, { confirmDelete: null }, extra, { mode });
  render(true);
  state.root.scrollTop = 0;
  const first = state.root.querySelector("[data-autofocus]");
  if (first) first.focus();
}

// ---- small builders ------------------------------------------------------------------------------------------

export function button(key, onClick, cls = "btn", options = {}) {
  return tx("button", key, options.params, { class: cls, type: "button", on: { click: onClick }, ...options.props });
}

export function dash() {
  return h("span", { class: "muted", text: t("contact.none") });
}

export function byId(list, id) {
  return (list || []).find((x) => x.id === id) || null;
}

export function pageHead(titleKey, leadKey, ...actions) {
  return h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" }, tx("h2", titleKey, null, { class: "admin__title" }),
      tx("p", leadKey, null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, ...actions));
}

export function noticeBar() {
  if (!state.notice) return null;
  return h("div", { class: "notice", attrs: { role: "status" } },
    tx("span", state.notice.key, state.notice.params, { class: "notice__text" }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("banner.dismiss") },
      text: "×", on: { click: () => { state.notice = null; render(true); } } }));
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return t("unit.s", { n: s });
  if (s < 3600) {
    const rest = s % 60;
    return rest ? `${t("unit.min", { n: Math.floor(s / 60) })} ${t("unit.s", { n: rest })}` : t("unit.min", { n: s / 60 });
  }
  const minutes = Math.floor((s % 3600) / 60);
  const hours = t("unit.h", { n: Math.floor(s / 3600) });
  return minutes ? `${hours} ${t("unit.min", { n: minutes })}` : hours;
}

export function copyButton(getText, labelKey = "admin.copy") {
  const btn = tx("button", labelKey, null, { class: "btn btn--small copy", type: "button" });
  btn.addEventListener("click", async () => {
    const text = getText();
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      ok = legacyCopy(text);
    }
    btn.dataset.i18n = ok ? "admin.copied" : "admin.copyFailed";
    btn.textContent = t(btn.dataset.i18n);
    btn.classList.toggle("copy--done", ok);
    window.setTimeout(() => {
      btn.dataset.i18n = labelKey;
      btn.textContent = t(labelKey);
      btn.classList.remove("copy--done");
    }, 2000);
  });
  return btn;
}

export function legacyCopy(text) {
  const area = h("textarea", { class: "visually-hidden", value: text, readOnly: true });
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A value to copy: shown in full, selected with one click, with a copy button beside it. */
export function copyable(value, cls = "") {
  return h("div", { class: "copyable" }, h("code", { class: ["copyable__value", cls], text: value }),
    copyButton(() => value));
}

let fieldSeq = 0;

/** A labelled form field: label (with a required mark), the control, a hint, and room for the server's error. */
export function field({ key, labelText, control, input = control, hintKey, hintText, required = false, path, name, wide = false }) {
  const id = input.id || `f${++fieldSeq}`;
  input.id = id;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const hint = hintKey || hintText
    ? (hintKey ? tx("p", hintKey, null, { class: "field__hint", id: hintId })
      : h("p", { class: "field__hint", id: hintId, text: hintText }))
    : null;
  input.setAttribute("aria-describedby", [hint ? hintId : "", errorId].filter(Boolean).join(" "));
  if (required) input.setAttribute("aria-required", "true");
  const label = h("label", { class: "field__label", attrs: { for: id } },
    key ? tx("span", key) : h("span", { text: labelText }),
    required ? h("span", { class: "req", attrs: { "aria-hidden": "true" }, text: " *" }) : null,
    name ? h("code", { class: "field__name", text: name }) : null);
  return h("div", { class: ["field", wide ? "field--wide" : ""], dataset: { path: path || "" } },
    label, control, hint, h("p", { class: "field__error", id: errorId, attrs: { role: "alert" }, hidden: true }));
}

export function checkbox({ key, labelText, checked, id, path, hintKey, hintText }) {
  const input = h("input", { type: "checkbox", checked: Boolean(checked), id: id || `f${++fieldSeq}` });
  const hint = hintKey ? tx("p", hintKey, null, { class: "field__hint" })
    : (hintText ? h("p", { class: "field__hint", text: hintText }) : null);
  return h("div", { class: "field field--check", dataset: { path: path || "" } },
    h("label", { class: "toggle" }, input, key ? tx("span", key) : h("span", { text: labelText })),
    hint, h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }));
}

export function select(options, value, attrs = {}) {
  const el = h("select", { attrs });
  for (const o of options) {
    const opt = o.key ? tx("option", o.key, o.params, { value: o.value }) : h("option", { value: o.value, text: o.text });
    el.append(opt);
  }
  el.value = value === null || value === undefined ? "" : String(value);
  return el;
}

export function textInput(value, attrs = {}, type = "text") {
  return h("input", { type, value: value === null || value === undefined ? "" : String(value), attrs });
}

export function teamOptions(noneKey) {
  return [{ value: "", key: noneKey }, ...(state.data.teams || []).map((x) => ({ value: x.id, text: x.name }))];
}

export function queueOptions() {
  return [{ value: "", key: "admin.channel.noQueue" },
    ...(state.data.queues || []).map((x) => ({ value: x.id, text: x.name }))];
}

export function idOrNull(value) {
  return value === "" ? null : Number(value);
}

export function section(titleKey, leadKey, ...children) {
  return h("fieldset", { class: "form-section" },
    tx("legend", titleKey, null, { class: "form-section__title" }),
    leadKey ? tx("p", leadKey, null, { class: "form-section__lead" }) : null,
    ...children);
}

// ---- errors next to the form ---------------------------------------------------------------------------------

export function clearErrors(form) {
  for (const box of form.querySelectorAll(".field--invalid")) box.classList.remove("field--invalid");
  for (const err of form.querySelectorAll(".field__error")) {
    err.textContent = "";
    err.hidden = true;
  }
  const summary = form.querySelector(".form-error");
  summary.textContent = "";
  summary.hidden = true;
}

/** Show a failed save beside the form; a detail starting with "field.path: " also marks that field. */
export function showFormError(form, err) {
  if (err instanceof ApiError && err.status === 401) {
    state.onError(err);
    return;
  }
  const text = err instanceof ApiError
    ? (err.status === 0 ? t("error.network") : err.detail || t("error.generic", { status: err.status }))
    : String((err && err.message) || err);
  const summary = form.querySelector(".form-error");
  summary.textContent = text;
  summary.hidden = false;
  const match = /^([A-Za-z_][\w.[\]]*): (.+)$/s.exec(text);
  if (!match) {
    summary.scrollIntoView({ block: "nearest" });
    return;
  }
  const parts = match[1].replace(/\[(\d+)\]/g, ".$1").split(".");
  for (let n = parts.length; n > 0; n -= 1) {
    const box = form.querySelector(`[data-path="${CSS.escape(parts.slice(0, n).join("."))}"]`);
    if (!box) continue;
    box.classList.add("field--invalid");
    const slot = box.querySelector(".field__error");
    if (slot) {
      slot.textContent = match[2];
      slot.hidden = false;
    }
    const control = box.querySelector("input, select, textarea");
    box.scrollIntoView({ block: "center" });
    if (control) control.focus();
    return;
  }
  summary.scrollIntoView({ block: "nearest" });
}

export function formFooter(submitKey, onCancel) {
  return h("div", { class: "form-footer" },
    h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true }),
    h("div", { class: "form-footer__buttons" },
      button("admin.cancel", onCancel, "btn form-cancel"),
      tx("button", submitKey, null, { class: "btn btn--primary form-submit", type: "submit" })));
}

export async function submitting(form, work) {
  const submit = form.querySelector(".form-submit");
  if (submit.disabled) return;
  clearErrors(form);
  submit.disabled = true;
  try {
    await work();
  } catch (err) {
    showFormError(form, err);
  } finally {
    submit.disabled = false;
  }
}

export async function reload({ force, only }) {
  const section = state.section;
  const request = ++state.request;
  const needs = only || NEEDS[section];
  let results;
  try {
    results = await Promise.all(needs.map((k) => get(PATHS[k])));
  } catch (err) {
    if (request === state.request) state.onError(err);
    return;
  }
  if (request !== state.request || section !== state.section) return;
  needs.forEach((k, i) => { state.data[k] = results[i]; });
  if (state.mode === "list") render(force);
}

export function clearField(box) {
  if (!box || !box.classList.contains("field--invalid")) return;
  box.classList.remove("field--invalid");
  const slot = box.querySelector(".field__error");
  if (slot) {
    slot.textContent = "";
    slot.hidden = true;
  }
}

export function clearOnEdit(form) {
  const handler = (event) => clearField(event.target.closest(".field--invalid"));
  form.addEventListener("input", handler);
  form.addEventListener("change", handler);
}
