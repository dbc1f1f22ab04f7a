// Administration screens of the workspace (administrators only): channels and queues.
// Forms for channels are drawn from the JSON Schemas each channel type publishes, so a new channel type needs
// no change here. Every name and value from the server is put into the page as text (see dom.js); labels carry
// data-i18n so that a language switch re-translates an open form without losing what was typed.

import { api, ApiError, get, patch, post } from "./api.js";
import { h } from "./dom.js";
import { has, lang, t } from "./i18n.js";
import { flowsScreen } from "./admin/flows.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAYS = ["tue", "wed", "thu", "fri"];
// Screens in their own modules: {show(root, {onError}), refresh(), langChanged()}.
const SCREENS = { flows: flowsScreen };
const SECTIONS = ["channels", "queues", ...Object.keys(SCREENS)];
const NEEDS = {
  channels: ["types", "channels", "teams", "queues"],
  queues: ["queues", "teams", "skills", "strategies"],
};
// What a list refreshes while it is open (the rest changes only through these screens).
const LIVE = { channels: ["channels"], queues: ["queues"] };
// The settings key the server sets when a provider's endpoint is gone (channels/base.py OUTBOUND_DISABLED):
// shown as a warning, never as a field; saving the settings without it resumes replies.
const OUTBOUND_DISABLED = "outbound_disabled";
const PATHS = {
  types: "/channel-types", channels: "/channels", teams: "/teams", queues: "/queues", skills: "/skills",
  strategies: "/routing/strategies",
};
const QUEUE_DEFAULTS = {
  priority: 0, strategy: "least_busy", sl_target_percent: 80, sl_target_seconds: 60, accept_timeout_seconds: 120,
  wait_notice_seconds: 120, manager_wait_seconds: 900, manager_wait_expiry: "ask", enabled: true,
};

const state = {
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

export const ADMIN_SECTIONS = Object.freeze([...SECTIONS]);

export function initAdmin({ root, onError, onChannelsChanged }) {
  state.root = root;
  state.onError = onError;
  state.onChannelsChanged = onChannelsChanged || (() => {});
}

/** Open a section (its list), loading what it needs. */
export async function showAdmin(section) {
  if (!SECTIONS.includes(section)) return;
  const switching = state.section !== section;
  state.section = section;
  if (SCREENS[section]) return SCREENS[section].show(state.root, { onError: state.onError });
  if (switching || state.mode !== "result") {
    state.mode = "list";
    state.result = null;
    state.confirmDelete = null;
  }
  state.notice = switching ? null : state.notice;
  if (switching) state.root.replaceChildren(h("p", { class: "empty", text: t("app.loading") }));
  await reload({ force: true });
}

/** Refresh the open list with fresh figures (waiting counts); forms in progress are left alone. */
export async function refreshAdmin() {
  if (SCREENS[state.section]) return SCREENS[state.section].refresh();
  if (state.section && state.mode === "list") await reload({ force: false, only: LIVE[state.section] });
}

/** The language changed: data-i18n labels are already translated; lists with figures are drawn again. */
export function adminLangChanged() {
  if (SCREENS[state.section]) return SCREENS[state.section].langChanged();
  if (state.section && state.mode === "list") render(true);
}

export function resetAdmin() {
  state.section = null;
  state.mode = "list";
  state.data = {};
  state.result = null;
  state.editing = null;
  state.notice = null;
  state.signature = "";
  if (state.root) state.root.replaceChildren();
}

async function reload({ force, only }) {
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

function render(force) {
  const signature = JSON.stringify([lang(), state.section, state.mode, state.notice, state.confirmDelete,
    NEEDS[state.section].map((k) => state.data[k])]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  const screens = {
    channels: { list: channelList, pick: typePicker, create: channelForm, edit: channelForm, result: createdView },
    queues: { list: queueList, queue: queueForm },
  };
  const focus = focusKey();
  state.root.replaceChildren(screens[state.section][state.mode]());
  restoreFocus(focus);
  state.root.dataset.section = state.section;
  state.root.dataset.mode = state.mode;
}

/** Where keyboard focus is in a list, so that a refresh with new figures does not take it away. */
function focusKey() {
  const active = document.activeElement;
  if (!active || !state.root.contains(active) || active === state.root) return null;
  const row = active.closest("[data-channel-id], [data-queue-id]");
  const cls = [...active.classList].find((c) => !c.startsWith("btn")) || active.tagName.toLowerCase();
  return { row: row ? (row.dataset.channelId ? `[data-channel-id="${row.dataset.channelId}"]`
    : `[data-queue-id="${row.dataset.queueId}"]`) : "", cls, id: active.id };
}

function restoreFocus(key) {
  if (!key) return;
  const target = key.id ? state.root.querySelector(`#${CSS.escape(key.id)}`)
    : state.root.querySelector(`${key.row} .${CSS.escape(key.cls)}`);
  if (target) target.focus();
}

function go(mode, extra = {}) {
  Object.assign(state, { confirmDelete: null }, extra, { mode });
  render(true);
  state.root.scrollTop = 0;
  const first = state.root.querySelector("[data-autofocus]");
  if (first) first.focus();
}

// ---- small builders ------------------------------------------------------------------------------------------

/** An element whose text is the translation of key; data-i18n keeps it translated when the language changes. */
function tx(tag, key, params, options = {}) {
  const dataset = { ...(options.dataset || {}), i18n: key };
  if (params) dataset.i18nArgs = JSON.stringify(params);
  return h(tag, { ...options, dataset, text: t(key, params || {}) });
}

function button(key, onClick, cls = "btn", options = {}) {
  return tx("button", key, options.params, { class: cls, type: "button", on: { click: onClick }, ...options.props });
}

function dash() {
  return h("span", { class: "muted", text: t("contact.none") });
}

function byId(list, id) {
  return (list || []).find((x) => x.id === id) || null;
}

function pageHead(titleKey, leadKey, ...actions) {
  return h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" }, tx("h2", titleKey, null, { class: "admin__title" }),
      tx("p", leadKey, null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, ...actions));
}

function noticeBar() {
  if (!state.notice) return null;
  return h("div", { class: "notice", attrs: { role: "status" } },
    tx("span", state.notice.key, state.notice.params, { class: "notice__text" }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("banner.dismiss") },
      text: "×", on: { click: () => { state.notice = null; render(true); } } }));
}

