// The customer card beside a conversation: who the customer is (identities, personal manager, attributes,
// consent, their conversations on every channel) and what can be done about it: edit the contact, and for
// supervisors choose the personal manager, merge a duplicate into it and split an identity off (the access
// policy, docs/access.md: agents are not offered what the server would refuse them). The dialogs are native <dialog> elements opened
// with showModal(), so focus stays inside and Escape closes them.
// Every value from the server goes into the page as text (dom.js); dialog labels carry data-i18n so that a
// language switch re-translates an open form without losing what was typed.

import { ApiError, get, patch, post } from "./api.js";
import { h } from "./dom.js";
import { fullTime, has, lang, shortTime, t, tx } from "./i18n.js";
import { openStartDialog } from "./outbound.js";
import "./texts/outbound.js";
import "./texts/ratings.js";
import "./texts/crm.js";

const HISTORY_LIMIT = 50;
const HISTORY_MAX_AGE_MS = 30_000; // a new conversation of the same customer shows up within this
const SEARCH_DELAY_MS = 250;
const MIN_QUERY = 2;
// Fields of ContactUpdate the edit form names; an error "<path>: <message>" from the server marks that field.
const FIELD_KEYS = { name: "contact.name", email: "contact.email", phone: "contact.phone",
  language: "contact.language", manager_id: "contact.manager", attributes: "contact.attributes" };
const CODE_FIELDS = { manager_not_found: "manager_id" };

const state = {
  root: null,
  hooks: null, // {me, users, channels, onError, onChanged, openConversation}
  contact: null,
  conversationId: null,
  history: null, // the contact's conversations (as far as the user may see them), newest activity first
  historyMore: false,
  historyFailed: false,
  historyStamp: "",
  historyAt: 0,
  historyRequest: 0,
  conversationStatus: "", // the open conversation's status as last shown; a change reads the history again
  notice: null, // {key, params}: what the last action here did; kept until another conversation is opened
  signature: "",
  dialog: null,
};

// ---- wiring from main.js ---------------------------------------------------------------------------------

export function initContact({ root, me, users, channels, onError, onChanged, openConversation }) {
  state.root = root;
  state.hooks = { me, users, channels, onError, onChanged, openConversation };
}

/** Show the card of the open conversation's contact; called on every refresh, draws only what changed. */
export function showContact(contact, conversationId, conversationStatus = "") {
  const switched = !state.contact || state.contact.id !== contact.id;
  // The open conversation was resolved, reopened, assigned…: its line in the history must say so at once.
  const statusChanged = conversationId === state.conversationId && conversationStatus !== state.conversationStatus;
  state.conversationStatus = conversationStatus;
  if (conversationId !== state.conversationId) state.notice = null;
  if (switched) {
    state.history = null;
    state.historyFailed = false;
  }
  state.contact = contact;
  state.conversationId = conversationId;
  if (switched || statusChanged || contact.updated_at !== state.historyStamp
    || Date.now() - state.historyAt > HISTORY_MAX_AGE_MS) {
    loadHistory();
  }
  render();
}

export function resetContact() {
  closeDialog();
  Object.assign(state, { contact: null, conversationId: null, conversationStatus: "", history: null, notice: null,
    signature: "" });
  state.historyRequest += 1;
  if (state.root) state.root.replaceChildren();
}

async function loadHistory() {
  const id = state.contact.id;
  const request = ++state.historyRequest;
  state.historyAt = Date.now();
  state.historyStamp = state.contact.updated_at;
  let page;
  try {
    page = await get(`/conversations?contact_id=${id}&limit=${HISTORY_LIMIT}`);
  } catch (err) {
    if (request !== state.historyRequest) return;
    if (err instanceof ApiError && err.status === 401) state.hooks.onError(err);
    state.historyFailed = true;
    render();
    return;
  }
  if (request !== state.historyRequest || !state.contact || state.contact.id !== id) return;
  state.history = page.items;
  state.historyMore = Boolean(page.next_cursor);
  state.historyFailed = false;
  render();
}

/** After a change made here: the card, the conversation and the list are fetched again. */
async function changed(notice) {
  state.notice = notice;
  state.historyAt = 0;
  state.signature = "";
  await state.hooks.onChanged();
  render();
}

// ---- small helpers -----------------------------------------------------------------------------------------

function button(key, onClick, cls = "btn btn--small", options = {}) {
  return tx("button", key, options.params, { class: cls, type: "button", on: { click: onClick }, ...options.props });
}

function isSupervisor() {
  const me = state.hooks.me();
  return Boolean(me && (me.role === "admin" || me.role === "supervisor"));
}

function displayName(c) {
  return c.name || t("contact.unnamed");
}

function userName(id) {
  if (id === null || id === undefined) return "";
  const user = state.hooks.users().get(id);
  return user ? user.name : `#${id}`;
}

function languageName(code) {
  return code && has(`contact.lang.${code}`) ? t(`contact.lang.${code}`) : code;
}

function identityText(i) {
  return `${i.channel_type}:${i.external_id}`;
}

function linkedText(how) {
  return has(`contact.linkedBy.${how}`) ? t(`contact.linkedBy.${how}`) : t("contact.linkedBy.other", { how });
}

function channelName(id) {
  if (id === null || id === undefined) return "";
  const channel = state.hooks.channels().get(id);
  return channel ? channel.name : t("msg.channel", { id });
}

function statusBadge(status) {
  return h("span", { class: ["badge", `badge--${has(`status.${status}`) ? status : "other"}`], dataset: { status },
    text: has(`status.${status}`) ? t(`status.${status}`) : status });
}

function timeEl(iso, cls) {
  return h("time", { class: cls, attrs: { datetime: iso, title: fullTime(iso) }, text: shortTime(iso) });
}

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.network");
    return err.detail || t("error.generic", { status: err.status });
  }
  return String((err && err.message) || err);
}

// ---- the card --------------------------------------------------------------------------------------------------

function render() {
  const c = state.contact;
  if (!c || !state.root) return;
  const me = state.hooks.me();
  const signature = JSON.stringify([lang(), c, state.conversationId, state.conversationStatus, state.history,
    state.historyMore, state.historyFailed, state.notice, me && me.role, state.hooks.users().size, state.hooks.channels().size]);
  if (signature === state.signature && state.root.firstChild) return;
  state.signature = signature;
  const focused = document.activeElement && state.root.contains(document.activeElement)
    ? document.activeElement.dataset.focus : null;
  state.root.dataset.contactId = c.id;
  state.root.replaceChildren(...[
    noticeBar(),
    h("dl", { class: "contact__fields" },
      field("contact.name", c.name, "contact__name"),
      field("contact.email", c.email, "contact__email"),
      field("contact.phone", c.phone, "contact__phone"),
      field("contact.language", languageName(c.language), "contact__language"),
      field("contact.manager", userName(c.manager_id), "contact__manager"),
      field("contact.preferred", c.preferred_channel || t("contact.preferred.none"), "contact__preferred")),
    h("div", { class: "contact__actions" },
      button("contact.edit", () => editDialog(c), "btn btn--small",
        { props: { id: "contact-edit", dataset: { focus: "edit" } } }),
      button("out.new", () => openStartDialog({ contact: c, channels: state.hooks.channels,
        onStarted: state.hooks.openConversation, onError: state.hooks.onError }), "btn btn--small",
      { props: { id: "contact-start", dataset: { focus: "start" } } }),
      isSupervisor() ? button("contact.merge", () => mergeDialog(c), "btn btn--small",
        { props: { id: "contact-merge", dataset: { focus: "merge" } } }) : null,
      // a subject access request: everything about the person in one archive (supervisors; the server audits it)
      isSupervisor() ? tx("a", "contact.export", null, { class: "btn btn--small", id: "contact-export",
        attrs: { href: `/api/v1/contacts/${c.id}/export`, download: `contact-${c.id}.zip` } }) : null),
    section("contact.identities", identityList(c), (c.identities || []).length),
    section("contact.attributes", attributeList(c)),
    section("contact.consent", consentList(c)),
    c.crm ? section("contact.crm", crmCard(c), null) : null,
    section("contact.ratings", ratingList(c), (c.ratings || []).length || null),
    section("contact.conversations", historyList(), state.history ? state.history.length : null),
  ].flat(2).filter(Boolean));
  if (focused) {
    const again = state.root.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function noticeBar() {
  if (!state.notice) return null;
  return h("div", { class: "notice contact__notice", attrs: { role: "status" } },
    tx("span", state.notice.key, state.notice.params, { class: "notice__text" }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("banner.dismiss") }, text: "×",
      on: { click: () => { state.notice = null; render(); } } }));
}

function field(labelKey, value, cls) {
  const empty = value === null || value === undefined || value === "";
  return [h("dt", { text: t(labelKey) }),
    h("dd", { class: [cls, empty ? "muted" : ""], text: empty ? t("contact.none") : String(value) })];
}