function duration(seconds) {
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

function copyButton(getText, labelKey = "admin.copy") {
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

function legacyCopy(text) {
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
function copyable(value, cls = "") {
  return h("div", { class: "copyable" }, h("code", { class: ["copyable__value", cls], text: value }),
    copyButton(() => value));
}

let fieldSeq = 0;

/** A labelled form field: label (with a required mark), the control, a hint, and room for the server's error. */
function field({ key, labelText, control, input = control, hintKey, hintText, required = false, path, name, wide = false }) {
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

function checkbox({ key, labelText, checked, id, path, hintKey, hintText }) {
  const input = h("input", { type: "checkbox", checked: Boolean(checked), id: id || `f${++fieldSeq}` });
  const hint = hintKey ? tx("p", hintKey, null, { class: "field__hint" })
    : (hintText ? h("p", { class: "field__hint", text: hintText }) : null);
  return h("div", { class: "field field--check", dataset: { path: path || "" } },
    h("label", { class: "toggle" }, input, key ? tx("span", key) : h("span", { text: labelText })),
    hint, h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }));
}

function select(options, value, attrs = {}) {
  const el = h("select", { attrs });
  for (const o of options) {
    const opt = o.key ? tx("option", o.key, o.params, { value: o.value }) : h("option", { value: o.value, text: o.text });
    el.append(opt);
  }
  el.value = value === null || value === undefined ? "" : String(value);
  return el;
}

function textInput(value, attrs = {}, type = "text") {
  return h("input", { type, value: value === null || value === undefined ? "" : String(value), attrs });
}

function teamOptions(noneKey) {
  return [{ value: "", key: noneKey }, ...(state.data.teams || []).map((x) => ({ value: x.id, text: x.name }))];
}

function queueOptions() {
  return [{ value: "", key: "admin.channel.noQueue" },
    ...(state.data.queues || []).map((x) => ({ value: x.id, text: x.name }))];
}

function idOrNull(value) {
  return value === "" ? null : Number(value);
}

function section(titleKey, leadKey, ...children) {
  return h("fieldset", { class: "form-section" },
    tx("legend", titleKey, null, { class: "form-section__title" }),
    leadKey ? tx("p", leadKey, null, { class: "form-section__lead" }) : null,
    ...children);
}

// ---- errors next to the form ---------------------------------------------------------------------------------

function clearErrors(form) {
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
function showFormError(form, err) {
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

function formFooter(submitKey, onCancel) {
  return h("div", { class: "form-footer" },
    h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true }),
    h("div", { class: "form-footer__buttons" },
      button("admin.cancel", onCancel, "btn form-cancel"),
      tx("button", submitKey, null, { class: "btn btn--primary form-submit", type: "submit" })));
}

async function submitting(form, work) {
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

// ---- channels: the list ----------------------------------------------------------------------------------

function typeTitle(type) {
  const found = (state.data.types || []).find((x) => x.type === type);
  return found ? found.title : type;
}

function channelList() {
  const channels = state.data.channels || [];
  const head = pageHead("admin.channels.title", "admin.channels.lead",
    button("admin.channels.connect", () => go("pick"), "btn btn--primary", { props: { id: "channel-connect" } }));
  if (!channels.length) {
    return h("div", { class: "admin__page" }, head, noticeBar(),
      h("div", { class: "card empty-card" }, tx("p", "admin.channels.empty")));
  }
  const table = h("table", { class: "table", id: "channel-table" },
    h("thead", {}, h("tr", {}, ...["admin.col.name", "admin.col.type", "admin.col.status", "admin.col.team",
      "admin.col.queue", "admin.col.webhook", "admin.col.actions"].map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
    h("tbody", {}, ...channels.map(channelRow)));
  return h("div", { class: "admin__page" }, head, noticeBar(), h("div", { class: "card table-wrap" }, table));
}

function channelRow(c) {
  const team = byId(state.data.teams, c.team_id);
  const queue = byId(state.data.queues, c.queue_id);
  const stopped = c.settings && c.settings.outbound_disabled;
  return h("tr", { class: ["channel-row", c.enabled ? "" : "row--off"], dataset: { channelId: c.id } },
    h("td", {},
      h("span", { class: "cell-title channel-row__name", text: c.name }),
      h("span", { class: "cell-sub", text: `#${c.id}` }),
      stopped ? tx("span", "admin.channel.outboundStopped", null,
        { class: "badge badge--warn", attrs: { title: String(stopped) } }) : null),
    h("td", { class: "channel-row__type" }, h("span", { class: "type-tag", text: typeTitle(c.type) })),
    h("td", {}, tx("span", c.enabled ? "admin.enabled" : "admin.disabled", null,
      { class: ["badge", c.enabled ? "badge--resolved" : "badge--other", "channel-row__enabled"] })),
    h("td", { class: "channel-row__team" }, team ? team.name : dash()),
    h("td", { class: "channel-row__queue" }, queue ? queue.name : dash()),
    h("td", { class: "channel-row__webhook" }, c.webhook_url ? copyable(c.webhook_url, "url") : dash()),
    h("td", { class: "cell-actions" },
      button("admin.edit", () => editChannel(c), "btn btn--small channel-edit"),
      button(c.enabled ? "admin.disable" : "admin.enable", (e) => toggleChannel(c, e.currentTarget),
        "btn btn--small channel-toggle")));
}

async function toggleChannel(c, btn) {
  btn.disabled = true;
  try {
    await patch(`/channels/${c.id}`, { enabled: !c.enabled });
    state.notice = { key: c.enabled ? "admin.channel.disabledDone" : "admin.channel.enabledDone", params: { name: c.name } };
    state.onChannelsChanged();
    await reload({ force: true });
  } catch (err) {
    state.onError(err);
    btn.disabled = false;
  }
}

function editChannel(c) {
  const type = (state.data.types || []).find((x) => x.type === c.type) || { type: c.type, title: c.type,
    settings_schema: { properties: {} }, credentials_schema: { properties: {} } };
  go("edit", { editing: c, type });
}

// ---- channels: connecting one --------------------------------------------------------------------------------

function typePicker() {
  const types = state.data.types || [];
  return h("div", { class: "admin__page" },
    pageHead("admin.connect.title", "admin.connect.lead", button("admin.cancel", () => go("list"), "btn")),
    h("div", { class: "type-grid", id: "type-picker" }, ...types.map((tp, i) => h("button", {
      class: "type-card", type: "button", dataset: i === 0 ? { type: tp.type, autofocus: "1" } : { type: tp.type },
      on: { click: () => go("create", { type: tp, editing: null }) },
    },
    h("span", { class: "type-card__title", text: tp.title }),
    h("code", { class: "type-card__code", text: tp.type }),
    tx("span", "admin.connect.fields", { n: countFields(tp) }, { class: "type-card__meta" })))));
}

function countFields(tp) {
  return Object.keys(tp.settings_schema.properties || {}).length
    + Object.keys(tp.credentials_schema.properties || {}).length;
}

/** A schema property with nullability (anyOf […, null]) and references ($ref, allOf) resolved. */
function resolveProp(schema, prop) {
  const deref = (p) => {
    const ref = p.$ref || (Array.isArray(p.allOf) && p.allOf.length === 1 && p.allOf[0].$ref);
    if (!ref) return p;
    const name = String(ref).split("/").pop();
    return { ...((schema.$defs || schema.definitions || {})[name] || {}), ...p };
  };
  let p = deref(prop);
  let nullable = false;
  if (Array.isArray(p.anyOf)) {
    const others = p.anyOf.filter((x) => x.type !== "null");
    nullable = others.length < p.anyOf.length;
    if (others.length === 1) p = { ...deref(others[0]), title: p.title, description: p.description, default: p.default };
  }
  return { ...p, nullable };
}

function controlFor(p, value, { secret, id }) {
  if (secret) {
    const input = h("input", { type: "password", id, value: "", attrs: { autocomplete: "new-password", spellcheck: "false" } });
    return input;
  }
  if (Array.isArray(p.enum)) {
    const opts = p.enum.map((v) => ({ value: String(v), text: String(v) }));
    if (p.nullable || value === undefined || value === null) opts.unshift({ value: "", key: "admin.schema.unset" });
    return select(opts, value, { id });
  }
  if (p.type === "array" && p.items && Array.isArray(p.items.enum)) {
    const chosen = new Set((Array.isArray(value) ? value : []).map(String));
    return h("div", { class: "choice-group", id, attrs: { role: "group" } }, ...p.items.enum.map((v) =>
      h("label", { class: "toggle" }, h("input", { type: "checkbox", value: String(v), checked: chosen.has(String(v)) }),
        h("span", { text: String(v) }))));
  }
  if (p.type === "integer" || p.type === "number") {
    return textInput(value, { id, min: p.minimum ?? null, max: p.maximum ?? null, step: p.type === "integer" ? 1 : "any",
      inputmode: p.type === "integer" ? "numeric" : "decimal" }, "number");
  }
  if (p.type === "array") {
    return textInput(Array.isArray(value) ? value.join(", ") : value, { id, placeholder: "a, b" });
  }
  if (p.type === "object") {
    return h("textarea", { id, rows: 3, value: value ? JSON.stringify(value) : "", attrs: { spellcheck: "false" } });
  }
  const type = p.format === "uri" ? "url" : (p.format === "email" ? "email" : "text");
  return textInput(value, { id, maxlength: p.maxLength ?? null, spellcheck: "false" }, type);
}

/** Fields for one JSON Schema object (settings or credentials); values prefill them. */
function schemaFields(group, schema, values, { secret = false, editing = false, stored = [] } = {}) {
  const required = new Set(schema.required || []);
  const generated = new Set(state.type.generated_credentials || []);
  const fields = [];
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const p = resolveProp(schema, raw);
    const id = `ch-${group}-${name}`;
    const path = `${group}.${name}`;
    const value = values && name in values ? values[name] : (editing || secret ? undefined : p.default);
    if (!secret && name === OUTBOUND_DISABLED) continue;
    // The types do not say which secrets the server generates (see the report); a required secret whose
    // description does not tell the administrator where to get it is one the server makes.
    const mayBeGenerated = secret && !editing && (generated.has(name) || !p.description
      || /generated by the server/i.test(p.description));
    let hintText = p.description || "";
    if (p.type === "boolean" && !secret) {
      fields.push(h("div", { class: "schema-field", dataset: { name, kind: "boolean", group } },
        checkbox({ labelText: p.title || name, checked: value === undefined ? Boolean(p.default) : Boolean(value), id,
          path, hintText })));
      continue;
    }
    const control = controlFor(p, value, { secret, id });
    const kind = secret ? "secret" : (Array.isArray(p.enum) ? "enum"
      : (p.type === "array" && p.items && Array.isArray(p.items.enum) ? "multi" : (p.type || "string")));
    const extras = [];
    if (secret) {
      if (editing) {
        extras.push(tx("span", stored.includes(name) ? "admin.secret.stored" : "admin.secret.notStored", null,
          { class: ["chip", stored.includes(name) ? "chip--ok" : ""] }));
        control.dataset.i18nPlaceholder = "admin.secret.keep";
        control.placeholder = t("admin.secret.keep");
      } else if (mayBeGenerated) {
        control.dataset.i18nPlaceholder = "admin.secret.generate";
        control.placeholder = t("admin.secret.generate");
      }
      const reveal = tx("button", "admin.secret.show", null, { class: "btn btn--small btn--ghost", type: "button" });
      reveal.addEventListener("click", () => {
        const showing = control.type === "text";
        control.type = showing ? "password" : "text";
        reveal.dataset.i18n = showing ? "admin.secret.show" : "admin.secret.hide";
        reveal.textContent = t(reveal.dataset.i18n);
      });
      extras.push(reveal);
    }
    const box = field({ labelText: p.title || name, name, input: control,
      control: secret ? h("div", { class: "secret-input" }, control, ...extras) : control,
      hintText, required: required.has(name) && !editing && !mayBeGenerated, path });
    fields.push(h("div", { class: "schema-field", dataset: { name, kind, group } }, box));
  }
  return fields;
}

/** Read a schema group back from the form: blank fields are left out (defaults apply; secrets are kept). */
function collectGroup(form, group, schema) {
  const out = {};
  for (const wrap of form.querySelectorAll(`.schema-field[data-group="${group}"]`)) {
    const name = wrap.dataset.name;
    const kind = wrap.dataset.kind;
    const p = resolveProp(schema, (schema.properties || {})[name] || {});
    if (kind === "boolean") {
      out[name] = wrap.querySelector("input").checked;
    } else if (kind === "multi") {
      const chosen = [...wrap.querySelectorAll("input:checked")].map((x) => x.value);
      if (chosen.length) out[name] = chosen.map((v) => p.items.enum.find((e) => String(e) === v) ?? v);
    } else {
      const control = wrap.querySelector("input, select, textarea");
      const raw = kind === "secret" ? control.value : control.value.trim();
      if (raw === "") continue;
      if (kind === "enum") out[name] = p.enum.find((e) => String(e) === raw) ?? raw;
      else if (kind === "integer" || kind === "number") out[name] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
      else if (kind === "array") out[name] = raw.split(",").map((x) => x.trim()).filter(Boolean);
      else if (kind === "object") {
        try {
          out[name] = JSON.parse(raw);
        } catch {
          out[name] = raw;
        }
      } else out[name] = raw;
    }
  }
  return out;
}

function channelForm() {
  const tp = state.type;
  const c = state.editing;
  const editing = Boolean(c);
  const name = textInput(editing ? c.name : "", { maxlength: 100, id: "channel-name", "data-autofocus": "1", autocomplete: "off" });
  const team = select(teamOptions("admin.channel.noTeam"), editing ? c.team_id : "", { id: "channel-team" });
  const queue = select(queueOptions(), editing ? c.queue_id : "", { id: "channel-queue" });
  const settingsFields = schemaFields("settings", tp.settings_schema, editing ? c.settings : null, { editing });
  const secretFields = schemaFields("credentials", tp.credentials_schema, null,
    { secret: true, editing, stored: editing ? c.credential_fields : [] });
  const stopped = editing && c.settings ? c.settings[OUTBOUND_DISABLED] : "";
  const form = h("form", { class: "admin-form", id: "channel-form", noValidate: true, dataset: { type: tp.type } },
    stopped ? h("div", { class: "stopped", id: "outbound-stopped", attrs: { role: "alert" } },
      tx("p", "admin.channel.stoppedTitle", null, { class: "stopped__title" }),
      h("p", { class: "stopped__reason", text: String(stopped) }),
      tx("p", "admin.channel.stoppedHint", null, { class: "stopped__hint" })) : null,
    section("admin.channel.general", null, h("div", { class: "form-grid" },
      field({ key: "admin.channel.name", control: name, required: true, path: "name", hintKey: "admin.channel.nameHint" }),
      field({ key: "admin.channel.team", control: team, path: "team_id", hintKey: "admin.channel.teamHint" }),
      field({ key: "admin.channel.queue", control: queue, path: "queue_id", hintKey: "admin.channel.queueHint" }),
      checkbox({ key: "admin.channel.enabled", checked: editing ? c.enabled : true, id: "channel-enabled", path: "enabled",
        hintKey: "admin.channel.enabledHint" }))),
    section("admin.channel.settings", null, settingsFields.length
      ? h("div", { class: "form-grid" }, ...settingsFields) : tx("p", "admin.channel.noSettings", null, { class: "muted" })),
    section("admin.channel.secrets", editing ? "admin.channel.secretsEditLead" : "admin.channel.secretsLead",
      secretFields.length ? h("div", { class: "form-grid" }, ...secretFields)
        : tx("p", "admin.channel.noSecrets", null, { class: "muted" })),
    formFooter(editing ? "admin.save" : "admin.channels.connectSubmit", () => go(editing ? "list" : "pick")));
  clearOnEdit(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const settings = collectGroup(form, "settings", tp.settings_schema);
      const credentials = collectGroup(form, "credentials", tp.credentials_schema);
      const common = { name: name.value.trim(), team_id: idOrNull(team.value), queue_id: idOrNull(queue.value),
        enabled: form.querySelector("#channel-enabled").checked, settings };
      if (editing) {
        const body = { ...common };
        if (Object.keys(credentials).length) body.credentials = credentials;
        const saved = await patch(`/channels/${c.id}`, body);
        state.notice = { key: "admin.channel.saved", params: { name: saved.name } };
        state.onChannelsChanged();
        state.mode = "list";
        await reload({ force: true });
      } else {
        const created = await post("/channels", { type: tp.type, ...common, credentials });
        state.onChannelsChanged();
        const generated = created.generated_credentials || {};
        delete created.generated_credentials;
        go("result", { result: { channel: created, generated } });
        reload({ force: false });
      }
    });
  });
  const titleKey = editing ? "admin.channel.editTitle" : "admin.channel.newTitle";
  const head = h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" },
      tx("h2", titleKey, { name: editing ? c.name : tp.title }, { class: "admin__title" }),
      h("p", { class: "admin__lead" }, h("span", { class: "type-tag", text: tp.title }), " ",
        tx("span", editing ? "admin.channel.editLead" : "admin.channel.newLead"))),
    h("div", { class: "admin__actions" }, button("admin.back", () => go("list"), "btn")));
  const side = editing ? h("aside", { class: "card side-card" },
    tx("h3", "admin.channel.webhook", null, { class: "side-card__title" }),
    copyable(c.webhook_url, "url"),
    tx("h3", "admin.channel.setup", null, { class: "side-card__title" }),
    h("p", { class: "setup-text", text: setupText(c.setup) })) : null;
  return h("div", { class: "admin__page" }, head, h("div", { class: editing ? "form-layout" : "form-layout form-layout--single" },
    h("div", { class: "card" }, form), side));
}

/** Set-up steps as text; numbered steps written on one line ("… 2. Register …") start a new line. */
function setupText(text) {
  const value = String(text || "");
  return value.includes("\n") ? value : value.replace(/([.!?:]) (?=\d{1,2}\. [A-ZА-ЯЁ])/g, "$1\n");
}

function createdView() {
  const { channel, generated } = state.result;
  const secrets = Object.entries(generated || {});
  const done = button("admin.created.done", () => {
    state.result = null;
    go("list");
  }, "btn btn--primary", { props: { id: "created-done" } });
  return h("div", { class: "admin__page" },
    h("div", { class: "card created", id: "channel-created", dataset: { channelId: channel.id } },
      h("div", { class: "created__head" },
        h("span", { class: "created__icon", attrs: { "aria-hidden": "true" }, text: "✓" }),
        h("div", {}, tx("h2", "admin.created.title", null, { class: "admin__title" }),
          h("p", { class: "admin__lead" }, h("span", { class: "created__name", text: channel.name }), " · ",
            h("span", { class: "type-tag", text: typeTitle(channel.type) })))),
      secrets.length ? h("div", { class: "secret-box", id: "generated-secrets", attrs: { role: "alert" } },
        tx("p", "admin.created.secretsWarning", null, { class: "secret-box__warning" }),
        h("dl", { class: "secret-list" }, ...secrets.flatMap(([key, value]) => [
          h("dt", { text: key }),
          h("dd", { dataset: { secret: key } }, copyable(String(value), "secret-value")),
        ]))) : null,
      tx("h3", "admin.channel.webhook", null, { class: "created__subtitle" }),
      h("div", { id: "created-webhook" }, copyable(channel.webhook_url, "url")),
      tx("h3", "admin.channel.setup", null, { class: "created__subtitle" }),
      h("p", { class: "setup-text", id: "created-setup", text: setupText(channel.setup) }),
      h("div", { class: "form-footer__buttons" }, done)));
}