function section(titleKey, body, count) {
  return [h("h4", { class: "contact__subtitle" }, t(titleKey),
    count ? h("span", { class: "contact__count", text: ` · ${count}` }) : null), body];
}

function none() {
  return h("p", { class: "muted contact__none", text: t("contact.none") });
}

function identityList(c) {
  const identities = c.identities || [];
  if (!identities.length) return none();
  const canSplit = isSupervisor() && identities.length > 1;
  return h("ul", { class: "contact__identities" }, identities.map((i) => {
    const verified = [i.verified_email, i.verified_phone].filter(Boolean);
    return h("li", { class: "contact__identity", dataset: { identityId: i.id, channelType: i.channel_type } },
      h("div", { class: "contact__identity-main" },
        h("span", { class: "contact__channel-type", text: i.channel_type }),
        h("span", { class: "contact__external-id", text: i.external_id }),
        canSplit ? button("contact.split", () => splitDialog(c, i), "btn btn--small btn--ghost contact__split",
          { props: { dataset: { focus: `split-${i.id}` } } }) : null),
      i.display && i.display !== i.external_id
        ? h("div", { class: "contact__identity-display muted", text: i.display }) : null,
      i.linked_by ? h("div", { class: "contact__linked", text: linkedText(i.linked_by) }) : null,
      verified.length
        ? h("div", { class: "contact__verified muted", text: t("contact.verified", { values: verified.join(", ") }) })
        : null);
  }));
}

function attributeList(c) {
  const attributes = Object.entries(c.attributes || {});
  if (!attributes.length) return none();
  return h("dl", { class: "contact__attributes" }, attributes.flatMap(([key, value]) => [
    h("dt", { text: key }),
    h("dd", { text: value === null ? "null" : String(value) }),
  ]));
}

function consentList(c) {
  const consents = c.consents || [];
  if (!consents.length) return none();
  return h("ul", { class: "contact__consents" }, consents.map((x) => h("li", {
    class: "contact__consent", dataset: { channelType: x.channel_type, granted: String(x.granted) } },
  h("span", { class: "contact__channel-type", text: x.channel_type }),
  h("span", { class: ["contact__consent-state", x.granted ? "contact__consent-state--yes" : "contact__consent-state--no"],
    text: t(x.granted ? "contact.consent.granted" : "contact.consent.refused") }),
  timeEl(x.updated_at, "contact__consent-time muted"),
  x.source ? h("div", { class: "contact__consent-source muted", text: t("contact.consent.source", { source: x.source }) })
    : null,
  x.granted ? button("contact.consent.withdraw", () => withdrawConsent(c, x), "btn btn--small contact__consent-withdraw")
    : null)));
}

/** The customer asked (by phone, in a letter) to get no more messages on a channel: recorded with who and where. */
async function withdrawConsent(c, consent) {
  const me = state.hooks.me();
  try {
    await patch(`/contacts/${c.id}`, { consents: [{ channel_type: consent.channel_type, granted: false,
      source: t("contact.consent.withdrawnBy", { name: me ? me.name : "" }) }] });
    await state.hooks.onChanged();
  } catch (err) {
    state.hooks.onError(err);
  }
}

/** What the company's CRM said (its own field names and values, shown as text), or why it said nothing. */
function crmCard(c) {
  const crm = c.crm;
  const refresh = button("contact.crm.refresh", async () => {
    try {
      await post(`/contacts/${c.id}/crm/refresh`, {});
      state.hooks.onChanged();
    } catch (err) {
      state.hooks.onError(err);
    }
  }, "btn btn--small", { props: { id: "contact-crm-refresh" } });
  const asked = h("div", { class: "muted contact__crm-time" }, t("contact.crm.asked"), " ", timeEl(crm.fetched_at, ""));
  if (crm.status !== "ok") {
    return h("div", { class: "contact__crm", dataset: { status: crm.status } },
      h("p", { class: "contact__crm-problem", text: t(`contact.crm.${crm.status}`, { error: crm.error || "" }) }), asked, refresh);
  }
  const data = crm.data || {};
  const rows = Object.entries(data).filter(([k]) => k !== "orders").map(([k, v]) =>
    [h("dt", { text: k }), h("dd", { class: "contact__crm-value", dataset: { key: k },
      text: typeof v === "object" ? JSON.stringify(v) : String(v) })]);
  const orders = Array.isArray(data.orders) ? h("div", { class: "contact__crm-orders" },
    h("h4", { text: t("contact.crm.orders") }),
    h("ul", {}, data.orders.map((o) => h("li", { class: "contact__crm-order",
      text: typeof o === "object" && o ? Object.values(o).map(String).join(" · ") : String(o) })))) : null;
  return h("div", { class: "contact__crm", dataset: { status: "ok" } }, h("dl", { class: "contact__fields" }, rows.flat()),
    orders, asked, refresh);
}