// ---- queues: the list ------------------------------------------------------------------------------------------

function strategyTitle(name) {
  if (has(`strategy.${name}`)) return t(`strategy.${name}`);
  const found = (state.data.strategies || []).find((x) => x.name === name);
  return found ? found.title : name;
}

function skillName(id) {
  const skill = byId(state.data.skills, id);
  return skill ? skill.name : `#${id}`;
}

function queueList() {
  const queues = state.data.queues || [];
  const head = pageHead("admin.queues.title", "admin.queues.lead",
    button("admin.queues.create", () => go("queue", { editing: null }), "btn btn--primary", { props: { id: "queue-create" } }));
  const confirm = state.confirmDelete ? deleteConfirm(state.confirmDelete) : null;
  if (!queues.length) {
    return h("div", { class: "admin__page" }, head, noticeBar(),
      h("div", { class: "card empty-card" }, tx("p", "admin.queues.empty")));
  }
  const cols = ["admin.col.queue", "admin.col.team", "admin.col.priority", "admin.col.strategy", "admin.col.skills",
    "admin.col.waiting", "admin.col.longestWait", "admin.col.hours", "admin.col.status", "admin.col.actions"];
  const table = h("table", { class: "table", id: "queue-table" },
    h("thead", {}, h("tr", {}, ...cols.map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
    h("tbody", {}, ...queues.map(queueRow)));
  return h("div", { class: "admin__page" }, head, noticeBar(), confirm, h("div", { class: "card table-wrap" }, table));
}

function queueRow(q) {
  const team = byId(state.data.teams, q.team_id);
  const skills = q.required_skills || [];
  let hours;
  if (!q.business_hours) hours = tx("span", "admin.queue.alwaysOpen", null, { class: "badge badge--bot" });
  else {
    hours = h("span", { class: "hours-cell" },
      tx("span", q.open_now ? "admin.queue.openNow" : "admin.queue.closedNow", null,
        { class: ["badge", q.open_now ? "badge--resolved" : "badge--other"] }),
      h("span", { class: "cell-sub", text: q.business_hours.timezone || "" }));
  }
  return h("tr", { class: ["queue-row", q.enabled ? "" : "row--off"], dataset: { queueId: q.id } },
    h("td", {}, h("span", { class: "cell-title queue-row__name", text: q.name }),
      q.description ? h("span", { class: "cell-sub cell-sub--clip", attrs: { title: q.description }, text: q.description }) : null),
    h("td", { class: "queue-row__team" }, team ? team.name : tx("span", "admin.queue.anyTeam", null, { class: "muted" })),
    h("td", { class: "num queue-row__priority", text: String(q.priority) }),
    h("td", { class: "queue-row__strategy", text: strategyTitle(q.strategy) }),
    h("td", { class: "queue-row__skills" }, skills.length
      ? h("span", { class: "chips" }, ...skills.map((s) => h("span", { class: "chip",
        text: t("admin.queue.skillLevel", { skill: skillName(s.skill_id), level: s.min_level }) })))
      : dash()),
    h("td", { class: ["num", "queue-row__waiting", q.waiting ? "num--hot" : ""], text: String(q.waiting) }),
    h("td", { class: "num queue-row__wait", text: q.waiting ? duration(q.longest_wait_seconds) : t("contact.none") }),
    h("td", { class: "queue-row__hours" }, hours),
    h("td", {}, tx("span", q.enabled ? "admin.enabled" : "admin.disabled", null,
      { class: ["badge", q.enabled ? "badge--resolved" : "badge--other"] })),
    h("td", { class: "cell-actions" },
      button("admin.edit", () => go("queue", { editing: q }), "btn btn--small queue-edit"),
      button("admin.delete", () => { state.confirmDelete = q; render(true); }, "btn btn--small btn--danger-soft queue-delete")));
}

function deleteConfirm(q) {
  const yes = button("admin.queue.deleteYes", async () => {
    yes.disabled = true;
    try {
      await api("DELETE", `/queues/${q.id}`);
      state.confirmDelete = null;
      state.notice = { key: "admin.queue.deleted", params: { name: q.name } };
      await reload({ force: true });
    } catch (err) {
      yes.disabled = false;
      state.onError(err);
    }
  }, "btn btn--danger", { props: { id: "queue-delete-confirm" } });
  return h("div", { class: "confirm", attrs: { role: "alertdialog", "aria-labelledby": "confirm-text" } },
    tx("p", q.waiting ? "admin.queue.deleteAskWaiting" : "admin.queue.deleteAsk", { name: q.name, n: q.waiting },
      { id: "confirm-text", class: "confirm__text" }),
    h("div", { class: "confirm__buttons" },
      button("admin.cancel", () => { state.confirmDelete = null; render(true); }, "btn", { props: { id: "queue-delete-cancel" } }),
      yes));
}

// ---- queues: the form --------------------------------------------------------------------------------------

function numberField(key, value, path, { min, max, hintKey, unitKey } = {}) {
  const input = textInput(value, { min: min ?? null, max: max ?? null, step: 1, inputmode: "numeric", id: `queue-${path}` }, "number");
  const control = unitKey ? h("span", { class: "with-unit" }, input, tx("span", unitKey, null, { class: "with-unit__unit" })) : input;
  return field({ key, control, input, path, hintKey });
}

function skillRow(skill, index) {
  const skills = state.data.skills || [];
  const pick = select(skills.map((s) => ({ value: s.id, text: s.name })), skill ? skill.skill_id : (skills[0] || {}).id,
    { class: "skill-row__skill", "aria-label": t("admin.queue.skill") });
  const level = select([1, 2, 3, 4, 5].map((n) => ({ value: n, text: String(n) })), skill ? skill.min_level : 1,
    { class: "skill-row__level", "aria-label": t("admin.queue.minLevel") });
  const row = h("div", { class: "skill-row", dataset: { path: `required_skills.${index}` } }, pick, tx("span", "admin.queue.atLeast", null, { class: "muted" }), level,
    h("button", { class: "btn btn--small btn--ghost", type: "button", attrs: { "aria-label": t("admin.remove") },
      text: "×", on: { click: () => { row.remove(); renumberSkills(); } } }));
  return row;
}

function renumberSkills() {
  document.querySelectorAll("#queue-skills .skill-row").forEach((row, i) => {
    row.dataset.path = `required_skills.${i}`;
  });
}

function normaliseTime(value) {
  const m = /^(\d{1,2})[:.](\d{2})$/.exec(value.trim());
  return m ? `${m[1].padStart(2, "0")}:${m[2]}` : value.trim();
}

function intervalEl(day, pair) {
  const from = textInput(pair ? pair[0] : "09:00", { class: "interval__from", maxlength: 5, inputmode: "numeric",
    placeholder: "09:00", "aria-label": t("admin.hours.from") });
  const to = textInput(pair ? pair[1] : "18:00", { class: "interval__to", maxlength: 5, inputmode: "numeric",
    placeholder: "18:00", "aria-label": t("admin.hours.to") });
  const el = h("span", { class: "interval" }, from, h("span", { class: "muted", text: "–" }), to,
    h("button", { class: "btn btn--small btn--ghost", type: "button", attrs: { "aria-label": t("admin.remove") }, text: "×",
      on: { click: () => { const list = el.parentElement; el.remove(); markClosed(list); } } }));
  return el;
}

function markClosed(list) {
  const row = list.closest(".hours__day");
  row.classList.toggle("hours__day--closed", !list.querySelector(".interval"));
  clearField(row);
}

/** The administrator changed a field the server complained about: its message is out of date. */
function clearField(box) {
  if (!box || !box.classList.contains("field--invalid")) return;
  box.classList.remove("field--invalid");
  const slot = box.querySelector(".field__error");
  if (slot) {
    slot.textContent = "";
    slot.hidden = true;
  }
}

function clearOnEdit(form) {
  const handler = (event) => clearField(event.target.closest(".field--invalid"));
  form.addEventListener("input", handler);
  form.addEventListener("change", handler);
}

function dayRow(day, intervals) {
  const list = h("div", { class: "hours__intervals" }, ...intervals.map((pair) => intervalEl(day, pair)));
  const row = h("div", { class: "hours__day", dataset: { day, path: `business_hours.days.${day}` } },
    tx("span", `day.${day}`, null, { class: "hours__dayname" }),
    list,
    tx("span", "admin.hours.closed", null, { class: "hours__closed muted" }),
    button("admin.hours.add", () => { list.append(intervalEl(day)); markClosed(list); }, "btn btn--small btn--ghost hours__add"),
    h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }));
  markClosed(list);
  return row;
}

function timeZones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["Europe/Moscow", "Europe/London", "UTC"];
  }
}

function hoursEditor(bh) {
  const always = h("input", { type: "radio", name: "hours-mode", value: "always", checked: !bh, id: "hours-always" });
  const custom = h("input", { type: "radio", name: "hours-mode", value: "custom", checked: Boolean(bh), id: "hours-custom" });
  const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/Moscow";
  const tz = textInput(bh ? bh.timezone : localZone, { id: "hours-timezone", list: "tz-list", autocomplete: "off", spellcheck: "false" });
  const zones = h("datalist", { id: "tz-list" }, ...timeZones().map((z) => h("option", { value: z })));
  const days = (bh && bh.days) || Object.fromEntries(["mon", "tue", "wed", "thu", "fri"].map((d) => [d, [["09:00", "18:00"]]]));
  const grid = h("div", { class: "hours__grid", id: "hours-days" }, ...DAYS.map((d) => dayRow(d, days[d] || [])));
  const holidays = textInput(((bh && bh.holidays) || []).join(", "), { id: "hours-holidays", placeholder: "2026-12-31, 2027-01-01" });
  const copyMonday = button("admin.hours.copyMonday", () => {
    const monday = [...grid.querySelectorAll('[data-day="mon"] .interval')].map((iv) =>
      [iv.querySelector(".interval__from").value, iv.querySelector(".interval__to").value]);
    for (const d of WEEKDAYS) {
      const list = grid.querySelector(`[data-day="${d}"] .hours__intervals`);
      list.replaceChildren(...monday.map((pair) => intervalEl(d, pair)));
      markClosed(list);
    }
  }, "btn btn--small");
  const details = h("div", { class: "hours__details", id: "hours-details" },
    h("div", { class: "form-grid" },
      field({ key: "admin.hours.timezone", control: tz, path: "business_hours.timezone", hintKey: "admin.hours.timezoneHint" }),
      field({ key: "admin.hours.holidays", control: holidays, path: "business_hours.holidays", hintKey: "admin.hours.holidaysHint" })),
    zones, grid, h("div", { class: "hours__tools" }, copyMonday));
  const sync = () => { details.hidden = !custom.checked; };
  always.addEventListener("change", sync);
  custom.addEventListener("change", sync);
  sync();
  const editor = h("div", { class: "hours", dataset: { path: "business_hours" } },
    h("div", { class: "segmented", attrs: { role: "radiogroup" } },
      h("label", { class: "segmented__option" }, always, tx("span", "admin.hours.always")),
      h("label", { class: "segmented__option" }, custom, tx("span", "admin.hours.custom"))),
    h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }),
    details);
  editor.collect = () => {
    if (!custom.checked) return null;
    const out = {};
    for (const row of grid.querySelectorAll(".hours__day")) {
      const pairs = [...row.querySelectorAll(".interval")].map((iv) => [".interval__from", ".interval__to"].map((cls) => {
        const input = iv.querySelector(cls);
        input.value = normaliseTime(input.value); // "9:00" is shown as the "09:00" that is sent
        return input.value;
      })).filter(([a, b]) => a || b);
      if (pairs.length) out[row.dataset.day] = pairs;
    }
    return { timezone: tz.value.trim(), days: out, holidays: holidays.value.split(/[\s,;]+/).filter(Boolean) };
  };
  return editor;
}