/** Past ratings, newest first; a low one is marked (the comment is the customer's own text). */
function ratingList(c) {
  const ratings = c.ratings || [];
  if (!ratings.length) return none();
  return h("ul", { class: "contact__ratings" }, ratings.map((r) => {
    const low = r.scale === "nps" ? r.score <= 6 : r.score <= 2;
    return h("li", { class: ["contact__rating", low ? "contact__rating--low" : ""], dataset: { score: r.score } },
      h("span", { class: "contact__rating-score",
        text: t(r.scale === "nps" ? "contact.rating.nps" : "contact.rating.csat", { score: r.score }) }),
      h("span", { class: "muted", text: t("contact.rating.conversation", { id: r.conversation_id }) }),
      timeEl(r.created_at, "contact__rating-time muted"),
      r.comment ? h("div", { class: "contact__rating-comment", text: r.comment }) : null);
  }));
}

function historyList() {
  if (state.historyFailed && !state.history) return h("p", { class: "muted", text: t("contact.history.failed") });
  if (!state.history) return h("p", { class: "muted", text: t("app.loading") });
  if (!state.history.length) return none();
  const items = state.history.map((conv) => {
    const current = conv.id === state.conversationId;
    const status = current && state.conversationStatus ? state.conversationStatus : conv.status;
    const body = [
      h("span", { class: "contact__conv-top" },
        h("span", { class: "contact__conv-subject", text: conv.subject || t("contact.history.noSubject") }),
        statusBadge(status)),
      h("span", { class: "contact__conv-meta muted" },
        current ? tx("span", "contact.history.current", null, { class: "contact__conv-current" })
          : h("span", { text: channelName(conv.last_inbound_channel_id) || t("msg.noChannel") }),
        timeEl(conv.last_message_at, "contact__conv-time")),
    ];
    return h("li", { class: "contact__conv-item", dataset: { conversationId: conv.id } }, current
      ? h("div", { class: "contact__conv contact__conv--current", attrs: { "aria-current": "true" } }, body)
      : h("button", { class: "contact__conv", type: "button", dataset: { focus: `conv-${conv.id}` },
        on: { click: () => state.hooks.openConversation(conv.id) } }, body));
  });
  return [h("ul", { class: "contact__history" }, items),
    state.historyMore ? h("p", { class: "muted", text: t("contact.history.more", { n: HISTORY_LIMIT }) }) : null];
}

// ---- dialogs -------------------------------------------------------------------------------------------------

function closeDialog() {
  if (state.dialog) state.dialog.close();
}

/** A modal dialog with a title, a body and a footer (which holds the error line and the buttons). */
function openDialog(id, titleKey, titleParams, body, footer, onSubmit) {
  closeDialog();
  const opener = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.focus : null;
  const form = h("form", { class: "kdialog__form", attrs: { novalidate: true, method: "dialog" },
    on: { submit: (event) => { event.preventDefault(); if (onSubmit) onSubmit(form); } } },
  h("header", { class: "kdialog__head" },
    tx("h2", titleKey, titleParams, { class: "kdialog__title", id: `${id}-title` }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("contact.close") }, text: "×",
      on: { click: () => dialog.close() } })),
  h("div", { class: "kdialog__body" }, body),
  footer);
  const dialog = h("dialog", { class: "kdialog", id, attrs: { "aria-labelledby": `${id}-title` } }, form);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (state.dialog === dialog) state.dialog = null;
    const back = opener && state.root.querySelector(`[data-focus="${CSS.escape(opener)}"]`);
    if (back) back.focus();
  });
  state.dialog = dialog;
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector("[data-autofocus]");
  if (first) first.focus();
  return { dialog, form };
}

function footer(submitKey, submitCls = "btn btn--primary", extra = null) {
  return h("div", { class: "form-footer kdialog__foot" },
    h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true }),
    h("div", { class: "form-footer__buttons" },
      extra,
      button("admin.cancel", () => closeDialog(), "btn form-cancel"),
      submitKey ? tx("button", submitKey, null, { class: `${submitCls} form-submit`, type: "submit" }) : null));
}

function formError(form, text) {
  const line = form.querySelector(".form-error");
  line.textContent = text || "";
  line.hidden = !text;
}

/** Run a dialog's action with its submit button disabled; a lost session goes to the login form. */
async function submitting(form, work) {
  const submit = form.querySelector(".form-submit");
  if (submit.disabled) return;
  formError(form, "");
  submit.disabled = true;
  try {
    await work();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      closeDialog();
      state.hooks.onError(err);
      return;
    }
    showFormError(form, err);
  } finally {
    submit.disabled = false;
  }
}

let fieldSeq = 0;

function formField(key, path, control, hintKey) {
  control.id = control.id || `cf${++fieldSeq}`;
  const errorId = `${control.id}-error`;
  const hint = hintKey ? tx("p", hintKey, null, { class: "field__hint", id: `${control.id}-hint` }) : null;
  control.setAttribute("aria-describedby", [hint ? `${control.id}-hint` : "", errorId].filter(Boolean).join(" "));
  return h("div", { class: "field", dataset: { path } },
    h("label", { class: "field__label", attrs: { for: control.id } }, tx("span", key)),
    control, hint, h("p", { class: "field__error", id: errorId, attrs: { role: "alert" }, hidden: true }));
}

function clearFieldErrors(form) {
  for (const box of form.querySelectorAll(".field--invalid")) box.classList.remove("field--invalid");
  for (const slot of form.querySelectorAll(".field__error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
}

/** Mark one field with a message; true when the form has that field. */
function markField(form, path, message) {
  const box = form.querySelector(`[data-path="${CSS.escape(path)}"]`);
  if (!box) return false;
  box.classList.add("field--invalid");
  const slot = box.querySelector(".field__error");
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
  }
  const control = box.querySelector("input, select, textarea");
  if (control) control.focus();
  return true;
}

/** The server's error beside the form; "email: value is not…" also marks the field and names it. */
function showFormError(form, err) {
  clearFieldErrors(form);
  const text = errorText(err);
  const match = /^([A-Za-z_]\w*)(?:\.[\w.]+)?: (.+)$/s.exec(text);
  const path = match ? match[1] : CODE_FIELDS[err && err.code];
  let message = match ? match[2] : text;
  // The phone's rule is a regular expression; say what it means instead of quoting it.
  if (path === "phone" && /pattern/i.test(message)) message = t("contact.edit.phoneInvalid");
  if (path && FIELD_KEYS[path] && markField(form, path, message)) {
    formError(form, t("contact.fieldError", { field: t(FIELD_KEYS[path]), message }));
    return;
  }
  formError(form, text);
}

// ---- editing ---------------------------------------------------------------------------------------------------

function input(value, attrs = {}, type = "text") {
  return h("input", { type, value: value === null || value === undefined ? "" : String(value), attrs });
}

function select(options, value, id) {
  const el = h("select", { id });
  for (const o of options) {
    el.append(o.key ? tx("option", o.key, null, { value: o.value }) : h("option", { value: o.value, text: o.text }));
  }
  el.value = value === null || value === undefined ? "" : String(value);
  return el;
}

/** People who may be a personal manager (active agents and supervisors), and the current one whoever it is. */
function managerOptions(current) {
  const users = [...state.hooks.users().values()]
    .filter((u) => (u.active && (u.role === "agent" || u.role === "supervisor")) || u.id === current)
    .sort((a, b) => a.name.localeCompare(b.name, lang()));
  const options = [{ value: "", key: "contact.noManager" }, ...users.map((u) => ({ value: u.id, text: u.name }))];
  if (current && !users.some((u) => u.id === current)) options.push({ value: current, text: `#${current}` });
  return options;
}

function attributeRow(key = "", value = "") {
  const row = h("div", { class: "attr-row", dataset: { key } },
    input(key, { maxlength: 64, "aria-label": t("contact.edit.attrKey"), placeholder: t("contact.edit.attrKey") }),
    input(value === null ? "" : value, { maxlength: 2000, "aria-label": t("contact.edit.attrValue"),
      placeholder: t("contact.edit.attrValue") }),
    h("button", { class: "btn btn--small btn--ghost attr-row__remove", type: "button", text: "×",
      attrs: { "aria-label": t("contact.edit.removeAttribute"), title: t("contact.edit.removeAttribute") },
      on: { click: () => row.remove() } }));
  row.querySelector("input").classList.add("attr-row__key");
  row.querySelectorAll("input")[1].classList.add("attr-row__value");
  return row;
}

function editDialog(c) {
  const rows = h("div", { class: "attr-rows" }, Object.entries(c.attributes || {}).map(([k, v]) => attributeRow(k, v)));
  const body = [
    h("div", { class: "form-grid form-grid--dialog" },
      formField("contact.name", "name", input(c.name, { maxlength: 200, id: "contact-edit-name", "data-autofocus": "" })),
      formField("contact.email", "email", input(c.email, { maxlength: 254, id: "contact-edit-email",
        autocomplete: "off" }, "email")),
      formField("contact.phone", "phone", input(c.phone, { maxlength: 32, id: "contact-edit-phone",
        autocomplete: "off" }, "tel"), "contact.edit.phoneHint"),
      formField("contact.language", "language", select([{ value: "", key: "contact.unset" },
        { value: "en", key: "contact.lang.en" }, { value: "ru", key: "contact.lang.ru" }], c.language,
      "contact-edit-language")),
      h("div", { class: "field--wide" }, managerField(c))),
    h("fieldset", { class: "field attr-set", dataset: { path: "attributes" } },
      tx("legend", "contact.attributes", null, { class: "field__label" }),
      tx("p", "contact.edit.attributesLead", null, { class: "field__hint" }),
      rows,
      h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }),
      button("contact.edit.addAttribute", () => {
        const row = attributeRow();
        rows.append(row);
        row.querySelector("input").focus();
      }, "btn btn--small attr-add", { props: { id: "contact-edit-add-attribute" } })),
  ];
  const { dialog } = openDialog("contact-edit-dialog", "contact.edit.title", null, body,
    footer("admin.save"), (form) => submitting(form, () => saveContact(form, c, dialog)));
  dialog.classList.add("kdialog--form");
}