function queueForm() {
  const q = state.editing;
  const v = q || QUEUE_DEFAULTS;
  const name = textInput(q ? q.name : "", { id: "queue-name", maxlength: 100, autocomplete: "off", "data-autofocus": "1" });
  const description = h("textarea", { id: "queue-description", rows: 2, value: q ? q.description : "", attrs: { maxlength: 2000 } });
  const team = select(teamOptions("admin.queue.anyTeam"), q ? q.team_id : "", { id: "queue-team" });
  const strategies = state.data.strategies || [];
  const strategy = select(strategies.map((s) => ({ value: s.name, text: strategyTitle(s.name) })), v.strategy, { id: "queue-strategy" });
  const expiry = select([{ value: "ask", key: "admin.queue.expiry.ask" }, { value: "queue", key: "admin.queue.expiry.queue" }],
    v.manager_wait_expiry, { id: "queue-manager_wait_expiry" });
  const skills = h("div", { class: "skill-rows", id: "queue-skills" },
    ...(q ? q.required_skills : []).map((s, i) => skillRow(s, i)));
  const addSkill = button("admin.queue.addSkill", () => { skills.append(skillRow(null, 0)); renumberSkills(); },
    "btn btn--small", { props: { id: "queue-add-skill", disabled: !(state.data.skills || []).length } });
  const hours = hoursEditor(q ? q.business_hours : null);
  const form = h("form", { class: "admin-form", id: "queue-form", noValidate: true },
    section("admin.queue.general", null, h("div", { class: "form-grid" },
      field({ key: "admin.queue.name", control: name, required: true, path: "name" }),
      field({ key: "admin.queue.team", control: team, path: "team_id", hintKey: "admin.queue.teamHint" }),
      field({ key: "admin.queue.description", control: description, path: "description", wide: true }),
      numberField("admin.queue.priority", v.priority, "priority", { min: -100, max: 100, hintKey: "admin.queue.priorityHint" }),
      field({ key: "admin.queue.strategy", control: strategy, path: "strategy", hintKey: "admin.queue.strategyHint" }),
      checkbox({ key: "admin.queue.enabled", checked: v.enabled, id: "queue-enabled", path: "enabled" }))),
    section("admin.queue.skills", "admin.queue.skillsLead",
      h("div", { class: "field", dataset: { path: "required_skills" } }, skills,
        (state.data.skills || []).length ? null : tx("p", "admin.queue.noSkills", null, { class: "muted" }),
        h("div", {}, addSkill), h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }))),
    section("admin.queue.hours", "admin.queue.hoursLead", hours),
    section("admin.queue.service", null, h("div", { class: "form-grid" },
      numberField("admin.queue.slPercent", v.sl_target_percent, "sl_target_percent", { min: 1, max: 100, unitKey: "unit.percent" }),
      numberField("admin.queue.slSeconds", v.sl_target_seconds, "sl_target_seconds",
        { min: 1, max: 86400, unitKey: "unit.seconds", hintKey: "admin.queue.slHint" }),
      numberField("admin.queue.acceptTimeout", v.accept_timeout_seconds, "accept_timeout_seconds",
        { min: 0, max: 3600, unitKey: "unit.seconds", hintKey: "admin.queue.acceptHint" }),
      numberField("admin.queue.waitNotice", v.wait_notice_seconds, "wait_notice_seconds",
        { min: 0, max: 86400, unitKey: "unit.seconds", hintKey: "admin.queue.waitNoticeHint" }),
      numberField("admin.queue.managerWait", v.manager_wait_seconds, "manager_wait_seconds",
        { min: 60, max: 604800, unitKey: "unit.seconds", hintKey: "admin.queue.managerWaitHint" }),
      field({ key: "admin.queue.managerExpiry", control: expiry, path: "manager_wait_expiry", hintKey: "admin.queue.managerExpiryHint" }))),
    formFooter(q ? "admin.save" : "admin.queues.createSubmit", () => go("list")));
  clearOnEdit(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const body = { name: name.value.trim(), description: description.value.trim(), team_id: idOrNull(team.value),
        strategy: strategy.value, manager_wait_expiry: expiry.value, enabled: form.querySelector("#queue-enabled").checked,
        required_skills: [...skills.querySelectorAll(".skill-row")].map((row) => ({
          skill_id: Number(row.querySelector(".skill-row__skill").value),
          min_level: Number(row.querySelector(".skill-row__level").value) })),
        business_hours: hours.collect() };
      for (const key of ["priority", "sl_target_percent", "sl_target_seconds", "accept_timeout_seconds",
        "wait_notice_seconds", "manager_wait_seconds"]) {
        const raw = form.querySelector(`#queue-${key}`).value.trim();
        if (raw !== "") body[key] = Number(raw);
      }
      const saved = q ? await patch(`/queues/${q.id}`, body) : await post("/queues", body);
      state.notice = { key: q ? "admin.queue.saved" : "admin.queue.created", params: { name: saved.name } };
      state.mode = "list";
      await reload({ force: true });
    });
  });
  const head = h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" },
      tx("h2", q ? "admin.queue.editTitle" : "admin.queue.newTitle", { name: q ? q.name : "" }, { class: "admin__title" }),
      tx("p", "admin.queues.lead", null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, button("admin.back", () => go("list"), "btn")));
  return h("div", { class: "admin__page" }, head, h("div", { class: "card" }, form));
}