/** The personal manager: a choice for supervisors; shown, but not changeable, for agents (the server refuses). */
function managerField(c) {
  const control = select(managerOptions(c.manager_id), c.manager_id, "contact-edit-manager");
  if (isSupervisor()) return formField("contact.manager", "manager_id", control, "contact.edit.managerHint");
  control.disabled = true;
  return formField("contact.manager", "manager_id", control, "contact.edit.managerSupervisorOnly");
}

/** What changed in the form, as a ContactUpdate; null when the form is invalid (the fields are marked). */
function contactChanges(form, c) {
  const value = (id) => form.querySelector(`#${id}`).value.trim();
  const body = {};
  const name = value("contact-edit-name");
  if (name !== c.name) body.name = name;
  for (const [key, id] of [["email", "contact-edit-email"], ["phone", "contact-edit-phone"],
    ["language", "contact-edit-language"]]) {
    const v = value(id) || null;
    if (v !== (c[key] || null)) body[key] = v;
  }
  const managerSelect = form.querySelector("#contact-edit-manager");
  const manager = managerSelect.value ? Number(managerSelect.value) : null;
  if (!managerSelect.disabled && manager !== (c.manager_id ?? null)) body.manager_id = manager;

  const before = c.attributes || {};
  const after = {};
  for (const row of form.querySelectorAll(".attr-row")) {
    const key = row.querySelector(".attr-row__key").value.trim();
    const val = row.querySelector(".attr-row__value").value;
    if (!key && !val.trim()) continue;
    if (!key || key in after) {
      clearFieldErrors(form);
      const message = key ? t("contact.edit.keyTwice", { key }) : t("contact.edit.keyMissing");
      markField(form, "attributes", message);
      row.querySelector(".attr-row__key").focus();
      formError(form, t("contact.fieldError", { field: t("contact.attributes"), message }));
      return null;
    }
    after[key] = val;
  }
  const attributes = {};
  for (const key of Object.keys(before)) if (!(key in after)) attributes[key] = null; // null removes it
  for (const [key, val] of Object.entries(after)) {
    if (!(key in before) || String(before[key]) !== val) attributes[key] = val;
  }
  if (Object.keys(attributes).length) body.attributes = attributes;
  return body;
}

async function saveContact(form, c, dialog) {
  clearFieldErrors(form);
  const body = contactChanges(form, c);
  if (body === null) return;
  if (!Object.keys(body).length) {
    dialog.close();
    return;
  }
  const saved = await patch(`/contacts/${c.id}`, body);
  dialog.close();
  if (state.contact && state.contact.id === saved.id) state.contact = saved;
  await changed({ key: "contact.notice.saved", params: { name: displayName(saved) } });
}

// ---- merging ---------------------------------------------------------------------------------------------------

function miniCard(c, roleKey, conversations) {
  const identities = c.identities || [];
  return [
    tx("span", roleKey, null, { class: "merge-card__role" }),
    h("strong", { class: "merge-card__name", text: displayName(c) }),
    h("dl", { class: "merge-card__fields" },
      field("contact.email", c.email, "merge-card__email"),
      field("contact.phone", c.phone, "merge-card__phone"),
      field("contact.language", languageName(c.language), ""),
      field("contact.manager", userName(c.manager_id), ""),
      field("contact.conversations", conversations, "merge-card__conversations")),
    h("ul", { class: "merge-card__identities" }, identities.map((i) => h("li", {},
      h("span", { class: "contact__channel-type", text: i.channel_type }), " ", i.external_id))),
  ];
}

function mergeDialog(c) {
  const search = input("", { id: "contact-merge-search", "data-autofocus": "", maxlength: 200, autocomplete: "off",
    placeholder: t("contact.merge.placeholder"), "aria-describedby": "contact-merge-status" }, "search");
  const status = tx("p", "contact.merge.short", { n: MIN_QUERY }, { class: "muted merge-status",
    id: "contact-merge-status", attrs: { role: "status" } });
  const results = h("ul", { class: "merge-results", id: "contact-merge-results" });
  const searchStep = h("div", { class: "merge-step", id: "contact-merge-find" },
    tx("p", "contact.merge.lead", null, { class: "kdialog__lead" }),
    h("label", { class: "visually-hidden", attrs: { for: "contact-merge-search" }, text: t("contact.merge.search") }),
    search, status, results);
  const confirmStep = h("div", { class: "merge-step", id: "contact-merge-confirm-step", hidden: true });
  const back = button("contact.merge.back", () => showSearch(), "btn merge-back", { props: { hidden: true } });
  const foot = footer("contact.merge.confirm", "btn btn--primary", back);
  const { dialog, form } = openDialog("contact-merge-dialog", "contact.merge.title", null, [searchStep, confirmStep],
    foot, (f) => submitting(f, () => merge(f)));
  dialog.classList.add("kdialog--wide");
  const submit = form.querySelector(".form-submit");
  submit.hidden = true;
  let picked = null;
  let timer = null;
  let request = 0;

  function showSearch() {
    picked = null;
    confirmStep.hidden = true;
    searchStep.hidden = false;
    back.hidden = true;
    submit.hidden = true;
    formError(form, "");
    search.focus();
  }

  async function run() {
    const q = search.value.trim();
    const mine = ++request;
    results.replaceChildren();
    if (q.length < MIN_QUERY) {
      setStatus("contact.merge.short", { n: MIN_QUERY });
      return;
    }
    setStatus("contact.merge.searching");
    let page;
    try {
      page = await get(`/contacts?${new URLSearchParams({ q, limit: "20" })}`);
    } catch (err) {
      if (mine !== request) return;
      if (err instanceof ApiError && err.status === 401) {
        closeDialog();
        state.hooks.onError(err);
        return;
      }
      status.removeAttribute("data-i18n");
      status.textContent = errorText(err);
      return;
    }
    if (mine !== request) return;
    const found = page.items.filter((x) => x.id !== c.id);
    if (!found.length) setStatus("contact.merge.none", { q });
    else setStatus(page.next_cursor ? "contact.merge.foundMore" : "contact.merge.found", { n: found.length });
    results.replaceChildren(...found.map((x) => h("li", {},
      h("button", { class: "merge-result", type: "button", dataset: { contactId: x.id },
        on: { click: () => pick(x) } },
      h("span", { class: "merge-result__name", text: displayName(x) }),
      h("span", { class: "merge-result__meta muted", text: [x.email, x.phone].filter(Boolean).join(" · ") }),
      h("span", { class: "merge-result__ids" }, (x.identities || []).map((i) => h("span", { class: "chip",
        text: identityText(i) })))))));
  }

  function setStatus(key, params) {
    status.dataset.i18n = key;
    status.dataset.i18nArgs = JSON.stringify(params || {});
    status.textContent = t(key, params || {});
  }

  async function pick(other) {
    picked = other;
    let theirs = "…";
    searchStep.hidden = true;
    confirmStep.hidden = false;
    back.hidden = false;
    submit.hidden = false;
    drawConfirm(other, c.id, theirs);
    try {
      const page = await get(`/conversations?contact_id=${other.id}&limit=${HISTORY_LIMIT}`);
      theirs = `${page.items.length}${page.next_cursor ? "+" : ""}`;
    } catch {
      theirs = "?";
    }
    if (picked === other) drawConfirm(other, keepId(), theirs);
  }

  function keepId() {
    const checked = confirmStep.querySelector("input[name=merge-keep]:checked");
    return checked ? Number(checked.value) : c.id;
  }

  function drawConfirm(other, keep, theirs) {
    const mine = state.history ? `${state.history.length}${state.historyMore ? "+" : ""}` : "…";
    const option = (x, roleKey, count) => {
      const radio = h("input", { type: "radio", name: "merge-keep", value: String(x.id), checked: x.id === keep,
        class: "merge-card__radio", on: { change: () => drawConfirm(other, x.id, theirs) } });
      const kept = x.id === keep;
      return h("label", { class: ["merge-card", kept ? "merge-card--keep" : "merge-card--gone"],
        dataset: { contactId: x.id } },
      h("span", { class: "merge-card__choice" }, radio, tx("span", "contact.merge.keepThis"),
        tx("span", kept ? "contact.merge.remains" : "contact.merge.foldedIn", null,
          { class: ["merge-card__fate", kept ? "merge-card__fate--keep" : "merge-card__fate--gone"] })),
      miniCard(x, roleKey, count));
    };
    const kept = keep === c.id ? c : other;
    const gone = keep === c.id ? other : c;
    const focusedValue = document.activeElement && document.activeElement.name === "merge-keep"
      ? document.activeElement.value : null;
    confirmStep.replaceChildren(
      tx("p", "contact.merge.confirmLead", null, { class: "kdialog__lead" }),
      h("div", { class: "merge-pair", attrs: { role: "radiogroup", "aria-label": t("contact.merge.keepLabel") } },
        option(c, "contact.merge.current", mine), option(other, "contact.merge.other", theirs)),
      tx("p", "contact.merge.summary", { keep: displayName(kept), other: displayName(gone) },
        { class: "merge-summary", id: "contact-merge-summary" }),
      tx("p", "contact.merge.undo", null, { class: "muted merge-undo" }));
    if (focusedValue) {
      const again = confirmStep.querySelector(`input[value="${CSS.escape(focusedValue)}"]`);
      if (again) again.focus();
    }
  }

  async function merge(f) {
    if (!picked) return;
    const keep = keepId();
    const other = keep === c.id ? picked.id : c.id;
    const kept = keep === c.id ? c : picked;
    const gone = keep === c.id ? picked : c;
    await post(`/contacts/${keep}/merge`, { other_id: other });
    f.closest("dialog").close();
    await changed({ key: "contact.notice.merged", params: { name: displayName(kept), other: displayName(gone) } });
  }

  search.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, SEARCH_DELAY_MS);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { // a search field submits nothing: search now instead
      event.preventDefault();
      window.clearTimeout(timer);
      run();
    }
  });
}

// ---- splitting an identity off (supervisors) -----------------------------------------------------------------

function splitDialog(c, ident) {
  const sameType = (c.identities || []).some((i) => i.id !== ident.id && i.channel_type === ident.channel_type);
  const consent = (c.consents || []).some((x) => x.channel_type === ident.channel_type);
  const type = ident.channel_type;
  const newName = ident.display || ident.external_id;
  const points = [
    sameType ? tx("li", "contact.split.noConversations", { name: displayName(c), type })
      : tx("li", "contact.split.conversations", { type }),
    !sameType && consent ? tx("li", "contact.split.consent", { type }) : null,
    ident.linked_by ? tx("li", "contact.split.link", { how: linkedText(ident.linked_by) }) : null,
    tx("li", "contact.split.stays", { name: displayName(c) }),
  ];
  const body = [
    tx("p", "contact.split.what", { identity: identityText(ident), name: newName },
      { class: "kdialog__lead split-what", id: "contact-split-what" }),
    h("ul", { class: "split-points" }, points),
  ];
  const { dialog } = openDialog("contact-split-dialog", "contact.split.title", null, body,
    footer("contact.split.confirm", "btn btn--danger"), (form) => submitting(form, async () => {
      const result = await post(`/contacts/${c.id}/identities/${ident.id}/split`);
      dialog.close();
      await changed({ key: "contact.notice.split", params: { identity: identityText(ident),
        name: displayName(result.contact), n: result.moved_conversation_ids.length } });
    }));
  dialog.querySelector(".form-cancel").focus(); // the safe choice first
}
